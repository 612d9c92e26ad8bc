"""digit.model.hand_frame: the frame, the targets, the combination, and the network option.

Reference values are worked out by hand in each test's comments."""

import math

import pytest
import torch

from core.errors import DigitError
from core.joints import HAND_JOINTS, RIGHT_ROOT
from digit.losses import chirality_loss, digit_loss
from digit.model import DigitNet, NetworkConfig
from digit.model.hand_frame import (
    FRAME_MARGIN,
    MIDDLE_BASE,
    HandFrameHandedness,
    chirality_targets,
    hand_frame_theta,
    handedness_from_frames,
    heatmap_to_grid,
    resample_in_frame,
)
from digit.targets import PoseTargets


def test_heatmap_units_to_grid_coordinates():
    # a 96 px crop: pixel 0 (heatmap 0) is -1 + 1/96, pixel 95.5 (heatmap 23.875) is +1
    got = heatmap_to_grid(torch.tensor([[0.0, 23.875]]), 96)
    assert torch.allclose(got, torch.tensor([[-1 + 1 / 96, 1.0]], dtype=torch.float64))


def _hand(wrist, base, others=()):
    """One hand's (1, 21, 2) grid coordinates and validity: wrist, middle base, extra joints."""
    xy = torch.zeros(1, HAND_JOINTS, 2, dtype=torch.float64)
    valid = torch.zeros(1, HAND_JOINTS, dtype=torch.bool)
    for k, p in ((RIGHT_ROOT, wrist), (MIDDLE_BASE, base), *others):
        xy[0, k] = torch.tensor(p)
        valid[0, k] = True
    return xy, valid


def test_hand_frame_maps_the_output_top_centre_to_the_middle_base_direction():
    # wrist (0.2, 0.1), middle base (0.2 + 0.3, 0.1): the hand points along +x. "hand":
    # centre = their midpoint (0.35, 0.1), reach 0.15, half-side 1.2 x 0.15 = 0.18; the
    # output's (0, -1) (top centre) must land at centre + 0.18 x (1, 0) = (0.53, 0.1)
    xy, valid = _hand((0.2, 0.1), (0.5, 0.1))
    theta, ok = hand_frame_theta(xy, valid, "hand")
    assert ok.tolist() == [True]
    top = theta[0] @ torch.tensor([0.0, -1.0, 1.0], dtype=torch.float64)
    assert torch.allclose(top, torch.tensor([0.35 + FRAME_MARGIN * 0.15, 0.1], dtype=torch.float64))
    # "rotate": about the crop's centre, unit scale: (0, -1) -> (1, 0)
    theta, _ = hand_frame_theta(xy, valid, "rotate")
    top = theta[0] @ torch.tensor([0.0, -1.0, 1.0], dtype=torch.float64)
    assert torch.allclose(top, torch.tensor([1.0, 0.0], dtype=torch.float64), atol=1e-12)
    # no middle base: the identity, not ok
    valid[0, MIDDLE_BASE] = False
    theta, ok = hand_frame_theta(xy, valid, "hand")
    assert ok.tolist() == [False]
    assert torch.equal(theta[0], torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], dtype=torch.float64))


def test_a_feature_at_the_middle_base_lands_at_the_top_of_the_hand_crop():
    size = 24
    maps = torch.zeros(1, 1, size, size)
    # the middle base at cell (row 12, col 18), the wrist at (row 12, col 6): pointing +x
    maps[0, 0, 12, 18] = 1.0
    to_grid = lambda r, c: ((c + 0.5) * 2 / size - 1, (r + 0.5) * 2 / size - 1)  # noqa: E731
    xy, valid = _hand(to_grid(12, 6), to_grid(12, 18))
    theta, _ = hand_frame_theta(xy, valid, "hand")
    crop = resample_in_frame(maps, theta, 20)[0, 0]
    r, c = divmod(int(crop.argmax()), 20)
    # centre (12, 12), reach 6 cells, half-side 7.2 cells over 10 output cells: the base is
    # 6 / 7.2 of the way from the centre to the top: output row 10 - 10 x 6 / 7.2 - 0.5 = 1.17
    assert c in (9, 10) and r == 1, (r, c)


