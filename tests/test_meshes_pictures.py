"""Mesh pictures: where both hands cover a pixel the nearer one is drawn (both orders), part
colours come from the class palette, a tile camera maps the crop box onto the tile, and the
whole figure has its tiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.assets import SYNTHETIC_MANO_DIR
from core.camera import intrinsics, project
from core.parts import LEFT_OFFSET, RIGHT_OFFSET
from digit.meshes.pictures import (
    TILE,
    MeshPictureInput,
    hand_topology,
    mesh_figure,
    packed_vertices,
    render_hands,
    tile_camera,
)
from render.hand_model import HandModel

K = intrinsics(np.array([1000.0, 1000.0]), np.array([99.5, 99.5]))
HW = (200, 200)


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.from_dir(SYNTHETIC_MANO_DIR)


def mean_hand(model: HandModel, side: str, centre_mm) -> np.ndarray:
    """The side's mean hand (V, 3) mm with its palm centre at `centre_mm`, facing the camera."""
    pose = torch.zeros(1, 48, dtype=torch.float64)
    pose[0, :3] = torch.tensor([np.pi / 2, 0.0, 0.0])  # palm plane across the view
    out = model(side, pose, torch.zeros(1, 10, dtype=torch.float64), torch.zeros(1, 3))
    verts = out.vertices[0].numpy()
    return verts - verts.mean(0) + np.asarray(centre_mm, dtype=np.float64)


@pytest.mark.parametrize("nearer", ["right", "left"])
def test_the_nearer_hand_wins_where_both_cover_a_pixel(model, nearer):
    topology = hand_topology(model)
    near, far = (0.0, 0.0, 500.0), (5.0, 5.0, 560.0)  # the far hand only a little aside
    right = mean_hand(model, "right", near if nearer == "right" else far)
    left = mean_hand(model, "left", near if nearer == "left" else far)
    view = render_hands(topology, packed_vertices(model, right, left), K, HW)
    alone = {
        side: render_hands(topology, packed_vertices(model, *pair), K, HW).hand >= 0
        for side, pair in (("right", (right, None)), ("left", (None, left)))
    }
    both = alone["right"] & alone["left"]
    assert both.sum() > 200  # they overlap on screen
    expected = 0 if nearer == "right" else 1
    assert np.all(view.hand[both] == expected)
    # the pixel under the near hand's palm centre, by projection: the near hand's part colours
    u, v = np.rint(project(np.asarray(near), K)).astype(int)
    assert both[v, u] and view.hand[v, u] == expected
    offset = RIGHT_OFFSET if nearer == "right" else LEFT_OFFSET
    assert offset <= view.labels[v, u] < offset + 16
    assert np.all(view.shade[both] >= 0.3) and np.all(view.shade[view.hand < 0] == 0)


def test_a_tile_camera_maps_the_crop_box_onto_the_tile():
    box = np.array([40.0, 60.0, 80.0, 80.0])
    Kt = tile_camera(K, box)
    point = np.array([[10.0, -20.0, 500.0]])
    uv = project(point, K)[0]
    expected = (uv - box[:2]) * TILE / box[2]  # corner -> 0, far corner -> TILE
    np.testing.assert_allclose(project(point, Kt)[0], expected, atol=1e-9)


def test_mesh_figure_has_its_tiles(model):
    image = np.full((*HW, 3), 90, np.uint8)
    right = mean_hand(model, "right", (-40.0, 0.0, 600.0))
    left = mean_hand(model, "left", (40.0, 0.0, 600.0))
    seg = np.zeros(HW, np.uint8)
    seg[50:100, 50:100] = 3
    box = np.array([0.0, 0.0, 200.0, 200.0])
    pic = MeshPictureInput(image, box, K, right, left, seg, (right, None), "title")
    figure = np.asarray(mesh_figure(model, hand_topology(model), pic))
    # fitted over the image, by part, segmentation, side view; ground truth over it and aside
    assert figure.shape[1] == 6 * TILE and figure.shape[0] > TILE
    alone = np.asarray(
        mesh_figure(model, hand_topology(model), MeshPictureInput(image, box, K, None, None))
    )
    assert alone.shape[1] == TILE  # no hand: the image alone
