"""Flip test (`digit.model.mirror`, `digit-eval --flip-test`): the mirror's answer mapped back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from digit.model import DigitNet, NetworkConfig
from digit.model.hand_frame import swap_class_map
from digit.model.mirror import flip_averaged, unmirror_joints_uvd, unmirror_segm_logits


def test_a_joint_goes_to_the_mirrored_column_of_the_other_hand():
    uvd = torch.zeros(1, 42, 3)
    uvd[0, 3] = torch.tensor([10.0, 20.0, -7.0])  # right thumb1 seen in the mirror
    uvd[0, 41] = torch.tensor([95.0, 1.0, 0.0])  # left wrist at the mirror's last column
    back = unmirror_joints_uvd(uvd, 96)
    # crop pixel centres at integers: column j of the mirror is column 95 - j of the crop
    assert back[0, 24].tolist() == [85.0, 20.0, -7.0]  # the crop's left thumb1
    assert back[0, 20].tolist() == [0.0, 1.0, 0.0]  # the crop's right wrist
    assert torch.equal(unmirror_joints_uvd(back, 96), uvd)


def test_part_classes_exchange_sides_part_for_part():
    order = swap_class_map(33).tolist()
    assert order[0] == 0 and order[1] == 17 and order[16] == 32 and order[17] == 1
    assert [order[k] for k in order] == list(range(33))
    assert swap_class_map(3).tolist() == [0, 2, 1]
    logits = torch.arange(33.0).view(1, 33, 1, 1).expand(1, 33, 2, 3).clone()
    logits[..., 0] += 100.0  # the first column marked
    back = unmirror_segm_logits(logits)
    assert back[0, 1, 0, 2] == 117.0 and back[0, 17, 0, 1] == 1.0  # sides and columns swapped


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return DigitNet(NetworkConfig.preset("tiny"), init_backbone=False).eval()


def test_the_averaged_answer_on_a_mirror_is_the_mirrored_answer(net):
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        a, m = flip_averaged(net, x), flip_averaged(net, x.flip(-1))
    assert torch.allclose(m.joints_uvd, unmirror_joints_uvd(a.joints_uvd, 128), atol=1e-4)
    assert torch.allclose(m.rel_root_depth_mm, -a.rel_root_depth_mm, atol=1e-4)
    assert torch.allclose(m.handedness_logits, a.handedness_logits.flip(-1), atol=1e-5)
    assert torch.allclose(m.segm_logits, unmirror_segm_logits(a.segm_logits), atol=1e-5)


def test_digit_eval_flip_test_scores_both_passes(
    synthetic_root, tmp_path, monkeypatch, capsys, net
):
    import sys

    from cli import eval_app
    from digit.checkpoint import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "tiny.pt", net)
    scores: dict[bool, np.ndarray] = {}
    for flip in (False, True):
        out = tmp_path / f"flip{flip}"
        args = ["--checkpoint", ckpt, "--split", "train", "--data-root", synthetic_root]
        args += ["--out", out, "--limit", 4, "--batch-size", 4] + (["--flip-test"] if flip else [])
        monkeypatch.setattr(sys, "argv", ["digit-eval", *map(str, args)])
        with pytest.raises(SystemExit) as exc:
            eval_app.main()
        stdout = capsys.readouterr().out
        assert exc.value.code == 0
        assert ("flip test:" in stdout) is flip
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["flip_test"] is flip
        scores[flip] = np.load(out / "predictions.npz")["joints_uvd_img"]
    assert not np.allclose(scores[True], scores[False])  # the mirror's answer took part