def test_chirality_targets_by_hand_type():
    hand_type = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    valid = torch.tensor([True, True, True, True, False])
    target, ok = chirality_targets(hand_type, valid)
    # right alone: both slots find it, a right hand; left alone: a left one; both: slot 0
    # right, slot 1 left; no hand or invalid: not counted
    assert target[:3].tolist() == [[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]
    assert ok.tolist() == [[True, True]] * 3 + [[False, False]] * 2
    # the loss: BCE of logit 0 is ln 2 for each counted slot; a confident right answer on a
    # right hand costs log(1 + e^-3)
    logits = torch.zeros(5, 2)
    assert math.isclose(chirality_loss(logits, hand_type, valid).item(), math.log(2), rel_tol=1e-6)
    logits[:3] = torch.tensor([[3.0, 3.0], [-3.0, -3.0], [3.0, -3.0]])
    assert math.isclose(
        chirality_loss(logits, hand_type, valid).item(), math.log1p(math.exp(-3)), rel_tol=1e-5
    )


def test_handedness_from_frames_by_hand():
    # p2 = 0.5, c = 0.5: right = left = 0.5 + 0.25 = 0.75, logit ln 3
    got = handedness_from_frames(torch.zeros(1), torch.zeros(1, 2))
    assert torch.allclose(got, torch.full((1, 2), math.log(3)))
    # one hand (p2 = sigmoid(-20)), the slots say "right" with logits 4 and 2 (mean 3):
    # right ~ sigmoid(3), left ~ 1 - sigmoid(3) = sigmoid(-3)
    got = handedness_from_frames(torch.tensor([-20.0]), torch.tensor([[4.0, 2.0]]))
    assert torch.allclose(got, torch.tensor([[3.0, -3.0]]), atol=1e-4)
    # two hands for sure: both present whatever the slots say
    got = torch.sigmoid(handedness_from_frames(torch.tensor([20.0]), torch.tensor([[-9.0, 9.0]])))
    assert (got > 0.999).all()


def test_the_branch_reads_features_not_the_joints():
    torch.manual_seed(0)
    branch = HandFrameHandedness(8)
    features = torch.randn(3, 8, 24, 24, requires_grad=True)
    joints = (torch.rand(3, 42, 3) * 20 + 2).requires_grad_(True)
    two_hands, chirality = branch(features, joints, 96)
    assert two_hands.shape == (3,) and chirality.shape == (3, 2)
    (two_hands.sum() + chirality.sum()).backward()
    assert features.grad.abs().sum() > 0 and joints.grad is None  # the frame is an input
    # slot 1 reads the left hand's joints: moving only them changes only slot 1's answer,
    # and the two-hands logit not at all
    branch.eval()
    with torch.no_grad():
        t_a, a = branch(features, joints, 96)
        moved = joints.detach().clone()
        moved[:, HAND_JOINTS:, :2] += 1.5
        t_b, b = branch(features, moved, 96)
    assert torch.equal(a[:, 0], b[:, 0]) and not torch.equal(a[:, 1], b[:, 1])
    assert torch.equal(t_a, t_b)


def _targets(b: int) -> PoseTargets:
    """b samples cycling right only, left only, both; every joint valid, in the 24-cell map."""
    hand_type = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).repeat(b, 1)[:b]
    return PoseTargets(
        joints_hm=torch.rand(b, 42, 3) * 20 + 2,
        joint_valid=torch.ones(b, 42, dtype=torch.bool),
        rel_root_bins=torch.full((b,), 32.0),
        rel_root_valid=torch.ones(b, dtype=torch.bool),
        hand_type=hand_type,
        hand_type_valid=torch.ones(b, dtype=torch.bool),
    )


