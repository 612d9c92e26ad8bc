"""`digit.evaluate` and `digit-eval`: the decode / undo-crop / back-projection chain checked with a
stand-in network built from the ground truth (MPJPE 0, handedness 1), a known depth perturbation
against a hand-computed MPJPE, the output files, the RootNet depth source and CLI error lines."""

from __future__ import annotations

import csv
import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cli import eval_app
from core.errors import DigitError
from core.interhand.reader import InterHandSplit
from digit import eval_report
from digit.checkpoint import save_checkpoint
from digit.data.batch import Batch
from digit.data.crop import apply_affine, crop_to_image, crop_transform
from digit.evaluate import (
    collect,
    evaluate_predictions,
    rootnet_abs_depth,
    run_evaluation,
)
from digit.metrics import evaluate
from digit.model import DigitNet, DigitOutput, NetworkConfig

SPLIT = "test"
# interaction degrees given to the interacting images in turn (NaN: no IoU, e.g. no MANO fit)
IOU_CYCLE = (0.0, 0.2, 0.5, 0.9, np.nan)


# ---- a stand-in data pipeline and network built from the ground truth --------------------------


def _truth(root: Path, split: str = SPLIT):
    """Per-image ground truth of the split and the exact crop-space 2.5D joints."""
    b = InterHandSplit.from_root(root, split).gather(slice(None))
    affine = np.stack([crop_transform(box) for box in b.crop_box])
    uv_crop = apply_affine(affine, b.joints_img)
    z = b.joints_cam[..., 2]
    root_z = np.concatenate([np.repeat(z[:, 20:21], 21, 1), np.repeat(z[:, 41:42], 21, 1)], 1)
    uvd_crop = np.nan_to_num(np.concatenate([uv_crop, (z - root_z)[..., None]], -1))
    rel_root = np.nan_to_num(z[:, 41] - z[:, 20])
    logits = np.array([[10.0, -10.0], [-10.0, 10.0], [10.0, 10.0]])[b.hand_type_code]
    inter = np.flatnonzero(b.hand_type_code == 2)
    lr_iou = np.full(len(b), np.nan)
    lr_iou[inter] = np.resize(IOU_CYCLE, len(inter))
    return b, affine, uvd_crop, rel_root, logits, lr_iou


def _batches(root: Path, batch_size: int = 8, reverse: bool = False) -> list[Batch]:
    """A loader stand-in: Batches whose tiny images carry their row index in pixel (0, 0, 0)."""
    b, affine, _, _, _, lr_iou = _truth(root)
    rows = np.arange(len(b))[::-1].copy() if reverse else np.arange(len(b))
    out = []
    for start in range(0, len(rows), batch_size):
        r = rows[start : start + batch_size]
        image = torch.zeros(len(r), 3, 8, 8)
        image[:, 0, 0, 0] = torch.as_tensor(r, dtype=torch.float32)

        def t(a, dtype=torch.float64, r=r):
            return torch.as_tensor(np.asarray(a)[r], dtype=dtype)

        out.append(
            Batch(
                image=image,
                targets=None,
                segm_target=None,
                segm_valid=None,
                index=t(b.index, torch.int64),
                image_id=t(b.image_id, torch.int64),
                crop_affine=t(affine),
                joints_cam=t(b.joints_cam),
                joint_valid=t(b.joint_valid, torch.bool),
                abs_depth=t(b.joints_cam[:, [20, 41], 2]),
                focal=t(b.K[:, [0, 1], [0, 1]]),
                princpt=t(b.K[:, :2, 2]),
                hand_type_code=t(b.hand_type_code, torch.int64),
                hand_type_valid=t(b.hand_type_valid, torch.bool),
                lr_iou=t(lr_iou, torch.float32),
            )
        )
    return out


