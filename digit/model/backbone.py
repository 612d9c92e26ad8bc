"""Image backbone: a timm `features_only` model tapped at stride 4.

For HRNets (timm's `HighResolutionNetFeatures` with `feature_location=''`) the stride-4 output is
the highest-resolution branch after stage 4. timm builds stage 4's last module with fuse layers
into all four branches, but only branch 0 is read, so the fuse layers into branches 1-3 (769,984
parameters for HRNet-W32) never get a gradient. They are dropped here, which leaves the output
unchanged and matches the pose HRNet of the released checkpoint key for key (timm 1.0.31: nothing
else follows the branch outputs when `feature_location=''`).

Pretrained weights: the HRNet pose repository's `hrnet_w32-36af842e.pth` is the ImageNet
classification HRNet-W32 (HRNet-Image-Classification, which timm's HRNet was ported from): its
trunk keys are timm's `hrnet_w32` names, and it additionally holds the classification head
(`incre_modules`, `downsamp_modules`, `final_layer`, `classifier`) and the stage-4 fuse layers
into branches 1-3 (the unexpected keys users report when loading it into mmpose / mmseg; the
file itself was not available to check). Loading keeps the keys this backbone has and ignores the
rest; a `module.` prefix (DataParallel) or a `state_dict` / `model` wrapper is undone, and BN
`num_batches_tracked` counters missing from old files keep their initial value.

`efficientnet_liteN_fpn` (N = 0, 1, 2) is not a timm tap but `lite_fpn.LiteFPN`: timm's
`tf_efficientnet_liteN` trunk with a neck fusing strides 4-32 into 32 stride-4 channels. Its
weights may also be `package:efficientnet-liteN`: ImageNet weights inside a pip package
(`digit.model.pretrained`), loaded into the trunk through an explicit key map.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import timm
import torch
from timm.models.hrnet import HighResolutionNetFeatures
from torch import nn

from core.errors import DigitError
from core.files import load_torch_file
from digit.model.lite_fpn import LITE_BACKBONES, LiteFPN
from digit.model.pretrained import (
    is_package_spec,
    load_package_state,
    packaged_weights,
    timm_state_from_package,
)


def _create(name: str, pretrained: bool, out_index: int | None) -> nn.Module:
    kwargs: dict[str, object] = {"features_only": True, "pretrained": pretrained}
    if name.startswith("hrnet"):
        kwargs["feature_location"] = ""  # plain branch outputs, no classification increments
    if out_index is not None:
        kwargs["out_indices"] = (out_index,)
    try:
        return timm.create_model(name, **kwargs)
    except RuntimeError as exc:  # timm: unknown model name
        raise DigitError(f"--backbone {name}: {exc}") from None


def stride4_index(name: str) -> int:
    """Index of the stride-4 feature map among timm's `features_only` outputs for `name`."""
    with torch.device("meta"):  # shapes only: no memory, no weight init
        probe = _create(name, False, None)
    reductions = probe.feature_info.reduction()
    if 4 not in reductions:
        raise DigitError(f"--backbone: {name} has no stride-4 feature map (strides {reductions})")
    return reductions.index(4)


def prune_hrnet(model: nn.Module) -> int:
    """Drop the fuse layers of stage 4's last module into branches 1..3 (in place).

    Only valid when the model returns branch 0 alone (out index 1). Returns the number of
    parameters removed (769,984 for hrnet_w32).
    """
    last = model.stage4[-1]
    removed = sum(p.numel() for fuse in last.fuse_layers[1:] for p in fuse.parameters())
    last.fuse_layers = nn.ModuleList([last.fuse_layers[0]])
    last.multi_scale_output = False
    return removed


