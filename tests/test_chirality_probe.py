"""benchmarks.chirality_probe: its labels and its scores, on hand-made inputs."""

import torch

from benchmarks.chirality_probe import BOTH, LEFT_ONLY, RIGHT_ONLY, hand_class, scores


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
