"""MediaPipe palm detection's output decoding: SSD anchors, box decode, weighted NMS.

The constants are those of MediaPipe's palm_detection_full graph (192 x 192 input, 2016 anchors).
Coordinates are normalised to the (letterboxed, square) model input: 0..1 left-to-right and
top-to-bottom.
"""

from __future__ import annotations

import numpy as np

INPUT_SIZE = 192
STRIDES = (8, 16, 16, 16)
ANCHORS_PER_LAYER = 2  # aspect ratio 1 plus the interpolated-scale anchor
NUM_KEYPOINTS = 7  # 0 wrist centre, 2 middle-finger MCP (used for the rotation)
SCORE_CLIP = 100.0
MIN_SCORE = 0.5
NMS_IOU = 0.3


def ssd_anchors(input_size: int = INPUT_SIZE, strides: tuple[int, ...] = STRIDES) -> np.ndarray:
    """Anchor centres (A, 2) [x, y], normalised; A = 2016 for the defaults.

    Consecutive layers with the same stride share one grid (their anchors interleave per cell),
    as in MediaPipe's SsdAnchorsCalculator; anchor sizes are fixed to 1.
    """
    centres = []
    layer = 0
    while layer < len(strides):
        stride, per_cell = strides[layer], 0
        while layer < len(strides) and strides[layer] == stride:
            per_cell += ANCHORS_PER_LAYER
            layer += 1
        cells = int(np.ceil(input_size / stride))
        yy, xx = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xx + 0.5) / cells, (yy + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float64)


def decode(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, min_score: float = MIN_SCORE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw model outputs to scored palm boxes above `min_score`.

    raw_boxes (A, 18) [dx, dy, w, h, then 7 keypoints' dx, dy] in input pixels; raw_scores (A,)
    logits; anchors (A, 2). Returns boxes (N, 4) [x0, y0, x1, y1], keypoints (N, 7, 2) and
    scores (N,), all normalised.
    """
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
    keep = scores >= min_score
    raw, anc = raw_boxes[keep].astype(np.float64) / INPUT_SIZE, anchors[keep]
    centre, size = raw[:, :2] + anc, raw[:, 2:4]
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    keypoints = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + anc[:, None, :]
    return boxes, keypoints, scores[keep]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of corner boxes a (N, 4) and b (M, 4) [x0, y0, x1, y1]; returns (N, M)."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=-1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted non-maximum suppression.

    Highest score first: every remaining box overlapping it by IoU > `iou` joins its cluster, and
    the cluster's boxes and keypoints are averaged with the scores as weights; the cluster keeps
    its best score. Shapes as `decode`'s outputs; returns the merged (K, ...) arrays, best first.
    """
    order = np.argsort(-scores, kind="stable")
    out_b, out_k, out_s = [], [], []
    while order.size:
        overlaps = box_iou(boxes[order[:1]], boxes[order])[0]
        cluster = order[overlaps > iou]
        cluster = cluster if cluster.size else order[:1]
        w = scores[cluster][:, None]
        out_b.append((boxes[cluster] * w).sum(0) / w.sum())
        out_k.append((keypoints[cluster] * w[:, :, None]).sum(0) / w.sum())
        out_s.append(scores[order[0]])
        order = order[~np.isin(order, cluster)]
    if not out_s:
        return np.zeros((0, 4)), np.zeros((0, NUM_KEYPOINTS, 2)), np.zeros(0)
    return np.stack(out_b), np.stack(out_k), np.asarray(out_s)
