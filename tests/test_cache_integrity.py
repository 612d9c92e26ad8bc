"""The mask cache proves it belongs to its data and is undamaged; build-masks survives full disks,
kills and odd outputs with one line (issue 12, the cache and render half).

References are independent of the code under test: binascii's CRC-32, the raw JSON files, the
process table in /proc, and builds that were never interrupted.
"""

import errno
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from cli.render_app import main as render_main
from core.errors import DigitError
from core.interhand.reader import InterHandSplit
from core.mask_cache import MaskCache
from digit.data.dataset import InterHandDataset
from render.mask_cache import builder as builder_module
from render.mask_cache.builder import build_masks
from render.mask_cache.merge import merge_shards
from render.mask_cache.pieces import PartialDir, partial_dir_for
from render.mask_cache.show import show_mask
from render.mask_cache.verify import verify_cache

REPO = Path(__file__).resolve().parents[1]


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["digit-render", *args])
    with pytest.raises(SystemExit) as exc:
        render_main()
    return exc.value.code, capsys.readouterr().err


# A progress bar's line: its bar ("━", or blanks when rich draws it before the first advance)
# then "done/total elapsed eta remaining" (core.progress).
_BAR_LINE = re.compile(r"━|\b\d+/\d+ +\d+:\d\d:\d\d +eta\b")


def one_error_line(err: str) -> str:
    """The one error line of stderr (progress bars may precede it), no traceback."""
    lines = [
        x
        for x in err.strip().splitlines()
        if not _BAR_LINE.search(x) and not x.startswith("resuming")
    ]
    assert len(lines) == 1 and lines[0].startswith("digit-render: error: "), err
    assert "Traceback" not in err
    return lines[0]


def copy_root(src: Path, dst: Path) -> Path:
    """Another data root: own annotations (editable), the same images and MANO files."""
    dst.mkdir(parents=True)
    shutil.copytree(src / "annotations", dst / "annotations")
    for name in ("images", "mano"):
        (dst / name).symlink_to(src / name)
    shutil.copy(src / "SYNTHETIC.json", dst / "SYNTHETIC.json")
    return dst


def annotation(root: Path, kind: str, split: str = "train") -> Path:
    return root / "annotations" / split / f"InterHand2.6M_{split}_{kind}.json"


def edit_json(path: Path, change) -> None:
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))


@pytest.fixture(scope="module")
def small_cache(synthetic_root, tmp_path_factory) -> Path:
    """The first 6 train images, pieces of 2."""
    out = tmp_path_factory.mktemp("small") / "masks_train.first6.h5"
    build_masks("train", synthetic_root, out=out, limit=6, piece_size=2, show_progress=False)
    return out


# --------------------------------------------------------------------------- 1: pairing
def test_masks_of_another_dataset_are_refused_by_every_reader(
    synthetic_root, mask_cache_train, tmp_path
):
    other = copy_root(synthetic_root, tmp_path / "other")
    data_json = annotation(other, "data")

    def rename(raw):  # same image ids, other files: what a different dataset looks like
        for im in raw["images"][:2]:
            im["file_name"] = im["file_name"].replace(".jpg", "_b.jpg")

    edit_json(data_json, rename)
    with pytest.raises(DigitError) as exc:
        InterHandDataset(other, "train", masks=mask_cache_train, train=True)
    message = str(exc.value)
    assert str(mask_cache_train) in message and str(data_json) in message
    assert "--overwrite" not in message  # never advise replacing a cache with other data's
    with pytest.raises(DigitError, match=str(data_json)):
        show_mask(mask_cache_train, 0, tmp_path / "x.png", data_root=other)
    report = verify_cache(mask_cache_train, data_root=other, sample=0, show_progress=False)
    assert not report.ok and f"{data_json}: sha256 differs" in report.text()
    # the cache's own data still pairs
    ds = InterHandDataset(synthetic_root, "train", masks=mask_cache_train, train=True)
    assert ds.has_masks and (ds._cache_row >= 0).all()


def test_a_limit_cache_advice_keeps_the_file(synthetic_root, small_cache):
    with pytest.raises(DigitError) as exc:
        InterHandDataset(synthetic_root, "train", masks=small_cache, train=True)
    message = str(exc.value)
    assert "lacks" in message and "--overwrite" not in message
    # the advised build writes the data root's own cache, not over the --limit file
    assert f"--data-root {synthetic_root}`" in message and "--out" not in message


