"""`digit-demo --meshes` and `digit-eval --meshes` end to end with a tiny network on the small
synthetic split: the files are written and point to each other, the JSON rebuilds the OBJ, and
the MPVPE in metrics.json equals the value computed here by hand for known meshes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cli import demo_app, eval_app
from core.assets import SYNTHETIC_MANO_DIR
from core.interhand.reader import InterHandSplit
from digit.checkpoint import save_checkpoint
from digit.meshes import evaluate as mesh_evaluate
from digit.meshes.files import read_mano_json
from digit.meshes.fit import FitResult
from digit.model import DigitNet, NetworkConfig
from render.hand_model import HandModel


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = DigitNet(NetworkConfig.preset("tiny"), init_backbone=False).eval()
    with torch.no_grad():  # both hands "present", so both are fitted
        net.hand_fc[2].bias.copy_(torch.tensor([3.0, 3.0]))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", net)


def run_cli(app, name: str, monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", [name, *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        app.main()
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def parse_obj_vertices(path: Path) -> np.ndarray:
    return np.array(
        [[float(x) for x in line.split()[1:4]] for line in path.read_text().splitlines()
         if line.startswith("v ")]
    )  # fmt: skip


def test_demo_writes_meshes_for_split_images(tmp_path, monkeypatch, capsys, checkpoint,
                                             synthetic_root):  # fmt: skip
    out = tmp_path / "out"
    code, _, err = run_cli(
        demo_app, "digit-demo", monkeypatch, capsys, "--split", "test", "--data-root",
        synthetic_root, "--count", "2", "--checkpoint", checkpoint, "--out", out, "--meshes",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads((out / "predictions.json").read_text())
    assert "meshes_mano_json" in doc["conventions"]
    model = HandModel.from_dir(synthetic_root / "mano")
    for record in doc["images"]:
        meshes = record["meshes"]
        fits = read_mano_json(out / meshes["mano_json"])
        for side, fit in zip(("right", "left"), fits, strict=True):
            obj = meshes["obj"][side]
            assert (obj is None) == (fit is None)
            if obj is None:
                continue
            verts = parse_obj_vertices(out / obj) * 1000.0
            assert verts.shape == (model.num_vertices(side), 3)
            pose, shape, trans = (torch.tensor(a[None]) for a in (fit.pose, fit.shape, fit.trans))
            rebuilt = model(side, pose, shape, trans).vertices[0].numpy()
            assert np.abs(rebuilt - verts).max() < 1e-3  # mm
        assert (out / meshes["picture"]).is_file()
        assert len(meshes["ground_truth"]["mpvpe_mm"]) == 2
        assert all(len(v) == 2 for v in meshes["fit"].values())
    assert sum(r["meshes"]["obj"]["right"] is not None for r in doc["images"]) == 2


def test_demo_meshes_on_a_photo_use_the_synthetic_model(tmp_path, monkeypatch, capsys,
                                                        checkpoint):  # fmt: skip
    from PIL import Image

    photo = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(photo)
    out = tmp_path / "out"
    code, _, err = run_cli(
        demo_app, "digit-demo", monkeypatch, capsys, photo, "--bbox", "whole",
        "--checkpoint", checkpoint, "--out", out, "--meshes", "--no-pictures",
    )  # fmt: skip
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))  # not the lock
    assert names == ["photo_left.obj", "photo_mano.json", "photo_right.obj", "predictions.json"]
    doc = json.loads((out / "predictions.json").read_text())
    assert doc["conventions"]["meshes_model"] == str(SYNTHETIC_MANO_DIR)
    bad = tmp_path / "no_mano"
    bad.mkdir()
    code, _, err = run_cli(
        demo_app, "digit-demo", monkeypatch, capsys, photo, "--bbox", "whole",
        "--checkpoint", checkpoint, "--out", tmp_path / "o2", "--meshes", "--mano-dir", bad,
    )  # fmt: skip
    assert code == 1 and "MANO model files missing" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "o2").exists()


def test_eval_mpvpe_equals_a_hand_computed_value(tmp_path, monkeypatch, capsys, checkpoint,
                                                 synthetic_root):  # fmt: skip
    """Every 'fitted' hand is replaced by the model's mean hand (mean pose, betas 0): then the
    MPVPE of a hand is the root-aligned distance of that mean mesh to the true mesh, computed
    here directly from the split's MANO parameters and cameras, and pooled by hand type."""
    model = HandModel.from_dir(synthetic_root / "mano")
    rest = {}
    for side in ("right", "left"):
        zero = torch.zeros(1, 48, dtype=torch.float64)
        out = model(side, zero, zero[:, :10], zero[:, :3])
        rest[side] = (out.vertices[0].numpy(), out.joints[0].numpy())

    def mean_hands(model_, joints_cam, joints_uv, K, hands, settings=None):
        image, hand = np.nonzero(np.asarray(hands, dtype=bool))
        n, sides = len(image), ["right" if h == 0 else "left" for h in hand]
        verts = np.stack([rest[s][0] for s in sides]).reshape(n, -1, 3)
        joints = np.stack([rest[s][1] for s in sides]).reshape(n, 21, 3)
        zeros = np.zeros(n)
        fit = FitResult(hand == 0, np.zeros((n, 48)), np.zeros((n, 10)), np.zeros((n, 3)),
                        verts, joints, zeros, zeros, zeros)  # fmt: skip
        return fit, image, hand

    monkeypatch.setattr(mesh_evaluate, "fit_hands", mean_hands)
    out = tmp_path / "eval"
    code, stdout, err = run_cli(
        eval_app, "digit-eval", monkeypatch, capsys, "--checkpoint", checkpoint, "--split",
        "test", "--data-root", synthetic_root, "--out", out, "--meshes",
    )  # fmt: skip
    assert code == 0, err
    assert "MPVPE all" in stdout
    metrics = json.loads((out / "metrics.json").read_text())

    split = InterHandSplit.from_root(synthetic_root, "test")
    by_kind = {"sh": [], "ih": []}
    for i in range(len(split)):
        record = split[i]
        for h, side in enumerate(("right", "left")):
            fit = record.mano[h]
            if fit is None:
                continue
            params = (torch.tensor(a[None]) for a in (fit.pose, fit.shape, fit.trans))
            world = model(side, *params).vertices[0].numpy()
            cam = world @ record.camera.R.T + record.camera.t
            wrist = model.joint_regressor(side).numpy()[20] @ cam
            mean_v, mean_j = rest[side]
            error = np.linalg.norm((mean_v - mean_j[20]) - (cam - wrist), axis=1).mean()
            by_kind["ih" if record.hand_type == "interacting" else "sh"].append(error)
    expected = {k: np.mean(v) for k, v in by_kind.items()}
    expected["all"] = np.mean(by_kind["sh"] + by_kind["ih"])
    for kind in ("sh", "ih", "all"):
        assert metrics[f"mpvpe_{kind}"] == pytest.approx(expected[kind], rel=1e-9)
    assert metrics["meshes"]["hands_sh"] == len(by_kind["sh"]) > 0
    assert metrics["meshes"]["hands_ih"] == len(by_kind["ih"]) > 0
    assert metrics["mpjpe_all"] is not None  # next to MPJPE


def test_eval_meshes_without_model_files_is_one_line(tmp_path, monkeypatch, capsys, checkpoint,
                                                     synthetic_root):  # fmt: skip
    empty = tmp_path / "no_mano"
    empty.mkdir()
    code, _, err = run_cli(
        eval_app, "digit-eval", monkeypatch, capsys, "--checkpoint", checkpoint, "--split",
        "test", "--data-root", synthetic_root, "--out", tmp_path / "e", "--meshes",
        "--mano-dir", empty,
    )  # fmt: skip
    assert code == 1 and "MANO model files missing" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "e").exists()
