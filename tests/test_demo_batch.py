"""`digit-demo` on folders and splits: one JSON record per image with the 2D and 3D joints, the
intrinsics and where they came from; batch size changes nothing; --focal errors are one line;
--split draws the ground truth beside the prediction with a finite per-image error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cli import demo_app
from core.joints import BONES
from digit.checkpoint import load_network, save_checkpoint
from digit.demo.panel import GT_RGB, PRED_RGB
from digit.demo.run import run_demo
from digit.model import DigitNet, NetworkConfig

SIZES = ((60, 80), (80, 60), (50, 50), (90, 70), (64, 64))  # (height, width)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    net = DigitNet(NetworkConfig.preset("tiny"), init_backbone=False).eval()
    with torch.no_grad():  # the right hand "present", the left not
        net.hand_fc[2].bias.copy_(torch.tensor([3.0, -3.0]))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", net)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(1)
    for k, hw in enumerate(SIZES):
        Image.fromarray(rng.integers(0, 256, (*hw, 3), dtype=np.uint8)).save(folder / f"{k}.png")
    return folder


def _run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["digit-demo", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        demo_app.main()
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


def _has_colour(png: Path, colour: str) -> bool:
    pixels = np.asarray(Image.open(png).convert("RGB"))
    return bool(np.any(np.all(pixels == _hex_rgb(colour), axis=-1)))


def test_folder_run_writes_every_image_with_3d_joints(
    tmp_path, monkeypatch, capsys, tiny_checkpoint, folder
):
    out = tmp_path / "out"
    code, stdout, err = _run_cli(
        monkeypatch, capsys, folder, "--bbox", "whole", "--batch-size", "2",
        "--checkpoint", tiny_checkpoint, "--out", out,
    )  # fmt: skip
    assert code == 0, err
    assert "5 images" in stdout and "network" in stdout and "overall" in stdout
    assert "images/s" in stdout.splitlines()[-1]
    doc = json.loads((out / "predictions.json").read_text())
    assert doc["conventions"]["hand_bone_sum_mm"] == 800
    assert doc["speed"]["images"] == 5 and doc["speed"]["batch_size"] == 2
    records = doc["images"]
    assert [Path(r["image"]).name for r in records] == [f"{k}.png" for k in range(5)]
    for record, (h, w) in zip(records, SIZES, strict=True):
        assert (out / record["panel"]).is_file()
        assert _has_colour(out / record["panel"], PRED_RGB[0])  # the right hand, in red
        cam = record["camera"]
        assert cam["focal"] == [2.48 * max(h, w)] * 2 and cam["focal_source"] == "default"
        assert cam["princpt"] == [(w - 1) / 2, (h - 1) / 2] and cam["princpt_source"] == "default"
        assert record["hands_shown"] == [True, False]
        uvd = np.asarray(record["joints_uvd_img"])
        np.testing.assert_array_equal(record["joints_uv_px"], uvd[:, :2])
        rel = np.asarray(record["joints_rel_cam_mm"])
        assert rel.shape == (42, 3) and np.all(np.isfinite(rel))
        np.testing.assert_array_equal(rel[[20, 41]], 0)
        # the pinhole inverse by hand: Z_j = root depth + d_j, X_j = (u_j - cx) / fx * Z_j
        z_root = np.asarray(record["root_depth_mm"])
        assert record["root_depth_source"] == ["hand size", "hand size"]
        z = uvd[:, 2] + np.repeat(z_root, 21)
        (fx, fy), (cx, cy) = cam["focal"], cam["princpt"]
        xyz = np.stack([(uvd[:, 0] - cx) / fx * z, (uvd[:, 1] - cy) / fy * z, z], -1)
        roots = xyz[[20, 41]]
        np.testing.assert_allclose(rel, xyz - np.repeat(roots, 21, axis=0), rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(record["root_cam_mm"], roots, rtol=1e-9)
        # the hand shown (right) has the stated size; the left root follows by the network's
        # relative root depth
        right = sum(np.linalg.norm(rel[c] - rel[p]) for c, p in BONES[:20])
        assert right == pytest.approx(800, rel=1e-9)
        assert z_root[1] - z_root[0] == pytest.approx(record["rel_root_depth_mm"], abs=1e-6)


def test_batch_size_changes_no_prediction(tmp_path, tiny_checkpoint, folder):
    net, info = load_network(tiny_checkpoint)
    images = sorted(folder.iterdir())
    runs = [
        run_demo(images, net, info, tmp_path / f"b{b}", batch_size=b, pictures=False).records
        for b in (1, 4)
    ]
    for one, four in zip(*runs, strict=True):
        assert one["panel"] is None
        for key in ("joints_uvd_img", "handedness_prob", "rel_root_depth_mm"):
            np.testing.assert_allclose(one[key], four[key], rtol=1e-6, atol=1e-4, err_msg=key)
        # the untrained network's hands span under 0.1 px, so the hand-size rule scales the
        # float32 noise of u, v (1e-5 px) by about 1e4 / 800 mm: 3D agrees to a few 1e-4
        for key in ("joints_rel_cam_mm", "root_depth_mm"):
            np.testing.assert_allclose(one[key], four[key], rtol=5e-3, atol=0.05, err_msg=key)


def test_focal_and_princpt_options_are_recorded(
    tmp_path, monkeypatch, capsys, tiny_checkpoint, folder
):
    out = tmp_path / "out"
    code, _, err = _run_cli(
        monkeypatch, capsys, folder / "0.png", "--bbox", "whole", "--focal", "1000,900",
        "--princpt", "10,20.5", "--no-pictures", "--checkpoint", tiny_checkpoint, "--out", out,
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [".digit-demo.lock", "predictions.json"]
    cam = json.loads((out / "predictions.json").read_text())["images"][0]["camera"]
    assert cam == {
        "focal": [1000.0, 900.0],
        "focal_source": "--focal",
        "princpt": [10.0, 20.5],
        "princpt_source": "--princpt",
    }


@pytest.mark.parametrize(
    ("option", "value"),
    [("--focal", "abc"), ("--focal", "0"), ("--focal", "1,2,3"), ("--princpt", "5"),
     ("--batch-size", "0")],
)  # fmt: skip
def test_bad_camera_options_are_one_line(
    tmp_path, monkeypatch, capsys, tiny_checkpoint, folder, option, value
):
    out = tmp_path / "out"
    code, _, err = _run_cli(
        monkeypatch, capsys, folder, option, value, "--checkpoint", tiny_checkpoint, "--out", out
    )
    assert code == 1 and err.strip().count("\n") == 0 and option in err, err
    assert not out.exists()


def test_split_run_draws_the_ground_truth_and_its_error(
    tmp_path, monkeypatch, capsys, tiny_checkpoint, synthetic_root
):
    from core.interhand.reader import InterHandSplit

    out = tmp_path / "split"
    code, _, err = _run_cli(
        monkeypatch, capsys, "--split", "test", "--data-root", synthetic_root, "--count", "2",
        "--checkpoint", tiny_checkpoint, "--out", out,
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads((out / "predictions.json").read_text())
    data = InterHandSplit.from_root(synthetic_root, "test")
    by_path = {str(data.image_path(i)): data[i] for i in range(len(data))}
    for record in doc["images"]:
        ann = by_path[record["image"]]
        panel = out / record["panel"]
        # the ground truth is drawn pale, beside the prediction
        assert any(_has_colour(panel, GT_RGB[h]) for h in (0, 1) if ann.joint_valid[20 + 21 * h])
        assert _has_colour(panel, PRED_RGB[0])
        cam = record["camera"]
        np.testing.assert_allclose(cam["focal"], ann.camera.K[[0, 1], [0, 1]])
        assert cam["focal_source"] == "dataset camera"
        # with a valid root, the annotated root depth is used (as digit-eval does)
        roots = ann.joints_cam[[20, 41]]
        for h in (0, 1):
            if ann.joint_valid[20 + 21 * h]:
                assert record["root_depth_mm"][h] == pytest.approx(roots[h, 2])
                assert record["root_depth_source"][h] == "ground truth"
        # the error by hand: mean over valid joints of the root-relative distance
        valid = ann.joint_valid & ann.joint_valid[np.repeat([20, 41], 21)]
        gt_rel = ann.joints_cam - np.repeat(roots, 21, axis=0)
        dist = np.linalg.norm(np.asarray(record["joints_rel_cam_mm"]) - gt_rel, axis=-1)
        mpjpe = record["ground_truth"]["mpjpe_mm"]
        assert np.isfinite(mpjpe) and mpjpe == pytest.approx(dist[valid].mean(), rel=1e-9)


# ---- issue 24: implausible camera numbers are used, with one warning line each ----------------


def test_implausible_focal_and_princpt_warn_in_one_line(
    tmp_path, monkeypatch, capsys, tiny_checkpoint, folder
):
    args = [folder, "--bbox", "whole", "--no-pictures", "--checkpoint", tiny_checkpoint]
    code, _, err = _run_cli(
        monkeypatch, capsys, *args, "--focal", "1e-6", "--princpt", "1e6,-1e6",
        "--out", tmp_path / "odd",
    )  # fmt: skip
    assert code == 0, err
    warned = [line for line in err.splitlines() if line.startswith("digit-demo: warning: --")]
    # 0.png is 60 x 80: 1e-6 px over its long side 80 = 1.25e-08
    assert warned[0] == (
        "digit-demo: warning: --focal 1e-06 px is 1.25e-08 x the long side of 0.png (5 of 5 "
        "images), outside the plausible 0.25-20 x the image's long side for a photograph; the "
        "joints are placed with it as given"
    )
    assert warned[1].startswith(
        "digit-demo: warning: --princpt 1e+06,-1e+06 lies outside 0.png (80x60 px; 5 of 5 images)"
    )
    assert len(warned) == 2
    # plausible values (a phone's 0.8 x the long side, a principal point inside) say nothing
    code, _, err = _run_cli(
        monkeypatch, capsys, *args, "--focal", "60", "--princpt", "30,25", "--out", tmp_path / "ok"
    )
    assert code == 0 and "warning: --" not in err


def test_implausible_root_depths_warn_once():
    import warnings

    from core.plausible import ImplausibleValue
    from digit.demo.lift import HAND_SIZE, Hands3D, warn_implausible_depths

    def hands(right: float, left: float) -> Hands3D:
        zeros = np.zeros((42, 3))
        return Hands3D(zeros, zeros, np.array([right, left]), (HAND_SIZE, HAND_SIZE))

    lifted = [(Path("a.jpg"), hands(900.0, 950.0)), (Path("b.jpg"), hands(187_000.0, 187_040.0)),
              (Path("c.jpg"), hands(50.0, np.nan))]  # fmt: skip
    with pytest.warns(ImplausibleValue) as said:
        warn_implausible_depths(lifted)
    assert [str(w.message) for w in said] == [
        "2 of 3 images have a root depth outside the plausible 100-5000 mm for a hand in front "
        "of a camera (first: b.jpg, right 187,000 mm (hand size), left 187,040 mm (hand size)); "
        "their 3D joints are placed there (an undertrained network or a wrong --focal gives "
        "such depths)"
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_implausible_depths(lifted[:1])  # all plausible: silent
