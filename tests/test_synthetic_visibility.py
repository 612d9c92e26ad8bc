"""render.synthetic_data.visibility: black pictures are found, real ones pass; the small
default-settings dataset has none (the whole default: `make check-default`)."""

import numpy as np

from render.synthetic_data import visibility
from render.synthetic_data.generate import SyntheticSettings


def test_bright_levels_hand_computed():
    picture = np.zeros((10, 20, 3), dtype=np.uint8)
    picture[2:4, 5:7] = (100, 100, 100)  # 4 grey pixels of luma 100 inside the box
    picture[9, 19] = (255, 0, 0)  # one red pixel of luma 0.299 * 255 outside it
    whole, box = visibility.bright_levels(picture, np.array([4.0, 1.0, 3.0, 3.0]))
    # box: x 4..7, y 1..4 -> a 4 x 4 patch with 4 of 16 pixels at 100: p95 = 100
    assert box == 100.0
    # picture: 200 pixels, sorted 195 zeros, 76.245 (the red one), then four 100s; the 99th
    # percentile sits at position 0.99 x 199 = 197.01, among the 100s
    assert whole == 100.0
    assert abs(np.sort(visibility.luma(picture).ravel())[195] - 0.299 * 255) < 1e-9
    # a box entirely outside the picture has no pixels
    assert visibility.bright_levels(picture, np.array([30.0, 30.0, 5.0, 5.0]))[1] == 0.0


def test_a_black_exposure_is_reported_and_the_default_settings_make_none(synthetic_root, tmp_path):
    assert SyntheticSettings().p_dark_image == 0.0
    assert visibility.hidden_hands(synthetic_root, "test", show_progress=False) == []
    # darken one picture the way v3's dark exposures did (a gain of a few percent)
    from shutil import copytree

    from PIL import Image

    from core.interhand.reader import InterHandSplit

    root = copytree(synthetic_root, tmp_path / "copy")
    path = InterHandSplit.from_root(root, "test").image_path(0)
    dark = (np.asarray(Image.open(path)).astype(np.float64) * 0.04).astype(np.uint8)
    Image.fromarray(dark).save(path, quality=95)
    found = visibility.hidden_hands(root, "test", show_progress=False)
    assert len(found) == 1 and found[0].startswith(f"{path}: luma p99 ")
