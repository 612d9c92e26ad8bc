"""What `digit-render make-synthetic` generates: the settings (one place for their defaults, read
by the command line too) and the sequence mixes. numpy only, so reading them is cheap."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from core.errors import DigitError
from core.splits import SPLITS


@dataclass(frozen=True)
class SequenceKind:
    """One sequence of every capture: its hand_type, its InterHand2.6M-style name, and for
    interacting ones where the left hand is: "near" (wrists 0-120 mm apart, in any direction),
    "close" (0-50 mm: hands in contact and overlapping), "facing" (palm to palm or back to back,
    see `facing_partner`).

    mirror_of: the index (in the same mix) of the sequence this one mirrors, or -1. A mirror
    sequence shows, in each camera, the other sequence's hands reflected through the plane that
    faces that camera at the right wrist (the first hand's wrist for a single hand): every hand
    becomes the other hand with the same outline in that picture and its other side facing the
    camera (palm for back). So the outline says nothing about which hand it is, and only the
    side-of-hand cue does (BENCHMARKS.md, "The cue alone"). Its hand_type is the source's with
    right and left swapped; each of its time frames is seen by one camera only, since the plane
    depends on the camera."""

    hand_type: str
    name: str
    partner: str = "none"
    mirror_of: int = -1


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
    # Mirror twins: every left hand is a right hand's depth mirror, and every two-hand picture
    # has its twin with the hands swapped; as many pictures as "default".
    "mirrored": (
        SequenceKind("right", "ROM02_RT_Finger_Occlusions"),
        SequenceKind("left", "ROM02_LT_Finger_Occlusions_Mirror", mirror_of=0),
        SequenceKind("interacting", "ROM04_dh_touch", "near"),
        SequenceKind("interacting", "ROM04_dh_touch_Mirror", mirror_of=2),
    ),
}
MIRRORED_HAND_TYPE = {"right": "left", "left": "right", "interacting": "interacting"}
FRAME_STRIDE = 6  # InterHand2.6M's 5 fps subset of 30 fps video
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
        check_mix(self.mix)

    def capture_sequences(self, capture: int) -> tuple[SequenceKind, ...]:
        """The sequences of one capture: `sequences`, except that in a mix with mirror
        sequences the odd captures swap the sides of its single-hand pairs (the plain hand is a
        left one, its mirror a right one). The pose prior is not symmetric in depth (in the v4
        default 63 % of hands point their fingers towards the camera), and a mirror reverses
        that; alternating which side is drawn from the prior keeps the direction of the fingers
        from telling the sides apart."""
        kinds = self.sequences
        if capture % 2 == 0 or not self.paired_looks:
            return kinds
        mirrored = {k.mirror_of for k in kinds if k.mirror_of >= 0}
        out = []
        for i, k in enumerate(kinds):
            single = k.hand_type in ("right", "left")
            if single and (i in mirrored or k.mirror_of >= 0):
                k = replace(k, hand_type=MIRRORED_HAND_TYPE[k.hand_type], name=_swap_side(k.name))
            out.append(k)
        return tuple(out)

    @property
    def paired_looks(self) -> bool:
        """Whether each picture draws its light, background and sensor noise from a stream of
        its own, shared with its mirror picture (mixes with mirror sequences): a mirror pair
        then differs only by the hand, as in `render.synthetic_data.mirror_pairs`."""
        return any(kind.mirror_of >= 0 for kind in self.sequences)

    def frame_index(self, sequence: int, frame: int, camera: int = 0) -> int:
        """A time frame's frame_idx (unique within a capture, InterHand2.6M's stride of 6): the
        sequences in order, then the mirror sequences' frames, one per camera each."""
        kinds = self.sequences
        if kinds[sequence].mirror_of < 0:
            slot = sequence * self.frames + frame
        else:
            slot = len(kinds) * self.frames + (sequence * self.frames + frame) * self.cameras
            slot += camera
        return slot * FRAME_STRIDE

    def split_captures(self, split: str) -> range:
        """The capture ids of a split: train first, then val, then test (disjoint)."""
        counts = {"train": self.captures, "val": self.eval_captures, "test": self.eval_captures}
        start = sum(counts[s] for s in SPLITS[: SPLITS.index(split)])
        return range(start, start + counts[split])

    def image_slots(self, split: str) -> int:
        """Views rendered for a split (its image count before views with nothing in them)."""
        return len(self.split_captures(split)) * len(self.sequences) * self.frames * self.cameras


def _swap_side(name: str) -> str:
    """A sequence name with its side marker swapped (_RT_ <-> _LT_)."""
    return name.replace("_RT_", "_XX_").replace("_LT_", "_RT_").replace("_XX_", "_LT_")


def check_mix(mix: str) -> None:
    """ValueError unless every mirror sequence of `mix` names an earlier plain sequence and
    swaps its hands (a table error, so not a user's)."""
    kinds = SEQUENCE_MIXES[mix]
    for i, kind in enumerate(kinds):
        if kind.mirror_of < 0:
            continue
        if not 0 <= kind.mirror_of < i or kinds[kind.mirror_of].mirror_of >= 0:
            raise ValueError(f"mix {mix!r}: {kind.name} mirrors no earlier plain sequence")
        if MIRRORED_HAND_TYPE[kinds[kind.mirror_of].hand_type] != kind.hand_type:
            raise ValueError(f"mix {mix!r}: {kind.name} must be the other hand of its source")
