"""Checkpoint files: this project's format, and the released DIGIT checkpoint.

This project's format (`torch.save` of a plain dict, readable with `weights_only=True`):

| key | value |
|---|---|
| `format` | "digit-ckpt" |
| `version` | 1 |
| `network_config` | `dataclasses.asdict(NetworkConfig)` |
| `config` | the full training config dict (may be empty) |
| `model` | the network's state dict |
| `optimizer`, `step`, `epoch`, `metrics`, ... | optional extras |

The released checkpoint (`db7cba8c1.pt`) is a plain state dict whose keys start with
`model.pose_reg.`; it is converted by `digit.official`. Files are always read with
`torch.load(weights_only=True)`, so no pickled code ever runs.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import DigitError
from core.files import atomic_path, load_torch_file, os_error_line
from digit.model import DigitNet, NetworkConfig
from digit.official import load_official_state_dict

FORMAT = "digit-ckpt"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "network_config", "config", "model")


def _unwrap(net: nn.Module) -> nn.Module:
    """The bare network under DistributedDataParallel / torch.compile wrappers."""
    while True:
        if hasattr(net, "module") and isinstance(net.module, nn.Module):
            net = net.module
        elif hasattr(net, "_orig_mod") and isinstance(net._orig_mod, nn.Module):
            net = net._orig_mod
        else:
            return net


def _plain(value: Any) -> Any:
    """Paths -> str and optimizers/modules -> their state dicts, recursively, so that the file
    loads under `weights_only=True`."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (torch.optim.Optimizer, nn.Module)):
        return value.state_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def checkpoint_dict(net: nn.Module, config: Mapping[str, Any] | None = None, **extra: Any) -> dict:
    """The dict `save_checkpoint` writes (see the module docstring)."""
    net = _unwrap(net)
    if not isinstance(net, DigitNet):
        raise DigitError(f"checkpoint: expected a DigitNet, got {type(net).__name__}")
    clash = [k for k in extra if k in REQUIRED_KEYS]
    if clash:
        raise DigitError(f"checkpoint: extra keys {clash} would overwrite the format's own")
    return {
        "format": FORMAT,
        "version": VERSION,
        "network_config": dataclasses.asdict(net.config),
        "config": _plain(dict(config or {})),
        "model": net.state_dict(),
        **{k: _plain(v) for k, v in extra.items()},
    }


def save_checkpoint(
    path: str | Path, net: nn.Module, config: Mapping[str, Any] | None = None, **extra: Any
) -> Path:
    """Write `net` (a DigitNet, possibly wrapped by DDP / torch.compile) to `path` atomically:
    written to a temporary file in the same folder, flushed, then `os.replace`d, so `path` only
    ever holds a complete checkpoint. `config`: the training config dict; `extra`: e.g.
    optimizer (state dict or optimizer), step, epoch, metrics. Returns the path. A failed write
    (a full disk, a folder that cannot be written) is one DigitError line naming `path`, and
    leaves `path` as it was."""
    path = Path(path)
    state = checkpoint_dict(net, config, **extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Serialised in memory first: torch's zip writer reports a disk that fills during the
    # write as a RuntimeError ("unexpected pos") or, for a file object, not at all; one
    # write of the whole buffer reports it as the OSError it is.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        with atomic_path(path, fsync=True) as tmp, open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
    except OSError as exc:
        raise DigitError(os_error_line(exc, path)) from None
    return path


def _network_config(path: Path, fields: object) -> NetworkConfig:
    if not isinstance(fields, Mapping):
        raise DigitError(f"{path}: network_config is not a dict")
    known = {f.name for f in dataclasses.fields(NetworkConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise DigitError(f"{path}: network_config has unknown fields {unknown}")
    try:
        return NetworkConfig(**fields)
    except DigitError as exc:
        raise DigitError(f"{path}: network_config: {exc}") from None


def _from_project_format(path: Path, obj: Mapping) -> tuple[DigitNet, dict]:
    if obj.get("version") != VERSION:
        raise DigitError(f"{path}: {FORMAT} version {obj.get('version')!r} (expected {VERSION})")
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        raise DigitError(f"{path}: {FORMAT} file lacks keys {missing}")
    fields = obj["network_config"]
    saved_cfg = obj.get("config")
    if (
        isinstance(fields, Mapping)
        and "input_size" not in fields
        and isinstance(saved_cfg, Mapping)
        and "input_size" in saved_cfg
    ):  # written before the network config recorded the input size: the run's config did
        fields = {**fields, "input_size": saved_cfg["input_size"]}
    config = _network_config(path, fields)
    state = obj["model"]
    if not isinstance(state, Mapping):
        raise DigitError(f"{path}: 'model' is not a state dict")
    net = DigitNet(config, init_backbone=False)  # weights come from the file
    own = net.state_dict()
    missing_keys = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing_keys or unexpected:
        few = (missing_keys or unexpected)[:3]
        raise DigitError(
            f"{path}: model state does not match its network_config ({len(missing_keys)} "
            f"missing, {len(unexpected)} unexpected keys, e.g. {', '.join(few)})"
        )
    wrong = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise DigitError(
            f"{path}: {len(wrong)} tensors with the wrong shape, e.g. {wrong[0]} "
            f"{tuple(state[wrong[0]].shape)} (expected {tuple(own[wrong[0]].shape)})"
        )
    net.load_state_dict(state, strict=True)
    info = {k: v for k, v in obj.items() if k not in ("model", "optimizer")}
    return net, info


def _from_released(path: Path, obj: Mapping) -> tuple[DigitNet, dict]:
    if isinstance(obj.get("state_dict"), Mapping):  # a Lightning wrapper around it
        obj = obj["state_dict"]
    if not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DigitError(
            f"{path}: not a DIGIT checkpoint (neither format '{FORMAT}' nor a state dict)"
        )
    try:
        net = load_official_state_dict(obj)
    except DigitError as exc:
        raise DigitError(f"{path}: {str(exc).removeprefix('state dict: ')}") from None
    info = {
        "format": "released",
        "version": None,
        "network_config": dataclasses.asdict(net.config),
        "config": {},
    }
    return net, info


def load_network(path: str | Path, device: str | torch.device = "cpu") -> tuple[DigitNet, dict]:
    """Network (eval mode, on `device`) and an info dict from a checkpoint file.

    Accepts this project's format (info: every key but `model` and `optimizer`: format,
    version, network_config, config, step, epoch, metrics, ...) or the released DIGIT state
    dict (info: format "released", version None, network_config, config {}). Read with
    `torch.load(weights_only=True, map_location=device)`. A missing file, a file that is not a
    checkpoint, a pickle with code, or keys that do not fit: one DigitError naming the file.
    """
    path = Path(path)
    obj = load_torch_file(path, "checkpoint", device)
    if not isinstance(obj, Mapping):
        raise DigitError(f"{path}: not a DIGIT checkpoint (holds a {type(obj).__name__})")
    if obj.get("format") == FORMAT:
        net, info = _from_project_format(path, obj)
    elif "format" in obj:
        raise DigitError(f"{path}: unknown checkpoint format {obj['format']!r}")
    else:
        net, info = _from_released(path, obj)
    info["path"] = str(path)
    return net.to(device).eval(), info
