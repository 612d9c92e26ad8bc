"""The benchmarks as a careless user meets them (issue 24): zero, negative or NaN options, a bad
results folder, a truncated results file and Ctrl-C are one line and a non-zero exit status
(130 for Ctrl-C), never a traceback or a hang."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import ablation
from benchmarks.options import run_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("module", "argv", "message"),
    [
        (
            "bench_raster",
            ["--repeats", "0"],
            "argument --repeats: expected an integer >= 1, got '0'",
        ),
        (
            "bench_raster",
            ["--depth", "nan"],
            "argument --depth: expected a finite number > 0, got 'nan'",
        ),
        (
            "bench_network",
            ["--batch", "-2"],
            "argument --batch: expected an integer >= 1, got '-2'",
        ),
        ("bench_network", ["--cases", "tiny"], "expected PRESET-SIZE like tiny-128, got 'tiny'"),
        ("bench_masks", ["--frames", "0"], "argument --frames: expected an integer >= 1"),
        ("bench_index", ["--sizes", "0"], "argument --sizes: expected an integer >= 1"),
        ("bench_scaling", ["--workers", "0"], "argument --workers: expected an integer >= 1"),
        (
            "chirality_probe",
            ["--steps", "0"],
            "argument --steps: expected an integer >= 1, got '0'",
        ),
        ("chirality_probe", ["--lr", "0"], "argument --lr: expected a finite number > 0, got '0'"),
        ("ablation", ["--steps", "0"], "argument --steps: expected an integer >= 1, got '0'"),
        ("ablation", ["--variants", "best"], "argument --variants: invalid choice: 'best'"),
        ("ablation", ["--results", ""], "argument --results: empty path; name the folder"),
    ],
)
def test_a_bad_number_is_one_line(module, argv, message, monkeypatch, capsys):
    main = importlib.import_module(f"benchmarks.{module}").main
    monkeypatch.setattr(sys, "argv", [module, *argv])
    with pytest.raises(SystemExit) as exc:
        main(argv) if module in ("ablation", "bench_network", "chirality_probe") else main()
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"{module}: error: ") and message in err


def _no_work(*_args, **_kwargs):
    raise AssertionError("the long work started before the bad option was found")


def test_build_stages_with_a_missing_data_root_is_one_line_and_exit_1(tmp_path):
    missing = tmp_path / "nope"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_build_stages", "--data-root", str(missing)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"bench_build_stages: error: {missing}: data root not found (expected an "
        "InterHand2.6M-layout folder)"
    ]


def test_ablation_checks_its_folders_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ablation, "prepare_data", _no_work)
    (tmp_path / "a_file").write_text("x")
    for option in ("--results", "--runs"):
        code = ablation.main([option, str(tmp_path / "a_file")])
        err = capsys.readouterr().err
        assert (
            code == 1
            and err == f"ablation: error: {option} {tmp_path / 'a_file'}: is a file, not a folder\n"
        )


@pytest.mark.parametrize("mode", ["--report-only", "--rescore"])
def test_a_truncated_results_file_is_one_line(mode, tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "ablation.json").write_text('{"settings": {"steps": 500}, "runs": [{"varia')
    code = ablation.main([mode, "--results", str(results), "--runs", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(
        f"ablation: error: {results / 'ablation.json'}: unreadable results file ("
    )
    (results / "ablation.json").write_text("[1, 2]")
    code = ablation.main([mode, "--results", str(results), "--runs", str(tmp_path / "runs")])
    assert code == 1 and "not an ablation results file" in capsys.readouterr().err


def test_ctrl_c_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ablation, "prepare_data", interrupted)
    code = ablation.main(["--results", str(tmp_path / "r"), "--runs", str(tmp_path / "runs")])
    assert code == 130
    assert (
        capsys.readouterr().err == "ablation: interrupted; every finished run is in ablation.json\n"
    )
    assert run_main("x", lambda: [1, 2]) == 0 and run_main("x", lambda: 3) == 3


def _default_sigint() -> None:
    """In the child: Ctrl-C's default action. A job started in the background by a
    non-interactive shell (`cmd &`) inherits SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler: the benchmark would never see the Ctrl-C this test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_real_ctrl_c_ends_a_benchmark_with_130(tmp_path):
    # 2 million images: about a minute of writing, far longer than the test waits, and a bounded
    # amount of memory should the interrupt be missed (the child is killed below either way)
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_index", "--sizes", "2000000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=_default_sigint,
    )
    try:
        assert proc.stdout.readline().startswith("cameras per frame")  # its main is running
        time.sleep(0.5)  # inside the work (writing a large split)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "bench_index: interrupted" and "Traceback" not in err
