"""What `digit-render make-synthetic` generates: the settings (one place for their defaults, read
by the command line too) and the sequence mixes. numpy only, so reading them is cheap."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import DigitError
from core.splits import SPLITS


@dataclass(frozen=True)
class SequenceKind:
    """One sequence of every capture: its hand_type, its InterHand2.6M-style name, and for
    interacting ones where the left hand is: "near" (wrists 0-120 mm apart, in any direction),
    "close" (0-50 mm: hands in contact and overlapping), "facing" (palm to palm or back to back,
    see `facing_partner`)."""

    hand_type: str
    name: str
    partner: str = "none"


# Sequence mixes (`--mix`): "default" is the general-purpose dataset; "interacting" is made for the
# segmentation ablation (most frames interacting, hands in contact and overlapping, so the
# right/left IoU spreads wide; single-hand sequences kept for the SH numbers).
SEQUENCE_MIXES: dict[str, tuple[SequenceKind, ...]] = {
    "default": (
        SequenceKind("right", "ROM02_RT_Finger_Occlusions"),
        SequenceKind("left", "ROM03_LT_No_Occlusion"),
        SequenceKind("interacting", "ROM04_dh_touch", "near"),
        SequenceKind("interacting", "0051_dh_clasp", "facing"),
    ),
    "interacting": (
        SequenceKind("right", "ROM02_RT_Finger_Occlusions"),
        SequenceKind("left", "ROM03_LT_No_Occlusion"),
        SequenceKind("interacting", "ROM04_dh_touch", "near"),
        SequenceKind("interacting", "0051_dh_clasp", "facing"),
        SequenceKind("interacting", "ROM05_dh_overlap", "close"),
        SequenceKind("interacting", "ROM06_dh_cross_over", "close"),
        SequenceKind("interacting", "0052_dh_interlace", "facing"),
    ),
}
PARTNER_MAX_MM = {"near": 120.0, "close": 50.0}  # wrist-to-wrist offset drawn in [0, max]
MAX_CAMERAS = 100  # camera names keep two digits for the camera within a capture
# One sigma of each subject's betas: overall size varies most (about 5 % per sigma, see
# render/synthetic_mano/mesh.py SHAPE_DIRECTIONS), the proportions a little less.
BETA_SIGMA = np.array([1.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])


@dataclass(frozen=True)
class SyntheticSettings:
    """What to generate: `captures` in the train split and `eval_captures` in each of val and
    test (every capture its own subject), `cameras` per capture, `frames` per sequence (the
    sequences of `mix`, see `SEQUENCE_MIXES`: by default right, left and two interacting). A
    split holds up to captures x sequences x frames x cameras images (`image_slots`); the few
    views with fewer than two annotated joints inside the image (no usable box) are left out.

    The defaults are generator v4's default dataset: 60 training subjects seen in 4 frames per
    sequence (rather than v3's 30 in 8: the same number of pictures, twice the people and hand
    tracks, so that what tells a right hand from a left one generalises), 10 subjects in each
    of val and test, and no dark exposures (`p_dark_image`), so every hand can be seen."""

    captures: int = 60
    cameras: int = 5
    frames: int = 4
    seed: int = 0
    images: bool = True
    p_missing_fit: float = 0.03
    p_missing_hand_fit: float = 0.03
    p_joint_unannotated: float = 0.02
    p_dark_image: float = 0.0
    eval_captures: int = 10
    mix: str = "default"

    @property
    def sequences(self) -> tuple[SequenceKind, ...]:
        """The sequences of every capture (`SEQUENCE_MIXES[mix]`)."""
        return SEQUENCE_MIXES[self.mix]

    def check(self) -> None:
        """DigitError (one line, naming the command-line option) for unusable values."""
        for name in ("captures", "eval_captures", "cameras", "frames"):
            value = getattr(self, name)
            if value < 1:
                raise DigitError(f"--{name.replace('_', '-')}: must be at least 1, got {value}")
        if self.cameras > MAX_CAMERAS:
            raise DigitError(f"--cameras: at most {MAX_CAMERAS} per capture, got {self.cameras}")
        if self.seed < 0:
            raise DigitError(f"--seed: must be at least 0, got {self.seed}")
        if self.mix not in SEQUENCE_MIXES:
            choices = ", ".join(SEQUENCE_MIXES)
            raise DigitError(f"--mix: unknown {self.mix!r} (choose from {choices})")

    def split_captures(self, split: str) -> range:
        """The capture ids of a split: train first, then val, then test (disjoint)."""
        counts = {"train": self.captures, "val": self.eval_captures, "test": self.eval_captures}
        start = sum(counts[s] for s in SPLITS[: SPLITS.index(split)])
        return range(start, start + counts[split])

    def image_slots(self, split: str) -> int:
        """Views rendered for a split (its image count before views with nothing in them)."""
        return len(self.split_captures(split)) * len(self.sequences) * self.frames * self.cameras