# --------------------------------------------------------------------------- 2: integrity
def test_an_older_format_is_refused_with_the_rebuild_command(small_cache, tmp_path):
    old = tmp_path / "old.h5"
    shutil.copyfile(small_cache, old)
    with h5py.File(old, "r+") as f:
        f.attrs["format_version"] = 1
        del f["mask_crc32"], f["visible_px"]
    with pytest.raises(DigitError) as exc:
        MaskCache(old)
    message = str(exc.value)
    assert message.startswith(f"{old}: mask cache format 1")
    assert "digit-render build-masks --split train --data-root" in message
    assert f"--out {old} --limit 6 --overwrite" in message


def damage_chunk(path: Path, i: int) -> None:
    """Flip one byte in the middle of image i's compressed chunk."""
    with h5py.File(path, "r+") as f:
        mask_filter, raw = f["masks"].id.read_direct_chunk((i, 0, 0))
        raw = bytearray(raw)
        raw[len(raw) // 2] ^= 0xFF
        f["masks"].id.write_direct_chunk((i, 0, 0), bytes(raw), mask_filter)


def test_damage_is_found_by_verify_and_readers(small_cache, tmp_path):
    with h5py.File(small_cache, "r") as f:
        hands = f["hands"][...]
        crc = f["mask_crc32"][...]
        hw = f["image_hw"][...]
        masks = f["masks"][...]
    for i, (h, w) in enumerate(hw):  # the stored checksum is the standard CRC-32
        import binascii

        assert int(crc[i]) == binascii.crc32(masks[i, :h, :w].tobytes())
    zeroed, flipped = 1, 3
    assert masks[zeroed].any()
    bad = tmp_path / "bad.h5"
    shutil.copyfile(small_cache, bad)
    with h5py.File(bad, "r+") as f:
        f["masks"][zeroed] = 0  # a clean chunk, wrong contents
    damage_chunk(bad, flipped)
    report = verify_cache(bad, sample=0, show_progress=False)  # no re-rendering at all
    text = report.text()
    assert not report.ok
    assert f"image {zeroed}: crc32" in text and f"image {flipped}: " in text
    assert "a sample of 0 of 6 images" in text and "--full" in text
    with MaskCache(bad) as cache:
        for i in (zeroed, flipped):
            with pytest.raises(DigitError) as exc:
                cache.mask(i)
            message = str(exc.value)
            assert message.startswith(f"{bad}: image {i} (") and "damaged" in message
            assert "\n" not in message
        assert cache.mask(0).shape == tuple(hw[0])  # the others still read
    assert hands.any()


def test_verify_full_re_renders_every_image(monkeypatch, capsys, small_cache):
    def verify(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["digit-render", "verify", str(small_cache), *args])
        with pytest.raises(SystemExit) as exc:
            render_main()
        return exc.value.code, capsys.readouterr().out

    code, out = verify("--full")
    assert code == 0 and "re-render: ok (all 6 images byte-identical)" in out
    code, out = verify("--sample", "2")
    assert code == 0 and "a sample of 2 of 6 images byte-identical" in out and "--full" in out


def test_merge_refuses_a_damaged_shard(synthetic_root, tmp_path):
    shards = []
    for k in range(2):
        out = build_masks(
            "train", synthetic_root, out=tmp_path / f"s{k}.h5", limit=4, shard=f"{k}/2",
            piece_size=2, show_progress=False,
        ).out  # fmt: skip
        shards.append(out)
    damage_chunk(shards[1], 1)
    merged = tmp_path / "merged.h5"
    with pytest.raises(DigitError) as exc:
        merge_shards(shards, merged, show_progress=False)
    assert str(exc.value).startswith(f"{shards[1]}: image 1 is damaged")
    assert not merged.exists() and not list(tmp_path.glob("merged.h5.tmp-*"))


# --------------------------------------------------------------------------- 4: full disk
def enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def build_args(root: Path, out: Path) -> list[str]:
    return ["build-masks", "--split", "train", "--data-root", str(root), "--out", str(out)]


def test_full_disk_while_writing_pieces_then_resume(
    monkeypatch, capsys, synthetic_root, small_cache, tmp_path
):
    out = tmp_path / "masks_train.h5"
    real = builder_module.write_piece
    calls = []

    def fill_up(path, result):
        calls.append(path)
        if len(calls) > 1:
            enospc()
        real(path, result)

    monkeypatch.setattr(builder_module, "write_piece", fill_up)
    args = [*build_args(synthetic_root, out), "--limit", "6", "--piece-size", "2"]
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 1 and "no space left" in one_error_line(err)
    assert not out.exists() and not list(tmp_path.rglob("*.tmp-*"))
    monkeypatch.setattr(builder_module, "write_piece", real)  # space freed
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0 and "resuming" in err
    assert_same_masks(out, small_cache)


def assert_same_masks(a: Path, b: Path) -> None:
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for name in ("masks", "image_id", "mask_crc32", "visible_px", "hands", "valid"):
            assert fa[name][...].tobytes() == fb[name][...].tobytes(), name


def test_full_disk_while_assembling_then_resume(
    monkeypatch, capsys, synthetic_root, small_cache, tmp_path
):
    from render.mask_cache import assemble as assemble_module

    out = tmp_path / "masks_train.h5"
    real = assemble_module._copy_block
    calls = []

    def fill_up(*a, **k):
        calls.append(1)
        if len(calls) > 1:
            enospc()
        return real(*a, **k)

    monkeypatch.setattr(assemble_module, "_copy_block", fill_up)
    args = [*build_args(synthetic_root, out), "--limit", "6", "--piece-size", "2"]
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 1 and "no space left" in one_error_line(err)
    assert not out.exists() and not list(tmp_path.rglob("*.tmp-*"))
    assert len(list(partial_dir_for(out).glob("piece-*.h5"))) == 3  # the work is kept
    monkeypatch.setattr(assemble_module, "_copy_block", real)
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0 and "3 of 3 pieces already done" in err
    assert_same_masks(out, small_cache)


def test_too_little_free_space_is_refused_before_writing(
    monkeypatch, capsys, synthetic_root, tmp_path
):
    out = tmp_path / "masks_train.h5"
    real = shutil.disk_usage

    def tiny(path):
        return real(path)._replace(free=4096)

    monkeypatch.setattr(shutil, "disk_usage", tiny)
    code, err = run_cli(monkeypatch, capsys, *build_args(synthetic_root, out), "--limit", "4")
    assert code == 1 and "not enough free space" in one_error_line(err)
    assert not out.exists() and not list(tmp_path.rglob("*.tmp-*"))


# --------------------------------------------------------------------------- 6: orphans
KILLED_WORKERS = """
import sys, time
from pathlib import Path
import render.mask_cache.builder as b
real = b.render_piece_file
def slow(ctx, spec, inp, path):  # runs in the workers (pickled by value)
    out = real(ctx, spec, inp, path)
    time.sleep(60)
    return out
b.render_piece_file = slow
b.build_masks("train", Path(sys.argv[1]), out=Path(sys.argv[2]), workers=2, limit=8,
              piece_size=2, show_progress=False)
"""


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_die_with_a_killed_build(synthetic_root, tmp_path):
    out = tmp_path / "masks_train.h5"
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_WORKERS), str(synthetic_root), str(out)],
        cwd=REPO,
        stderr=subprocess.PIPE,
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while not list(partial_dir_for(out).glob("piece-*.h5")):  # the workers are working
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        workers = [
            p
            for p in children(proc.pid)
            if b"loky" in Path(f"/proc/{p}/cmdline").read_bytes()
            and b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()
        ]
        assert len(workers) == 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 5
    while any(running(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [p for p in workers if running(p)]
    for p in alive:  # do not leave them behind on failure
        os.kill(p, signal.SIGKILL)
    assert not alive, "worker processes outlived the killed build"


def test_a_leftover_partial_folder_is_removed_with_a_line(
    monkeypatch, capsys, synthetic_root, tmp_path
):
    out = tmp_path / "masks_train.h5"
    # killed between the final rename and the folder's removal: the folder stays, unlocked
    monkeypatch.setattr(PartialDir, "remove", PartialDir.close)
    build_masks("train", synthetic_root, out=out, limit=2, show_progress=False)
    assert partial_dir_for(out).is_dir() and out.is_file()
    monkeypatch.undo()
    code, err = run_cli(monkeypatch, capsys, *build_args(synthetic_root, out), "--limit", "2")
    assert f"removed {partial_dir_for(out)}" in err
    assert not partial_dir_for(out).exists() and out.is_file()
    assert code == 1 and "a mask cache of the first 2 images exists" in err


# --------------------------------------------------------------------------- 7: one line
def test_output_under_a_file_is_one_line(monkeypatch, capsys, synthetic_root, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = run_cli(monkeypatch, capsys, *build_args(synthetic_root, blocker / "m.h5"))
    assert code == 1 and f"{blocker} is a file" in one_error_line(err)
    code, err = run_cli(
        monkeypatch, capsys, "make-synthetic", "--out", str(blocker / "root"), "--captures", "1",
        "--no-images", "--workers", "1",
    )  # fmt: skip
    assert code == 1 and f"{blocker} is a file" in one_error_line(err)
    code, err = run_cli(
        monkeypatch, capsys, "make-synthetic", "--out", str(blocker), "--no-images",
        "--workers", "1",
    )  # fmt: skip
    assert code == 1 and "is a file, expected a folder" in one_error_line(err)


def test_unwritable_output_folder_is_one_line(monkeypatch, capsys, synthetic_root, tmp_path):
    locked = tmp_path / "locked"
    real_mkdir = Path.mkdir

    def refuse(self, *a, **k):  # what a folder without write permission does (tests run as root)
        if str(self).startswith(str(locked)):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", refuse)
    args = [*build_args(synthetic_root, locked / "sub" / "m.h5"), "--limit", "2"]
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 1 and "Permission denied" in one_error_line(err)


def test_preview_count_zero_is_one_line(monkeypatch, capsys, synthetic_root, tmp_path):
    args = ["preview", "--out", str(tmp_path / "p.png"), "--data-root", str(synthetic_root)]
    code, err = run_cli(monkeypatch, capsys, *args, "--count", "0")
    assert code == 1 and "--count: must be at least 1" in one_error_line(err)


def test_absurd_image_size_is_refused(synthetic_root, tmp_path):
    other = copy_root(synthetic_root, tmp_path / "huge")
    data_json = annotation(other, "data")

    def enlarge(raw):
        raw["images"][0]["width"] = raw["images"][0]["height"] = 200000

    edit_json(data_json, enlarge)
    with pytest.raises(DigitError) as exc:
        InterHandSplit.from_root(other, "train")
    assert str(exc.value).startswith(str(data_json)) and "200000x200000" in str(exc.value)


# --------------------------------------------------------------------------- 8: fits
def test_nan_in_a_mano_fit_names_file_capture_frame_and_hand(synthetic_root, tmp_path):
    other = copy_root(synthetic_root, tmp_path / "nan")
    mano_json = annotation(other, "MANO_NeuralAnnot")
    target = {}

    def poison(raw):
        for capture, frames in raw.items():
            for frame, fits in frames.items():
                if fits and fits.get("left"):
                    fits["left"]["pose"][5] = math.nan
                    target.update(capture=capture, frame=frame)
                    return

    edit_json(mano_json, poison)
    with pytest.raises(DigitError) as exc:
        build_masks("train", other, out=tmp_path / "m.h5", show_progress=False)
    message = str(exc.value)
    assert message.startswith(f"{mano_json}: capture {target['capture']}, frame {target['frame']}")
    assert "left hand" in message


def test_a_hand_that_projects_nowhere_is_counted(synthetic_root, tmp_path):
    other = copy_root(synthetic_root, tmp_path / "far")
    cameras = json.loads(annotation(other, "camera").read_text())
    data = json.loads(annotation(other, "data").read_text())
    mano_json = annotation(other, "MANO_NeuralAnnot")
    mano = json.loads(mano_json.read_text())
    capture, frame = next(
        (c, f) for c, frames in mano.items() for f, fits in frames.items() if fits and fits["right"]
    )
    rot = cameras[capture]["camrot"]
    axes = np.array([np.asarray(r)[2] for r in rot.values()])  # optical axes, world frame
    away = -axes.sum(0) / np.linalg.norm(axes.sum(0))
    assert (axes @ away < 0).all()  # behind every camera of the capture
    centre = np.mean([np.asarray(p) for p in cameras[capture]["campos"].values()], axis=0)
    trans = (centre / 1000 + away * 1e6).tolist()  # metres: 1,000 km behind the cameras

    def move(raw):
        raw[capture][frame]["right"]["trans"] = trans

    edit_json(mano_json, move)
    report = build_masks("train", other, out=tmp_path / "m.h5", show_progress=False)
    rows = [
        i
        for i, im in enumerate(data["images"])
        if str(im["capture"]) == capture and str(im["frame_idx"]) == frame
    ]
    assert rows
    split = InterHandSplit.from_root(other, "train")
    with h5py.File(tmp_path / "m.h5", "r") as f:
        hands, valid, visible = f["hands"][...], f["valid"][...], f["visible_px"][...]
    has = split.frames.has_mano[split.columns.frame_row]
    code = split.columns.hand_type_code
    digit_rule = np.where(
        code == 2, has[:, 0] & has[:, 1], np.where(code == 0, has[:, 0] & ~has[:, 1], has[:, 1])
    )
    digit_rule &= (code == 2) | (code == 0) | ~has[:, 0]
    assert (valid == digit_rule).all()  # DIGIT's rule, unchanged
    assert hands[rows, 0].all() and (visible[rows, 0] == 0).all()
    assert report.unseen[0] >= len(rows)
    others = [i for i in range(len(hands)) if i not in rows and hands[i, 0]]
    assert (visible[others, 0] > 0).mean() > 0.5  # ordinary hands are seen