def test_the_network_option():
    with pytest.raises(DigitError, match="handedness"):
        NetworkConfig(handedness="palm")
    assert NetworkConfig.preset("paper").handedness == "global"
    torch.manual_seed(0)
    cfg = NetworkConfig.preset("cpu", handedness="hand_frame", backbone_weights=None)
    net = DigitNet(cfg, init_backbone=False)
    out = net(torch.rand(2, 3, 96, 96))
    assert out.chirality_logits.shape == (2, 2) and out.handedness_logits.shape == (2, 2)
    assert not hasattr(net, "hand_fc")  # the branch's own heads replace it
    plain_cfg = NetworkConfig.preset("cpu", backbone_weights=None, handedness="global")
    plain = DigitNet(plain_cfg, init_backbone=False)
    extra = set(net.state_dict()) - set(plain.state_dict())
    assert extra and all(k.startswith("hand_frame.") for k in extra)
    missing = set(plain.state_dict()) - set(net.state_dict())
    assert missing and all(k.startswith("hand_fc.") for k in missing)
    assert plain(torch.rand(1, 3, 96, 96)).chirality_logits is None
    segm = torch.zeros(2, 48, 48, dtype=torch.long)
    total, terms = digit_loss(out, _targets(2), segm, None)
    assert "chirality" in terms and terms["chirality"] > 0
    total.backward()
    assert all(p.grad is not None for p in net.hand_frame.parameters())


def test_global_norm_keeps_the_trunk_alive_where_the_plain_one_is_dead():
    """The `global_norm` option: BatchNorm after each conv of the global head. A plain trunk
    whose biases went negative outputs one constant for every image (what the cpu recipe's
    1,200-step model did: BENCHMARKS.md); normalised, the same weights still tell images apart."""
    from digit.model.heads import global_head

    with pytest.raises(DigitError, match="global_norm"):
        NetworkConfig(global_norm=1)
    assert NetworkConfig.preset("paper").global_norm is False
    torch.manual_seed(0)
    plain, normed = global_head(8, 0.25), global_head(8, 0.25, norm=True)
    convs = [m for m in plain if isinstance(m, torch.nn.Conv2d)]
    assert [type(m).__name__ for m in normed[:3]] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert all(m.bias is None for m in normed if isinstance(m, torch.nn.Conv2d))
    for a, b in zip(convs, (m for m in normed if isinstance(m, torch.nn.Conv2d)), strict=True):
        b.weight.data.copy_(a.weight.data)
    convs[-2].bias.data.fill_(-10.0)  # the fifth conv's units never fire: the trunk is dead
    x = torch.randn(6, 8, 24, 24)
    assert plain(x).mean(dim=(2, 3)).std(0).max() == 0  # one answer for every image
    normed.train()
    assert normed(x).mean(dim=(2, 3)).std(0).max() > 0


def test_swap_class_map_pairs_each_part_with_the_other_hands():
    from digit.model.hand_frame import swap_class_map

    m = swap_class_map(33)
    assert m[0] == 0 and m[1] == 17 and m[16] == 32 and m[17] == 1 and m[32] == 16
    assert torch.equal(m[m], torch.arange(33))  # an involution
    assert swap_class_map(3).tolist() == [0, 2, 1]


def test_swap_hands_describes_the_same_scene_with_the_hands_exchanged():
    from digit.model.hand_frame import swap_target_hands

    both = torch.ones(2, 2)
    t = PoseTargets(**{**_targets(2).__dict__, "rel_root_bins": torch.tensor([40.0, 40.0]),
                       "hand_type": both})  # fmt: skip
    segm = torch.tensor([[[0, 3, 20]], [[0, 3, 20]]])
    swap = torch.tensor([True, False])
    s, segm_s = swap_target_hands(t, segm, swap, 33)
    assert torch.equal(s.joints_hm[0, :21], t.joints_hm[0, 21:])
    assert torch.equal(s.joints_hm[1], t.joints_hm[1])
    # left minus right root depth 40 bins = +50 mm; exchanged: -50 mm = 24 bins
    assert s.rel_root_bins.tolist() == [24.0, 40.0]
    assert s.hand_type[0].tolist() == t.hand_type[0].flip(0).tolist()
    assert segm_s.tolist() == [[[0, 19, 4]], [[0, 3, 20]]]


