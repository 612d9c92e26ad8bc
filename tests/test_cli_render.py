"""`digit-render` as a user meets it: pictures, the synthetic default, one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from core.errors import DigitError
from core.parts import palette
from core.paths import SYNTHETIC_VERSION, default_data_root, mask_cache_path, resolve_data_root


def _cli(*args: str, env=None) -> subprocess.CompletedProcess:
    code = "from cli.render_app import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )


def test_hand_gallery_shows_every_part_of_both_hands(tmp_path):
    out = tmp_path / "hands.png"
    result = _cli("hand-gallery", "--out", str(out))
    assert result.returncode == 0, result.stderr
    pixels = np.asarray(Image.open(out).convert("RGB"))
    legend_width = 420
    hands = pixels[:, : pixels.shape[1] - legend_width].reshape(-1, 3).astype(float)
    # Shading scales a part's colour by 0.45..1, so compare chromaticity with the palette.
    fg = hands[(hands.sum(1) < 740) & (hands.sum(1) > 30)]
    chroma = fg / fg.sum(1, keepdims=True)
    colours = palette()[1:].astype(float)
    ref = colours / colours.sum(1, keepdims=True)
    nearest = np.argmin(((chroma[:, None] - ref[None]) ** 2).sum(-1), axis=1)
    seen = np.bincount(nearest, minlength=32)
    assert (seen > 50).sum() >= 30, f"parts visible: {np.flatnonzero(seen > 50) + 1}"


def test_preview_draws_the_dataset(tmp_path, synthetic_root):
    out = tmp_path / "sheet.png"
    result = _cli("preview", "--data-root", str(synthetic_root), "--out", str(out), "--count", "4")
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (4 * 256, 256 + 16)


def test_errors_are_one_line(tmp_path):
    result = _cli("preview", "--data-root", str(tmp_path / "nowhere"), "--out", "x.png")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "nowhere: data root not found" in result.stderr
    result = _cli("make-synthetic", "--out", str(tmp_path / "s"), "--cameras", "0")
    assert result.returncode == 1 and "--cameras: must be at least 1" in result.stderr
    result = _cli("make-synthetic", "--out", str(tmp_path / "s"), "--workers", "0")
    assert result.returncode == 1 and "--workers: must be at least 1" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    result = _cli("preview", "--data-root", str(tmp_path), "--out", "x.png")
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_default_data_root_lives_under_digit_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGIT_HOME", str(tmp_path))
    root = tmp_path / f"synthetic-v{SYNTHETIC_VERSION}"
    root.mkdir()
    (root / "SYNTHETIC.json").write_text(json.dumps({"generator_version": SYNTHETIC_VERSION}))
    assert default_data_root() == root
    assert resolve_data_root(None) == root


def test_lookups_create_nothing(tmp_path, monkeypatch):
    """Resolving the default data root is a lookup: on an empty DIGIT_HOME it says what to run
    and leaves the folder empty (creating the dataset is the CLIs' explicit step)."""
    monkeypatch.setenv("DIGIT_HOME", str(tmp_path))
    with pytest.raises(DigitError, match="synthetic default dataset does not exist yet"):
        resolve_data_root(None)
    assert list(tmp_path.iterdir()) == []


def test_mask_cache_path_rule(tmp_path):
    root = tmp_path / "root"
    assert mask_cache_path(None, root, "val") == root / "masks" / "masks_val.h5"
    assert mask_cache_path(tmp_path / "m", root, "val") == tmp_path / "m" / "masks_val.h5"
    assert mask_cache_path(tmp_path / "x.h5", root, "val") == tmp_path / "x.h5"


def test_make_synthetic_defaults_are_the_settings_defaults():
    import inspect

    from cli.render_app import make_synthetic
    from render.synthetic_data.generate import SyntheticSettings

    options = inspect.signature(make_synthetic).parameters
    default = SyntheticSettings()
    for name in ("captures", "eval_captures", "cameras", "frames", "seed"):
        assert options[name].default.default == getattr(default, name), name
