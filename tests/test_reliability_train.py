"""Training runs that cannot trample each other or lose data (issue 12): the run-folder lock,
leftovers of a killed checkpoint write, bad training images and mask chunks, bad numbers in a
config, and the words of the NaN stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from test_train import FakeSet, read_metrics, run, tiny

from core.errors import DigitError

# A process that holds the run folder's lock the way a live digit-train does, until killed.
HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print("locked", flush=True)
time.sleep(120)
"""


def _hold_lock(run_dir: Path) -> subprocess.Popen:
    run_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir / "train.lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


# ---- the run-folder lock ------------------------------------------------------------------------


def test_a_live_run_locks_its_folder_and_a_dead_one_does_not(tmp_path):
    run_dir = tmp_path / "run"
    cfg = tiny(tmp_path, max_steps=1)
    holder = _hold_lock(run_dir)
    try:
        with pytest.raises(DigitError) as err:
            run(cfg, FakeSet(4))
        msg = str(err.value)
        assert "\n" not in msg and str(run_dir) in msg and str(holder.pid) in msg
        assert sorted(p.name for p in run_dir.iterdir()) == ["train.lock"]  # nothing written
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the kernel dropped the dead holder's lock: the next run goes ahead
    result = run(cfg, FakeSet(4))
    assert result.step == 1 and (run_dir / "last.pt").is_file()


class SlowSet(FakeSet):
    """FakeSet that takes its time, so a second run can start while the first trains."""

    def __getitem__(self, i: int) -> dict:
        time.sleep(0.05)
        return super().__getitem__(i)


def test_two_runs_on_one_folder_keep_one_whole_run(tmp_path):
    """The first run trains to the end with its own config, checkpoint and metrics; the second,
    started meanwhile with another variant, is refused without writing anything."""
    first = tiny(tmp_path, max_steps=6)
    second = tiny(tmp_path, max_steps=6, variant="baseline")
    outcome: dict = {}

    def train_first() -> None:
        outcome["first"] = run(first, SlowSet(8))

    thread = threading.Thread(target=train_first)
    thread.start()
    run_dir = tmp_path / "run"
    deadline = time.monotonic() + 60
    while not (run_dir / "config.yaml").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(DigitError, match="another digit-train run"):
        run(second, FakeSet(8))
    thread.join()
    assert outcome["first"].step == 6
    assert "variant: digit" in (run_dir / "config.yaml").read_text()
    saved = torch.load(run_dir / "last.pt", weights_only=True)
    assert saved["config"]["variant"] == "digit" and saved["step"] == 6
    steps = [r["step"] for r in read_metrics(run_dir) if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert run(first.updated({"max_steps": 7}), FakeSet(8), resume=True).step == 7


# ---- leftovers of a killed checkpoint write -----------------------------------------------------


def test_leftover_checkpoint_writes_are_removed_with_a_line(tmp_path, capfd):
    run_dir = tmp_path / "run"
    cfg = tiny(tmp_path, max_steps=2)
    # killed while writing its very first checkpoint: only the temporary file is there
    run_dir.mkdir()
    (run_dir / "last.pt.tmp-424242").write_bytes(b"half a checkpoint")
    run(cfg, FakeSet(4))
    err = capfd.readouterr().err
    assert "last.pt.tmp-424242" in err and str(run_dir) in err
    assert not list(run_dir.glob("*.tmp-*"))
    # killed later, while replacing last.pt and best.pt: --resume cleans them up too
    for name in ("last.pt.tmp-515151", "best.pt.tmp-515151"):
        (run_dir / name).write_bytes(b"x" * 1000)
    keep = run_dir / "notes.tmp-1.txt"  # not a checkpoint write: left alone
    keep.write_text("mine")
    run(cfg.updated({"max_steps": 3}), FakeSet(4), resume=True)
    err = capfd.readouterr().err
    assert "best.pt.tmp-515151" in err and "last.pt.tmp-515151" in err
    assert sorted(p.name for p in run_dir.glob("*.tmp-*")) == ["notes.tmp-1.txt"]
    assert torch.load(run_dir / "last.pt", weights_only=True)["step"] == 3


# ---- the NaN stop's words -----------------------------------------------------------------------


def test_nan_stop_before_any_checkpoint_says_there_is_none(tmp_path):
    cfg = tiny(tmp_path, max_steps=3)
    with pytest.raises(DigitError) as err:
        run(cfg, FakeSet(4, nan=True))
    msg = str(err.value)
    assert "step 1" in msg and "no checkpoint" in msg and "last good" not in msg
    assert not (tmp_path / "run" / "last.pt").exists()


# ---- bad numbers in a config --------------------------------------------------------------------


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "-0.001"])
def test_non_finite_or_negative_lr_in_a_config_is_one_line(tmp_path, value):
    from digit.train import resolve_config

    path = tmp_path / "c.yaml"
    path.write_text(f"lr: {value}\n")
    with pytest.raises(DigitError) as err:
        resolve_config(None, path, {})
    msg = str(err.value)
    assert msg.startswith(f"{path}: lr:") and "\n" not in msg


def test_cli_refuses_nan_lr_with_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: .nan\nweight_joints: .inf\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from cli.train_app import main; main()",
            "--config",
            str(path),
            "--data-root",
            str(tmp_path / "no-data"),
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"digit-train: error: {path}: lr:")
    assert result.stderr.strip().count("\n") == 0