class OracleNet(nn.Module):
    """Returns the true crop-space joints (plus `depth_offset` mm on given joints), the true
    relative root depth and confident correct handedness logits, looked up by row index."""

    def __init__(self, root: Path, depth_offset: np.ndarray | None = None) -> None:
        super().__init__()
        _, _, uvd, rel, logits, _ = _truth(root)
        if depth_offset is not None:
            uvd = uvd.copy()
            uvd[..., 2] += depth_offset
        self.register_buffer("uvd", torch.as_tensor(uvd, dtype=torch.float32))
        self.register_buffer("rel", torch.as_tensor(rel, dtype=torch.float32))
        self.register_buffer("logits", torch.as_tensor(logits, dtype=torch.float32))
        self.config = NetworkConfig(input_size=256)  # the crop size its truth was made at

    def forward(self, images: torch.Tensor) -> DigitOutput:
        assert not self.training and not torch.is_grad_enabled()
        rows = images[:, 0, 0, 0].round().long()
        return DigitOutput(
            joints_uvd=self.uvd[rows],
            rel_root_depth_mm=self.rel[rows],
            handedness_logits=self.logits[rows],
            segm_logits=None,
            heatmaps=None,
            joints_hm=None,
            rel_root_depth_bins=None,
            root_depth_logits=None,
        )


# ---- decoding ----------------------------------------------------------------------------------


def test_crop_to_image_inverts_the_crop_warp():
    rng = np.random.default_rng(0)
    boxes = [[10.0, 20.0, 200.0, 200.0], [-30.0, 5.0, 150.0, 150.0]]
    affine = np.stack(
        [crop_transform(b, rot_deg=r) for b, r in zip(boxes, (0.0, 30.0), strict=True)]
    )
    uv = rng.uniform(0, 334, (2, 42, 2))
    d = rng.normal(0, 50, (2, 42, 1))
    crop = np.concatenate([apply_affine(affine, uv), d], -1)
    back = crop_to_image(crop, affine)
    np.testing.assert_allclose(back[..., :2], uv, atol=1e-9)
    np.testing.assert_array_equal(back[..., 2:], d)


def test_interaction_labels():
    codes = np.array([0, 1, 2, 2, 2, 2, 2])
    iou = np.array([0.5, np.nan, 0.0, 0.33, 0.5, 1.0, np.nan])
    n = len(codes)
    joints = np.concatenate([np.ones((n, 42, 2)), np.zeros((n, 42, 1))], -1)
    result = evaluate(
        joints,
        np.zeros(n),
        np.full((n, 2), 0.9),
        np.full((n, 2), 500.0),
        np.full((n, 2), 1000.0),
        np.zeros((n, 2)),
        np.full((n, 42, 3), 1.0),
        np.ones((n, 42), bool),
        codes,
        np.ones(n, bool),
        lr_iou=iou,
    )
    labels = result.interaction_bin
    assert [b.label for b in result.by_bin][-1] == "unbinned"
    assert list(labels) == [
        "single",
        "single",
        "0",
        "(0,0.33]",
        "(0.33,0.67]",
        "(0.67,1]",
        "unbinned",
    ]


# ---- the evaluation chain with the oracle network ----------------------------------------------


@pytest.fixture(scope="module")
def truth(synthetic_root):
    return _truth(synthetic_root)


def test_oracle_network_scores_perfectly(synthetic_root, truth):
    b = truth[0]
    counts = np.bincount(b.hand_type_code, minlength=3)
    assert counts[2] > 0 and counts[:2].sum() > 0, "the split needs both kinds of images"
    net = OracleNet(synthetic_root).train()
    # a reversed loader: the predictions still come back in data.json order
    preds, gt = collect(net, _batches(synthetic_root, reverse=True), "cpu")
    assert net.training, "train/eval mode is restored"
    np.testing.assert_array_equal(preds.image_id, b.image_id)
    np.testing.assert_array_equal(gt.index, np.arange(len(b)))
    valid = b.joint_valid
    np.testing.assert_allclose(preds.joints_uvd_img[..., :2][valid], b.joints_img[valid], atol=1e-3)
    res = evaluate_predictions(preds, gt, gt.abs_depth)
    for value in (res.mpjpe_sh, res.mpjpe_ih, res.mpjpe_all, res.mrrpe):
        assert value < 1e-3
    assert res.handedness_acc == 1.0
    assert res.n_images == len(b) and res.n_interacting == counts[2]
    assert res.n_handedness == int(b.hand_type_valid.sum())
    # joints_cam after back-projection is the ground truth wherever it is valid
    np.testing.assert_allclose(res.joints_cam[valid], b.joints_cam[valid], atol=1e-2)


