"""Which dataset and MANO folder a command uses when the user names none.

With no `--data-root`, commands use the synthetic default, created once under `$DIGIT_HOME`
(default `~/.cache/digit`) in `synthetic-v{GENERATOR_VERSION}`; a new generator version gets a new
folder. The MANO folder defaults to `<data-root>/mano/` for any data root.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from core.errors import DigitError


def digit_home() -> Path:
    return Path(os.environ.get("DIGIT_HOME", Path.home() / ".cache" / "digit")).expanduser()


def default_data_root(create: bool = True) -> Path:
    """The synthetic default dataset, generated on first use (said on stderr)."""
    from render.synthetic_data.generate import GENERATOR_VERSION, SyntheticSettings, make_synthetic

    root = digit_home() / f"synthetic-v{GENERATOR_VERSION}"
    if create and not (root / "SYNTHETIC.json").exists():
        print(f"digit: creating the synthetic default dataset in {root} (once)", file=sys.stderr)
        make_synthetic(root, SyntheticSettings(), overwrite=True)
    return root


def resolve_data_root(data_root: Path | None) -> Path:
    """`data_root` if given (it must exist), else the synthetic default."""
    if data_root is None:
        return default_data_root()
    data_root = Path(data_root)
    if not data_root.is_dir():
        raise DigitError(
            f"{data_root}: data root not found (expected an InterHand2.6M-layout folder)"
        )
    return data_root


def resolve_mano_dir(mano_dir: Path | None, data_root: Path) -> Path:
    """`mano_dir` if given, else `<data_root>/mano`; checked later by the hand model."""
    return Path(mano_dir) if mano_dir is not None else data_root / "mano"
