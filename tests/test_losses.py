"""DIGIT's losses against hand-computed values (reference/digit_network.md, "Losses"): each term
on tiny inputs under both averages, masking, all-invalid batches, the bone list and the total."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from digit.losses import (
    BONES,
    LossWeights,
    bone_index,
    bone_loss,
    digit_loss,
    handedness_loss,
    heatmap_loss,
    joints_loss,
    root_loss,
    segmentation_loss,
)
from digit.model.output import DigitOutput
from digit.targets import PoseTargets, build_pose_targets

NAN = float("nan")


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


# ---- bone list ---------------------------------------------------------------------------------

# skeleton.txt order from the reference: name, parent within the right hand (thumb4..1, index4..1,
# middle4..1, ring4..1, pinky4..1 tip first; finger bases hang on the wrist, 20).
RIGHT_PARENTS = [1, 2, 3, 20, 5, 6, 7, 20, 9, 10, 11, 20, 13, 14, 15, 20, 17, 18, 19, 20]


def test_bone_list():
    assert len(BONES) == 40
    expected = [(k, p) for k, p in enumerate(RIGHT_PARENTS)]
    expected += [(k + 21, p + 21) for k, p in enumerate(RIGHT_PARENTS)]
    assert list(BONES) == expected
    child, parent = bone_index()
    assert child.tolist() == list(range(20)) + list(range(21, 41))
    assert parent.dtype == torch.long and parent.shape == (40,)


# ---- joints ------------------------------------------------------------------------------------


def test_joints_loss_values_and_masking():
    pred = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]], requires_grad=True)
    target = torch.tensor([[[0.0, 0.0, 0.0], [10.0, 10.0, 10.0]]])
    valid = torch.tensor([[True, False]])
    assert joints_loss(pred, target, valid).item() == pytest.approx(6.0 / 3)  # 3 valid elements
    assert joints_loss(pred, target, valid, "release").item() == pytest.approx(6.0 / 6)
    # Changing the invalid joint (even to NaN) changes nothing, in value or gradient.
    target2 = target.clone()
    target2[0, 1] = NAN
    loss = joints_loss(pred, target2, valid)
    loss.backward()
    assert loss.item() == pytest.approx(2.0)
    assert torch.allclose(pred.grad, torch.tensor([[[1 / 3, 1 / 3, 1 / 3], [0.0, 0.0, 0.0]]]))


# ---- root --------------------------------------------------------------------------------------


def test_root_loss_values_and_masking():
    pred = torch.tensor([1.0, 5.0, 0.0])
    target = torch.tensor([3.0, 0.0, NAN])
    valid = torch.tensor([True, False, False])
    assert root_loss(pred, target, valid).item() == pytest.approx(2.0)
    assert root_loss(pred, target, valid, "release").item() == pytest.approx(2.0 / 3)
    target2 = torch.tensor([3.0, 40.0, 7.0])
    assert root_loss(pred, target2, valid).item() == pytest.approx(2.0)


# ---- handedness --------------------------------------------------------------------------------


def test_handedness_loss_values_and_masking():
    logits = torch.tensor([[0.0, 0.0], [2.0, -1.0]])
    target = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x)
    first = math.log(2.0)
    second = (softplus(-2.0) + softplus(1.0)) / 2
    assert handedness_loss(logits, target, torch.tensor([True, False])).item() == pytest.approx(
        first
    )
    assert handedness_loss(logits, target, torch.tensor([False, True])).item() == pytest.approx(
        second
    )
    both = handedness_loss(logits, target, torch.tensor([True, True])).item()
    assert both == pytest.approx((first + second) / 2)
    release = handedness_loss(logits, target, torch.tensor([False, True]), "release").item()
    assert release == pytest.approx(second / 2)
    target2 = torch.tensor([[1.0, 0.0], [NAN, 0.0]])
    assert handedness_loss(logits, target2, torch.tensor([True, False])).item() == pytest.approx(
        first
    )


# ---- segmentation ------------------------------------------------------------------------------


def test_segmentation_loss_values_and_masking():
    # B = 2, C = 2, H = 1, W = 2. Sample 0: pixel (0, 0) logits (0, ln 3), class 1 -> ln(4/3);
    # pixel (0, 1) logits (0, 0), class 0 -> ln 2. Sample 1 invalid, with an impossible label.
    logits = torch.zeros(2, 2, 1, 2)
    logits[0, 1, 0, 0] = math.log(3.0)
    logits[1] = 5.0
    target = torch.tensor([[[1, 0]], [[99, -7]]])
    valid = torch.tensor([True, False])
    expected_sum = math.log(4.0 / 3.0) + math.log(2.0)
    assert segmentation_loss(logits, target, valid).item() == pytest.approx(expected_sum / 2)
    assert segmentation_loss(logits, target, valid, "release").item() == pytest.approx(
        expected_sum / 4
    )
    with pytest.raises(ValueError, match="segm_target"):
        segmentation_loss(logits, target[:, :, :1], valid)


# ---- bone --------------------------------------------------------------------------------------


def test_bone_loss_values():
    pred = torch.zeros(1, 42, 3)
    target = torch.zeros(1, 42, 3)
    pred[0, 1] = torch.tensor([1.0, 0.0, 0.0])  # bones (0, 1) and (1, 2) each err 1
    pred[0, 30] = torch.tensor([1.0, 2.0, 2.0])  # left bones (29, 30), (30, 31) each err 9
    valid = torch.ones(1, 42, dtype=torch.bool)
    assert bone_loss(pred, target, valid).item() == pytest.approx(20.0 / 120)
    # release: right mean 2 / 60 plus left mean 18 / 60
    assert bone_loss(pred, target, valid, "release").item() == pytest.approx(20.0 / 60)
    # A translation of a whole hand leaves every bone vector unchanged.
    assert bone_loss(target + torch.tensor([3.0, -1.0, 2.0]), target, valid).item() == 0.0


def test_bone_loss_masking():
    pred = torch.zeros(1, 42, 3)
    pred[0, 1] = torch.tensor([1.0, 0.0, 0.0])
    target = torch.zeros(1, 42, 3)
    valid = torch.ones(1, 42, dtype=torch.bool)
    valid[0, 0] = False  # drops bone (0, 1); 39 bones remain, only (1, 2) has error 1
    target[0, 0] = NAN
    assert bone_loss(pred, target, valid).item() == pytest.approx(1.0 / 117)
    pred2 = pred.clone()
    pred2[0, 0] = torch.tensor([50.0, 50.0, 50.0])
    assert bone_loss(pred2, target, valid).item() == pytest.approx(1.0 / 117)
    valid[0, 20] = False  # the wrist takes its 5 bones with it: 34 remain, (1, 2) still counts
    assert bone_loss(pred, target, valid).item() == pytest.approx(1.0 / 102)


# ---- all invalid -------------------------------------------------------------------------------


@pytest.mark.parametrize("average", ["valid", "release"])
def test_all_invalid_gives_zero_and_finite_gradients(average):
    pred_hm = torch.randn(2, 42, 3, requires_grad=True)
    bins = torch.randn(2, requires_grad=True)
    hand_logits = torch.randn(2, 2, requires_grad=True)
    segm_logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    none = torch.zeros(2, dtype=torch.bool)
    terms = [
        joints_loss(pred_hm, torch.full((2, 42, 3), NAN), torch.zeros(2, 42), average),
        bone_loss(pred_hm, torch.full((2, 42, 3), NAN), torch.zeros(2, 42), average),
        root_loss(bins, torch.full((2,), NAN), none, average),
        handedness_loss(hand_logits, torch.full((2, 2), NAN), none, average),
        segmentation_loss(segm_logits, torch.full((2, 4, 4), -1), none, average),
    ]
    for term in terms:
        assert term.item() == 0.0
    sum(terms).backward()
    for p in (pred_hm, bins, hand_logits, segm_logits):
        assert torch.isfinite(p.grad).all()
        assert (p.grad == 0).all()


def test_unknown_average_raises():
    with pytest.raises(ValueError, match="average"):
        root_loss(torch.zeros(1), torch.zeros(1), torch.ones(1, dtype=torch.bool), "sum")


# ---- total -------------------------------------------------------------------------------------


def make_output(joints_hm, bins, hand_logits, segm_logits) -> DigitOutput:
    b = joints_hm.shape[0]
    return DigitOutput(
        joints_uvd=torch.zeros(b, 42, 3),
        rel_root_depth_mm=torch.zeros(b),
        handedness_logits=hand_logits,
        segm_logits=segm_logits,
        heatmaps=torch.zeros(b, 42, 2, 2),
        joints_hm=joints_hm,
        rel_root_depth_bins=bins,
        root_depth_logits=torch.zeros(b, 64),
    )


def tiny_batch():
    """One sample; every term has a hand-computed value:
    joints: joint 1 off by (1, 0, 0), 126 valid elements -> 1 / 126
    bone: bones (0, 1), (1, 2) err 1 each, 120 elements -> 2 / 120
    root: |46 - 48| = 2; handedness: logits 0 -> ln 2; segmentation: uniform 4 classes -> ln 4."""
    targets = PoseTargets(
        joints_hm=torch.full((1, 42, 3), 20.0),
        joint_valid=torch.ones(1, 42, dtype=torch.bool),
        rel_root_bins=torch.tensor([48.0]),
        rel_root_valid=torch.tensor([True]),
        hand_type=torch.tensor([[1.0, 1.0]]),
        hand_type_valid=torch.tensor([True]),
    )
    joints = targets.joints_hm.clone()
    joints[0, 1, 0] += 1.0
    segm_logits = torch.zeros(1, 4, 2, 2, requires_grad=True)
    output = make_output(
        joints.requires_grad_(), torch.tensor([46.0]), torch.zeros(1, 2), segm_logits
    )
    segm_target = torch.tensor([[[0, 1], [2, 3]]])
    expected = {
        "joints": 1.0 / 126,
        "root": 2.0,
        "handedness": math.log(2.0),
        "segmentation": math.log(4.0),
        "bone": 2.0 / 120,
    }
    return output, targets, segm_target, expected


def test_digit_loss_total_and_terms():
    output, targets, segm_target, expected = tiny_batch()
    weights = LossWeights()
    assert (weights.joints, weights.root, weights.handedness) == (1.0, 1.0, 1.0)
    assert (weights.segmentation, weights.bone) == (10.0, 0.1)
    total, terms = digit_loss(output, targets, segm_target, torch.tensor([True]), weights)
    assert set(terms) == set(expected)
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value, rel=1e-6), name
    want = sum(getattr(weights, name) * value for name, value in expected.items())
    assert total.item() == pytest.approx(want, rel=1e-6)
    total.backward()
    assert output.segm_logits.grad is not None and output.segm_logits.grad.abs().sum() > 0


def test_digit_loss_sf_star_and_baseline():
    output, targets, segm_target, expected = tiny_batch()
    total, terms = digit_loss(output, targets, segm_target, None, LossWeights(segmentation=0.0))
    assert terms["segmentation"].item() == pytest.approx(math.log(4.0))  # still reported
    want = sum(v for k, v in expected.items() if k not in ("segmentation", "bone"))
    assert total.item() == pytest.approx(want + 0.1 * expected["bone"], rel=1e-6)
    total.backward()
    assert output.segm_logits.grad is None  # no segmentation supervision under SF*

    base = make_output(output.joints_hm, output.rel_root_depth_bins, output.handedness_logits, None)
    _, base_terms = digit_loss(base, targets, None, None)
    assert base_terms["segmentation"].item() == 0.0

    with pytest.raises(ValueError, match="segm_target"):
        digit_loss(output, targets, None, None)


def test_targets_feed_losses():
    """Targets built from annotations give zero loss for a perfect prediction, and the masked
    (out-of-crop) joint does not count."""
    depth = torch.full((1, 42), 500.0)
    depth[:, 21:] = 600.0
    joints_px = torch.full((1, 42, 2), 100.0)
    joints_px[0, 7] = torch.tensor([400.0, 100.0])
    t = build_pose_targets(
        joints_px,
        depth,
        torch.ones(1, 42, dtype=torch.bool),
        torch.tensor([[1.0, 1.0]]),
        torch.ones(1, dtype=torch.bool),
    )
    pred = t.joints_hm.clone()
    pred[0, 7] = 0.0  # wrong, but invalid
    output = make_output(pred, t.rel_root_bins.clone(), torch.tensor([[30.0, 30.0]]), None)
    total, terms = digit_loss(output, t, None, None)
    assert terms["joints"].item() == 0.0
    assert terms["bone"].item() == 0.0
    assert terms["root"].item() == 0.0
    assert total.item() == pytest.approx(2 * softplus(-30.0), abs=1e-9)


# ---- heatmap term (not the release's; the cpu recipe's) ---------------------------------------


def test_heatmap_loss_hand_computed_on_a_2x2_map():
    # target at the centre of cell (0, 0), sigma 1: squared distances to the four cell centres
    # 0, 1, 1, 2 -> unnormalised weights 1, e^-1/2, e^-1/2, e^-1; a uniform heatmap (1/4 each)
    w = [1.0, math.exp(-0.5), math.exp(-0.5), math.exp(-1.0)]
    g = [v / sum(w) for v in w]
    want = sum(p * math.log(p / 0.25) for p in g)
    heatmaps = torch.full((1, 1, 2, 2), 0.25)
    target = torch.tensor([[[0.5, 0.5, 7.0]]])
    got = heatmap_loss(heatmaps, target, torch.ones(1, 1, dtype=torch.bool))
    assert got.item() == pytest.approx(want, rel=1e-6)
    # the target Gaussian itself scores 0
    exact = torch.tensor(g).reshape(1, 1, 2, 2)
    assert heatmap_loss(exact, target, torch.ones(1, 1, dtype=torch.bool)).item() == (
        pytest.approx(0.0, abs=1e-6)
    )


def test_heatmap_loss_ignores_invalid_and_outside_joints():
    heatmaps = torch.full((1, 3, 4, 4), 1 / 16)
    target = torch.tensor([[[2.0, 2.0, 0.0], [9.0, 2.0, 0.0], [float("nan"), 1.0, 0.0]]])
    valid = torch.tensor([[True, True, True]])
    only_first = heatmap_loss(heatmaps[:, :1], target[:, :1], valid[:, :1])
    assert heatmap_loss(heatmaps, target, valid).item() == pytest.approx(only_first.item())
    none = heatmap_loss(heatmaps, target, torch.zeros(1, 3, dtype=torch.bool))
    assert none.item() == 0.0


def test_heatmap_term_only_with_a_weight():
    output, targets, segm_target, _ = tiny_batch()
    targets = dataclasses.replace(targets, joints_hm=torch.full((1, 42, 3), 1.0))
    output = dataclasses.replace(output, heatmaps=torch.full((1, 42, 2, 2), 0.25))
    base, terms = digit_loss(output, targets, segm_target, None)
    assert "heatmap" not in terms
    total, terms = digit_loss(output, targets, segm_target, None, LossWeights(heatmap=2.0))
    # every target at the map's centre: a uniform map is already the target Gaussian
    assert terms["heatmap"].item() == pytest.approx(0.0, abs=1e-6)
    output = dataclasses.replace(
        output, heatmaps=torch.tensor([0.7, 0.1, 0.1, 0.1]).reshape(1, 1, 2, 2).expand(1, 42, 2, 2)
    )
    base, _ = digit_loss(output, targets, segm_target, None)
    total, terms = digit_loss(output, targets, segm_target, None, LossWeights(heatmap=2.0))
    want = sum(0.25 * math.log(0.25 / p) for p in (0.7, 0.1, 0.1, 0.1))
    assert terms["heatmap"].item() == pytest.approx(want, rel=1e-5)
    assert total.item() == pytest.approx(base.item() + 2.0 * want, rel=1e-5)
