"""The DIGIT network: shapes of every variant, decoding against hand-computed values, gradient
flow, parameter counts from reference/digit_network.md, backbone pruning and weight loading."""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings

import pytest
import timm
import torch

from core.errors import DigitError
from digit.model import VARIANTS, DigitNet, NetworkConfig, count_parameters, parameter_breakdown
from digit.model.backbone import build_backbone, create_backbone, prune_hrnet
from digit.model.decode import (
    bin_expectation,
    expected_depth,
    heatmap_depth_to_mm,
    heatmap_to_pixels,
    mm_to_heatmap_depth,
    mm_to_root_bins,
    normalise_heatmaps,
    root_bins_to_mm,
    soft_argmax_2d,
)
from digit.model.segmentation import semantic_input

TINY = "hrnet_w18_small"
SIZE = 64  # smallest input the architecture allows (multiple of 32): fast on 2 CPU cores


@pytest.fixture(autouse=True)
def _quiet_random_init():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="backbone .*: random initialisation")
        yield


def _tiny(variant: str, **kw) -> DigitNet:
    torch.manual_seed(0)
    return DigitNet(NetworkConfig(variant=variant, backbone=TINY, **kw))


def _images(b: int = 2, size: int = SIZE) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(1))


# --- decoding (pure functions) -------------------------------------------------------------


def test_soft_argmax_of_a_delta_is_the_cell_centre():
    h, w = 6, 9  # non-square, so a swapped x / y cannot pass
    cells = [(0, 0), (5, 8), (2, 7), (4, 1)]
    logits = torch.zeros(1, len(cells), h, w)
    for j, (r, c) in enumerate(cells):
        logits[0, j, r, c] = 1e4
    xy = soft_argmax_2d(normalise_heatmaps(logits))
    expected = torch.tensor([[[c + 0.5, r + 0.5] for r, c in cells]])
    assert torch.equal(xy, expected)
    assert torch.equal(heatmap_to_pixels(xy), expected * 4)


def test_soft_argmax_uniform_and_two_peaks():
    xy = soft_argmax_2d(normalise_heatmaps(torch.zeros(2, 3, 64, 64)))
    assert torch.allclose(xy, torch.full((2, 3, 2), 32.0))  # mean of 0.5..63.5
    logits = torch.full((1, 1, 4, 4), -1e4)
    logits[0, 0, 1, 0] = 0.0  # centre (0.5, 1.5)
    logits[0, 0, 3, 2] = math.log(3.0)  # centre (2.5, 3.5), 3x the weight
    xy = soft_argmax_2d(normalise_heatmaps(logits))
    assert torch.allclose(xy, torch.tensor([[[0.25 * 0.5 + 0.75 * 2.5, 0.25 * 1.5 + 0.75 * 3.5]]]))