def test_depth_perturbation_gives_hand_computed_mpjpe(synthetic_root, truth):
    b = truth[0]
    offset = np.zeros(42)
    offset[:20] = 5.0  # +5 mm on every non-root joint of the right hand
    preds, _ = collect(OracleNet(synthetic_root, offset), _batches(synthetic_root), "cpu")
    _, gt = collect(OracleNet(synthetic_root), _batches(synthetic_root), "cpu")
    res = evaluate_predictions(preds, gt, gt.abs_depth)

    # Hand computation: u, v are exact, so the joint P = G * (G_z + 5) / G_z and the root is
    # exact: the root-relative error is 5 * |G| / G_z on right non-root joints, 0 elsewhere.
    valid = b.joint_valid.copy()
    valid[:, :21] &= valid[:, 20:21]
    valid[:, 21:] &= valid[:, 41:42]

    def pooled(images):
        per_joint = []
        for j in range(42):
            errs = []
            for n in images:
                if valid[n, j]:
                    g = b.joints_cam[n, j]
                    errs.append(5.0 * np.linalg.norm(g) / g[2] if j < 20 else 0.0)
            per_joint.append(np.mean(errs) if errs else np.nan)
        return sum(per_joint) / 42

    single = [n for n in range(len(b)) if b.hand_type_code[n] != 2]
    inter = [n for n in range(len(b)) if b.hand_type_code[n] == 2]
    expected = (pooled(single), pooled(inter), pooled(range(len(b))))
    got = (res.mpjpe_sh, res.mpjpe_ih, res.mpjpe_all)
    np.testing.assert_allclose(got, expected, rtol=1e-5, equal_nan=True)
    # 20 of the 42 joints move by a little over 5 mm (|G| / G_z is slightly above 1)
    assert 20 / 42 * 5.0 < expected[2] < 20 / 42 * 5.5
    assert res.mrrpe < 1e-3 and res.handedness_acc == 1.0  # roots untouched


def test_interaction_bins_from_the_mask_cache_iou(synthetic_root, truth):
    preds, gt = collect(OracleNet(synthetic_root), _batches(synthetic_root), "cpu")
    res = evaluate_predictions(preds, gt, gt.abs_depth, use_iou=True)
    inter = truth[0].hand_type_code == 2
    iou = truth[5]
    by = {bin_.label: bin_.images for bin_ in res.by_bin}
    assert by["single"] == int((~inter).sum())
    assert by["0"] == int((iou[inter] == 0).sum())
    assert by["(0,0.33]"] == int((iou[inter] == 0.2).sum())
    assert by["unbinned"] == int(np.isnan(iou[inter]).sum()) > 0
    assert sum(by.values()) == len(iou)
    assert evaluate_predictions(preds, gt, gt.abs_depth, use_iou=False).by_bin == ()


# ---- files -------------------------------------------------------------------------------------


def _evaluated(root: Path):
    preds, gt = collect(OracleNet(root), _batches(root), "cpu")
    return preds, gt, evaluate_predictions(preds, gt, gt.abs_depth)


