"""benchmarks.chirality_probe: its labels and its scores, on hand-made inputs."""

import torch

from benchmarks.chirality_probe import (
    BOTH,
    LEFT_ONLY,
    RIGHT_ONLY,
    flip_pictures,
    hand_class,
    main,
    scores,
)


def test_hand_class_from_presence_bits():
    bits = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert hand_class(bits).tolist() == [RIGHT_ONLY, LEFT_ONLY, BOTH]


class FixedLogits(torch.nn.Module):
    """Returns the batch's 'images' as logits, so the scores can be worked out by hand."""

    def forward(self, x):
        return x


def test_scores_by_hand():
    logits = torch.tensor(
        [
            [2.0, 0.0, 1.0],  # truth right: argmax right; right vs left correct
            [1.0, 0.5, 0.0],  # truth left: argmax right; right vs left wrong
            [0.0, 1.0, 3.0],  # truth left: argmax both; right vs left correct (1.0 > 0.0)
            [0.0, 0.0, 1.0],  # truth both: argmax both
        ]
    )
    label = torch.tensor([RIGHT_ONLY, LEFT_ONLY, LEFT_ONLY, BOTH])
    got = scores(FixedLogits(), [(logits[:2], label[:2]), (logits[2:], label[2:])])
    assert got["acc3"] == 0.5  # images 0 and 3
    assert got["two_or_one"] == 0.75  # image 2 called "both" while single
    assert got["right_vs_left"] == round(2 / 3, 3)  # images 0 and 2 of the three single ones
    assert got["single_images"] == 3


def test_pair_scores_tell_an_outline_reader_from_a_cue_reader():
    import torch
    from torch import nn

    from benchmarks.chirality_probe import pair_scores

    right = torch.zeros(4, 3, 8, 8)
    left = torch.ones(4, 3, 8, 8)  # stands in for "the other side of the hand faces us"

    class Reads(nn.Module):
        def __init__(self, cue: bool):
            super().__init__()
            self.cue = cue

        def forward(self, x):
            says_left = x.mean(dim=(1, 2, 3)) if self.cue else torch.ones(len(x))
            return torch.stack([1 - says_left, says_left, torch.zeros(len(x))], dim=1)

    outline = pair_scores(Reads(False), right, left, torch.contiguous_format)
    assert outline["pair_same_answer"] == 1.0 and outline["pair_both_correct"] == 0.0
    assert outline["pair_left_correct"] == 1.0 and outline["pair_right_correct"] == 0.0
    cue = pair_scores(Reads(True), right, left, torch.contiguous_format)
    assert cue["pair_both_correct"] == 1.0 and cue["pair_same_answer"] == 0.0
    assert cue["pairs"] == 4


def test_a_flipped_picture_is_mirrored_and_changes_hands():
    x = torch.arange(2 * 3 * 2 * 4, dtype=torch.float32).reshape(2, 3, 2, 4)
    y = torch.tensor([RIGHT_ONLY, LEFT_ONLY])
    fx, fy = flip_pictures(x, y, torch.tensor([True, False]))
    assert fy.tolist() == [LEFT_ONLY, LEFT_ONLY]
    assert fx[0, 1, 0].tolist() == [11.0, 10.0, 9.0, 8.0]  # channel 1 row 0 (8..11), reversed
    assert torch.equal(fx[1], x[1]) and y.tolist() == [RIGHT_ONLY, LEFT_ONLY]  # inputs untouched
    back, by = flip_pictures(fx, fy, torch.tensor([True, False]))
    assert torch.equal(back, x) and torch.equal(by, y)


def test_training_on_mirror_pairs_prints_scores_of_seen_and_held_out_pairs(capsys):
    import json

    args = ["--train-pairs", "3", "--pairs", "2", "--steps", "2", "--every", "1", "--batch", "4"]
    assert main(args) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    for r in rows:
        assert r["pairs"] == 2 and r["train_pairs"] == 3
        assert 0.0 <= r["pair_both_correct"] <= min(r["pair_right_correct"], r["pair_left_correct"])
    assert "loss" in rows[-1]


