"""`digit-render make-synthetic`: a dataset in InterHand2.6M's exact layout, synthetic model.

Every capture has its own calibrated rig and subject (one skin tone and one shape for both hands);
its sequences are single-hand (right, left) or interacting, and hand_type comes from the sequence as
in the real data. Annotated joints are the hand model's 21 regressed joints per hand, so a MANO fit
reproduces its annotation exactly (fit error 0 mm) unless the frame has no fit. Each split has its
own captures (and so its own subjects): val and test subjects are never seen in training.

The work is one job per sequence. A job draws from its own random streams, seeded by (seed, split,
capture, sequence): one for geometry and annotations, one for the pictures, so `--no-images` gives
the same annotations as a full run. Jobs run in joblib processes and are gathered in a fixed order,
with image ids given out at the end, so the bytes written do not depend on the worker count.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.assets import SYNTHETIC_MANO_DIR
from core.camera import project, world_to_camera_centred
from core.errors import DigitError, Interrupted
from core.files import check_free_space, check_output_dir, os_error_line
from core.joints import ROOT_JOINTS
from core.paths import SYNTHETIC_MARKER, SYNTHETIC_VERSION
from core.progress import progress
from core.splits import SPLITS
from render.hand_model import HandModel
from render.raster import rasterize
from render.synthetic_data import images as img
from render.synthetic_data import skin
from render.synthetic_data.motion import (
    HandTrack,
    canonical_to_world,
    facing_partner,
    partner_offsets,
    random_track,
)
from render.synthetic_data.reflect import reflect_fit
from render.synthetic_data.rig import RigCamera, make_rig, rig_to_camera_json
from render.synthetic_data.settings import (
    BETA_SIGMA,
    PARTNER_MAX_MM,
    SyntheticSettings,
)
from render.synthetic_data.writer import SplitWriter, tight_bbox
from render.synthetic_mano.pose_prior import pose_from_angles, sample_everyday_hand_pose

GENERATOR_VERSION = SYNTHETIC_VERSION  # names the default folder (core.paths)


# --------------------------------------------------------------------------- the hand model
class _Scene:
    """The hand model plus what every frame needs from it, computed once per process."""

    def __init__(self, mano_dir: Path) -> None:
        self.model = HandModel.from_dir(mano_dir, dtype=torch.float64)
        self.hands_mean = {side: self.model.hands_mean(side) for side in ("right", "left")}
        self.faces = {s: self.model.sealed_faces(s).cpu().numpy() for s in ("right", "left")}
        self.base = {}
        for side in ("right", "left"):
            rest = self.forward(side, np.zeros((1, 3)), self.hands_mean[side][None], np.zeros(10))
            joints = rest[1][0]  # IH order: 20 wrist, 11 middle1, 7 index1, 19 pinky1
            self.base[side] = canonical_to_world(joints[11] - joints[20], joints[7] - joints[19])
        self.detail = {side: self._detail(side) for side in ("right", "left")}

    def _detail(self, side: str) -> skin.HandDetail:
        """Palm and nail weights of the sealed mesh's vertices (the wrist seal is skin)."""
        curl = np.zeros((1, 15, 3))
        curl[..., 0] = skin.FLEX_RAD
        zero = np.zeros((1, 3))
        flat_v, flat_j = self.forward(side, zero, pose_from_angles(0 * curl, side), np.zeros(10))
        curled_v, _ = self.forward(side, zero, pose_from_angles(curl, side), np.zeros(10))
        d = skin.hand_detail(
            flat_v[0],
            curled_v[0],
            self.model.faces(side).cpu().numpy(),
            self.model.skinning_weights(side),
            flat_j[0],
        )
        return d.padded(1)

    def forward(
        self, side: str, orient_rotvec: np.ndarray, finger_pose: np.ndarray, betas: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Vertices (F, V, 3) and IH joints (F, 21, 3), world mm, with trans = 0."""
        n = len(orient_rotvec)
        pose = np.concatenate([orient_rotvec, finger_pose - self.hands_mean[side]], axis=1)
        with torch.no_grad():
            out = self.model(
                side,
                torch.as_tensor(pose),
                torch.as_tensor(np.broadcast_to(betas, (n, 10)).copy()),
                torch.zeros(n, 3, dtype=torch.float64),
            )
        return out.vertices.numpy(), out.joints.numpy()

    def sealed(self, side: str, verts: np.ndarray) -> np.ndarray:
        """(F, V, 3) posed vertices -> (F, V + 1, 3) with the seal vertex."""
        with torch.no_grad():
            return self.model.sealed(side, torch.as_tensor(verts)).numpy()


_SCENES: dict[str, _Scene] = {}


def _scene_for(mano_dir: str) -> _Scene:
    """The scene of a model folder, built once per (worker) process."""
    if mano_dir not in _SCENES:
        _SCENES[mano_dir] = _Scene(Path(mano_dir))
    return _SCENES[mano_dir]


def _rotvec(matrices: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(matrices).as_rotvec()


def _place(scene: _Scene, side: str, track: HandTrack) -> dict:
    """MANO params, sealed vertices and joints of a track, wrist joint at track.wrist_mm."""
    orient = _rotvec(track.orient)
    verts, joints = scene.forward(side, orient, track.finger_pose, track.betas)
    shift = track.wrist_mm - joints[:, 20]  # IH joint 20 is the wrist
    return {
        "pose": np.concatenate([orient, track.finger_pose - scene.hands_mean[side]], axis=1),
        "shape": track.betas,
        "trans": shift / 1000.0,
        "sealed": scene.sealed(side, verts + shift[:, None]),
        "joints": joints + shift[:, None],
    }


def _sequence_hands(
    scene: _Scene,
    rng: np.random.Generator,
    hand_type: str,
    n_frames: int,
    betas: np.ndarray,
    partner: str = "near",
) -> dict[str, dict]:
    """Placed hands of one sequence: {"right"|"left": params, vertices and joints per frame}.
    Interacting sequences put the left hand near the right one ("near", "close") or against it
    ("facing"), see `SequenceKind`."""
    sides = ("right", "left") if hand_type == "interacting" else (hand_type,)
    first = random_track(
        rng, n_frames, sides[0], scene.base[sides[0]], sample_everyday_hand_pose, betas=betas
    )
    hands = {sides[0]: _place(scene, sides[0], first)}
    if len(sides) == 2:
        second = random_track(
            rng, n_frames, "left", scene.base["left"], sample_everyday_hand_pose, betas=betas
        )
        if partner == "facing":
            second = facing_partner(
                rng, first, scene.base["right"], scene.base["left"], second.finger_pose
            )
        else:
            second = HandTrack(
                second.orient,
                second.finger_pose,
                first.wrist_mm + partner_offsets(rng, n_frames, PARTNER_MAX_MM[partner]),
                betas,
            )
        hands["left"] = _place(scene, "left", second)
    return hands


# --------------------------------------------------------------------------- pictures
def _render_frame(
    scene: _Scene,
    rngs: list[np.random.Generator],
    cams: tuple[RigCamera, ...],
    hands: dict[str, dict],
    hand_albedo: dict[str, np.ndarray],
    hand_gloss: dict[str, np.ndarray],
    frame: int,
    subject: img.Subject,
    darks: list[bool],
) -> list[tuple[np.ndarray, int]]:
    """One frame seen by cameras of a capture (sealed hands plus forearms): per camera the
    picture (H, W, 3) uint8 and its JPEG quality. rngs, darks: per camera, the stream its light,
    background and sensor are drawn from (in camera order; one stream may serve all) and
    whether it is a dark exposure. hand_albedo, hand_gloss: per side, (F, 3) and (F,) per
    face."""
    verts, faces, albedo, gloss, offset = [], [], [], [], 0
    for side, h in hands.items():
        parts = [(h["sealed"][frame], scene.faces[side], hand_albedo[side], hand_gloss[side])]
        parts += [(v, f, a, 1.0) for v, f, a in img.arm_parts(h["joints"][frame], subject)]
        for part_v, part_f, colour, shine in parts:
            verts.append(part_v)
            faces.append(part_f + offset)
            albedo.append(np.broadcast_to(colour, (len(part_f), 3)))
            gloss.append(np.broadcast_to(shine, (len(part_f),)))
            offset += len(part_v)
    verts_w, faces_all = np.concatenate(verts), np.concatenate(faces)
    albedo_all, gloss_all = np.concatenate(albedo), np.concatenate(gloss)
    normals_w = img.vertex_normals(verts_w, faces_all)  # once per frame, rotated per camera
    v_cams = np.stack([world_to_camera_centred(verts_w, cam.campos, cam.camrot) for cam in cams])
    # One call per image size (the rasterizer runs a call's images in parallel): a mixed call
    # would fill 512x512 canvases for 334x512 images.
    fragments = {}
    for hw in sorted({cam.hw for cam in cams}):
        group = [b for b, cam in enumerate(cams) if cam.hw == hw]
        frags = rasterize(
            v_cams[group],
            faces_all,
            np.stack([cams[b].K for b in group]),
            hw,
            with_bary=True,
        )
        for n, b in enumerate(group):
            fragments[b] = (frags.pix_to_face[n], frags.bary[n])
    out = []
    for b, cam in enumerate(cams):
        rng = rngs[b]
        light = img.random_lighting(rng)
        sensor = img.random_sensor(rng, darks[b])
        picture = img.background(rng, cam.hw)
        img.shade(
            *fragments[b],
            faces_all,
            normals_w @ cam.camrot.T,
            albedo_all,
            light,
            picture,
            gloss_all,
        )
        out.append((img.finish(rng, picture, cam.is_grey, sensor), sensor.quality))
    return out


# --------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class _Capture:
    """One capture's rig and subject (drawn from the capture's own seed)."""

    split: str
    split_index: int
    capture: int
    cams: tuple[RigCamera, ...]
    subject: img.Subject
    betas: np.ndarray


def _make_capture(settings: SyntheticSettings, split_index: int, capture: int) -> _Capture:
    rng = np.random.default_rng([settings.seed, split_index, capture])
    cams = tuple(make_rig(rng, settings.cameras, capture))
    subject = img.random_subject(rng)
    betas = rng.normal(0.0, BETA_SIGMA)
    return _Capture(SPLITS[split_index], split_index, capture, cams, subject, betas)


@dataclass(frozen=True)
class _Job:
    """One sequence of one capture: the unit of work handed to a worker."""

    cap: _Capture
    sequence: int


@dataclass
class _JobResult:
    """What a job gives back for the annotation files. frames: (frame_idx, joints (42, 3),
    annotated (42,), hand_type, fits or None) per time step; images: per kept view, the fields
    of data.json plus the RootNet record without its id (val and test)."""

    frames: list[tuple] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)


def _fits(
    rng: np.random.Generator, settings: SyntheticSettings, hands: dict, hand_type: str, frame: int
) -> dict | None:
    """NeuralAnnot entries of one frame; None when the frame has no fit at all."""
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


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    # the MANO forward is tiny; one thread also keeps its rounding independent of the pool size
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run_job(
    job: _Job, out: str, settings: SyntheticSettings, mano_dir: str, threads: int
) -> _JobResult:
    """Generate one sequence: annotations returned, images written under `out`."""
    if threads > 0:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    with _one_torch_thread():
        return _sequence(job, Path(out), settings, _scene_for(mano_dir))


def _mirrored_hands(scene: _Scene, hands: dict[str, dict], frame: int, cam: RigCamera) -> dict:
    """The hands of one frame reflected through the plane facing `cam` at the right wrist (the
    only hand's wrist for one hand): per side the other side's fit, its sealed vertices and
    joints, as `_place` gives them for a one-frame track."""
    normal = cam.camrot[2]  # the optical axis in world coordinates (X_cam = R (X - campos))
    anchor = hands["right" if "right" in hands else next(iter(hands))]["joints"][frame][20]
    offset = float(normal @ anchor)
    out = {}
    for side, h in hands.items():
        pose, shape, trans = reflect_fit(
            scene.model, side, h["pose"][frame], h["shape"], h["trans"][frame], normal, offset
        )
        other = "left" if side == "right" else "right"
        with torch.no_grad():
            posed = scene.model(
                other,
                torch.as_tensor(pose[None]),
                torch.as_tensor(shape[None]),
                torch.as_tensor(trans[None]),
            )
        out[other] = {
            "pose": pose[None],
            "shape": shape,
            "trans": trans[None],
            "sealed": scene.sealed(other, posed.vertices.numpy()),
            "joints": posed.joints.numpy(),
        }
    return {side: out[side] for side in ("right", "left") if side in out}


def _shots(
    job: _Job, settings: SyntheticSettings, scene: _Scene, geo: np.random.Generator
) -> list[tuple[int, dict, int, int, tuple[int, ...]]]:
    """(frame_idx, hands, frame of hands, frame of the sequence, camera indices) of every time
    frame of a job: a plain
    sequence's frames seen by all cameras, its hands drawn first from `geo` (its geometry
    stream, as generator v4 draws them); or a mirror sequence's, one per frame and camera, its
    source's hands drawn from the source's own stream, so that they are exactly the hands the
    source sequence shows."""
    cap, s = job.cap, job.sequence
    kind = settings.capture_sequences(cap.capture)[s]
    if kind.mirror_of < 0:
        hands = _sequence_hands(
            scene, geo, kind.hand_type, settings.frames, cap.betas, kind.partner
        )
        views = tuple(range(len(cap.cams)))
        return [(settings.frame_index(s, f), hands, f, f, views) for f in range(settings.frames)]
    src = settings.capture_sequences(cap.capture)[kind.mirror_of]
    src_geo = np.random.default_rng(
        [settings.seed, cap.split_index, cap.capture, 1, kind.mirror_of]
    )
    hands = _sequence_hands(scene, src_geo, src.hand_type, settings.frames, cap.betas, src.partner)
    return [
        (settings.frame_index(s, f, b), _mirrored_hands(scene, hands, f, cam), 0, f, (b,))
        for f in range(settings.frames)
        for b, cam in enumerate(cap.cams)
    ]


def _sequence(job: _Job, out: Path, settings: SyntheticSettings, scene: _Scene) -> _JobResult:
    cap, s = job.cap, job.sequence
    kind = settings.capture_sequences(cap.capture)[s]
    hand_type, seq_name = kind.hand_type, kind.name
    geo = np.random.default_rng([settings.seed, cap.split_index, cap.capture, 1, s])
    look = np.random.default_rng([settings.seed, cap.split_index, cap.capture, 2, s])
    shots = _shots(job, settings, scene, geo)
    # per face, fixed for the sequence: skin, palm, nails, creases and folds of this subject
    sides = ("right", "left")
    hand_albedo = {
        side: skin.face_albedo(scene.detail[side], scene.faces[side], cap.subject.skin)
        for side in sides
    }
    hand_gloss = {side: skin.face_gloss(scene.detail[side], scene.faces[side]) for side in sides}
    result = _JobResult()
    for frame_idx, hands, frame, time, views in shots:
        joints = np.zeros((42, 3))
        annotated = np.zeros(42, bool)
        for side, h in hands.items():
            block = slice(0, 21) if side == "right" else slice(21, 42)
            joints[block] = h["joints"][frame]
            annotated[block] = geo.uniform(size=21) >= settings.p_joint_unannotated
        fits = _fits(geo, settings, hands, hand_type, frame)
        result.frames.append((frame_idx, joints, annotated, hand_type, fits))
        cams = tuple(cap.cams[b] for b in views)
        pictures = None
        if settings.images:
            if settings.paired_looks:
                # a view's own stream, named by its source sequence: a mirror picture gets
                # its source picture's light, background and sensor noise
                source = s if kind.mirror_of < 0 else kind.mirror_of
                rngs = [
                    np.random.default_rng(
                        [settings.seed, cap.split_index, cap.capture, 2, source, time, b]
                    )
                    for b in views
                ]
                darks = [rng.uniform() < settings.p_dark_image for rng in rngs]
            else:
                dark = look.uniform() < settings.p_dark_image
                rngs, darks = [look] * len(cams), [dark] * len(cams)
            pictures = _render_frame(
                scene, rngs, cams, hands, hand_albedo, hand_gloss, frame, cap.subject, darks
            )
        for b, cam in enumerate(cams):
            uv = project(world_to_camera_centred(joints, cam.campos, cam.camrot), cam.K)
            h, w = cam.hw
            inside = (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)
            valid = annotated & inside
            bbox = tight_bbox(uv, valid)
            if bbox is None or bbox[2] <= 0 or bbox[3] <= 0:
                # Nothing annotated in view (InterHand2.6M has no such images), or one joint
                # only: a box of zero size, which no crop can use.
                continue
            file_name = f"Capture{cap.capture}/{seq_name}/cam{cam.name}/image{frame_idx:04d}.jpg"
            rootnet = None
            if cap.split in ("val", "test"):
                rootnet = _rootnet_entry(geo, bbox, cam, joints, hands)
            result.images.append(
                {
                    "file_name": file_name,
                    "hw": cam.hw,
                    "camera": cam.name,
                    "seq_name": seq_name,
                    "frame_idx": frame_idx,
                    "bbox": bbox,
                    "valid": valid,
                    "hand_type": hand_type,
                    "rootnet": rootnet,
                }
            )
            if pictures is not None:
                path = out / "images" / cap.split / file_name
                path.parent.mkdir(parents=True, exist_ok=True)
                picture, quality = pictures[b]
                Image.fromarray(picture).save(path, quality=quality)
    return result


def _rootnet_entry(rng, bbox, cam, joints, hands) -> dict:
    """A RootNet-format record without its annot_id: square crop box and noisy absolute root
    depths (mm)."""
    depth = world_to_camera_centred(joints[list(ROOT_JOINTS)], cam.campos, cam.camrot)[:, 2]
    present = np.array(["right" in hands, "left" in hands])
    depth = np.where(present, depth, depth[present][0]) + rng.normal(0.0, 25.0, 2)
    x, y, w, h = bbox
    side = max(w, h)
    square = [x + w / 2 - side / 2, y + h / 2 - side / 2, side, side]
    return {"bbox": square, "abs_depth": depth.tolist(), "root_valid": present.astype(int).tolist()}


def default_workers() -> int:
    """All the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _checked_workers(workers: int | None) -> int:
    if workers is None:
        return default_workers()
    if workers < 1:
        raise DigitError(f"--workers: must be at least 1, got {workers}")
    return workers