def test_write_outputs_shapes_and_content(synthetic_root, tmp_path):
    preds, gt, res = _evaluated(synthetic_root)
    meta = {"root_depth": {"source": "gt", "path": None}, "checkpoint": {"path": "x.pt"}}
    eval_report.write_outputs(tmp_path / "out", res, preds, gt.abs_depth, meta)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(eval_report.OUTPUT_FILES)
    n = len(gt.image_id)
    with np.load(out / "predictions.npz") as z:
        shapes = {k: z[k].shape for k in z.files}
        np.testing.assert_array_equal(z["abs_depth_mm"], gt.abs_depth)
        np.testing.assert_array_equal(z["image_id"], gt.image_id)
    assert shapes == {
        "image_id": (n,),
        "joints_uvd_img": (n, 42, 3),
        "abs_depth_mm": (n, 2),
        "joints_cam_mm": (n, 42, 3),
        "rel_root_depth_mm": (n,),
        "handedness_prob": (n, 2),
    }
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("mpjpe_sh", "mpjpe_ih", "mpjpe_all", "mrrpe", "handedness_acc"):
        assert key in metrics
    assert metrics["counts"]["images"] == n and metrics["handedness_acc"] == 1.0
    assert metrics["root_depth"]["source"] == "gt" and "empty_joints" in metrics
    rows = list(csv.reader((out / "per_joint.csv").open()))
    assert rows[0] == ["joint", "name", "mpjpe_sh", "mpjpe_ih", "mpjpe_all"]
    assert len(rows) == 43
    assert rows[1][:2] == ["0", "r_thumb4"] and rows[21][:2] == ["20", "r_wrist"]
    assert rows[22][:2] == ["21", "l_thumb4"] and rows[42][:2] == ["41", "l_wrist"]
    for name in (eval_report.JOINT_PLOT, eval_report.BIN_PLOT):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_outputs_failure_leaves_previous_files(synthetic_root, tmp_path, monkeypatch):
    preds, gt, res = _evaluated(synthetic_root)
    eval_report.write_outputs(tmp_path, res, preds, gt.abs_depth, {})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def boom(result, path):
        raise RuntimeError("disk full")

    monkeypatch.setattr(eval_report, "plot_mpjpe_by_bin", boom)
    with pytest.raises(RuntimeError):
        eval_report.write_outputs(tmp_path, res, preds, gt.abs_depth + 1.0, {"x": 1})
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # no temporary files left, no file replaced


# ---- RootNet depth source ----------------------------------------------------------------------


def _rootnet_by_image(root: Path) -> tuple[Path, dict[int, list[float]]]:
    """The synthetic RootNet file and its abs_depth per image_id, read independently."""
    path = root / "rootnet_output" / f"rootnet_interhand2.6m_output_{SPLIT}.json"
    data = json.loads(
        (root / "annotations" / SPLIT / f"InterHand2.6M_{SPLIT}_data.json").read_text()
    )
    image_of = {a["id"]: a["image_id"] for a in data["annotations"]}
    return path, {image_of[e["annot_id"]]: e["abs_depth"] for e in json.loads(path.read_text())}


def test_rootnet_depths_follow_the_file(synthetic_root, tmp_path):
    path, depth = _rootnet_by_image(synthetic_root)
    ids = np.array(sorted(depth))[::-1]
    got = rootnet_abs_depth(path, synthetic_root, SPLIT, ids)
    np.testing.assert_array_equal(got, np.array([depth[i] for i in ids]))
    entries = json.loads(path.read_text())
    short = tmp_path / "short.json"
    short.write_text(json.dumps(entries[1:]))
    with pytest.raises(DigitError, match=r"short\.json: no entry for 1 of"):
        rootnet_abs_depth(short, synthetic_root, SPLIT, ids)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = DigitNet(NetworkConfig.preset("tiny"), init_backbone=False)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", net)