def test_cpu_augmentation_is_the_cpu_presets():
    from benchmarks.chirality_probe import AUGMENTS
    from digit.data.augment import AugmentSettings
    from digit.train.config import TrainConfig

    cfg = TrainConfig.preset_config("cpu")
    # what digit.train.loop.default_datasets built for the preset before it dropped the box
    # jitter (augment_shift / augment_scale 0): the probe results recorded under "cpu"
    assert AUGMENTS["cpu"] == AugmentSettings(
        enabled=cfg.augment, rot_factor_deg=cfg.augment_rotation
    )
    assert AUGMENTS["cpu"] != AUGMENTS["release"]


def _blob_picture(size: int, x: float, y: float, sigma: float = 1.5) -> torch.Tensor:
    """(1, 3, size, size) with a Gaussian blob centred at pixel (x, y) (pixel centres at
    integers)."""
    v, u = torch.meshgrid(torch.arange(float(size)), torch.arange(float(size)), indexing="ij")
    blob = torch.exp(-((u - x) ** 2 + (v - y) ** 2) / (2 * sigma**2))
    return blob.expand(1, 3, size, size).clone()


def _centroid(picture: torch.Tensor) -> tuple[float, float]:
    p = picture[0, 0]
    v, u = torch.meshgrid(
        torch.arange(p.shape[0] * 1.0), torch.arange(p.shape[1] * 1.0), indexing="ij"
    )
    return float((p * u).sum() / p.sum()), float((p * v).sum() / p.sum())


def test_upright_turns_the_wrist_to_middle_base_direction_up():
    import math

    from benchmarks.chirality_probe import upright
    from core.joints import HAND_JOINTS, RIGHT_ROOT
    from digit.model.hand_frame import MIDDLE_BASE

    size, r = 41, 10.0
    c = (size - 1) / 2  # the crop's centre, pixel centres at integers
    for side in (0, 1):
        for angle in (0.0, 30.0, 90.0, 135.0, 200.0, -60.0):
            d = (math.cos(math.radians(angle)), math.sin(math.radians(angle)))
            picture = _blob_picture(size, c + r * d[0], c + r * d[1])
            joints = torch.zeros(1, 42, 3)
            valid = torch.zeros(1, 42, dtype=torch.bool)
            off = side * HAND_JOINTS
            # wrist anywhere, the base 3 units along d: only the direction counts
            joints[0, off + RIGHT_ROOT, :2] = torch.tensor([5.0, 7.0])
            joints[0, off + MIDDLE_BASE, :2] = torch.tensor([5.0 + 3 * d[0], 7.0 + 3 * d[1]])
            valid[0, [off + RIGHT_ROOT, off + MIDDLE_BASE]] = True
            hand_type = torch.tensor([[1.0 - side, float(side)]])
            u, v = _centroid(upright(picture, joints, valid, hand_type))
            assert abs(u - c) < 0.3 and abs(v - (c - r)) < 0.3, (side, angle, u, v)
    # a crop without both joints stays as it is
    picture = _blob_picture(size, c + r, c)
    hand_type = torch.tensor([[1.0, 0.0]])
    same = upright(picture, torch.zeros(1, 42, 3), torch.zeros(1, 42, dtype=torch.bool), hand_type)
    assert torch.allclose(same, picture, atol=1e-5)


def test_box_and_colour_split_the_cpu_augmentation():
    from benchmarks.chirality_probe import AUGMENTS

    cpu, box, colour = AUGMENTS["cpu"], AUGMENTS["box"], AUGMENTS["colour"]
    assert (box.shift, box.scale_factor) == (cpu.shift, cpu.scale_factor) != (0.0, 0.0)
    assert box.color_gain == (1.0, 1.0) and colour.color_gain == cpu.color_gain != (1.0, 1.0)
    assert (colour.shift, colour.scale_factor) == (0.0, 0.0)
    for a in (box, colour):  # flips as the cpu preset's; no rotation
        assert a.flip_prob == cpu.flip_prob and a.enabled and a.rot_prob * a.rot_factor_deg == 0