def create_backbone(name: str, pretrained_timm: bool = False) -> nn.Module:
    """Build the backbone: calling it on images (B, 3, H, W) returns a one-element list with the
    stride-4 features (B, C, H/4, W/4); C = `feature_channels(model)` (32 for hrnet_w32 and
    the `efficientnet_liteN_fpn` backbones).

    `pretrained_timm` downloads timm's ImageNet weights (only when asked).
    """
    if name in LITE_BACKBONES:
        return LiteFPN(name, pretrained_timm)
    index = stride4_index(name)
    model = _create(name, pretrained_timm, index)
    if isinstance(model, HighResolutionNetFeatures):
        if index != 1:
            raise DigitError(f"--backbone: {name}: expected the stride-4 HRNet branch at index 1")
        prune_hrnet(model)
    return model


def feature_channels(model: nn.Module) -> int:
    """Channels of the stride-4 feature map the backbone returns."""
    if isinstance(model, LiteFPN):
        return model.out_channels
    return int(model.feature_info.channels()[-1])


def pretrained_part(model: nn.Module) -> nn.Module:
    """The module that ImageNet weights (timm key names) fill: the trunk of a `LiteFPN`, else
    the whole backbone."""
    return model.trunk if isinstance(model, LiteFPN) else model


def _unwrap(obj: object, source: str) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DigitError(f"{source}: not a state dict of tensors")
    return {str(k).removeprefix("module."): v for k, v in obj.items()}


def load_backbone_state(model: nn.Module, state_dict: Mapping[str, object], source: str) -> None:
    """Copy a pretrained state dict (timm names, extra keys ignored) into the backbone.

    Every parameter and buffer of the backbone must be present with its shape, except BN
    `num_batches_tracked` counters; otherwise DigitError naming `source` and a few keys.
    """
    state = _unwrap(state_dict, source)
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise DigitError(
            f"{source}: not weights for this backbone: {len(missing)} missing keys, e.g. "
            + ", ".join(missing[:4])
        )
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        k = wrong[0]
        raise DigitError(
            f"{source}: {len(wrong)} keys with the wrong shape, e.g. {k} "
            f"{tuple(state[k].shape)} (expected {tuple(own[k].shape)})"
        )
    model.load_state_dict({k: state[k] for k in own if k in state}, strict=False)


def load_backbone_file(model: nn.Module, path: str | Path) -> None:
    """Load local pretrained weights (see `load_backbone_state`)."""
    obj = load_torch_file(path, "backbone weights file")
    load_backbone_state(model, obj, str(path))


def load_packaged_weights(model: nn.Module, name: str, spec: str) -> None:
    """Load `package:NAME` weights into backbone `name` (its timm architecture must be the one
    the weights were made for: `efficientnet_lite0_fpn` or `tf_efficientnet_lite0` for
    `package:efficientnet-lite0`)."""
    entry = packaged_weights(spec)
    arch = LITE_BACKBONES.get(name, name)
    if arch != entry.timm_model:
        fits = [k for k, v in LITE_BACKBONES.items() if v == entry.timm_model]
        raise DigitError(
            f"backbone_weights {spec}: weights for backbone {' or '.join(fits)} "
            f"(or timm's {entry.timm_model}), not {name}"
        )
    target = pretrained_part(model)
    state = timm_state_from_package(load_package_state(spec), target.state_dict().keys(), spec)
    load_backbone_state(target, state, spec)


def build_backbone(name: str, weights: str | None, init: bool = True) -> nn.Module:
    """Backbone with its starting weights: `weights` None (random, warned), "timm",
    "package:NAME" (weights inside an installed pip package) or a local path.

    `init=False` skips weights and warning (the caller loads a full network state next).
    """
    if not init:
        return create_backbone(name)
    if weights == "timm":
        try:
            return create_backbone(name, pretrained_timm=True)
        except DigitError:
            raise
        except Exception as exc:  # hub / network / cache errors: one line for the user
            raise DigitError(
                f"--backbone-weights timm: cannot fetch {name} weights ({type(exc).__name__})"
            ) from None
    model = create_backbone(name)
    if weights is None:
        warnings.warn(
            f"backbone {name}: random initialisation (no ImageNet weights; "
            "pass --backbone-weights timm, package:NAME or a local file)",
            stacklevel=3,
        )
    elif is_package_spec(weights):
        load_packaged_weights(model, name, weights)
    else:
        load_backbone_file(pretrained_part(model), weights)
    return model
