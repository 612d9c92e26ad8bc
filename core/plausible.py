"""Values that are legal but implausible: a plausible range, and the one-line warning for a
value outside it (the command-line tools print it as `prog: warning: ...`).

A value outside its range is used as given (the user may know better), but said: a focal
length of a micro-pixel or a hand 187 m from the camera is more often a slip than a fact.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


class ImplausibleValue(UserWarning):
    """A legal value outside its plausible range; the message names it and the range."""


@dataclass(frozen=True)
class PlausibleRange:
    """low .. high in `unit`; `what` says for what the range holds."""

    low: float
    high: float
    unit: str
    what: str

    def outside(self, values) -> np.ndarray:
        """(...) bool: values outside [low, high] (NaN counts as outside)."""
        v = np.asarray(values, dtype=np.float64)
        return ~((v >= self.low) & (v <= self.high))

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.low:g}-{self.high:g}{unit} for {self.what}"


# Absolute depth of a hand's root (wrist) in front of a camera: InterHand2.6M's cameras stand
# about 0.8-1.3 m from the hands, a phone held at arm's length 0.3-0.6 m; nearer than 10 cm a
# hand cannot be in view, and beyond 5 m it is a few pixels wide.
ROOT_DEPTH_MM = PlausibleRange(100.0, 5000.0, "mm", "a hand in front of a camera")
# A photograph's focal length in units of its long side: an ultra-wide lens without fisheye
# (13 mm full-frame equivalent) is about 0.36, a long telephoto (600 mm) about 17.
FOCAL_PER_LONG_SIDE = PlausibleRange(0.25, 20.0, "x the image's long side", "a photograph")
# Adam's learning rate for this network: the release trains at 1e-4, the cpu recipe at 1e-3;
# below 1e-6 nothing moves in a run's steps, above 1e-2 the loss diverges.
LEARNING_RATE = PlausibleRange(1e-6, 1e-2, "", "Adam on DIGIT")


def warn_implausible(message: str) -> None:
    """Warn (`ImplausibleValue`) with a one-line message naming the value and its range."""
    warnings.warn(" ".join(message.split()), ImplausibleValue, stacklevel=3)