def _run_jobs(
    jobs: list[_Job], out: Path, settings: SyntheticSettings, mano_dir: Path, workers: int
) -> Iterable[_JobResult]:
    """Results in job order, computed here or by `workers` joblib processes."""
    args = (str(out), settings, str(mano_dir))
    # Annotations alone cost milliseconds a job: starting processes would cost more.
    if workers == 1 or len(jobs) == 1 or not settings.images:
        return (_run_job(job, *args, 0) for job in jobs)
    from joblib import Parallel, delayed

    threads = max(1, default_workers() // workers)
    run = Parallel(n_jobs=workers, return_as="generator", pre_dispatch="2*n_jobs")
    return run(delayed(_run_job)(job, *args, threads) for job in jobs)


def generate(
    out: Path,
    settings: SyntheticSettings,
    mano_dir: Path = SYNTHETIC_MANO_DIR,
    workers: int | None = None,
    show_progress: bool = True,
) -> None:
    """Write the dataset to `out` (created; it must not exist or be empty). workers: joblib
    processes (default: all cores); the files written are the same for any number."""
    settings.check()
    workers = _checked_workers(workers)
    out = Path(out)
    (out / "mano").mkdir(parents=True, exist_ok=True)
    for name in ("MANO_RIGHT.pkl", "MANO_LEFT.pkl"):
        shutil.copyfile(mano_dir / name, out / "mano" / name)
    writers = {split: SplitWriter(split) for split in SPLITS}
    jobs = []
    for split_index, split in enumerate(SPLITS):
        for capture in settings.split_captures(split):
            cap = _make_capture(settings, split_index, capture)
            writers[split].cameras[str(capture)] = rig_to_camera_json(list(cap.cams))
            jobs += [_Job(cap, s) for s in range(len(settings.sequences))]
    total = sum(settings.image_slots(split) for split in SPLITS)
    next_id = 0
    with progress(total=total, description="synthetic images", enabled=show_progress) as bar:
        results = _run_jobs(jobs, out, settings, mano_dir, workers)
        for job, result in zip(jobs, results, strict=True):
            next_id = _collect(writers[job.cap.split], job.cap.capture, result, next_id)
            bar.advance(settings.frames * settings.cameras)
    for writer in writers.values():
        writer.write(out)
    info = {"generator_version": GENERATOR_VERSION, "settings": asdict(settings)}
    (out / SYNTHETIC_MARKER).write_text(json.dumps(info, indent=1) + "\n")


def _collect(writer: SplitWriter, capture: int, result: _JobResult, next_id: int) -> int:
    """Add a job's frames and images to its split; image ids are unique over the dataset.
    Returns the next free id."""
    for frame in result.frames:
        writer.add_frame(capture, *frame)
    for im in result.images:
        writer.add_image(
            next_id,
            im["file_name"],
            im["hw"],
            capture,
            im["seq_name"],
            im["camera"],
            im["frame_idx"],
            im["bbox"],
            im["valid"],
            im["hand_type"],
        )
        if im["rootnet"] is not None:
            writer.rootnet.append({"annot_id": next_id, **im["rootnet"]})
        next_id += 1
    return next_id


# What a dataset costs, measured on the default (2026-12-04): a 334x512 JPEG and its disk block
# about 32 KB; data.json and RootNet about 0.6 KB per image; joint_3d.json and the MANO fits
# about 4.6 KB per time frame (shared by the cameras); a sequence's geometry in memory about
# 0.5 MB per frame (it is made at once), while the annotations of every image stay in memory.
IMAGE_FILE_BYTES = 36_000
IMAGE_ANNOTATION_BYTES = 700
FRAME_ANNOTATION_BYTES = 5_000
SEQUENCE_BYTES_PER_FRAME = 500_000
IMAGE_MEMORY_BYTES = 4_000
MODEL_FILES_BYTES = 6_000_000


@dataclass(frozen=True)
class SizeEstimate:
    """images: image slots of all splits; disk_bytes: the dataset on disk; memory_bytes: the
    peak memory of generating it with the given worker count (upper estimates)."""

    images: int
    disk_bytes: int
    memory_bytes: int

    def describe(self) -> str:
        return f"{self.images:,} images, about {_size(self.disk_bytes)} on disk"


def _size(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n / 1e6:.1f} MB"


def estimate_size(settings: SyntheticSettings, workers: int) -> SizeEstimate:
    """Disk and memory a dataset of `settings` takes (from the measured costs above)."""
    images = sum(settings.image_slots(split) for split in SPLITS)
    frames = images // settings.cameras
    disk = images * IMAGE_ANNOTATION_BYTES + frames * FRAME_ANNOTATION_BYTES + MODEL_FILES_BYTES
    if settings.images:
        disk += images * IMAGE_FILE_BYTES
    memory = workers * settings.frames * SEQUENCE_BYTES_PER_FRAME + images * IMAGE_MEMORY_BYTES
    return SizeEstimate(images, disk, memory)


def _available_memory() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_resources(out: Path, settings: SyntheticSettings, workers: int) -> SizeEstimate:
    """Refuse, in one line, settings whose dataset does not fit on the disk of `out` or whose
    generation does not fit in memory; returns the estimate."""
    estimate = estimate_size(settings, workers)
    check_free_space(
        out.parent,
        estimate.disk_bytes,
        f"the synthetic dataset ({estimate.images:,} images)",
        advice="use fewer --captures, --cameras or --frames, or another --out",
    )
    available = _available_memory()
    if available is not None and estimate.memory_bytes > available:
        raise DigitError(
            f"make-synthetic: {estimate.images:,} images of sequences of {settings.frames:,} "
            f"frames need about {_size(estimate.memory_bytes)} of memory, "
            f"{_size(available)} available; use fewer --frames (or --workers, --captures)"
        )
    return estimate


def _replaceable(out: Path, overwrite: bool) -> bool:
    """Whether `out` exists with content that --overwrite may replace: only a dataset this
    generator wrote (it holds SYNTHETIC_MARKER, written last); anything else is refused."""
    if not out.exists() or not any(out.iterdir()):
        return False
    if not overwrite:
        raise DigitError(f"{out}: exists and is not empty (pass --overwrite to replace it)")
    if not (out / SYNTHETIC_MARKER).is_file():
        raise DigitError(
            f"{out}: not a dataset written by make-synthetic (no {SYNTHETIC_MARKER}); "
            "--overwrite replaces only those, so nothing was deleted: choose another --out"
        )
    return True


def make_synthetic(
    out: Path,
    settings: SyntheticSettings,
    overwrite: bool = False,
    workers: int | None = None,
    show_progress: bool = True,
) -> Path:
    """Generate into a work folder beside `out` and move it into place only when complete.
    workers: joblib processes (default: all cores); the output does not depend on it.
    overwrite: replace an existing dataset written by this generator (nothing else)."""
    out = Path(out)
    settings.check()
    workers = _checked_workers(workers)
    if out.exists() and not out.is_dir():
        raise DigitError(f"--out {out}: is a file, expected a folder")
    check_output_dir(out.parent)
    replace_old = _replaceable(out, overwrite)
    estimate = check_resources(out, settings, workers)
    if show_progress:
        print(f"make-synthetic: {estimate.describe()}, into {out}", file=sys.stderr, flush=True)
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    try:
        generate(work, settings, workers=workers, show_progress=show_progress)
        if replace_old:  # the old dataset steps aside before the new one takes its name
            old = out.with_name(f"{out.name}.old-{os.getpid()}")
            out.rename(old)
            work.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if out.exists():
                out.rmdir()  # empty (checked above)
            work.rename(out)
    except OSError as exc:  # full disk, permissions: one line, no half-written dataset
        shutil.rmtree(work, ignore_errors=True)
        raise DigitError(os_error_line(exc, work)) from None
    except KeyboardInterrupt:
        shutil.rmtree(work, ignore_errors=True)
        raise Interrupted(
            f"removed the unfinished {work.name}; nothing was written to {out}"
        ) from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out
