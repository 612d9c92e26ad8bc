"""Session-wide fixtures: small synthetic datasets made once per test run."""

from pathlib import Path

import pytest

from render.synthetic_data.generate import SyntheticSettings, make_synthetic

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = SHARED / "fixtures" / "interhand26m_samples"

# Small but complete: every split, single-hand and interacting sequences, grey and colour cameras.
SMALL_SYNTHETIC = SyntheticSettings(captures=1, eval_captures=1, cameras=3, frames=3, seed=7)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small synthetic InterHand2.6M-layout dataset with images (about 100 images)."""
    # one process: starting workers costs more than this small set (tests/test_synthetic_data.py
    # checks that the worker count changes nothing)
    root = tmp_path_factory.mktemp("synthetic") / "root"
    return make_synthetic(root, SMALL_SYNTHETIC, workers=1, show_progress=False)


@pytest.fixture(scope="session")
def mask_cache_train(synthetic_root, tmp_path_factory) -> Path:
    """`build-masks` of the small synthetic train split (pieces of 8 images), built once."""
    from render.mask_cache.builder import build_masks

    out = tmp_path_factory.mktemp("masks") / "masks_train.h5"
    build_masks("train", synthetic_root, out=out, piece_size=8, show_progress=False)
    return out
