"""The demo's pieces around detection: folders expanded to sorted images, and per-image boxes
and records from a (stand-in) detector, with images without hands skipped in one line."""

import numpy as np
import pytest
from PIL import Image

from core.errors import DigitError
from digit.detect.demo_boxes import detect_hand_boxes
from digit.detect.detector import DetectedHand
from digit.image_inputs import expand_image_paths


def _image(path, size=(40, 30)):
    Image.new("RGB", size, (90, 60, 30)).save(path)
    return path


def test_folders_give_their_images_sorted(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    b, a = _image(folder / "b.png"), _image(folder / "a.JPG")
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub").mkdir()
    single = _image(tmp_path / "z.jpg")
    assert expand_image_paths([single, folder]) == [single, a, b]


def test_missing_path_and_empty_folder_are_one_line(tmp_path):
    with pytest.raises(DigitError, match=r"ghost\.jpg: image not found"):
        expand_image_paths([tmp_path / "ghost.jpg"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DigitError, match="empty: no image files"):
        expand_image_paths([tmp_path / "empty"])


def _hand(box, side):
    lm = np.zeros((21, 2))
    return DetectedHand(lm, np.asarray(box, float), 0.9, 0.8, float(side == "right"))


class _FakeDetector:
    """Returns the given (hands, found) results in turn, one per image."""

    def __init__(self, *results):
        self.results = list(results)

    def __call__(self, image, max_hands=2):
        assert image.size == (40, 30)
        return self.results.pop(0)


def test_boxes_and_records_per_image(tmp_path):
    two, none = _image(tmp_path / "two.png"), _image(tmp_path / "none.png")
    hands = [_hand([10, 20, 40, 40], "right"), _hand([40, 30, 60, 20], "left")]
    lines = []
    kept, boxes, records = detect_hand_boxes(
        [two, none], lines.append, _FakeDetector((hands, 3), ([], 0))
    )
    assert kept == [two]
    np.testing.assert_allclose(boxes[0], [10, 20, 90, 40])  # union of the two x1.2 boxes
    assert records[0]["hands_found"] == 3 and records[0]["hands_used"] == 2
    assert [h["side"] for h in records[0]["detected_hands"]] == ["right", "left"]
    assert lines == [f"{none}: no hands found, skipped"]
    with pytest.raises(DigitError, match="no hands found in any of the 1 images"):
        detect_hand_boxes([none], lines.append, _FakeDetector(([], 0)))
