"""The `paper` preset is the released recipe to the letter (reference/digit_network.md, "Losses"
and "Recipe"): its settings, its loss against the release's formulas restated here element by
element in numpy (not through the project's own reduction code), the departures table of the
other presets, and a few real training steps of the paper network under bf16 autocast on CPU."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from core.joints import BONES
from digit.losses import LossWeights, digit_loss
from digit.model import NetworkConfig
from digit.model.output import DigitOutput
from digit.targets import PoseTargets
from digit.train import TrainConfig
from digit.train.config import PRESET_DEPARTURES, PRESETS

# ---- the preset's settings ---------------------------------------------------------------------


def test_paper_preset_is_the_released_recipe():
    cfg = TrainConfig.preset_config("paper")
    assert cfg.loss == LossWeights(
        joints=1.0, root=1.0, handedness=1.0, segmentation=10.0, bone=0.1, heatmap=0.0
    )
    assert cfg.loss_average == "release"
    assert (cfg.batch_size, cfg.grad_accum, cfg.images_per_step) == (32, 2, 64)
    assert (cfg.lr, cfg.weight_decay, cfg.backbone_lr_scale) == (1e-4, 0.0, 1.0)
    assert (cfg.lr_schedule, cfg.milestones, cfg.gamma, cfg.epochs) == ("step", (40,), 0.1, 50)
    assert (cfg.warmup_steps, cfg.max_steps, cfg.time_limit) == (0, None, None)
    assert cfg.amp == "fp16" and cfg.augment and cfg.augment_rotation == 45.0
    net = cfg.network
    assert (net.variant, net.backbone, net.input_size) == ("digit", "hrnet_w32", 256)
    assert (net.semantic_input, net.head_width) == ("logits", 1.0)


def test_departures_table_lists_exactly_what_each_preset_changes():
    paper = TrainConfig.preset_config("paper").to_dict()
    assert set(PRESET_DEPARTURES) == set(PRESETS) - {"paper"}
    for name in PRESET_DEPARTURES:
        cfg = TrainConfig.preset_config(name).to_dict()
        changed = {k for k in cfg if cfg[k] != paper[k]} - {"preset"}
        assert changed == set(PRESET_DEPARTURES[name]), name
        assert all(reason.strip() for reason in PRESET_DEPARTURES[name].values())


# ---- the loss against the release's formulas ---------------------------------------------------


def bce(x: float, y: float) -> float:
    return max(x, 0.0) - x * y + np.log1p(np.exp(-abs(x)))


def release_loss(p: dict, t: dict, w: LossWeights) -> float:
    """The released code's loss, element by element: each term's masked sum divided by the
    count of all its elements (invalid ones count as zeros); the bone term is the right-hand
    mean plus the left-hand mean, each over B x 20 bones x 3."""
    b, j = t["joint_valid"].shape
    joints = sum(
        abs(p["joints_hm"][i, k, c] - t["joints_hm"][i, k, c])
        for i in range(b)
        for k in range(j)
        for c in range(3)
        if t["joint_valid"][i, k]
    ) / (b * j * 3)
    root = sum(abs(p["root"][i] - t["root"][i]) for i in range(b) if t["root_valid"][i]) / b
    hand = sum(
        bce(p["hand"][i, k], t["hand"][i, k])
        for i in range(b)
        for k in range(2)
        if t["hand_valid"][i]
    ) / (b * 2)
    logits, labels = p["segm"], t["segm"]
    _, _, h, wd = logits.shape
    segm = 0.0
    for i in range(b):
        if not t["segm_valid"][i]:
            continue
        for r in range(h):
            for c in range(wd):
                z = logits[i, :, r, c]
                segm += np.log(np.exp(z - z.max()).sum()) + z.max() - z[labels[i, r, c]]
    segm /= b * h * wd
    bone = 0.0
    for hand_bones in (BONES[:20], BONES[20:]):
        total = 0.0
        for i in range(b):
            for child, parent in hand_bones:
                if t["joint_valid"][i, child] and t["joint_valid"][i, parent]:
                    dp = p["joints_hm"][i, child] - p["joints_hm"][i, parent]
                    dt = t["joints_hm"][i, child] - t["joints_hm"][i, parent]
                    total += ((dp - dt) ** 2).sum()
        bone += total / (b * 20 * 3)
    return (
        w.joints * joints
        + w.root * root
        + w.handedness * hand
        + w.segmentation * segm
        + w.bone * bone
    )


def test_paper_loss_equals_the_release_formulas():
    cfg = TrainConfig.preset_config("paper")
    g = torch.Generator().manual_seed(3)
    b, h = 3, 4
    joints_pred = torch.rand(b, 42, 3, generator=g, dtype=torch.float64) * 64
    joints_true = torch.rand(b, 42, 3, generator=g, dtype=torch.float64) * 64
    joint_valid = torch.rand(b, 42, generator=g) > 0.3
    joints_true[~joint_valid] = float("nan")  # invalid targets may hold anything
    p = {
        "joints_hm": joints_pred,
        "root": torch.rand(b, generator=g, dtype=torch.float64) * 64,
        "hand": torch.randn(b, 2, generator=g, dtype=torch.float64) * 2,
        "segm": torch.randn(b, 33, h, h, generator=g, dtype=torch.float64),
    }
    t = {
        "joints_hm": joints_true,
        "joint_valid": joint_valid,
        "root": torch.rand(b, generator=g, dtype=torch.float64) * 64,
        "root_valid": torch.tensor([True, False, True]),
        "hand": torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64),
        "hand_valid": torch.tensor([True, True, False]),
        "segm": torch.randint(0, 33, (b, h, h), generator=g),
        "segm_valid": torch.tensor([True, False, True]),
    }
    output = DigitOutput(
        joints_uvd=p["joints_hm"] * 4,
        rel_root_depth_mm=p["root"],
        handedness_logits=p["hand"],
        segm_logits=p["segm"],
        heatmaps=torch.full((b, 42, 2, 2), 0.25, dtype=torch.float64),
        joints_hm=p["joints_hm"],
        rel_root_depth_bins=p["root"],
        root_depth_logits=torch.zeros(b, 64, dtype=torch.float64),
    )
    targets = PoseTargets(
        t["joints_hm"], t["joint_valid"], t["root"], t["root_valid"], t["hand"], t["hand_valid"]
    )
    total, _ = digit_loss(output, targets, t["segm"], t["segm_valid"], cfg.loss, cfg.loss_average)
    numpy_p = {k: v.numpy() for k, v in p.items()}
    numpy_t = {k: v.numpy() for k, v in t.items()}
    assert total.item() == pytest.approx(release_loss(numpy_p, numpy_t, cfg.loss), rel=1e-5)
    # and the other reduction really is another objective on this batch
    other, _ = digit_loss(output, targets, t["segm"], t["segm_valid"], cfg.loss, "valid")
    assert abs(other.item() - total.item()) > 0.05 * total.item()


# ---- the paper network trains under bf16 autocast on CPU ---------------------------------------


@pytest.mark.slow
@pytest.mark.integration
def test_paper_preset_takes_bf16_autocast_steps_on_cpu(tmp_path, synthetic_root, mask_cache_train):
    """Two optimizer steps of 1 x 2 images of the paper network (HRNet-W32) with bf16
    autocast: finite losses, the weights move, and the checkpoint records the precision. At
    128 px: on a CPU without bf16 instructions (an AMD EPYC, 2026-12-07) 256 px took 136 s."""
    from digit.train import train

    cfg = TrainConfig.preset_config("paper").updated(
        {
            "data_root": str(synthetic_root),
            "masks": str(mask_cache_train.parent),
            "batch_size": 1,
            "grad_accum": 2,
            "max_steps": 2,
            "amp": "bf16",
            "input_size": 128,
            "device": "cpu",
            "num_workers": 0,
            "eval_every": 0,
            "log_every": 1,
            "out": str(tmp_path / "run"),
        }
    )
    torch.manual_seed(cfg.seed)
    before = {k: v.clone() for k, v in _fresh_paper_net(cfg.network).state_dict().items()}
    result = train(cfg, show_progress=False)
    assert result.step == 2 and np.isfinite(result.last_loss)
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert saved["config"]["amp"] == "bf16" and saved["config"]["loss_average"] == "release"
    moved = [
        k
        for k, v in saved["model"].items()
        if v.is_floating_point() and not torch.equal(v, before[k])
    ]
    assert any(k.startswith("backbone.") for k in moved)
    assert any(k.startswith("merge_layer.") for k in moved)


def _fresh_paper_net(config: NetworkConfig):
    from digit.model import DigitNet

    return DigitNet(dataclasses.replace(config), init_backbone=True)
