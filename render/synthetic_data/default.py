"""The explicit step that creates the synthetic default dataset (the CLIs call it, announced)."""

from __future__ import annotations

import sys
from pathlib import Path

from core.paths import SYNTHETIC_MARKER, default_data_root, resolve_data_root


def prepare_data_root(data_root: str | Path | None) -> Path:
    """`data_root` checked, or the synthetic default, generated first if it does not exist yet
    (one line on stderr says so). Returns the data root to use."""
    if data_root is not None:
        return resolve_data_root(data_root)
    root = default_data_root()
    if not (root / SYNTHETIC_MARKER).is_file():
        from render.synthetic_data.generate import SyntheticSettings, make_synthetic

        print(f"digit: creating the synthetic default dataset in {root} (once)", file=sys.stderr)
        make_synthetic(root, SyntheticSettings(), overwrite=True)
    return resolve_data_root(None)
