"""Training runs that cannot trample each other or lose data (issue 12): the run-folder lock,
leftovers of a killed checkpoint write, bad training images and mask chunks, bad numbers in a
config, and the words of the NaN stop."""

from __future__ import annotations

import os
import shutil
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
from digit.train import TrainConfig, train

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


# ---- unreadable training images and mask chunks -------------------------------------------------


@pytest.fixture
def damaged_root(tmp_path, synthetic_root):
    """A copy of the small synthetic dataset whose train images 1 (truncated) and 4 (deleted)
    cannot be read (the session's dataset stays intact)."""
    from core.interhand.reader import InterHandSplit

    root = tmp_path / "data"
    shutil.copytree(synthetic_root, root, ignore=shutil.ignore_patterns("masks"))
    split = InterHandSplit.from_root(root, "train")
    cut, gone = split.image_path(1), split.image_path(4)
    cut.write_bytes(cut.read_bytes()[:300])
    gone.unlink()
    return root, [cut, gone]


def _real(tmp_path, root, masks, **overrides):
    base = dict(
        out=str(tmp_path / "run"), data_root=str(root), masks=str(masks.parent), input_size=64,
        batch_size=2, num_workers=0, train_limit=8, eval_every=0, save_every=0, log_every=1,
        max_steps=4, amp="off", device="cpu", augment=False,
    )  # fmt: skip
    return TrainConfig.preset_config("tiny").updated(base | overrides)


def _listed(run_dir: Path) -> list[str]:
    return (run_dir / "bad_images.txt").read_text().splitlines()


def test_bad_images_are_skipped_counted_and_listed(tmp_path, damaged_root, mask_cache_train, capfd):
    """An epoch over 8 images, 2 unreadable: training goes on, each bad one is one counted
    warning and one line of bad_images.txt naming its file; a resume keeps the list."""
    root, bad = damaged_root
    cfg = _real(tmp_path, root, mask_cache_train, max_bad_images=2, num_workers=1)
    result = train(cfg, show_progress=True)
    assert result.step == 4
    lines = _listed(tmp_path / "run")
    assert len(lines) == 2 and all(("\n" not in x) for x in lines)
    assert sorted(next(str(p) for p in bad if str(p) in x) for x in lines) == sorted(map(str, bad))
    err = capfd.readouterr().err
    assert err.count("skipped a bad training sample") == 2 and "2 so far, 2 allowed" in err
    # a second epoch meets the same two files: listed once, still within the limit
    result = train(cfg.updated({"max_steps": 8, "num_workers": 0}), resume=True)
    assert result.step == 8 and _listed(tmp_path / "run") == lines


@pytest.mark.parametrize("limit", [1, 0.1])
def test_too_many_bad_images_stop_the_run_with_one_line(
    tmp_path, damaged_root, mask_cache_train, limit
):
    root, _ = damaged_root
    cfg = _real(tmp_path, root, mask_cache_train, max_bad_images=limit)  # 1, or 10 % of 8 = 0
    with pytest.raises(DigitError) as err:
        train(cfg, show_progress=False)
    msg = str(err.value)
    assert "\n" not in msg and "--max-bad-images" in msg
    assert str(tmp_path / "run" / "bad_images.txt") in msg
    assert len(_listed(tmp_path / "run")) == (2 if limit == 1 else 1)


def test_a_damaged_mask_chunk_is_skipped_like_a_bad_image(
    tmp_path, synthetic_root, mask_cache_train, monkeypatch
):
    """The mask cache reader raises one DigitError line for a damaged chunk; training skips
    that sample and lists it."""
    from core.mask_cache import MaskCache

    read = MaskCache.mask

    def damaged(self, row):
        if int(self.image_id[row]) == damaged_id:
            raise DigitError(f"{self.path}: image {damaged_id}: damaged mask chunk (crc32)")
        return read(self, row)

    with MaskCache(mask_cache_train) as cache:
        damaged_id = int(cache.image_id[2])
    monkeypatch.setattr(MaskCache, "mask", damaged)
    cfg = _real(tmp_path, synthetic_root, mask_cache_train, max_bad_images=0.2)
    assert train(cfg, show_progress=False).step == 4
    assert _listed(tmp_path / "run") == [
        f"{mask_cache_train}: image {damaged_id}: damaged mask chunk (crc32)"
    ]


def test_dataset_replaces_an_unreadable_sample_only_when_training(damaged_root, mask_cache_train):
    from digit.data.dataset import InterHandDataset

    root, bad = damaged_root
    common = dict(masks=mask_cache_train, input_size=64, limit=8)
    train_set = InterHandDataset(root, "train", train=True, **common)
    item = train_set[1]  # image 1 is truncated: item 2 stands in
    assert int(item["index"]) == int(train_set[2]["index"]) and len(item["skipped"]) == 1
    assert str(bad[0]) in item["skipped"][0]
    assert "skipped" not in train_set[0]
    plain = InterHandDataset(root, "train", train=False, **common)
    with pytest.raises(DigitError, match="cannot read image"):
        plain[1]


def test_a_digit_error_from_a_loader_worker_is_one_line(tmp_path):
    """Validation and evaluation do not skip images: a bad one reaches the user as its own
    line, not as the worker's traceback."""
    from torch.utils.data import DataLoader

    from core.errors import one_line
    from core.image_io import load_rgb

    class Broken(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return load_rgb(tmp_path / "gone.jpg")

    with pytest.raises(DigitError) as err:
        next(iter(DataLoader(Broken(), num_workers=1)))
    assert "\n" in str(err.value)  # what torch makes of it
    assert one_line(err.value) == f"{tmp_path / 'gone.jpg'}: image not found"


def test_max_bad_images_option_forms():
    from digit.train.bad_images import allowed_bad_images, parse_max_bad_images

    assert parse_max_bad_images("5") == 5 and parse_max_bad_images("0.01") == 0.01
    assert parse_max_bad_images("2%") == pytest.approx(0.02)
    assert allowed_bad_images(0.01, 6369) == 63 and allowed_bad_images(7, 10) == 7
    assert allowed_bad_images(0.25, 8) == 2 and allowed_bad_images(1.0, 8) == 8
    for bad in ("-1", "1.5", "lots", "nan"):
        with pytest.raises(DigitError, match="--max-bad-images"):
            parse_max_bad_images(bad)
    with pytest.raises(DigitError, match="max_bad_images"):
        TrainConfig.preset_config("tiny").updated({"max_bad_images": 3.0})
