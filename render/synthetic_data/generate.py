"""`digit-render make-synthetic`: a dataset in InterHand2.6M's exact layout, synthetic model.

Every capture has its own calibrated rig and subject (one skin tone and one shape for both hands);
its sequences are single-hand (right, left) or interacting, and hand_type comes from the sequence as
in the real data. Annotated joints are the hand model's 21 regressed joints per hand, so a MANO fit
reproduces its annotation exactly (fit error 0 mm) unless the frame has no fit.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.assets import SYNTHETIC_MANO_DIR
from core.camera import project
from core.errors import DigitError
from core.paths import SYNTHETIC_MARKER, SYNTHETIC_VERSION
from core.progress import progress
from render.hand_model import HandModel
from render.mano import load_mano_pickle
from render.raster import rasterize
from render.synthetic_data import images as img
from render.synthetic_data.motion import (
    HandTrack,
    canonical_to_world,
    facing_partner,
    partner_offsets,
    random_track,
)
from render.synthetic_data.rig import RigCamera, make_rig, rig_to_camera_json
from render.synthetic_data.writer import SplitWriter, tight_bbox
from render.synthetic_mano import sample_natural_hand_pose

GENERATOR_VERSION = SYNTHETIC_VERSION  # names the default folder (core.paths)
SPLITS = ("train", "val", "test")
FRAME_STRIDE = 6  # InterHand2.6M's 5 fps subset of 30 fps video
SEQUENCES = (
    ("right", "ROM02_RT_Finger_Occlusions"),
    ("left", "ROM03_LT_No_Occlusion"),
    ("interacting", "ROM04_dh_touch"),
    ("interacting", "0051_dh_clasp"),
)


@dataclass(frozen=True)
class SyntheticSettings:
    """What to generate: `captures` per split, `cameras` per capture, `frames` per sequence
    (four sequences per capture: right, left and two interacting)."""

    captures: int = 2
    cameras: int = 4
    frames: int = 10
    seed: int = 0
    images: bool = True
    p_missing_fit: float = 0.03
    p_missing_hand_fit: float = 0.03
    p_joint_unannotated: float = 0.02
    p_dark_image: float = 0.01


class _Scene:
    """The hand model plus what every frame needs from it, computed once."""

    def __init__(self, mano_dir: Path) -> None:
        self.model = HandModel.from_dir(mano_dir, dtype=torch.float64)
        self.hands_mean = {
            side: load_mano_pickle(mano_dir / f"MANO_{side.upper()}.pkl")["hands_mean"]
            for side in ("right", "left")
        }
        self.base = {}
        for side in ("right", "left"):
            rest = self.forward(side, np.zeros((1, 3)), self.hands_mean[side][None], np.zeros(10))
            joints = rest[1][0]  # IH order: 20 wrist, 11 middle1, 7 index1, 19 pinky1
            self.base[side] = canonical_to_world(joints[11] - joints[20], joints[7] - joints[19])

    def forward(
        self, side: str, orient_rotvec: np.ndarray, finger_pose: np.ndarray, betas: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Vertices (F, V, 3) and IH joints (F, 21, 3), world mm, with trans = 0."""
        n = len(orient_rotvec)
        pose = np.concatenate([orient_rotvec, finger_pose - self.hands_mean[side]], axis=1)
        out = self.model(
            side,
            torch.as_tensor(pose),
            torch.as_tensor(np.broadcast_to(betas, (n, 10)).copy()),
            torch.zeros(n, 3, dtype=torch.float64),
        )
        return out.vertices.numpy(), out.joints.numpy()