def test_upright_hand_frame_centres_and_sizes_the_hand():
    import math

    from benchmarks.chirality_probe import upright
    from core.joints import HAND_JOINTS, RIGHT_ROOT
    from digit.model.hand_frame import MIDDLE_BASE

    size = 64
    for side, wrist, angle, length in (
        (0, (20.0, 40.0), 20.0, 16.0),
        (1, (38.0, 22.0), 250.0, 12.0),
    ):
        d = (math.cos(math.radians(angle)), math.sin(math.radians(angle)))
        base = (wrist[0] + length * d[0], wrist[1] + length * d[1])  # crop pixels
        joints = torch.zeros(1, 42, 3)
        valid = torch.zeros(1, 42, dtype=torch.bool)
        off = side * HAND_JOINTS
        joints[0, off + RIGHT_ROOT, :2] = torch.tensor(wrist) / 4  # heatmap units
        joints[0, off + MIDDLE_BASE, :2] = torch.tensor(base) / 4
        valid[0, [off + RIGHT_ROOT, off + MIDDLE_BASE]] = True
        hand_type = torch.tensor([[1.0 - side, float(side)]])
        # the two valid joints' centre is their midpoint, each half the length from it, and the
        # half-side 1.2 x that: the point half-way from the centre to the base lands straight
        # above the output's centre, 0.5 / 1.2 of the way to the top (blob far from the edges)
        point = [w + 0.75 * (b - w) for w, b in zip(wrist, base, strict=True)]
        want_u = (size - 1) / 2
        want_v = (1 - 0.5 / 1.2) * size / 2 - 0.5
        picture = _blob_picture(size, *point, sigma=0.8)
        u, v = _centroid(upright(picture, joints, valid, hand_type, "hand"))
        assert abs(u - want_u) < 0.5 and abs(v - want_v) < 0.5, (side, u, v, want_u, want_v)


def test_the_frame_from_a_network_uses_its_predicted_joints(tmp_path):
    """`--frame-from`: the crop is resampled from what the network predicts, not from the
    annotation; a network that predicts the annotation gives the annotated frame."""
    import math
    from types import SimpleNamespace

    import pytest

    from benchmarks.chirality_probe import batch_pictures
    from core.joints import RIGHT_ROOT
    from digit.model.hand_frame import MIDDLE_BASE
    from digit.targets import PoseTargets

    size, c = 41, 20.0
    picture = _blob_picture(size, c + 10.0, c)  # the blob right of the centre
    annotated = torch.zeros(1, 42, 3)
    annotated[0, RIGHT_ROOT, :2] = torch.tensor([2.0, 5.0])
    annotated[0, MIDDLE_BASE, :2] = torch.tensor([5.0, 5.0])  # points right: the blob goes up
    predicted = annotated.clone()
    predicted[0, MIDDLE_BASE, :2] = torch.tensor([2.0, 2.0])  # points up: the blob stays

    class Net(torch.nn.Module):
        def __init__(self, joints):
            super().__init__()
            self.joints = joints

        def forward(self, image):
            return SimpleNamespace(joints_hm=self.joints.expand(len(image), -1, -1))

    valid = torch.zeros(1, 42, dtype=torch.bool)
    valid[0, [RIGHT_ROOT, MIDDLE_BASE]] = True
    given = {"joints_hm": annotated, "joint_valid": valid, "hand_type": torch.tensor([[1.0, 0.0]])}
    targets = PoseTargets(**{f: given.get(f) for f in PoseTargets.__dataclass_fields__})
    b = SimpleNamespace(image=picture, targets=targets)
    by_annotation = _centroid(batch_pictures(b, "rotate"))
    assert math.dist(by_annotation, (c, c - 10.0)) < 0.3
    assert torch.equal(batch_pictures(b, "rotate", Net(annotated)), batch_pictures(b, "rotate"))
    assert math.dist(_centroid(batch_pictures(b, "rotate", Net(predicted))), (c + 10.0, c)) < 0.3
    with pytest.raises(SystemExit):
        main(["--frame-from", str(tmp_path / "x.pt")])  # needs --canonical
