"""`make gpu-check` (benchmarks.gpu_check): the skip path, the pure pieces (results, table,
mask comparison, budget), and every check run once on the CPU at toy sizes."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from benchmarks.gpu_check import checks
from benchmarks.gpu_check.compare import differing_pixels, labels_identical
from benchmarks.gpu_check.report import (
    ERROR,
    FAIL,
    NOT_RUN,
    PASS,
    CheckResult,
    markdown_table,
    overall,
    to_json,
)
from benchmarks.gpu_check.run import (
    SKIP_LINE,
    TINY_CPU,
    _train_config,
    main,
    run_checks,
    skip_reason,
    write_outputs,
)

# ---------------------------------------------------------------- skip


def test_skip_only_when_cuda_is_asked_for_and_absent():
    assert SKIP_LINE == "make gpu-check: SKIPPED, no CUDA device"
    assert skip_reason("cuda", cuda_available=False) == SKIP_LINE
    assert skip_reason("cuda:1", cuda_available=False) == SKIP_LINE
    assert skip_reason("cuda", cuda_available=True) is None
    assert skip_reason("cpu", cuda_available=False) is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="the skip path needs a machine without CUDA")
def test_without_cuda_one_line_exit_0_and_nothing_written(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out == SKIP_LINE + "\n"
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- results and table


def test_overall_is_pass_only_when_every_check_ran_and_passed():
    ok, bad = CheckResult("a", PASS), CheckResult("b", FAIL)
    assert overall([ok, ok]) == PASS
    assert overall([]) == "incomplete"
    assert overall([ok, CheckResult("c", NOT_RUN)]) == "incomplete"
    assert overall([ok, bad]) == FAIL
    assert overall([CheckResult("c", NOT_RUN), CheckResult("d", ERROR)]) == FAIL
    with pytest.raises(ValueError, match="status"):
        CheckResult("x", "passed")


def test_table_and_json_by_hand(tmp_path):
    results = [
        CheckResult("raster", PASS, {"masks/s": 12345.6, "identical": True, "pixels": 0}),
        CheckResult("train", FAIL, {"loss diff": 0.0625}, note="bf16 | off by 6 %"),
        CheckResult("ddp", NOT_RUN, note="time budget of 480 s spent"),
    ]
    meta = {"date": "2026-12-04", "device": "1 x H200", "torch": "2.14.1", "cuda": "13.0"}
    assert markdown_table(results, meta) == (
        "**2026-12-04, 1 x H200** (torch 2.14.1, CUDA 13.0), `make gpu-check`: overall **fail**\n"
        "\n"
        "| check | status | figure | value |\n"
        "|---|---|---|---:|\n"
        "| raster | pass | masks/s | 12,346 |\n"
        "|  |  | identical | yes |\n"
        "|  |  | pixels | 0 |\n"
        "| train | fail | loss diff | 0.0625 |\n"
        "| ddp | not run | | |\n"
        "\n"
        "- train: bf16 | off by 6 %\n"
        "- ddp: time budget of 480 s spent\n"
    )
    js, md = write_outputs(results, meta, tmp_path / "out")
    data = json.loads(js.read_text())
    assert data["overall"] == FAIL and data["meta"]["device"] == "1 x H200"
    assert [c["status"] for c in data["checks"]] == [PASS, FAIL, NOT_RUN]
    assert md.read_text() == markdown_table(results, meta)
    assert json.loads(to_json([], {}))["overall"] == "incomplete"


def test_budget_and_errors_never_turn_into_passes():
    now = [0.0]

    def step(seconds, status=PASS):
        def run():
            now[0] += seconds
            return CheckResult("x", status, {"n": 1})

        return run

    def boom():
        raise RuntimeError("CUDA error: out of memory\nmore lines")

    steps = [("a", step(100)), ("b", boom), ("c", step(390)), ("d", step(1)), ("e", step(1))]
    results = run_checks(steps, budget_s=480, clock=lambda: now[0])
    assert [r.status for r in results] == [PASS, ERROR, PASS, NOT_RUN, NOT_RUN]
    assert results[1].note == "RuntimeError: CUDA error: out of memory"
    assert results[0].figures == {"n": 1, "check wall s": 100.0}
    assert "budget" in results[3].note and results[3].figures == {}
    assert overall(results) == FAIL


# ---------------------------------------------------------------- mask comparison


def test_differing_pixels_are_listed_with_their_reasons():
    p2f_a = np.full((2, 3, 4), -1)
    p2f_b = p2f_a.copy()
    depth_a = np.full((2, 3, 4), -1.0)
    depth_b = depth_a.copy()
    # (0, 1, 1): two faces at the same depth to 1e-12 -> tie
    p2f_a[0, 1, 1], p2f_b[0, 1, 1] = 5, 7
    depth_a[0, 1, 1], depth_b[0, 1, 1] = 600.0, 600.0 * (1 + 1e-12)
    # (1, 2, 3): face 9 on b only -> edge
    p2f_b[1, 2, 3], depth_b[1, 2, 3] = 9, 580.0
    # (1, 0, 0): faces 2 and 3 far apart in depth -> unexplained nearer face
    p2f_a[1, 0, 0], p2f_b[1, 0, 0] = 2, 3
    depth_a[1, 0, 0], depth_b[1, 0, 0] = 500.0, 510.0
    # equal elsewhere, including a shared face
    p2f_a[0, 0, 0] = p2f_b[0, 0, 0] = 4
    ref = p2f_a.copy()
    ref[1, 2, 3] = 9
    diffs = differing_pixels(p2f_a, depth_a, p2f_b, depth_b, ref, names=("numba", "torch"))
    assert [(d.image, d.row, d.col) for d in diffs] == [(0, 1, 1), (1, 0, 0), (1, 2, 3)]
    tie, near, edge = diffs
    assert tie.reason.startswith("depth tie: faces 5 (numba) and 7 (torch)")
    assert tie.reason.endswith("the reference rasterizer gives face 5 (numba)")
    assert near.reason.startswith("nearer face differs: 2 at 500 mm (numba), 3 at 510 mm (torch)")
    assert edge.reason.startswith("edge: face 9 covers the pixel centre on torch only")
    assert edge.reason.endswith("gives face 9 (torch)")
    assert differing_pixels(p2f_a, depth_a, p2f_a, depth_a) == []
    assert labels_identical(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    assert not labels_identical(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.int8))


def test_the_reference_answers_only_for_the_images_it_rendered():
    p2f_a = np.full((3, 4, 6), -1)
    p2f_b = p2f_a.copy()
    depth = np.full((3, 4, 6), -1.0)
    p2f_b[0, 1, 2] = 3  # image 0: the reference (its own 4 x 3 image) covers it with face 3
    p2f_b[1, 2, 5] = 4  # image 1: beyond the reference's 4 x 3 image, i.e. background
    p2f_b[2, 0, 0] = 6  # image 2: not given to the reference
    diffs = differing_pixels(p2f_a, depth, p2f_b, depth, names=("numba", "torch"))
    ref = np.full((2, 4, 3), -1)
    ref[0, 1, 2] = 3
    out = [checks.with_reference(d, ref, [0, 1]) for d in diffs]
    assert [d.face_ref for d in out] == [3, -1, None]
    assert out[0].reason.endswith("gives face 3 (torch)")
    assert out[1].reason.endswith("gives face -1 (numba)")
    assert out[2] == diffs[2]


def test_loss_agreement_is_the_largest_relative_step_difference():
    assert checks.loss_agreement([2.0, 4.0], [2.1, 3.9]) == pytest.approx(0.05)
    assert checks.loss_agreement([2.0], [float("nan")]) == float("inf")
    assert checks.loss_agreement([2.0, 1.0], [2.0]) == float("inf")


# ---------------------------------------------------------------- the checks, on the CPU


def test_torch_rasterizer_on_cpu_equals_numba_on_split_scenes(synthetic_root):
    scenes = checks.split_scenes(synthetic_root, "train", 2)
    assert scenes.verts.shape[0] == 2 and 0 < scenes.split < len(scenes.faces)
    r = checks.raster_check(scenes, "cpu", repeats=1)
    assert r.status == PASS, r.note
    assert r.figures["labels byte-identical"] is True
    assert r.figures["differing pixels (pix_to_face)"] == 0
    assert r.figures["torch on cpu masks/s"] > 0


def test_build_check_on_cpu_gives_the_numba_bytes(synthetic_root, tmp_path):
    r = checks.build_check(synthetic_root, "train", "cpu", tmp_path, limit=2)
    assert r.status == PASS, r.note
    assert r.figures["images"] == 2 and r.figures["same datasets as the numba build"] is True
    assert 0 < r.figures["CPU-side share of the build"] < 1


def test_two_training_steps_with_bf16_autocast_agree_with_fp32():
    cfg = _train_config(TINY_CPU)
    assert cfg.network.input_size == 64
    r = checks.train_check(cfg, "cpu", batch=2, steps=2, modes=("bf16",))
    assert r.status == PASS, r.figures
    diff = r.figures["bf16: loss vs fp32 (max rel., tol 0.05)"]
    assert 0 < diff <= checks.LOSS_TOLERANCE[torch.bfloat16]  # bf16 does change the numbers
    assert len(r.details["reference_losses"]) == 2
    assert all(np.isfinite(r.details["reference_losses"]))


def test_synthetic_batch_is_valid_and_repeatable():
    a = checks.synthetic_batch(3, 64, 5, torch.device("cpu"))
    b = checks.synthetic_batch(3, 64, 5, torch.device("cpu"))
    assert torch.equal(a.image, b.image) and torch.equal(a.segm_target, b.segm_target)
    assert a.segm_target.shape == (3, 32, 32) and int(a.segm_target.max()) <= 32
    assert a.targets.joint_valid.all() and a.targets.rel_root_valid.all()
    xy = a.targets.joints_hm[..., :2]
    assert (xy >= 0).all() and (xy < 64 / 4).all()  # heatmap cells of a 64 px input
    assert all(t.dtype != torch.float64 for t in vars(a.targets).values())


def test_inference_check_on_cpu():
    cfg = _train_config(TINY_CPU)
    r = checks.inference_check(cfg, "cpu", batches=(1, 2), repeats=1)
    assert r.status == PASS
    assert set(r.figures) == {"fp32, batch 1: images/s", "fp32, batch 2: images/s"}


def test_torchrun_worker_runs_the_trainers_setup_on_loopback():
    r = checks.ddp_check("cpu", procs=1, timeout_s=300)
    assert r.status == PASS, r.note
    assert r.figures["backend"] == "gloo" and r.figures["ranks reporting"] == 1
    (report,) = r.details["reports"]
    assert report["mean"] == 1.0 and report["grad"] == pytest.approx(4.0)


def test_tiny_settings_keep_every_check():
    assert TINY_CPU.checks == ("raster", "build", "train", "inference", "ddp")
    assert replace(TINY_CPU, device="cuda").device == "cuda"