def _eval_output(n: int):
    """The eval-mode output of a seeded `cpu` network (slots already assigned) on n images."""
    torch.manual_seed(2)
    net = DigitNet(NetworkConfig.preset("cpu", backbone_weights=None), init_backbone=False)
    net.eval()
    with torch.no_grad():
        return net(torch.rand(n, 3, 96, 96))


def test_in_eval_mode_the_branch_assigns_the_slots():
    from digit.model.hand_frame import assign_hands

    out = _eval_output(4)
    # after assignment no sample sees two hands with slot 0 less "right" than slot 1
    c = out.chirality_logits
    assert not ((out.two_hands_logit > 0) & (c[:, 0] < c[:, 1])).any()
    # assign_hands by hand on a made-up output: sample 0 two hands, slot 0 "left": exchanged
    o = type(out)(**{
        **out.__dict__,
        "two_hands_logit": torch.tensor([3.0, 3.0, -3.0, -3.0]),
        "chirality_logits": torch.tensor([[-2.0, 2.0], [2.0, -2.0], [-2.0, 2.0], [0.0, 0.0]]),
    })  # fmt: skip
    a = assign_hands(o)
    assert torch.equal(a.joints_uvd[0, :21], o.joints_uvd[0, 21:])
    assert torch.equal(a.joints_uvd[1:], o.joints_uvd[1:])  # sure of order, or one hand
    assert torch.allclose(a.rel_root_depth_mm[0], -o.rel_root_depth_mm[0])
    assert a.chirality_logits[0].tolist() == [2.0, -2.0]
    assert torch.equal(a.segm_logits[0, 1], o.segm_logits[0, 17])


def test_spatial_assignment_puts_the_hand_further_left_in_slot_0():
    from digit.model.hand_frame import spatial_assignment

    t = torch.zeros(5, 42, 3)
    t[:, :21, 0], t[:, 21:, 0] = 10.0, 5.0  # the right hand right of the left one
    t[1, :21, 0], t[1, 21:, 0] = 5.0, 10.0  # sample 1: already in order
    valid = torch.ones(5, 42, dtype=torch.bool)
    valid[3, 21:] = False  # sample 3: the left hand not annotated
    valid[0, 0] = False
    t[0, 0, 0] = float("nan")  # an invalid joint's value never counts
    hand_type = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    assert spatial_assignment(t, valid, hand_type).tolist() == [True, False, False, False, True]