def test_heatmaps_are_normalised_with_temperature():
    logits = torch.randn(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    probs = normalise_heatmaps(logits, beta=2.0)
    assert torch.allclose(probs.sum(dim=(2, 3)), torch.ones(2, 3))
    flat = torch.exp(2.0 * logits[0, 1]).flatten()
    assert torch.allclose(probs[0, 1].flatten(), flat / flat.sum())


def test_expected_depth_picks_the_peak_cell_and_averages():
    probs = torch.zeros(1, 2, 3, 3)
    probs[0, 0, 2, 1] = 1.0
    probs[0, 1, 0, 0] = 0.5
    probs[0, 1, 1, 2] = 0.5
    depth = torch.arange(18, dtype=torch.float32).reshape(1, 2, 3, 3)
    assert torch.equal(expected_depth(probs, depth), torch.tensor([[7.0, 0.5 * 9 + 0.5 * 14]]))


def test_bin_expectation_hand_computed():
    # softmax of log(1..4) is (1, 2, 3, 4) / 10; bins 0..3 (no + 0.5): (0 + 2 + 6 + 12) / 10
    logits = torch.log(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    assert torch.allclose(bin_expectation(logits), torch.tensor([2.0]))
    delta = torch.full((1, 64), -1e4)
    delta[0, 40] = 0.0
    assert bin_expectation(delta).item() == 40.0
    assert root_bins_to_mm(torch.tensor(40.0)).item() == pytest.approx((40 / 64 * 2 - 1) * 200)


def test_depth_unit_conversions():
    z = torch.tensor([0.0, 16.0, 32.0, 64.0])
    assert torch.equal(heatmap_depth_to_mm(z), torch.tensor([-200.0, -100.0, 0.0, 200.0]))
    assert torch.equal(root_bins_to_mm(z), torch.tensor([-200.0, -100.0, 0.0, 200.0]))
    mm = torch.tensor([-150.0, 3.5, 199.0])
    assert torch.allclose(heatmap_depth_to_mm(mm_to_heatmap_depth(mm)), mm)
    assert torch.allclose(root_bins_to_mm(mm_to_root_bins(mm)), mm)


def test_decoding_keeps_dtype():
    logits = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    probs = normalise_heatmaps(logits)
    assert soft_argmax_2d(probs).dtype == torch.float64
    assert bin_expectation(torch.randn(3, 64, dtype=torch.float64)).dtype == torch.float64


def test_semantic_input_modes():
    logits = torch.randn(2, 5, 3, 4, generator=torch.Generator().manual_seed(0))
    assert semantic_input(logits, "logits") is logits
    probs = semantic_input(logits, "probs")
    assert torch.allclose(probs.sum(dim=1), torch.ones(2, 3, 4))
    labels = semantic_input(logits, "labels")
    assert torch.equal(labels.sum(dim=1), torch.ones(2, 3, 4))
    assert torch.equal(labels.argmax(dim=1), logits.argmax(dim=1))
    assert not labels.requires_grad


# --- the network -----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_output_shapes_and_decoding_of_every_variant(variant):
    net = _tiny(variant).eval()
    with torch.no_grad():
        out = net(_images())
    b, h = 2, SIZE // 4
    assert out.joints_uvd.shape == (b, 42, 3)
    assert out.rel_root_depth_mm.shape == (b,)
    assert out.handedness_logits.shape == (b, 2)
    assert out.heatmaps.shape == (b, 42, h, h)
    assert out.joints_hm.shape == (b, 42, 3)
    assert out.rel_root_depth_bins.shape == (b,)
    assert out.root_depth_logits.shape == (b, 64)
    if variant == "baseline":
        assert out.segm_logits is None
    else:
        classes = 3 if variant == "lr_segm" else 33
        assert out.segm_logits.shape == (b, classes, SIZE // 2, SIZE // 2)
    # joints_uvd is the heatmap-unit output in crop pixels and mm (reference formulas)
    assert torch.allclose(out.heatmaps.sum(dim=(2, 3)), torch.ones(b, 42))
    assert torch.allclose(out.joints_uvd[..., :2], out.joints_hm[..., :2] * 4)
    z = out.joints_hm[..., 2]
    assert torch.allclose(out.joints_uvd[..., 2], (z / 64 * 2 - 1) * 200, rtol=1e-5, atol=1e-3)
    assert ((out.joints_uvd[..., :2] >= 2.0) & (out.joints_uvd[..., :2] <= SIZE - 2.0)).all()
    bins = (torch.softmax(out.root_depth_logits, -1) * torch.arange(64.0)).sum(-1)
    assert torch.allclose(out.rel_root_depth_bins, bins)
    assert torch.allclose(out.rel_root_depth_mm, (bins / 64 * 2 - 1) * 200, atol=1e-3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.joints_uvd = out.joints_uvd  # type: ignore[misc]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_parameter_gets_a_gradient(variant):
    net = _tiny(variant).train()
    out = net(_images())
    loss = out.joints_hm.mean() + out.rel_root_depth_bins.mean() + out.handedness_logits.mean()
    if out.segm_logits is not None:
        loss = loss + out.segm_logits.mean()
    loss.backward()
    no_grad = [n for n, p in net.named_parameters() if p.grad is None]
    assert not no_grad, no_grad[:5]
    zero = [n for n, p in net.named_parameters() if not p.grad.abs().sum() > 0]
    assert not zero, zero[:5]
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize(
    ("variant", "options", "reaches_segm_head"),
    [
        ("digit", {}, True),
        ("digit", {"semantic_input": "probs"}, True),
        ("class_labels", {}, False),
        ("digit", {"semantic_detach": True}, False),
        ("digit", {"semantic_input": "probs", "semantic_detach": True}, False),
    ],
)
def test_pose_loss_reaches_segmentation_head_only_through_soft_features(
    variant, options, reaches_segm_head
):
    net = _tiny(variant, **options).train()
    out = net(_images())
    (out.joints_hm.mean() + out.handedness_logits.mean()).backward()
    head = list(net.hand_segm.parameters())
    assert all((p.grad is not None) == reaches_segm_head for p in head)
    assert all(p.grad is not None for p in net.conv_segm_feat.parameters())
    if not reaches_segm_head:  # it still learns from its own loss
        net.zero_grad(set_to_none=True)
        net(_images()).segm_logits.mean().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head)


def test_semantic_detach_changes_gradients_not_outputs():
    a, b = _tiny("digit").eval(), _tiny("digit", semantic_detach=True).eval()
    b.load_state_dict(a.state_dict())
    x = _images(1)
    with torch.no_grad():
        oa, ob = a(x), b(x)
    assert torch.equal(oa.joints_hm, ob.joints_hm)
    assert torch.equal(oa.segm_logits, ob.segm_logits)
    with pytest.raises(DigitError, match="semantic_detach"):
        NetworkConfig(semantic_detach="yes")


def test_probs_option_changes_the_semantic_input():
    a, b = _tiny("digit").eval(), _tiny("digit", semantic_input="probs").eval()
    b.load_state_dict(a.state_dict())
    x = _images(1)
    with torch.no_grad():
        oa, ob = a(x), b(x)
    assert torch.equal(oa.segm_logits, ob.segm_logits)
    assert not torch.allclose(oa.joints_hm, ob.joints_hm)


def test_generic_backbone_through_the_adapter():
    torch.manual_seed(0)
    net = DigitNet(NetworkConfig(backbone="resnet18")).eval()
    assert net.backbone_adapter[0].in_channels == 64  # resnet18 layer1, stride 4
    with torch.no_grad():
        out = net(_images(1))
    assert out.segm_logits.shape == (1, 33, 32, 32)
    assert out.heatmaps.shape == (1, 42, 16, 16)


def test_bad_images_and_settings_are_one_line_errors():
    net = _tiny("baseline")
    with pytest.raises(DigitError, match="multiples of 32"):
        net(torch.rand(1, 3, 64, 48))
    with pytest.raises(DigitError, match="B x 3 x H x W"):
        net(torch.rand(1, 1, 64, 64))
    with pytest.raises(DigitError, match="--variant"):
        NetworkConfig(variant="segm")
    with pytest.raises(DigitError, match="semantic_input"):
        NetworkConfig(semantic_input="softmax")
    with pytest.raises(DigitError, match="--preset"):
        NetworkConfig.preset("huge")
    with pytest.raises(DigitError, match="--backbone"):
        build_backbone("no_such_model_xyz", None)
    assert NetworkConfig.preset("tiny", variant="lr_segm").backbone == TINY
    assert NetworkConfig.preset("paper").backbone == "hrnet_w32"


# --- parameter counts (reference/digit_network.md) ------------------------------------------


def test_paper_network_has_the_released_parameter_count():
    counts = parameter_breakdown(DigitNet(NetworkConfig(), init_backbone=False))
    assert counts["total"] == 40_711_475
    assert counts["backbone"] == 28_535_552
    assert counts["hand_segm"] == 43_005
    assert counts["conv_segm_feat"] == 314_496
    assert counts["merge_layer"] == 4_631_264
    assert counts["conv_hm"] + counts["conv_depth"] == 45_780
    assert counts["conv_head"] == 6_582_208
    assert counts["root_fc"] == 295_488
    assert counts["hand_fc"] == 263_682


def test_head_width_scales_the_hand_sized_layers():
    # head_width 0.25: S' 33 -> 16 -> 128, global head widths 16-32-64-128-128-128 from
    # 32 + 128 = 160 channels, MLPs 128 -> 128 -> out; every conv 3x3 with bias
    def conv(i: int, o: int) -> int:
        return i * o * 9 + o

    counts = parameter_breakdown(
        DigitNet(NetworkConfig(backbone=TINY, head_width=0.25), init_backbone=False)
    )
    assert counts["conv_segm_feat"] == conv(33, 16) + conv(16, 128) == 23_328
    widths = (160, 16, 32, 64, 128, 128, 128)
    assert counts["conv_head"] == sum(conv(a, b) for a, b in itertools.pairwise(widths))
    assert counts["hand_fc"] == 128 * 128 + 128 + 128 * 2 + 2
    assert counts["root_fc"] == 128 * 128 + 128 + 128 * 64 + 64
    assert counts["conv_hm"] == 160 * 42 + 42
    out = _tiny("digit", head_width=0.25)(_images())
    assert out.joints_uvd.shape == (2, 42, 3) and out.segm_logits.shape == (2, 33, 32, 32)
    for bad in (0, 1.5, -0.25, True, "half"):
        with pytest.raises(DigitError, match="head_width"):
            NetworkConfig(head_width=bad)


def test_baseline_parameter_count():
    # released parts minus segmentation, S' and UNet; heads read 32 instead of 544 channels:
    # 1x1 convs 2 x (32 x 42 + 42), first global conv loses (544 - 32) x 64 x 9 weights
    expected = 28_535_552 + 2 * (32 * 42 + 42) + 6_582_208 - 512 * 64 * 9 + 295_488 + 263_682
    net = DigitNet(NetworkConfig(variant="baseline"), init_backbone=False)
    assert count_parameters(net) == expected == 35_384_790


# --- backbone: pruning and weights ----------------------------------------------------------


def test_pruning_removes_only_unused_fuse_layers_and_keeps_the_output():
    kw = {"features_only": True, "feature_location": "", "out_indices": (1,)}
    full = timm.create_model("hrnet_w32", **kw)
    assert prune_hrnet(full) == 769_984
    torch.manual_seed(0)
    full = timm.create_model(TINY, **kw).eval()
    pruned = create_backbone(TINY).eval()
    pruned.load_state_dict(full.state_dict(), strict=False)
    assert len(full.state_dict()) > len(pruned.state_dict())
    x = _images(1)
    with torch.no_grad():
        assert torch.equal(full(x)[0], pruned(x)[0])


def test_random_init_warns_once():
    with pytest.warns(UserWarning, match="random initialisation") as record:
        build_backbone(TINY, None)
    assert len(record) == 1 and "\n" not in str(record[0].message)


def _same_weights(a: torch.nn.Module, b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, b[k]) for k, v in a.state_dict().items() if k in b)


def test_local_weights_in_timm_format(tmp_path):
    torch.manual_seed(3)
    classifier = timm.create_model(TINY)  # full classification model: extra head keys
    path = tmp_path / "timm.pth"
    torch.save(classifier.state_dict(), path)
    backbone = build_backbone(TINY, str(path))
    assert _same_weights(backbone, classifier.state_dict())
    assert not _same_weights(create_backbone(TINY), classifier.state_dict())


def test_local_weights_in_hrnet_pose_repository_format(tmp_path):
    # the pose repository's ImageNet file: timm's names, classification head, a `module.`
    # prefix when saved from DataParallel, sometimes no BN num_batches_tracked
    torch.manual_seed(4)
    state = timm.create_model(TINY).state_dict()
    saved = {"module." + k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "hrnet_w18_small-pose.pth"
    torch.save({"state_dict": saved}, path)
    backbone = build_backbone(TINY, str(path))
    assert _same_weights(backbone, state) and len(backbone.state_dict()) < len(state)


def test_local_weights_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(DigitError, match=r"nope\.pth: backbone weights file not found"):
        build_backbone(TINY, str(missing))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(DigitError, match=r"garbage\.pth: cannot read"):
        build_backbone(TINY, str(garbage))
    wrong = tmp_path / "resnet.pth"
    torch.save(timm.create_model("resnet18").state_dict(), wrong)
    with pytest.raises(DigitError, match=r"resnet\.pth: not weights for this backbone"):
        build_backbone(TINY, str(wrong))
