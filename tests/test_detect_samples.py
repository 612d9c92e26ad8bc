"""Hand detection on the four real InterHand2.6M samples: the union of the detected hands'
boxes overlaps the annotated bbox by IoU >= 0.5, and a single hand's side is right.

Needs the `detect` extra (mediapipe 0.10.21's model files and ai-edge-litert) and the shared
samples; skipped, with the reason, without either.
"""

import importlib.util
import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digit.detect.crop import crop_from_hand_boxes
from digit.detect.palm import box_iou

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "interhand26m_samples"


def _missing() -> str | None:
    if not SAMPLES.is_dir():
        return "shared InterHand2.6M samples not available"
    if importlib.util.find_spec("ai_edge_litert") is None:
        return "detect extra not installed (ai-edge-litert)"
    try:
        metadata.distribution("mediapipe")
    except metadata.PackageNotFoundError:
        return "detect extra not installed (mediapipe 0.10.21 model files)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def corners(box) -> np.ndarray:
    return np.array([[box[0], box[1], box[0] + box[2], box[1] + box[3]]])


@pytest.fixture(scope="module")
def detector():
    from digit.detect.detector import HandDetector

    return HandDetector()


def annotations() -> list:
    path = SAMPLES / "test_interhand2.6m_data.json"
    if not path.is_file():  # collected on a clone without ../shared: one case, skipped above
        return [pytest.param("-", "-", [0.0] * 4, id="samples-absent")]
    data = json.loads(path.read_text())
    names = {im["id"]: im["file_name"] for im in data["images"]}
    return [(names[a["image_id"]], a["hand_type"], a["bbox"]) for a in data["annotations"]]


@pytest.mark.parametrize("name,hand_type,bbox", annotations())
def test_detected_union_box_overlaps_the_annotated_bbox(detector, name, hand_type, bbox):
    hands, found = detector(Image.open(SAMPLES / name))
    assert 1 <= len(hands) <= 2 and found >= len(hands)
    union, crop = crop_from_hand_boxes(np.stack([h.box for h in hands]))
    assert box_iou(corners(union), corners(bbox))[0, 0] >= 0.5
    assert crop[2] == crop[3] >= max(union[2:])
    if hand_type != "interacting":
        assert hands[0].side == hand_type