def test_the_hand_frame_loss_trains_slot_0_on_the_hand_further_left():
    """Every term sees a two-hand sample's targets with slot 0 = the hand further left in the
    crop: here sample 2's right hand is on the right, so its targets are exchanged."""
    from digit.losses import bone_loss, chirality_loss, joints_loss, root_loss
    from digit.model.hand_frame import swap_slots

    torch.manual_seed(1)
    net = DigitNet(NetworkConfig.preset("cpu", backbone_weights=None), init_backbone=False)
    out = net(torch.rand(3, 3, 96, 96))
    t = _targets(3)  # right only, left only, both
    hm = t.joints_hm.clone()
    hm[2, :21, 0], hm[2, 21:, 0] = 18.0, 6.0  # the right hand on the right
    t = PoseTargets(**{**t.__dict__, "joints_hm": hm, "rel_root_bins": torch.full((3,), 40.0)})
    segm = torch.zeros(3, 48, 48, dtype=torch.long)
    segm[2, 0, 0], segm[2, 0, 1] = 3, 20
    _, terms = digit_loss(out, t, segm, None)
    swap = torch.tensor([False, False, True])  # by hand: only sample 2, only two-hand samples
    hm_s, valid_s = swap_slots(hm, swap), swap_slots(t.joint_valid, swap)
    assert torch.allclose(terms["joints"], joints_loss(out.joints_hm, hm_s, valid_s))
    assert torch.allclose(terms["bone"], bone_loss(out.joints_hm, hm_s, valid_s))
    bins = torch.tensor([40.0, 40.0, 24.0])  # +50 mm left minus right; exchanged: -50 mm
    assert torch.allclose(terms["root"], root_loss(out.rel_root_depth_bins, bins, t.rel_root_valid))
    chir = chirality_loss(out.chirality_logits, t.hand_type, t.hand_type_valid, swap=swap)
    assert torch.allclose(terms["chirality"], chir)
    segm_s = segm.clone()
    segm_s[2, 0, 0], segm_s[2, 0, 1] = 19, 4
    want = torch.nn.functional.cross_entropy(out.segm_logits.float(), segm_s)
    assert torch.allclose(terms["segmentation"], want, rtol=1e-5)


def test_sides_from_branch_by_hand():
    """Pixel 0: background 0.5, right part 1 0.1, left part 1 (class 17) 0.4 -> part 1 has 0.5;
    the branch says right with P = 0.8: right part 1 0.4, left part 1 0.1, background 0.5."""
    from digit.model.hand_frame import sides_from_branch

    p = torch.full((1, 33, 1, 1), 1e-12)
    p[0, 0], p[0, 1], p[0, 17] = 0.5, 0.1, 0.4
    got = sides_from_branch(p.log(), torch.logit(torch.tensor([0.8]))).exp()
    assert got.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert got[0, 0].item() == pytest.approx(0.5, abs=1e-6)
    assert got[0, 1].item() == pytest.approx(0.4, abs=1e-6)
    assert got[0, 17].item() == pytest.approx(0.1, abs=1e-6)


def test_in_eval_mode_one_left_hand_gets_the_left_part_classes():
    from digit.model.hand_frame import assign_hands

    out = _eval_output(3)
    o = type(out)(**{
        **out.__dict__,
        "two_hands_logit": torch.tensor([-3.0, -3.0, 3.0]),  # one hand, one hand, two
        "chirality_logits": torch.tensor([[-2.0, -1.0], [2.0, 1.0], [-2.0, -1.0]]),
    })  # fmt: skip
    a = assign_hands(o)
    assert torch.equal(a.joints_uvd[:2], o.joints_uvd[:2])  # one hand: no slot moves
    # one hand: part k's probability goes to the side the branch says (mean logit -1.5: left
    # for sample 0, +1.5: right for sample 1), whatever side the part head gave it
    r, l = a.segm_logits[:2, 1:17], a.segm_logits[:2, 17:33]
    assert (l[0] > r[0]).all() and (r[1] > l[1]).all()
    bg = torch.log_softmax(o.segm_logits[:2].float(), 1)[:, 0]
    assert torch.allclose(a.segm_logits[:2, 0], bg)
    # two hands, slot 0 "more left" than slot 1 (-2 < -1): both slots and classes exchanged
    assert torch.equal(a.joints_uvd[2, :21], o.joints_uvd[2, 21:])
    assert torch.equal(a.segm_logits[2, 17], o.segm_logits[2, 1])


@pytest.mark.parametrize(
    "module", ["digit.targets", "digit.evaluate", "digit.losses", "cli.eval_app", "cli.train_app"]
)
def test_each_entry_module_imports_first_in_a_fresh_interpreter(module):
    """digit.model imports digit.targets' dataclass only for type checking (digit.targets
    imports digit.model): whichever module a command imports first must load."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
