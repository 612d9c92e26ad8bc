"""Pictures of a hand model: several poses, each hand coloured by part class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from core.camera import world_to_camera_centred
from core.drawing import legend_image
from core.parts import palette
from render.hand_model import HandModel
from render.part_labels import face_classes, vertex_parts_from_weights
from render.raster import rasterize
from render.synthetic_data.images import vertex_normals
from render.synthetic_data.rig import look_at_rotation


def _pose_set(
    mean: np.ndarray, rng: np.random.Generator, side: str
) -> list[tuple[str, np.ndarray]]:
    """(title, full finger pose (45,)) pairs: flat, MANO mean, and natural random poses."""
    from render.synthetic_mano.pose_prior import sample_natural_hand_pose

    poses = [("flat", np.zeros(45)), ("hands_mean", mean)]
    poses += [(f"random {k}", p) for k, p in enumerate(sample_natural_hand_pose(rng, 3, side))]
    return poses


def hand_gallery(mano_dir: Path, tile: int = 300, seed: int = 0) -> Image.Image:
    """A grid: one row per hand (right, left), one column per pose, parts coloured with the
    class palette and shaded by the surface normal, plus the legend on the right."""
    model = HandModel.from_dir(mano_dir)
    rng = np.random.default_rng(seed)
    colours = palette().astype(np.float64) / 255.0
    rows = []
    for side in ("right", "left"):
        hands_mean = model.hands_mean(side)
        faces = model.sealed_faces(side).cpu().numpy()
        labels = face_classes(faces, vertex_parts_from_weights(model.skinning_weights(side)), side)
        poses = _pose_set(hands_mean, rng, side)
        pose = np.stack([np.concatenate([np.zeros(3), p - hands_mean]) for _, p in poses])
        n = len(poses)
        out = model(
            side,
            torch.as_tensor(pose),
            torch.zeros(n, 10, dtype=torch.float64),
            torch.zeros(n, 3, dtype=torch.float64),
        )
        verts = model.sealed(side, out.vertices).numpy()
        tiles = []
        for b, (title, _) in enumerate(poses):
            centre = verts[b].mean(axis=0)
            campos = centre + np.array([0.0, -650.0, 60.0])  # above the back of the hand
            R = look_at_rotation(campos, centre, roll=0.0)
            v_cam = world_to_camera_centred(verts[b], campos, R)
            K = np.array([[900.0, 0, tile / 2], [0, 900.0, tile / 2], [0, 0, 1]])
            frags = rasterize(v_cam[None], faces, K, (tile, tile), with_bary=True)
            p2f, bary = frags.pix_to_face[0], frags.bary[0].astype(np.float64)
            fg = p2f >= 0
            normals = vertex_normals(v_cam, faces)
            n_px = (bary[fg][..., None] * normals[faces[p2f[fg]]]).sum(axis=1)
            n_px /= np.linalg.norm(n_px, axis=1, keepdims=True)
            light = np.abs(n_px @ np.array([0.0, 0.0, -1.0]))
            image = np.full((tile, tile, 3), 1.0)
            image[fg] = colours[labels[p2f[fg]]] * (0.45 + 0.55 * light)[:, None]
            im = Image.fromarray((image * 255 + 0.5).astype(np.uint8))
            ImageDraw.Draw(im).text((6, 4), f"{side} {title}", fill=(0, 0, 0))
            tiles.append(im)
        rows.append(tiles)
    legend = legend_image()
    width = len(rows[0]) * tile + legend.size[0]
    sheet = Image.new("RGB", (width, max(2 * tile, legend.size[1])), (255, 255, 255))
    for r, tiles in enumerate(rows):
        for c, im in enumerate(tiles):
            sheet.paste(im, (c * tile, r * tile))
    sheet.paste(legend, (len(rows[0]) * tile, 0))
    return sheet
