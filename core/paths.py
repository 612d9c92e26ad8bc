"""Where things are: the data root, the MANO folder and the mask caches. Lookups only.

With no `--data-root`, commands use the synthetic default under `$DIGIT_HOME` (default
`~/.cache/digit`) in `synthetic-v{SYNTHETIC_VERSION}`; a new generator version gets a new folder.
Nothing here creates anything: making the default dataset or a missing cache is an explicit,
announced step of the command-line tools (`render.synthetic_data.default`, `cli.prepare`).
The MANO folder defaults to `<data-root>/mano/` and mask caches to `<data-root>/masks/`.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import DigitError

# The synthetic generator's output version (`render.synthetic_data.generate` writes it into
# SYNTHETIC.json); it names the default folder, so a new generator never reuses old data.
SYNTHETIC_VERSION = 4
SYNTHETIC_MARKER = "SYNTHETIC.json"  # written last by the generator: the dataset is complete


def digit_home() -> Path:
    """`$DIGIT_HOME`, default `~/.cache/digit`."""
    return Path(os.environ.get("DIGIT_HOME", Path.home() / ".cache" / "digit")).expanduser()


def default_data_root() -> Path:
    """The synthetic default dataset's folder (it may not exist yet)."""
    return digit_home() / f"synthetic-v{SYNTHETIC_VERSION}"


def resolve_data_root(data_root: str | Path | None) -> Path:
    """`data_root` if given (it must exist), else the synthetic default (it must be created).

    Either missing is one DigitError line saying what to run.
    """
    if data_root is None:
        root = default_data_root()
        if not (root / SYNTHETIC_MARKER).is_file():
            raise DigitError(
                f"{root}: the synthetic default dataset does not exist yet; create it with "
                f"`digit-render make-synthetic --out {root}` (the digit-* commands do it "
                "themselves when run without --data-root)"
            )
        return root
    data_root = Path(data_root)
    if not data_root.is_dir():
        raise DigitError(
            f"{data_root}: data root not found (expected an InterHand2.6M-layout folder)"
        )
    return data_root


def resolve_mano_dir(mano_dir: str | Path | None, data_root: Path) -> Path:
    """`mano_dir` if given, else `<data_root>/mano`; checked later by the hand model."""
    return Path(mano_dir) if mano_dir is not None else Path(data_root) / "mano"


def mask_cache_path(masks: str | Path | None, data_root: str | Path, split: str) -> Path:
    """The mask cache of `split`: `masks` itself if it names an .h5 file, `<masks>/masks_{split}.h5`
    for a folder, `<data_root>/masks/masks_{split}.h5` when `masks` is None. Not checked."""
    if masks is None:
        return Path(data_root) / "masks" / f"masks_{split}.h5"
    masks = Path(masks)
    return masks if masks.suffix == ".h5" else masks / f"masks_{split}.h5"


def build_masks_command(data_root: Path, split: str, out: Path) -> str:
    """The `digit-render build-masks` line that writes `out` for `split` of `data_root`."""
    cmd = f"digit-render build-masks --split {split} --data-root {data_root}"
    if Path(out) != mask_cache_path(None, data_root, split):
        cmd += f" --out {out}"
    return cmd