@pytest.fixture
def fake_dataset(monkeypatch):
    """`digit.data.dataset` replaced by the stand-in loader (and the network by the oracle)."""
    module = types.ModuleType("digit.data.dataset")

    class FakeDataset:
        def __init__(self, data_root, split, masks, train=False, limit=None, **kw):
            assert split == SPLIT and not train
            self.root = Path(data_root)
            self.split = InterHandSplit.from_root(self.root, split)

    module.InterHandDataset = FakeDataset
    module.make_loader = lambda ds, batch_size, shuffle, num_workers: _batches(ds.root, batch_size)
    monkeypatch.setitem(sys.modules, "digit.data.dataset", module)
    import digit.checkpoint

    info = {"format": "digit-ckpt", "step": 7}
    monkeypatch.setattr(digit.checkpoint, "load_network", lambda p, d="cpu": (_ORACLE[0], info))
    return module


_ORACLE: list[nn.Module] = []


def test_run_evaluation_uses_the_rootnet_file(
    synthetic_root, tiny_checkpoint, tmp_path, fake_dataset
):
    _ORACLE[:] = [OracleNet(synthetic_root)]
    path, depth = _rootnet_by_image(synthetic_root)
    out = tmp_path / "eval"
    res = run_evaluation(
        tiny_checkpoint, SPLIT, synthetic_root, None, str(path), out, "cpu", batch_size=8
    )
    with np.load(out / "predictions.npz") as z:
        want = np.array([depth[int(i)] for i in z["image_id"]])
        np.testing.assert_array_equal(z["abs_depth_mm"], want)
        np.testing.assert_allclose(z["joints_cam_mm"], res.joints_cam)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["root_depth"] == {"source": "rootnet", "path": str(path)}
    assert metrics["data"]["split"] == SPLIT and metrics["data"]["root"] == str(synthetic_root)
    assert metrics["checkpoint"]["path"] == str(tiny_checkpoint)
    # RootNet's depths are noisy, so the back-projected joints are scaled: MPJPE is no longer 0
    assert res.handedness_acc == 1.0 and res.mpjpe_all > 1e-3


# ---- command line ------------------------------------------------------------------------------


