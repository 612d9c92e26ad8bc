"""Pictures where only the right-vs-left cue changes: a right hand and its depth mirror.

Reflecting a scene through the plane z = z_root (camera frame, at the right wrist's depth) moves
no point sideways, so under an orthographic camera every joint and the outline stay where they
were, and it turns the right hand into a left one (a reflection reverses handedness). With the
generator's cameras, 0.75-1.35 m away, the two pictures' joints differ by a few pixels. What does
change is which side of the hand faces the camera: the palm of one is the back of the other,
with its lighter skin, nails and creases (generator v4's cue), and the light falls on the other
side. A classifier that answers from the outline alone gives both pictures the same answer
(half right); one that reads the cue gets both right.

Each pair uses one subject, pose, camera, light, background and sensor for both pictures, drawn
like generator v4's (`render.synthetic_data.generate`), from streams seeded by (seed, pair), so
pairs are the same on every machine. Subjects are fresh draws, never a training capture's.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.assets import SYNTHETIC_MANO_DIR
from core.boxes import bbox_from_joints, crop_box_from_bbox
from core.camera import project, world_to_camera_centred
from render.raster import rasterize
from render.synthetic_data import images as img
from render.synthetic_data import skin
from render.synthetic_data.generate import _place, _scene_for
from render.synthetic_data.motion import random_track
from render.synthetic_data.rig import make_rig
from render.synthetic_data.settings import BETA_SIGMA
from render.synthetic_mano.pose_prior import sample_everyday_hand_pose

PAIR_STREAM = 7  # keeps these draws apart from the generator's (seed, split, capture) streams


@dataclass(frozen=True)
class MirrorPair:
    """One pair: `right`, `left` (H, W, 3) uint8 pictures (JPEG-decoded, as the dataset's are);
    `crop_box` (4,) [x, y, s, s] the processed crop of the right hand's joints, which the left
    hand's joints share to a few pixels; `joints_px` (2, 21, 2) both hands' projected joints."""

    right: np.ndarray
    left: np.ndarray
    crop_box: np.ndarray
    joints_px: np.ndarray


def mirror_scene(points_cam: np.ndarray, z_plane: float) -> np.ndarray:
    """(..., 3) camera-frame points reflected through the plane z = z_plane."""
    out = np.array(points_cam, dtype=np.float64, copy=True)
    out[..., 2] = 2.0 * z_plane - out[..., 2]
    return out


def _picture(verts, faces, albedo, gloss, cam, light, sensor, background, grey, rng) -> np.ndarray:
    frags = rasterize(verts[None], faces, cam.K[None], cam.hw, with_bary=True)
    picture = background.copy()
    normals = img.vertex_normals(verts, faces)
    img.shade(frags.pix_to_face[0], frags.bary[0], faces, normals, albedo, light, picture, gloss)
    raw = img.finish(rng, picture, grey, sensor)
    buffer = io.BytesIO()
    Image.fromarray(raw).save(buffer, format="JPEG", quality=sensor.quality)
    return np.array(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def render_pair(seed: int, index: int, mano_dir: Path = SYNTHETIC_MANO_DIR) -> MirrorPair | None:
    """Pair `index` of stream `seed`; None when the right hand is not wholly in the picture."""
    scene = _scene_for(str(mano_dir))
    rng = np.random.default_rng([seed, PAIR_STREAM, index])
    cam = make_rig(rng, 1, 0)[0]
    subject = img.random_subject(rng)
    betas = rng.normal(0.0, BETA_SIGMA)
    track = random_track(
        rng, 1, "right", scene.base["right"], sample_everyday_hand_pose, betas=betas
    )
    hand = _place(scene, "right", track)
    joints_w = hand["joints"][0]
    parts = [(hand["sealed"][0], scene.faces["right"])]
    parts += [(v, f) for v, f, _ in img.arm_parts(joints_w, subject)]
    colours = [skin.face_albedo(scene.detail["right"], scene.faces["right"], subject.skin)]
    colours += [np.broadcast_to(a, (len(f), 3)) for _, f, a in img.arm_parts(joints_w, subject)]
    gloss = [skin.face_gloss(scene.detail["right"], scene.faces["right"])]
    gloss += [np.ones(len(f)) for _, f in parts[1:]]
    offsets = np.cumsum([0] + [len(v) for v, _ in parts])
    verts_w = np.concatenate([v for v, _ in parts])
    faces = np.concatenate([f + o for (_, f), o in zip(parts, offsets[:-1], strict=True)])
    albedo, shine = np.concatenate(colours), np.concatenate(gloss)

    verts_c = world_to_camera_centred(verts_w, cam.campos, cam.camrot)
    joints_c = world_to_camera_centred(joints_w, cam.campos, cam.camrot)
    z_root = float(joints_c[20, 2])  # IH joint 20: the right wrist
    mirrored_v, mirrored_j = mirror_scene(verts_c, z_root), mirror_scene(joints_c, z_root)
    uv = np.stack([project(joints_c, cam.K), project(mirrored_j, cam.K)])
    h, w = cam.hw
    inside = (uv[..., 0] >= 0) & (uv[..., 0] <= w - 1) & (uv[..., 1] >= 0) & (uv[..., 1] <= h - 1)
    if not inside.all() or mirrored_v[:, 2].min() <= 10.0:
        return None

    light = img.random_lighting(rng)
    sensor = img.random_sensor(rng, dark=False)
    background = img.background(rng, cam.hw)
    grey = cam.name.startswith("41")
    noise_seed = rng.integers(0, 2**63)
    pictures = []
    # a reflection reverses the winding of every face; flip it back so normals point outwards
    for verts, tri in ((verts_c, faces), (mirrored_v, faces[:, ::-1].copy())):
        noise = np.random.default_rng(noise_seed)  # the same sensor noise on both
        pictures.append(
            _picture(verts, tri, albedo, shine, cam, light, sensor, background, grey, noise)
        )
    box = crop_box_from_bbox(bbox_from_joints(uv[0], np.ones(21, bool)))
    return MirrorPair(pictures[0], pictures[1], box, uv)


def mirror_pairs(
    count: int, seed: int = 0, mano_dir: Path = SYNTHETIC_MANO_DIR
) -> list[MirrorPair]:
    """`count` pairs with the right hand wholly in the picture (indices tried in order)."""
    out, index = [], 0
    while len(out) < count:
        pair = render_pair(seed, index, mano_dir)
        index += 1
        if pair is not None:
            out.append(pair)
    return out