def _rotvec(matrices: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(matrices).as_rotvec()


def _place(scene: _Scene, side: str, track: HandTrack) -> dict:
    """MANO params, vertices and joints of a track, with the wrist joint at track.wrist_mm."""
    orient = _rotvec(track.orient)
    verts, joints = scene.forward(side, orient, track.finger_pose, track.betas)
    shift = track.wrist_mm - joints[:, 20]  # IH joint 20 is the wrist
    return {
        "pose": np.concatenate([orient, track.finger_pose - scene.hands_mean[side]], axis=1),
        "shape": track.betas,
        "trans": shift / 1000.0,
        "verts": verts + shift[:, None],
        "joints": joints + shift[:, None],
    }


def _camera_frame(cam: RigCamera, points: np.ndarray) -> np.ndarray:
    return (points - cam.campos) @ cam.camrot.T


class _ImageRenderer:
    """Draws one frame seen by every camera of a capture: sealed hands plus forearms."""

    def __init__(self, scene: _Scene) -> None:
        self.scene = scene
        self.faces = {s: scene.model.sealed_faces(s).cpu().numpy() for s in ("right", "left")}

    def render(
        self,
        rng: np.random.Generator,
        cams: list[RigCamera],
        hands: dict[str, dict],
        frame: int,
        skin: np.ndarray,
        sleeve: np.ndarray,
        dark: bool,
    ) -> list[np.ndarray]:
        verts, faces, albedo, offset = [], [], [], 0
        for side, h in hands.items():
            v = self.scene.model.sealed(side, torch.as_tensor(h["verts"][frame][None]))[0].numpy()
            j = h["joints"][frame]
            arm_v, arm_f = img.forearm_mesh(j[20], j[20] - j[11], j[7] - j[19])
            for part_v, part_f, colour in ((v, self.faces[side], skin), (arm_v, arm_f, sleeve)):
                verts.append(part_v)
                faces.append(part_f + offset)
                albedo.append(np.broadcast_to(colour, (len(part_f), 3)))
                offset += len(part_v)
        verts_w, faces_all = np.concatenate(verts), np.concatenate(faces)
        albedo_all = np.concatenate(albedo)
        # All cameras in one call: the rasterizer runs images in parallel.
        v_cams = np.stack([_camera_frame(cam, verts_w) for cam in cams])
        frags = rasterize(
            v_cams,
            faces_all,
            np.stack([cam.K for cam in cams]),
            np.array([cam.hw for cam in cams]),
            with_bary=True,
        )
        out = []
        for b, cam in enumerate(cams):
            h, w = cam.hw
            normals = img.vertex_normals(v_cams[b], faces_all)
            light = np.array([0.3, -0.5, -1.0]) + rng.normal(0, 0.2, 3)
            colour, fg = img.shade(
                frags.pix_to_face[b, :h, :w],
                frags.bary[b, :h, :w].astype(np.float64),
                faces_all,
                normals,
                albedo_all,
                light / np.linalg.norm(light),
            )
            picture = np.where(fg[..., None], colour, img.background(rng, cam.hw))
            out.append(img.finish(rng, picture, cam.is_grey, dark))
        return out


def generate(out: Path, settings: SyntheticSettings, mano_dir: Path = SYNTHETIC_MANO_DIR) -> None:
    """Write the dataset to `out` (created; it must not exist or be empty)."""
    scene = _Scene(mano_dir)
    renderer = _ImageRenderer(scene)
    (out / "mano").mkdir(parents=True, exist_ok=True)
    for name in ("MANO_RIGHT.pkl", "MANO_LEFT.pkl"):
        shutil.copyfile(mano_dir / name, out / "mano" / name)
    next_id = _Counter()
    n_total = len(SPLITS) * settings.captures * len(SEQUENCES) * settings.frames * settings.cameras
    with progress(total=n_total, description="synthetic images") as bar:
        for split_index, split in enumerate(SPLITS):
            writer = SplitWriter(split)
            for k in range(settings.captures):
                capture = split_index * settings.captures + k
                rng = np.random.default_rng([settings.seed, split_index, capture])
                cap = _Capture(out, split, writer, renderer, settings, rng, capture, next_id)
                betas = rng.normal(0.0, 0.8, 10)
                frame_idx = 0
                for hand_type, seq_name in SEQUENCES:
                    facing = seq_name.endswith("clasp")
                    hands = _sequence_hands(scene, rng, hand_type, settings.frames, betas, facing)
                    for frame in range(settings.frames):
                        cap.write_frame(hands, hand_type, seq_name, frame, frame_idx)
                        frame_idx += FRAME_STRIDE
                        bar.advance(settings.cameras)
            writer.write(out)
    info = {"generator_version": GENERATOR_VERSION, "settings": asdict(settings)}
    (out / SYNTHETIC_MARKER).write_text(json.dumps(info, indent=1) + "\n")


class _Counter:
    """Image ids, unique over the whole dataset."""

    def __init__(self) -> None:
        self.value = 0

    def take(self) -> int:
        self.value += 1
        return self.value - 1


def _sequence_hands(
    scene: _Scene,
    rng: np.random.Generator,
    hand_type: str,
    n_frames: int,
    betas: np.ndarray,
    facing: bool = False,
) -> dict[str, dict]:
    """Placed hands of one sequence: {"right"|"left": params, vertices and joints per frame}.
    Interacting sequences put the left hand near the right one, or against it (`facing`)."""
    sides = ("right", "left") if hand_type == "interacting" else (hand_type,)
    first = random_track(
        rng, n_frames, sides[0], scene.base[sides[0]], sample_natural_hand_pose, betas=betas
    )
    hands = {sides[0]: _place(scene, sides[0], first)}
    if len(sides) == 2:
        second = random_track(
            rng, n_frames, "left", scene.base["left"], sample_natural_hand_pose, betas=betas
        )
        if facing:
            second = facing_partner(
                rng, first, scene.base["right"], scene.base["left"], second.finger_pose
            )
        else:
            second = HandTrack(
                second.orient,
                second.finger_pose,
                first.wrist_mm + partner_offsets(rng, n_frames),
                betas,
            )
        hands["left"] = _place(scene, "left", second)
    return hands


class _Capture:
    """One capture's rig and subject; writes its frames' annotations and images."""

    def __init__(self, out, split, writer, renderer, settings, rng, capture, next_id) -> None:
        self.out, self.split, self.writer, self.renderer = out, split, writer, renderer
        self.settings, self.rng, self.capture, self.next_id = settings, rng, capture, next_id
        self.cams = make_rig(rng, settings.cameras, capture)
        writer.cameras[str(capture)] = rig_to_camera_json(self.cams)
        self.skin, self.sleeve = img.skin_albedo(rng), rng.uniform(0.1, 0.9, 3)

    def _fits(self, hands: dict[str, dict], hand_type: str, frame: int) -> dict | None:
        """NeuralAnnot entries of one frame; None when the frame has no fit at all."""
        rng, settings = self.rng, self.settings
        if rng.uniform() < settings.p_missing_fit:
            return None
        fits = {"right": None, "left": None}
        for side, h in hands.items():
            if hand_type == "interacting" and rng.uniform() < settings.p_missing_hand_fit:
                continue
            fits[side] = {
                "pose": h["pose"][frame].tolist(),
                "shape": h["shape"].tolist(),
                "trans": h["trans"][frame].tolist(),
            }
        return fits

    def write_frame(
        self, hands: dict[str, dict], hand_type: str, seq_name: str, frame: int, frame_idx: int
    ) -> None:
        rng, settings, capture = self.rng, self.settings, self.capture
        joints = np.zeros((42, 3))
        annotated = np.zeros(42, bool)
        for side, h in hands.items():
            block = slice(0, 21) if side == "right" else slice(21, 42)
            joints[block] = h["joints"][frame]
            annotated[block] = rng.uniform(size=21) >= settings.p_joint_unannotated
        fits = self._fits(hands, hand_type, frame)
        self.writer.add_frame(capture, frame_idx, joints, annotated, hand_type, fits)
        dark = rng.uniform() < settings.p_dark_image
        pictures = (
            self.renderer.render(rng, self.cams, hands, frame, self.skin, self.sleeve, dark)
            if settings.images
            else [None] * len(self.cams)
        )
        for cam, picture in zip(self.cams, pictures, strict=True):
            uv = project(_camera_frame(cam, joints), cam.K)
            h, w = cam.hw
            inside = (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)
            valid = annotated & inside
            bbox = tight_bbox(uv, valid)
            if bbox is None:
                continue  # nothing annotated in view: InterHand2.6M has no such images
            image_id = self.next_id.take()
            file_name = f"Capture{capture}/{seq_name}/cam{cam.name}/image{frame_idx:04d}.jpg"
            self.writer.add_image(
                image_id,
                file_name,
                cam.hw,
                capture,
                seq_name,
                cam.name,
                frame_idx,
                bbox,
                valid,
                hand_type,
            )
            if self.split in ("val", "test"):
                self.writer.rootnet.append(_rootnet_entry(rng, image_id, bbox, cam, joints, hands))
            if picture is not None:
                path = self.out / "images" / self.split / file_name
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(picture).save(path, quality=92)


def _rootnet_entry(rng, annot_id, bbox, cam, joints, hands) -> dict:
    """A RootNet-format record: square crop box and noisy absolute root depths (mm)."""
    depth = _camera_frame(cam, joints[[20, 41]])[:, 2]
    present = np.array(["right" in hands, "left" in hands])
    depth = np.where(present, depth, depth[present][0]) + rng.normal(0.0, 25.0, 2)
    x, y, w, h = bbox
    side = max(w, h)
    square = [x + w / 2 - side / 2, y + h / 2 - side / 2, side, side]
    return {
        "annot_id": annot_id,
        "bbox": square,
        "abs_depth": depth.tolist(),
        "root_valid": present.astype(int).tolist(),
    }


def make_synthetic(out: Path, settings: SyntheticSettings, overwrite: bool = False) -> Path:
    """Generate into a work folder beside `out` and move it into place only when complete."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise DigitError(f"{out}: exists and is not empty (pass --overwrite to replace it)")
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    generate(work, settings)
    if out.exists():
        shutil.rmtree(out)
    work.rename(out)
    return out
