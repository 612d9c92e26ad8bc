"""Hands in a whole image: palm detection, then 21 landmarks, side and presence per hand."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.boxes import bbox_from_joints
from digit.detect import palm
from digit.detect.landmarks import (
    LANDMARK_INPUT,
    Rect,
    crop_rect,
    landmark_rect,
    palm_rect,
    rect_to_image,
    to_centre_pixels,
)
from digit.detect.models import LANDMARK_MODEL, PALM_MODEL, model_path
from digit.detect.runtime import TFLiteModel

MIN_PRESENCE = 0.5  # landmark model's hand-presence score (MediaPipe's default)
MIN_FIRST_PRESENCE = 0.2  # below this after the palm's rectangle, no second look
DUPLICATE_IOU = 0.5  # see `same_hand`
DUPLICATE_DIST = 0.1
MAX_PALMS = 8  # palms passed to the landmark model, best first
MIN_PALM = 0.1  # low: the landmark model's presence score is the real test
WINDOW_GRID = ((0.75, 2), (0.5, 3))  # (window side / long side, windows per axis)


@dataclass(frozen=True)
class DetectedHand:
    """One hand found in an image (pixels with centres at integers, as `core.camera`).

    landmarks (21, 2) MediaPipe order (wrist, thumb CMC..tip, index MCP..tip, ...);
    box (4,) [x, y, w, h]: the landmarks' tight box x1.2 (the annotated-bbox rule);
    score: palm detection score; presence: the landmark model's hand-presence score;
    right_prob: probability that this is a right hand (for an unmirrored photo).
    """

    landmarks: np.ndarray
    box: np.ndarray
    score: float
    presence: float
    right_prob: float

    @property
    def confidence(self) -> float:
        return self.score * self.presence

    @property
    def side(self) -> str:
        return "right" if self.right_prob >= 0.5 else "left"


def windows(width: int, height: int) -> np.ndarray:
    """Square windows (K, 3) [x0, y0, side] in image pixels where palms are searched.

    The whole image (centred, letterboxed), then 2 x 2 windows of 3/4 and 3 x 3 of 1/2 of its
    long side, overlapping and spread over it: small or partly hidden hands (interlaced fingers,
    a thumbs-up seen side-on) are often found only at a closer look.
    """
    long = max(width, height)
    out = [((width - long) / 2, (height - long) / 2, long)]
    for frac, n in WINDOW_GRID:
        side = frac * long
        for y0 in np.linspace(0, max(height - side, 0), n if height > side else 1):
            for x0 in np.linspace(0, max(width - side, 0), n if width > side else 1):
                out.append((x0, y0, side))
    return np.round(np.asarray(out, dtype=np.float64))


def window_input(image: Image.Image, window: np.ndarray, size: int) -> np.ndarray:
    """One window resized to (size, size, 3) float32 in 0..1 (black outside the image)."""
    x0, y0, side = (int(v) for v in window)
    crop = image.crop((x0, y0, x0 + side, y0 + side))
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR), np.float32) / 255.0


class HandDetector:
    """MediaPipe's palm detector and landmark model (full variants) on the CPU."""

    def __init__(self, threads: int = 1):
        self.palm_model = TFLiteModel(model_path(PALM_MODEL), threads)
        self.landmark_model = TFLiteModel(model_path(LANDMARK_MODEL), threads)
        self.anchors = palm.ssd_anchors()

    def palms(self, image: Image.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Palm boxes (N, 4) [x0, y0, x1, y1], keypoints (N, 7, 2) in continuous image pixels,
        and scores (N,), best first, over all `windows`."""
        boxes, kps, scores = [], [], []
        for window in windows(*image.size):
            out = self.palm_model(window_input(image, window, palm.INPUT_SIZE)[None])
            raw_boxes, raw_scores = _by_last_dim(out, 18), _by_last_dim(out, 1)
            b, k, s = palm.decode(raw_boxes[0], raw_scores[0, :, 0], self.anchors, MIN_PALM)
            side, corner = window[2], window[:2]
            boxes.append(b * side + np.tile(corner, 2))
            kps.append(k * side + corner)
            scores.append(s)
        return palm.weighted_nms(np.concatenate(boxes), np.concatenate(kps), np.concatenate(scores))

    def hand(self, image: Image.Image, rect: Rect, score: float) -> DetectedHand:
        """Run the landmark model on one rectangle."""
        out = self.landmark_model(crop_rect(image, rect)[None])
        lm = out["Identity"].reshape(21, 3)[:, :2] / LANDMARK_INPUT
        uv = rect_to_image(rect, lm)
        return DetectedHand(
            landmarks=to_centre_pixels(uv),
            box=bbox_from_joints(to_centre_pixels(uv), np.ones(21, bool)),
            score=float(score),
            presence=float(out["Identity_1"].reshape(())),
            right_prob=float(out["Identity_2"].reshape(())),
        )

    def __call__(self, image: Image.Image, max_hands: int = 2) -> tuple[list[DetectedHand], int]:
        """The `max_hands` most confident hands, best first, and how many were found in all."""
        image = image.convert("RGB")
        boxes, kps, scores = self.palms(image)
        hands = []
        top = slice(0, MAX_PALMS)
        for box, kp, score in zip(boxes[top], kps[top], scores[top], strict=True):
            first = self.hand(image, palm_rect(box, kp), score)
            if first.presence < MIN_FIRST_PRESENCE:
                continue
            # second pass on the rectangle the landmarks give (tighter, upright, as MediaPipe
            # tracks): a hand half-hidden by the other is often confirmed only there
            second = self.hand(image, landmark_rect(first.landmarks + 0.5), score)
            best = max(first, second, key=lambda h: h.presence)
            if best.presence >= MIN_PRESENCE:
                hands.append(best)
        hands = merge_duplicates(hands)
        return select_hands(hands, max_hands), len(hands)


def _by_last_dim(outputs: dict[str, np.ndarray], n: int) -> np.ndarray:
    (arr,) = [a for a in outputs.values() if a.shape[-1] == n]
    return arr


def _corners(box: np.ndarray) -> np.ndarray:
    return np.array([[*box[:2], *(box[:2] + box[2:])]])


def same_hand(a: DetectedHand, b: DetectedHand) -> bool:
    """Two detections of one hand: the same side with boxes overlapping by IoU > DUPLICATE_IOU,
    or landmarks within DUPLICATE_DIST of the box size on average. (Boxes alone are not
    enough: interlaced hands' boxes overlap by IoU 0.6 in InterHand2.6M.)"""
    if a.side == b.side and palm.box_iou(_corners(a.box), _corners(b.box))[0, 0] > DUPLICATE_IOU:
        return True
    size = max(a.box[2:].max(), b.box[2:].max())
    return float(np.linalg.norm(a.landmarks - b.landmarks, axis=-1).mean()) < DUPLICATE_DIST * size


def merge_duplicates(hands: list[DetectedHand]) -> list[DetectedHand]:
    """One hand per group of detections of the same hand, sorted by confidence (palm score x
    presence).

    Most confident first, each detection joins the group of the first kept hand it is
    `same_hand` as, else starts a group. A group of several becomes one hand: landmarks and
    right-hand probability are the confidence-weighted means of its members' (two looks at one
    hand are better than one), its box the annotated-bbox rule of those landmarks, its scores
    the most confident member's. So the crop is made from one box per hand, never from the
    union of a hand's duplicate boxes.
    """
    groups: list[list[DetectedHand]] = []
    for h in sorted(hands, key=lambda h: -h.confidence):
        group = next((g for g in groups if same_hand(h, g[0])), None)
        if group is None:
            groups.append([h])
        else:
            group.append(h)
    return [_merged(g) for g in groups]


def _merged(group: list[DetectedHand]) -> DetectedHand:
    if len(group) == 1:
        return group[0]
    w = np.array([h.confidence for h in group])
    w = w / w.sum() if w.sum() > 0 else np.full(len(group), 1.0 / len(group))
    landmarks = np.einsum("k,kjc->jc", w, np.stack([h.landmarks for h in group]))
    best = group[0]
    return DetectedHand(
        landmarks=landmarks,
        box=bbox_from_joints(landmarks, np.ones(len(landmarks), bool)),
        score=best.score,
        presence=best.presence,
        right_prob=float(w @ np.array([h.right_prob for h in group])),
    )


def select_hands(hands: list[DetectedHand], max_hands: int = 2) -> list[DetectedHand]:
    """At most `max_hands` of confidence-sorted hands: the most confident one, then for two
    hands the most confident of the other side if any (DIGIT predicts one right and one left
    hand), else the next most confident."""
    if max_hands < 2 or len(hands) <= 1:
        return hands[:max_hands]
    first, rest = hands[0], hands[1:]
    other = [h for h in rest if h.side != first.side]
    second = other[0] if other else rest[0]
    return [first, second]
