"""The explicit, announced preparation steps of the command-line tools.

Lookups never create anything (`core.paths`); a command run without `--data-root` calls these
first, so `digit-train` with no options still just works on a fresh machine.
"""

from __future__ import annotations

import os
import sys
import time

from core.paths import SYNTHETIC_MARKER, default_data_root, mask_cache_path
from digit.train.config import TrainConfig
from render.synthetic_data.default import prepare_data_root


def prepare_training_data(cfg: TrainConfig) -> None:
    """For a run on the synthetic default (no data_root and no masks given): create the dataset
    and build its train masks if missing, each announced on stderr. Under torchrun the first
    process prepares while the others wait for its files (no process group exists yet)."""
    if cfg.data_root is not None or cfg.masks is not None:
        return
    root = default_data_root()
    train_masks = mask_cache_path(None, root, "train")
    if int(os.environ.get("RANK", "0")) != 0:
        while not (train_masks.is_file() and (root / SYNTHETIC_MARKER).is_file()):
            time.sleep(1.0)
        return
    prepare_data_root(None)
    if not train_masks.is_file():
        from render.mask_cache.builder import build_masks

        print(
            f"digit-train: building the synthetic default's train masks in {train_masks}",
            file=sys.stderr,
        )
        build_masks("train", root, out=train_masks)
