"""Interacting synthetic frames cover the whole range of overlap (paper Fig. 8's x axis)."""

import h5py
import numpy as np

from render.mask_cache.builder import build_masks
from render.synthetic_data.generate import SyntheticSettings, make_synthetic


def test_left_right_iou_spreads_from_zero_to_well_above_half(tmp_path):
    root = make_synthetic(
        tmp_path / "root", SyntheticSettings(captures=2, cameras=6, frames=8, images=False)
    )
    build_masks("train", data_root=root, show_progress=False, log=lambda *a, **k: None)
    with h5py.File(root / "masks" / "masks_train.h5") as f:
        iou = f["lr_iou"][:]
    iou = iou[np.isfinite(iou)]
    assert len(iou) > 150
    assert iou.min() < 0.02, "some interacting frames have separate silhouettes"
    assert 0.1 < np.median(iou) < 0.45
    assert iou.max() > 0.6 and (iou > 0.5).mean() > 0.03, "strong overlaps are present"
