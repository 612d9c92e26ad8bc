"""The released DIGIT checkpoint (`db7cba8c1.pt`) <-> this project's network.

The network's module names match the release, so keys map one to one once the prefix
(`model.pose_reg.`, or `model.` then `pose_reg.`) is removed. The one real change is the order of
the 33 segmentation channels: the release uses DIGIT's part order (channel = JSON value + 1 for
the right hand, + 17 for the left), this project MANO's (1 + MANO joint, 17 + MANO joint). The
layers that produce or read those channels are permuted on load and permuted back on save:
the segmentation head's conv3x3 64->33 and its BN, its final conv3x3 33->33 (output and input
channels), and the first conv of S' (input channels).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from core.errors import DigitError
from core.files import load_torch_file
from core.parts import DIGIT_TO_MANO_PART, LEFT_OFFSET, NUM_CLASSES, RIGHT_OFFSET
from digit.model.config import NetworkConfig
from digit.model.network import DigitNet

OFFICIAL_BACKBONE = "hrnet_w32"
# The released state dict's key prefix; below it, names equal this network's module names (the
# test against ../shared/reference/digit_official_state_dict.json checks every key and shape).
PREFIX = "model.pose_reg."


def _digit_channel_of_class() -> tuple[int, ...]:
    """Entry c = the released model's channel that holds this project's class c (33 entries)."""
    order = [0] * NUM_CLASSES
    for value, mano_joint in enumerate(DIGIT_TO_MANO_PART):
        order[RIGHT_OFFSET + mano_joint] = RIGHT_OFFSET + value
        order[LEFT_OFFSET + mano_joint] = LEFT_OFFSET + value
    return tuple(order)


DIGIT_CHANNEL_OF_CLASS: tuple[int, ...] = _digit_channel_of_class()
CLASS_OF_DIGIT_CHANNEL: tuple[int, ...] = tuple(
    sorted(range(NUM_CLASSES), key=DIGIT_CHANNEL_OF_CLASS.__getitem__)
)

_SEGM_OUT = "hand_segm.segm_head.segm_net.double_conv."
# key (without prefix) -> tensor dims indexed by segmentation class
CLASS_DIMS: dict[str, tuple[int, ...]] = {
    _SEGM_OUT + "0.weight": (0,),
    _SEGM_OUT + "0.bias": (0,),
    _SEGM_OUT + "1.weight": (0,),
    _SEGM_OUT + "1.bias": (0,),
    _SEGM_OUT + "1.running_mean": (0,),
    _SEGM_OUT + "1.running_var": (0,),
    _SEGM_OUT + "3.weight": (0, 1),
    _SEGM_OUT + "3.bias": (0,),
    "conv_segm_feat.0.weight": (1,),
}


def _permute(state: dict[str, torch.Tensor], order: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """Reindex the class dimensions: new[..., c, ...] = old[..., order[c], ...]."""
    out = dict(state)
    for key, dims in CLASS_DIMS.items():
        if key in out and out[key].shape[dims[0]] == len(order):
            t = out[key]
            index = torch.tensor(order, device=t.device)
            for dim in dims:
                t = t.index_select(dim, index)
            out[key] = t
    return out


def _strip(key: str) -> str:
    key = key.removeprefix("model.")
    return key.removeprefix("pose_reg.")


def _fmt(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")


def _load(state_dict: object, variant: str, source: str) -> DigitNet:
    if not isinstance(state_dict, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state_dict.values()
    ):
        raise DigitError(f"{source}: not a state dict (a mapping of names to tensors)")
    state: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        name = _strip(str(key))
        if name in state:
            raise DigitError(f"{source}: key {key!r} appears twice once prefixes are removed")
        state[name] = value
    net = DigitNet(NetworkConfig(variant=variant, backbone=OFFICIAL_BACKBONE), init_backbone=False)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_fmt(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_fmt(unexpected)})")
        raise DigitError(f"{source}: not a DIGIT {variant} state dict: " + "; ".join(parts))
    wrong = [k for k in expected if tuple(state[k].shape) != tuple(expected[k])]
    if wrong:
        k = wrong[0]
        raise DigitError(
            f"{source}: {len(wrong)} tensors with the wrong shape, e.g. {k} "
            f"{tuple(state[k].shape)} (expected {tuple(expected[k])})"
        )
    net.load_state_dict(_permute(state, DIGIT_CHANNEL_OF_CLASS), strict=True)
    return net.eval()


def load_official_state_dict(
    state_dict: Mapping[str, torch.Tensor], variant: str = "digit"
) -> DigitNet:
    """Network (eval mode, on CPU) from the released checkpoint's state dict.

    Keys may carry the `model.pose_reg.` / `model.` / `pose_reg.` prefixes or none. Every key of
    the released list must be present and every given key consumed; otherwise DigitError
    naming a few offending keys. Segmentation channels are reordered into this project's class
    order. `variant` other than "digit" accepts that variant's keys in the released naming.
    """
    return _load(state_dict, variant, "state dict")


def to_official_state_dict(net: DigitNet) -> dict[str, torch.Tensor]:
    """The network's state in the released naming and channel order (inverse of loading):
    keys `model.pose_reg.<name>`, tensors detached copies on their device."""
    if net.config.backbone != OFFICIAL_BACKBONE:
        raise DigitError(
            f"to_official_state_dict: the released naming covers the {OFFICIAL_BACKBONE} "
            f"backbone only, not {net.config.backbone}"
        )
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    state = _permute(state, CLASS_OF_DIGIT_CHANNEL)
    return {PREFIX + k: v for k, v in state.items()}


def load_official_checkpoint(path: str | Path, variant: str = "digit") -> DigitNet:
    """Network (eval mode, CPU) from the released checkpoint file, e.g. `db7cba8c1.pt`.

    Read with `torch.load(weights_only=True, map_location="cpu")`; a `state_dict` wrapper (a
    Lightning checkpoint) is accepted. Any problem: one DigitError line naming the file.
    """
    obj = load_torch_file(path, "checkpoint")
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    return _load(obj, variant, str(path))
