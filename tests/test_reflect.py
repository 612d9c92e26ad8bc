"""render.synthetic_data.reflect: a right fit reflected through a plane, checked by posing both
hands and reflecting the right mesh point by point (an independent route: no MANO algebra)."""

import numpy as np
import pytest
import torch

from core.assets import SYNTHETIC_MANO_DIR
from render.hand_model import HandModel
from render.synthetic_data.reflect import reflect_fit, reflection


@pytest.fixture(scope="module")
def model():
    return HandModel.from_dir(SYNTHETIC_MANO_DIR)


def _pose(model, side, pose, shape, trans):
    t = [torch.tensor(np.asarray(a, dtype=np.float64))[None] for a in (pose, shape, trans)]
    out = model(side, *t)
    return out.vertices[0].numpy(), out.joints[0].numpy()


def test_a_reflection_is_its_own_inverse_and_fixes_its_plane():
    h, c = reflection(np.array([0.0, 0.0, 2.0]), 700.0)  # the plane z = 700 mm
    p = np.array([[10.0, -20.0, 650.0], [3.0, 4.0, 700.0]])
    q = p @ h.T + c
    np.testing.assert_allclose(q, [[10.0, -20.0, 750.0], [3.0, 4.0, 700.0]], atol=1e-12)
    np.testing.assert_allclose((q @ h.T + c), p, atol=1e-12)


@pytest.mark.parametrize(("side", "seed"), [("right", 0), ("right", 1), ("left", 2), ("left", 3)])
def test_the_reflected_fit_poses_the_mirror_image_of_the_hand(model, side, seed):
    rng = np.random.default_rng(seed)
    pose = rng.normal(0.0, 0.4, 48)
    pose[:3] = rng.normal(0.0, 1.5, 3)  # any global orientation
    shape = rng.normal(0.0, 1.0, 10)
    trans = rng.normal(0.0, 0.3, 3)
    normal = rng.normal(size=3)
    offset = float(rng.normal(0.0, 500.0))
    other = "left" if side == "right" else "right"
    v_side, j_side = _pose(model, side, pose, shape, trans)
    fit = reflect_fit(model, side, pose, shape, trans, normal, offset)
    v_other, j_other = _pose(model, other, *fit)
    h, c = reflection(normal, offset)
    np.testing.assert_allclose(v_other, v_side @ h.T + c, atol=1e-6)  # mm
    np.testing.assert_allclose(j_other, j_side @ h.T + c, atol=1e-6)
    np.testing.assert_array_equal(fit[1], shape)
    assert np.linalg.norm(fit[0][:3]) <= np.pi + 1e-9
    # reflected twice through the same plane: the hand itself again
    back = reflect_fit(model, other, *fit, normal, offset)
    np.testing.assert_allclose(_pose(model, side, *back)[0], v_side, atol=1e-6)
