"""Training targets against hand-computed numbers (reference/interhand26m.md, "Official
training-time processing"): x, y / 4; z = (dz / 200 + 1) / 2 x 64; validity rules."""

from __future__ import annotations

import pytest
import torch

from digit.targets import LEFT_ROOT, RIGHT_ROOT, PoseTargets, build_pose_targets

RIGHT_ROOT_MM = 500.0
LEFT_ROOT_MM = 600.0  # left root 100 mm behind the right: bin (0.5 + 1) / 2 x 64 = 48


def sample(batch: int = 1, pair: tuple[float, float] = (1.0, 1.0)) -> dict[str, torch.Tensor]:
    """Every joint at crop pixel (100, 100) and at its hand's root depth, all valid."""
    depth = torch.full((batch, 42), RIGHT_ROOT_MM)
    depth[:, 21:] = LEFT_ROOT_MM
    return {
        "joints_px": torch.full((batch, 42, 2), 100.0),
        "depth_mm": depth,
        "joint_valid": torch.ones(batch, 42, dtype=torch.bool),
        "hand_type": torch.tensor([pair] * batch),
        "hand_type_valid": torch.ones(batch, dtype=torch.bool),
    }


def test_pixel_and_root_depth_mapping():
    s = sample()
    s["joints_px"][0, 5] = torch.tensor([128.0, 64.0])
    s["joints_px"][0, 30] = torch.tensor([0.0, 255.0])
    t = build_pose_targets(**s)
    assert isinstance(t, PoseTargets)
    assert t.joints_hm.shape == (1, 42, 3)
    assert t.joints_hm[0, 5].tolist() == [32.0, 16.0, 32.0]  # depth == root depth -> z = 32
    assert t.joints_hm[0, 30].tolist() == [0.0, 63.75, 32.0]
    assert bool(t.joint_valid.all())


def test_depth_relative_to_own_hand_root():
    s = sample()
    s["depth_mm"][0, 3] = RIGHT_ROOT_MM - 100.0  # (-0.5 + 1) / 2 x 64 = 16
    s["depth_mm"][0, 25] = LEFT_ROOT_MM + 50.0  # (0.25 + 1) / 2 x 64 = 40
    s["depth_mm"][0, 10] = RIGHT_ROOT_MM - 200.0  # lower edge, 0: valid
    s["depth_mm"][0, 11] = RIGHT_ROOT_MM + 199.0  # 63.84: valid
    t = build_pose_targets(**s)
    assert t.joints_hm[0, 3, 2].item() == pytest.approx(16.0)
    assert t.joints_hm[0, 25, 2].item() == pytest.approx(40.0)
    assert t.joints_hm[0, 10, 2].item() == pytest.approx(0.0)
    assert t.joints_hm[0, 11, 2].item() == pytest.approx(63.84)
    assert bool(t.joint_valid.all())


@pytest.mark.parametrize(
    ("joint", "uv", "dz"),
    [
        (0, (256.0, 10.0), 0.0),  # u == 256 is outside (official test u < 256)
        (1, (10.0, 256.0), 0.0),
        (2, (-0.01, 10.0), 0.0),
        (23, (10.0, -3.0), 0.0),
        (4, (100.0, 100.0), 200.0),  # mapped z = 64, outside [0, 64)
        (26, (100.0, 100.0), -200.5),  # mapped z < 0
    ],
)
def test_out_of_crop_or_depth_range_invalid(joint, uv, dz):
    s = sample()
    s["joints_px"][0, joint] = torch.tensor(uv)
    s["depth_mm"][0, joint] += dz
    t = build_pose_targets(**s)
    expected = torch.ones(42, dtype=torch.bool)
    expected[joint] = False
    assert torch.equal(t.joint_valid[0], expected)
    assert bool(t.rel_root_valid[0])


def test_input_validity_is_kept():
    s = sample()
    s["joint_valid"][0, 7] = False
    t = build_pose_targets(**s)
    assert not t.joint_valid[0, 7]
    assert int(t.joint_valid.sum()) == 41


def test_relative_root_depth_bins():
    s = sample(batch=3)
    s["depth_mm"][1, 21:] = RIGHT_ROOT_MM - 200.0  # -200 mm -> bin 0, valid
    s["depth_mm"][2, 21:] = RIGHT_ROOT_MM + 200.0  # +200 mm -> bin 64, out of range
    t = build_pose_targets(**s)
    assert t.rel_root_bins.tolist() == pytest.approx([48.0, 0.0, 64.0])
    assert t.rel_root_valid.tolist() == [True, True, False]


@pytest.mark.parametrize("pair", [(1.0, 0.0), (0.0, 1.0)])
def test_single_hand_has_no_relative_root(pair):
    t = build_pose_targets(**sample(pair=pair))
    assert not t.rel_root_valid[0]
    assert t.hand_type[0].tolist() == list(pair)
    assert t.hand_type.dtype == torch.float32


@pytest.mark.parametrize("root", [RIGHT_ROOT, LEFT_ROOT])
def test_relative_root_needs_both_roots_valid(root):
    s = sample(batch=2)
    s["joint_valid"][0, root] = False
    s["joints_px"][1, root] = torch.tensor([300.0, 10.0])  # root outside the crop
    t = build_pose_targets(**s)
    assert t.rel_root_valid.tolist() == [False, False]


def test_require_valid_root_invalidates_that_hand():
    s = sample()
    s["joint_valid"][0, RIGHT_ROOT] = False
    official = build_pose_targets(**s)
    strict = build_pose_targets(**s, require_valid_root=True)
    assert int(official.joint_valid.sum()) == 41
    assert not strict.joint_valid[0, :21].any()
    assert bool(strict.joint_valid[0, 21:].all())


def test_hand_type_valid_and_types():
    s = sample(batch=2)
    s["hand_type_valid"] = torch.tensor([1, 0])
    s["joint_valid"] = s["joint_valid"].float()
    t = build_pose_targets(**s)
    assert t.hand_type_valid.tolist() == [True, False]
    assert t.joint_valid.dtype == torch.bool
    assert t.rel_root_valid.dtype == torch.bool


def test_non_finite_depth_is_invalid():
    s = sample()
    s["depth_mm"][0, 2] = float("nan")
    t = build_pose_targets(**s)
    assert not t.joint_valid[0, 2]
    assert int(t.joint_valid.sum()) == 41


def test_shape_mismatch_raises():
    s = sample()
    s["depth_mm"] = s["depth_mm"][:, :41]
    with pytest.raises(ValueError, match="depth_mm"):
        build_pose_targets(**s)
