"""Where a checkpoint or a result came from: recorded in every checkpoint and metrics.json."""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
from pathlib import Path
from typing import Any

import torch

from core.paths import SYNTHETIC_MARKER

REPO = Path(__file__).resolve().parents[1]


def project_commit() -> str | None:
    """This checkout's git commit (with "+dirty" for uncommitted changes), None outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def input_normalisation(net: torch.nn.Module) -> str:
    """What the network does to its RGB [0, 1] input before the backbone's first layer."""
    backbone = getattr(net, "backbone", None)
    mean, std = getattr(backbone, "mean", None), getattr(backbone, "std", None)
    if isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor):
        m = [round(float(v), 6) for v in mean.flatten()]
        s = [round(float(v), 6) for v in std.flatten()]
        return f"(x - {m}) / {s} inside the backbone"
    return "none (RGB in [0, 1], as released)"


def synthetic_version(data_root: str | Path | None) -> dict[str, Any] | None:
    """The synthetic generator's record of a data root (SYNTHETIC.json), None for real data."""
    if data_root is None:
        return None
    path = Path(data_root) / SYNTHETIC_MARKER
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return {"generator_version": info.get("generator_version"), "settings": info.get("settings")}


def provenance(cfg: Any, net: torch.nn.Module, train_set: Any = None) -> dict[str, Any]:
    """Input size and normalisation, seed, data (root and synthetic version), project commit,
    torch version and the time, as one JSON-ready dict."""
    data_root = getattr(train_set, "data_root", None)
    return {
        "input_size": int(net.config.input_size),
        "input_normalisation": input_normalisation(net),
        "seed": getattr(cfg, "seed", None),
        "data_root": None if data_root is None else str(data_root),
        "synthetic": synthetic_version(data_root),
        "project_commit": project_commit(),
        "torch": str(torch.__version__),  # TorchVersion is not loadable with weights_only
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