def _run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["digit-eval", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        eval_app.main()
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.mark.parametrize("case", ["checkpoint", "split", "rootnet", "data_root"])
def test_cli_bad_input_is_one_line(
    case, synthetic_root, tiny_checkpoint, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DIGIT_HOME", str(tmp_path / "home"))  # never build the default dataset
    args = {
        "--checkpoint": tiny_checkpoint,
        "--split": SPLIT,
        "--data-root": synthetic_root,
        "--out": tmp_path / "out",
    }
    bad = {
        "checkpoint": ("--checkpoint", tmp_path / "missing.pt"),
        "split": ("--split", "testing"),
        "rootnet": ("--root-depth", tmp_path / "no_rootnet.json"),
        "data_root": ("--data-root", tmp_path / "nowhere"),
    }[case]
    args[bad[0]] = bad[1]
    code, _, err = _run_cli(monkeypatch, capsys, *[x for kv in args.items() for x in kv])
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("digit-eval: error: ")
    assert str(bad[1]) in lines[0]
    assert not (tmp_path / "out").exists()


def test_cli_prints_a_summary(
    synthetic_root, tiny_checkpoint, tmp_path, monkeypatch, capsys, fake_dataset
):
    _ORACLE[:] = [OracleNet(synthetic_root)]
    code, out, _ = _run_cli(
        monkeypatch,
        capsys,
        *("--checkpoint", tiny_checkpoint, "--split", SPLIT, "--data-root", synthetic_root),
        *("--out", tmp_path / "out", "--device", "cpu"),
    )
    assert code == 0
    assert "MPJPE all" in out and "MRRPE" in out and "ground truth" in out
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["mpjpe_all"] < 1e-3 and metrics["root_depth"]["source"] == "gt"


# ---- end to end on the synthetic dataset (the real data pipeline, a random tiny network) -------


def test_end_to_end_with_the_dataset(
    synthetic_root, tiny_checkpoint, tmp_path, monkeypatch, capsys
):
    pytest.importorskip("digit.data.dataset")
    path, depth = _rootnet_by_image(synthetic_root)
    out = tmp_path / "out"
    code, stdout, err = _run_cli(
        monkeypatch,
        capsys,
        *("--checkpoint", tiny_checkpoint, "--split", SPLIT, "--data-root", synthetic_root),
        *("--root-depth", path, "--out", out, "--limit", 4, "--batch-size", 2),
    )
    assert code == 0, err
    assert "MPJPE all" in stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(eval_report.OUTPUT_FILES)
    ids = InterHandSplit.from_root(synthetic_root, SPLIT).columns.image_id[:4]
    with np.load(out / "predictions.npz") as z:
        np.testing.assert_array_equal(z["image_id"], ids)
        np.testing.assert_array_equal(z["abs_depth_mm"], [depth[int(i)] for i in ids])
        assert z["joints_uvd_img"].shape == (4, 42, 3) and z["joints_cam_mm"].shape == (4, 42, 3)
        assert np.isfinite(z["joints_cam_mm"]).all()
        prob = z["handedness_prob"]
        assert prob.shape == (4, 2) and ((prob > 0) & (prob < 1)).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["counts"]["images"] == 4 and metrics["checkpoint"]["format"] == "digit-ckpt"


def test_end_to_end_writes_the_analysis(
    synthetic_root, mask_cache_train, tiny_checkpoint, tmp_path, monkeypatch, capsys
):
    """`digit-eval` with masks: the paper's analyses reach metrics.json, the summary and the
    pictures (values are checked by hand in tests/test_analysis_metrics.py)."""
    from digit.data.dataset import InterHandDataset

    out = tmp_path / "out"
    code, stdout, err = _run_cli(
        monkeypatch,
        capsys,
        *("--checkpoint", tiny_checkpoint, "--split", "train", "--data-root", synthetic_root),
        *("--masks", mask_cache_train.parent, "--out", out, "--limit", 6, "--batch-size", 4),
    )
    assert code == 0, err
    assert "segmentation mIoU" in stdout and "3D PCK AUC" in stdout and "bone asymmetry" in stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(eval_report.OUTPUT_FILES)
    for name in (eval_report.PCK_PLOT, eval_report.IOU_PLOT, eval_report.BIN_PLOT):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    ds = InterHandDataset(synthetic_root, "train", mask_cache_train, train=False, limit=6)
    valid_masks = sum(bool(ds[i]["segm_valid"]) for i in range(len(ds)))
    seg = metrics["segmentation"]
    assert valid_masks > 0 and seg["images"] == valid_masks and seg["missing"] is None
    assert 0.0 <= metrics["segm_miou"] <= 1.0 and metrics["segm_miou"] == seg["miou"]
    assert len(seg["per_class_iou"]) == 33 and "left_thumb3" in seg["per_class_iou"]
    pck = metrics["pck_3d"]
    assert pck["thresholds_mm"] == [float(t) for t in range(51)]
    assert len(pck["right"]) == len(pck["left"]) == len(pck["both"]) == 51
    assert metrics["pck_auc"] == pck["auc"]["both"] and 0.0 <= metrics["pck_auc"] <= 1.0
    asym = metrics["bone_asymmetry"]
    assert set(asym) >= {"pred_mm", "gt_mm", "images"}
    assert metrics["bone_asymmetry_mm"] == asym["pred_mm"]
    assert set(metrics["mpjpe_image_mean_by_bin"]) == set(metrics["mpjpe_by_bin"])


def test_cli_corrupt_image_is_one_line(
    synthetic_root, tiny_checkpoint, tmp_path, monkeypatch, capsys
):
    pytest.importorskip("digit.data.dataset")
    root = tmp_path / "root"
    shutil.copytree(synthetic_root / "annotations", root / "annotations")
    shutil.copytree(synthetic_root / "images" / SPLIT, root / "images" / SPLIT)
    image = root / "images" / SPLIT / InterHandSplit.from_root(root, SPLIT).file_name(1)
    image.write_bytes(b"not a jpeg at all")
    code, _, err = _run_cli(
        monkeypatch,
        capsys,
        *("--checkpoint", tiny_checkpoint, "--split", SPLIT, "--data-root", root),
        *("--out", tmp_path / "out", "--limit", 2),
    )
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and str(image) in lines[0], err
    assert not (tmp_path / "out").exists()


# ---- issue 24: the output and the RootNet depths are checked before the evaluation runs ---------


def _no_evaluation(*_args, **_kwargs):
    raise AssertionError("the network ran before the bad input was found")


@pytest.mark.parametrize("where", ["under_a_file", "a_file", "empty"])
def test_cli_bad_out_is_one_line_before_the_evaluation(
    where, synthetic_root, tiny_checkpoint, tmp_path, monkeypatch, capsys
):
    import digit.evaluate

    monkeypatch.setattr(digit.evaluate, "collect", _no_evaluation)
    (tmp_path / "a_file").write_text("x")
    out, message = {
        "under_a_file": (tmp_path / "a_file" / "eval", "a_file is a file, not a folder"),
        "a_file": (tmp_path / "a_file", "is a file, not a folder"),
        "empty": ("", "--out: empty path"),
    }[where]
    args = ["--checkpoint", tiny_checkpoint, "--split", SPLIT, "--data-root", synthetic_root]
    code, _, err = _run_cli(monkeypatch, capsys, *args, "--out", out)
    assert code == 1 and err.count("\n") == 1 and err.startswith("digit-eval: error: --out")
    assert message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def _rootnet_with(tmp_path: Path, root: Path, annot: int, depth) -> Path:
    path, _ = _rootnet_by_image(root)
    entries = json.loads(path.read_text())
    for e in entries:
        if e["annot_id"] == annot:
            e["abs_depth"] = depth
    bad = tmp_path / "rootnet.json"
    bad.write_text(json.dumps(entries).replace('"NaN"', "NaN"))
    return bad


@pytest.mark.parametrize("depth", [["NaN", 900.0], [900.0, -850.0], [0.0, 0.0]])
def test_a_rootnet_depth_that_is_no_depth_is_an_error_naming_the_image(
    depth, synthetic_root, tiny_checkpoint, tmp_path, monkeypatch
):
    import digit.evaluate

    data = InterHandSplit.from_root(synthetic_root, SPLIT)
    image_id, annot = int(data.columns.image_id[3]), int(data.columns.annot_id[3])
    path = _rootnet_with(tmp_path, synthetic_root, annot, depth)
    monkeypatch.setattr(digit.evaluate, "collect", _no_evaluation)
    with pytest.raises(DigitError) as exc:
        run_evaluation(tiny_checkpoint, SPLIT, synthetic_root, None, str(path), tmp_path / "e")
    assert str(exc.value).startswith(f"{path}: image id {image_id} (annot_id {annot}): abs_depth ")
    assert "is not a positive depth in mm (1 of " in str(exc.value)
    assert not (tmp_path / "e").exists()


def test_implausible_rootnet_depths_are_used_with_one_warning(synthetic_root, tmp_path):
    from core.plausible import ImplausibleValue

    path, depth = _rootnet_by_image(synthetic_root)
    ids = np.array(sorted(depth))
    metres = tmp_path / "metres.json"  # a file written in metres: 0.9 "mm"
    entries = json.loads(path.read_text())
    for e in entries:
        e["abs_depth"] = [z / 1000 for z in e["abs_depth"]]
    metres.write_text(json.dumps(entries))
    with pytest.warns(ImplausibleValue) as said:
        got = rootnet_abs_depth(metres, synthetic_root, SPLIT, ids)
    np.testing.assert_allclose(got, np.array([depth[i] for i in ids]) / 1000)
    assert len(said) == 1
    text = str(said[0].message)
    assert f"{metres}: {len(ids)} of {len(ids)} images have a RootNet depth outside" in text
    assert "plausible 100-5000 mm" in text and "\n" not in text
