"""Pictures of fitted hands: shaded over the image, coloured by part, and from the side.

Both hands are one packed scene (right sealed mesh, then left: `render.mask_cache.scene`'s
topology and part classes) drawn by the project's exact z-buffer rasterizer, so where the hands
overlap the nearer surface wins, pixel by pixel. Shading is Lambertian with the light at the
camera (two-sided: MANO's winding is not relied on), normals interpolated from area-weighted
vertex normals with the rasterizer's perspective-correct barycentrics. Every view is rendered
straight at tile resolution: a tile of the crop box is the image's camera with the crop's
affine map (`digit.data.crop.crop_transform`) applied to its intrinsics.

`mesh_figure` puts the tiles of one image side by side: the meshes over the image, the meshes
coloured by the 33 part classes next to the network's predicted segmentation, a side view, and
(with ground truth) the ground-truth meshes over the image and from the side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from core.parts import palette
from digit.data.crop import crop_transform, warp_image
from render.hand_model import SIDES, HandModel
from render.mask_cache.scene import BEHIND_CAMERA_MM, SceneTopology, scene_topology
from render.part_labels import vertex_parts_from_weights
from render.raster import rasterize
from render.synthetic_data.images import vertex_normals

TILE = 256
TITLE_PX = 18
HAND_RGB = ((214, 39, 40), (31, 119, 180))  # right, left: the demo panel's colours
BACKGROUND_RGB = (236, 236, 236)
AMBIENT = 0.3
MESH_ALPHA = 0.85
SIDE_VIEW_TURN_DEG = 90.0  # the side view looks from the hands' right (+x), towards -x


@dataclass(frozen=True)
class Rendered:
    """One view of the packed two-hand scene at (H, W).

    hand (H, W) int8: -1 background, 0 right, 1 left (the visible surface's hand);
    labels (H, W) uint8: the visible face's part class (0 background);
    shade (H, W) float64 in [AMBIENT, 1]: the Lambert factor (0 on background).
    """

    hand: np.ndarray
    labels: np.ndarray
    shade: np.ndarray


def hand_topology(model: HandModel) -> SceneTopology:
    """The packed scene's faces and part classes, parts from the skinning weights."""
    parts = {s: vertex_parts_from_weights(model.skinning_weights(s), sealed=True) for s in SIDES}
    return scene_topology(model, parts)


def packed_vertices(
    model: HandModel, right_mm: np.ndarray | None, left_mm: np.ndarray | None
) -> np.ndarray:
    """(Vr + 1 + Vl + 1, 3) float64 camera mm: each hand's (V, 3) vertices plus its seal vertex;
    a hand given as None sits behind the camera (its faces are skipped)."""
    out = []
    for side, verts in zip(SIDES, (right_mm, left_mm), strict=True):
        n = model.num_vertices(side) + 1
        if verts is None:
            out.append(np.full((n, 3), BEHIND_CAMERA_MM))
            continue
        with torch.no_grad():
            tensor = torch.as_tensor(np.asarray(verts, dtype=np.float64))[None]
            out.append(model.sealed(side, tensor.to(model.device, model.dtype))[0].cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def render_hands(
    topology: SceneTopology, verts: np.ndarray, K: np.ndarray, hw: tuple[int, int]
) -> Rendered:
    """Rasterize the packed scene verts (V, 3) camera mm through K (3, 3) into hw (H, W)."""
    frags = rasterize(verts[None], topology.faces, K, hw, with_bary=True)
    p2f, bary = frags.pix_to_face[0], frags.bary[0].astype(np.float64)
    covered = p2f >= 0
    face = np.where(covered, p2f, 0)
    n_right_faces = len(topology.hand_faces[0])
    hand = np.where(covered, (face >= n_right_faces).astype(np.int8), -1).astype(np.int8)
    labels = np.where(covered, topology.face_labels[face], 0).astype(np.uint8)
    normals = vertex_normals(verts, topology.faces)
    corner = normals[topology.faces[face]]  # (H, W, 3 corners, 3)
    n = (bary[..., None] * corner).sum(-2)
    n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
    h, w = hw
    rays = np.stack(np.meshgrid(np.arange(w), np.arange(h)), axis=-1).astype(np.float64)
    rays = np.concatenate([rays, np.ones((h, w, 1))], axis=-1) @ np.linalg.inv(K).T
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    lambert = np.abs((n * rays).sum(-1))
    shade = np.where(covered, AMBIENT + (1 - AMBIENT) * lambert, 0.0)
    return Rendered(hand=hand, labels=labels, shade=shade)


def hand_colours(view: Rendered) -> np.ndarray:
    """(H, W, 3) float RGB 0..255: each hand's colour times the shading (0 on background)."""
    rgb = np.zeros((*view.hand.shape, 3))
    for k, colour in enumerate(HAND_RGB):
        rgb[view.hand == k] = colour
    return rgb * view.shade[..., None]


def part_colours(view: Rendered) -> np.ndarray:
    """(H, W, 3) float RGB 0..255: each visible part's class colour times the shading."""
    return palette()[view.labels].astype(np.float64) * view.shade[..., None]


def over(background: np.ndarray, colour: np.ndarray, mask: np.ndarray, alpha: float) -> np.ndarray:
    """`colour` blended over `background` (H, W, 3) where `mask` (H, W), uint8 result."""
    out = np.where(mask[..., None], (1 - alpha) * background + alpha * colour, background)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def tile_camera(K: np.ndarray, crop_box: np.ndarray, size: int = TILE) -> np.ndarray:
    """Intrinsics (3, 3) of a size x size tile of `crop_box` [x, y, s, s] of an image with K."""
    A = np.vstack([crop_transform(crop_box, size), [0.0, 0.0, 1.0]])
    return A @ np.asarray(K, dtype=np.float64)


def image_tile(image: np.ndarray, crop_box: np.ndarray, size: int = TILE) -> np.ndarray:
    """The crop box of image (H, W, 3) uint8 as a (size, size, 3) float RGB tile (0 outside)."""
    pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].double()
    tile = warp_image(pixels, crop_transform(crop_box, size), size)
    return tile[0].permute(1, 2, 0).numpy()


def side_camera(verts: np.ndarray, size: int = TILE) -> tuple[np.ndarray, np.ndarray]:
    """A camera looking at the hands from their right (+x of the camera frame) towards -x.

    verts (V, 3) camera mm of what is shown (non-empty). Returns the rigid map (3, 4) [R | t]
    into the new camera's frame (down stays down, the original depth runs to the right, the
    hands' centre 3 radii in front) and its intrinsics K (3, 3) for a (size, size) view.
    """
    a = np.deg2rad(SIDE_VIEW_TURN_DEG)
    R = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
    centre = verts.mean(0)
    radius = max(float(np.linalg.norm(verts - centre, axis=1).max()), 1.0)
    t = np.array([0.0, 0.0, 3.0 * radius]) - R @ centre
    focal = size * 3.0 / 2.4  # at 3 radii away, about 2.4 radii fill the view
    K = np.array([[focal, 0.0, (size - 1) / 2], [0.0, focal, (size - 1) / 2], [0.0, 0.0, 1.0]])
    return np.concatenate([R, t[:, None]], axis=1), K


def side_view(topology: SceneTopology, verts: np.ndarray, size: int = TILE) -> Rendered:
    """The packed scene (camera mm; vertices behind the camera are absent hands) from the side."""
    present = verts[:, 2] > 0
    Rt, K = side_camera(verts[present], size)
    turned = verts @ Rt[:, :3].T + Rt[:, 3]
    turned[~present] = BEHIND_CAMERA_MM  # absent hands stay behind the camera
    return render_hands(topology, turned, K, (size, size))


@dataclass(frozen=True)
class MeshPictureInput:
    """What `mesh_figure` draws for one image.

    image (H, W, 3) uint8; crop_box (4,) [x, y, s, s]; K (3, 3) the image's intrinsics;
    right, left: fitted (V, 3) camera mm or None; segmentation (H, W) uint8 predicted classes
    or None; truth: (right, left) ground-truth vertices (V, 3) camera mm or None each, or None
    without ground truth; title: a line above the tiles.
    """

    image: np.ndarray
    crop_box: np.ndarray
    K: np.ndarray
    right: np.ndarray | None
    left: np.ndarray | None
    segmentation: np.ndarray | None = None
    truth: tuple[np.ndarray | None, np.ndarray | None] | None = None
    title: str = ""


def _views(model: HandModel, topology: SceneTopology, pic: MeshPictureInput, right, left):
    """The tile's image (TILE, TILE, 3) float and the meshes' `Rendered` views from the
    image's camera and from the side (None, None without any hand)."""
    base = image_tile(pic.image, pic.crop_box)
    if right is None and left is None:
        return base, None, None
    verts = packed_vertices(model, right, left)
    front = render_hands(topology, verts, tile_camera(pic.K, pic.crop_box), (TILE, TILE))
    return base, front, side_view(topology, verts)


def _mesh_tiles(base, front, side, what: str) -> list[tuple[str, np.ndarray]]:
    """(caption, RGB tile) of meshes over the image and from the side."""
    if front is None:
        return [(f"{what}: no hand", over(base, base, np.zeros(base.shape[:2], bool), 0.0))]
    blank = np.broadcast_to(np.asarray(BACKGROUND_RGB, np.float64), base.shape)
    return [
        (f"{what} over the image", over(base, hand_colours(front), front.hand >= 0, MESH_ALPHA)),
        (f"{what} from the side", over(blank, hand_colours(side), side.hand >= 0, 1.0)),
    ]


def mesh_figure(model: HandModel, topology: SceneTopology, pic: MeshPictureInput) -> Image.Image:
    """The picture of one image (see the module docstring), as a PIL image."""
    base, front, side = _views(model, topology, pic, pic.right, pic.left)
    tiles = _mesh_tiles(base, front, side, "fitted meshes")
    if front is not None:
        parts = over(base, part_colours(front), front.hand >= 0, MESH_ALPHA)
        tiles.insert(1, ("meshes coloured by part", parts))
    if pic.segmentation is not None:
        seg = _segmentation_tile(pic.segmentation, pic.crop_box)
        tiles.insert(2, ("predicted segmentation", over(base, palette()[seg], seg > 0, 0.6)))
    if pic.truth is not None:
        tiles += _mesh_tiles(*_views(model, topology, pic, *pic.truth), "ground truth")
    return _sheet(tiles, pic.title)


def _segmentation_tile(segmentation: np.ndarray, crop_box: np.ndarray) -> np.ndarray:
    from digit.data.crop import warp_labels

    A = crop_transform(crop_box, TILE)
    return warp_labels(np.asarray(segmentation)[None], A, TILE)[0]


def _sheet(tiles: list[tuple[str, np.ndarray]], title: str) -> Image.Image:
    """Tiles in one row under a title line, each with its caption."""
    font = ImageFont.load_default()
    top = TITLE_PX if title else 0
    sheet = Image.new("RGB", (TILE * len(tiles), top + TITLE_PX + TILE), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((4, 3), title, fill=(0, 0, 0), font=font)
    for k, (caption, pixels) in enumerate(tiles):
        draw.text((k * TILE + 4, top + 3), caption, fill=(0, 0, 0), font=font)
        sheet.paste(Image.fromarray(np.asarray(pixels, dtype=np.uint8)), (k * TILE, top + TITLE_PX))
    return sheet
