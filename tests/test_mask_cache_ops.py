"""The mask cache's operations: resuming after a real kill, workers, shards and merge, --limit,
verify, show, and one clear error line for each kind of bad input."""

import json
import os
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
import torch
from PIL import Image

from cli.render_app import main as render_main
from core.errors import DigitError
from core.mask_cache import DATASETS, MaskCache
from render.mask_cache.builder import build_masks, default_output
from render.mask_cache.merge import merge_shards
from render.mask_cache.pieces import PartialDir, partial_dir_for
from render.mask_cache.show import show_mask
from render.mask_cache.verify import verify_cache

REPO = Path(__file__).resolve().parents[1]


def assert_same_datasets(a: Path, b: Path) -> None:
    """Every dataset equal byte for byte: stored mask chunks and decoded values."""
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        assert set(fa.keys()) == set(fb.keys()) == set(DATASETS)
        for name in DATASETS:
            da, db = fa[name], fb[name]
            assert da.dtype == db.dtype and da.shape == db.shape, name
            if name == "file_name":
                assert da.asstr()[...].tolist() == db.asstr()[...].tolist()
            else:
                assert da[...].tobytes() == db[...].tobytes(), name
        ma, mb = fa["masks"], fb["masks"]
        assert ma.chunks == mb.chunks and ma.compression_opts == mb.compression_opts
        for i in range(ma.shape[0]):
            assert ma.id.read_direct_chunk((i, 0, 0)) == mb.id.read_direct_chunk((i, 0, 0))


# --------------------------------------------------------------------------- resume
KILLED_BUILD = """
import os, sys, time
from pathlib import Path
real_replace = os.replace
def slow_replace(src, dst):  # make each piece take a while, killed files caught in flight
    time.sleep(0.25)
    real_replace(src, dst)
os.replace = slow_replace
from render.mask_cache.builder import build_masks
build_masks("train", Path(sys.argv[1]), out=Path(sys.argv[2]), piece_size=2, show_progress=False)
"""


def test_resume_after_sigkill_gives_the_same_file(synthetic_root, mask_cache_train, tmp_path):
    out = tmp_path / "killed" / "masks_train.h5"
    partial = partial_dir_for(out)
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_BUILD), str(synthetic_root), str(out)],
        cwd=REPO,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(partial.glob("piece-*.h5"))) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.1)  # now mid-way through a piece
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()  # the final path never holds a partial file
    finished = len(list(partial.glob("piece-*.h5")))
    assert 3 <= finished < 18
    report = build_masks("train", synthetic_root, out=out, piece_size=2, show_progress=False)
    assert report.resumed >= 3 and report.pieces == 18
    assert not partial.exists() and not list(out.parent.glob("*.tmp-*"))
    # the uninterrupted run used pieces of 8: contents do not depend on the piece layout
    assert_same_datasets(out, mask_cache_train)


def test_resume_with_other_settings_is_refused(synthetic_root, tmp_path):
    out = tmp_path / "masks_train.h5"
    PartialDir.open(out, {"started": "with other settings"}).close()
    with pytest.raises(DigitError, match=r"started with other settings.*--overwrite"):
        build_masks("train", synthetic_root, out=out, limit=4, show_progress=False)
    # --overwrite discards work in progress that does not match
    report = build_masks(
        "train", synthetic_root, out=out, limit=4, overwrite=True, show_progress=False
    )
    assert report.images == 4 and not partial_dir_for(out).exists()


# --------------------------------------------------------------------------- scale-out
def test_shards_workers_and_merge_equal_a_single_run(synthetic_root, mask_cache_train, tmp_path):
    shards = []
    for k in range(3):
        workers = 2 if k == 1 else 1  # one shard through joblib worker processes
        out = build_masks(
            "train",
            synthetic_root,
            out=tmp_path / f"shard{k}.h5",
            shard=f"{k}/3",
            workers=workers,
            piece_size=3,
            show_progress=False,
        ).out
        with h5py.File(out, "r") as f:
            sel = json.loads(f.attrs["selection"])
            assert sel["shard"] == [k, 3] and sel["total"] == 36
            assert (sel["start"], sel["stop"]) == (12 * k, 12 * k + 12)
        shards.append(out)
    merged = tmp_path / "merged.h5"
    merge_shards([shards[2], shards[0], shards[1]], merged, show_progress=False)
    assert_same_datasets(merged, mask_cache_train)
    with h5py.File(merged, "r") as f, h5py.File(mask_cache_train, "r") as g:
        assert "selection" not in f.attrs and bool(f.attrs["complete"])
        for key in ("annotations", "mano", "renderer", "part_labels", "classes", "split"):
            assert f.attrs[key] == g.attrs[key]
    with pytest.raises(DigitError, match=r"shards 1/3 missing"):
        merge_shards([shards[0], shards[2]], tmp_path / "m2.h5", show_progress=False)
    with pytest.raises(DigitError, match=r"given twice"):
        merge_shards([*shards, shards[0]], tmp_path / "m3.h5", show_progress=False)
    with pytest.raises(DigitError, match=r"not a shard file"):
        merge_shards([*shards, mask_cache_train], tmp_path / "m4.h5", show_progress=False)
    with pytest.raises(DigitError, match=r"exists"):
        merge_shards(shards, merged, show_progress=False)


def test_limit_takes_the_first_images(synthetic_root, mask_cache_train, tmp_path):
    out = tmp_path / "first5.h5"
    build_masks("train", synthetic_root, out=out, limit=5, show_progress=False)
    with h5py.File(out, "r") as f, h5py.File(mask_cache_train, "r") as g:
        assert json.loads(f.attrs["selection"])["limit"] == 5
        for name in DATASETS:
            if name != "file_name":
                assert f[name][...].tobytes() == g[name][:5].tobytes(), name
    root = Path("/data")
    assert default_output(root, "val") == root / "masks" / "masks_val.h5"
    assert default_output(root, "train", (3, 16)).name == "masks_train.shard-03-of-16.h5"
    assert default_output(root, "train", None, 100).name == "masks_train.first100.h5"


# --------------------------------------------------------------------------- verify / show
def test_verify_passes_a_good_file_and_catches_changes(mask_cache_train, tmp_path):
    report = verify_cache(mask_cache_train, sample=36, show_progress=False)
    assert report.ok, report.text()
    bad = tmp_path / "bad.h5"
    shutil.copyfile(mask_cache_train, bad)
    with h5py.File(bad, "r+") as f:
        h, w = f["image_hw"][7]
        m = f["masks"][7]
        m[h // 2, w // 2] = 40  # out of range class
        m[0, 0] = 3 if m[0, 0] == 0 else 0  # a changed pixel
        f["masks"][7] = m
        f["valid"][8] = not f["valid"][8]
    report = verify_cache(bad, sample=36, show_progress=False)
    text = report.text()
    assert not report.ok
    assert "image 7: class ids above 32" in text
    assert "image 7: mask differs from a fresh rendering" in text
    assert "valid of image 8" in text


def test_show_draws_image_overlay_and_legend(mask_cache_train, synthetic_root, tmp_path):
    with MaskCache(mask_cache_train) as cache:
        i = int(np.flatnonzero(cache.file["hands"][...].all(1))[0])
        h, w = cache.image_hw[i]
        mask = cache.mask(i)
    out = show_mask(mask_cache_train, i, tmp_path / "show.png")
    picture = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert picture.shape[1] > 2 * w and picture.shape[0] >= h
    top = picture.shape[0] - h  # image and overlay panels sit below the header
    image_panel, overlay_panel = picture[top : top + h, :w], picture[top : top + h, w : 2 * w]
    changed = np.abs(image_panel - overlay_panel).sum(-1) > 0
    # the overlay differs from the image where the mask shows a hand (and where joints are drawn)
    assert changed[mask > 0].mean() > 0.8
    assert changed[mask == 0].mean() < 0.2
    with pytest.raises(DigitError, match="--index"):
        show_mask(mask_cache_train, 10_000, tmp_path / "x.png")


# --------------------------------------------------------------------------- bad input (CLI)
def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["digit-render", *args])
    with pytest.raises(SystemExit) as exc:
        render_main()
    return exc.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mano-dir", "/nonexistent/mano"], "/nonexistent/mano: MANO model files missing"),
        (["--backend", "vulkan"], "--backend: unknown backend 'vulkan'"),
        (["--shard", "3/2"], "--shard 3/2: expected K/N"),
        (["--shard", "two"], "--shard two: expected K/N"),
        (["--workers", "0"], "--workers: must be at least 1"),
        (["--part-labels", "/nonexistent/parts.json"], "part-label file not found"),
    ],
)
def test_cli_bad_options(monkeypatch, capsys, synthetic_root, tmp_path, extra, message):
    args = ["build-masks", "--split", "train", "--data-root", str(synthetic_root)]
    code, err = run_cli(monkeypatch, capsys, *args, "--out", str(tmp_path / "m.h5"), *extra)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("digit-render: error: ") and message in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cli_unavailable_cuda(monkeypatch, capsys, synthetic_root, tmp_path):
    args = ["build-masks", "--split", "train", "--data-root", str(synthetic_root)]
    code, err = run_cli(monkeypatch, capsys, *args, "--device", "cuda")
    assert code == 1 and "--device cuda: CUDA is not available" in err


def test_cli_missing_annotations(monkeypatch, capsys, synthetic_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(synthetic_root / "mano", root / "mano")
    code, err = run_cli(
        monkeypatch, capsys, "build-masks", "--split", "train", "--data-root", str(root)
    )
    assert code == 1 and "InterHand2.6M_train_data.json: file not found" in err
    assert not (root / "masks").exists() or not any((root / "masks").iterdir())


def test_cli_refuses_a_complete_output(monkeypatch, capsys, synthetic_root, mask_cache_train):
    before = os.stat(mask_cache_train).st_mtime_ns
    args = ["build-masks", "--split", "train", "--data-root", str(synthetic_root)]
    code, err = run_cli(monkeypatch, capsys, *args, "--out", str(mask_cache_train))
    assert code == 1 and "a complete mask cache exists (pass --overwrite" in err
    assert os.stat(mask_cache_train).st_mtime_ns == before


def test_cli_build_verify_show(monkeypatch, capsys, synthetic_root, tmp_path):
    out = tmp_path / "cli.h5"
    args = ["build-masks", "--split", "val", "--data-root", str(synthetic_root), "--out", str(out)]
    code, _ = run_cli(monkeypatch, capsys, *args)
    assert code == 0 and out.is_file()
    monkeypatch.setattr(sys, "argv", ["digit-render", "verify", str(out), "--sample", "3"])
    with pytest.raises(SystemExit) as exc:
        render_main()
    assert exc.value.code == 0 and capsys.readouterr().out.strip().endswith("OK")
    with h5py.File(out, "r+") as f:
        f["hands"][0] = ~f["hands"][0]
    code, _ = run_cli(monkeypatch, capsys, "verify", str(out))
    assert code == 1
    png = tmp_path / "s.png"
    code, _ = run_cli(monkeypatch, capsys, "show", str(out), "--index", "2", "--out", str(png))
    assert code == 0 and png.is_file()


def test_part_labels_from_digit_json(synthetic_root, mask_cache_train, tmp_path):
    from core.parts import DIGIT_TO_MANO_PART
    from render.hand_model import HandModel

    n_sealed = HandModel.from_dir(synthetic_root / "mano").num_vertices("right") + 1
    palm = DIGIT_TO_MANO_PART.index(0)  # DIGIT's value for MANO's palm
    labels = tmp_path / "parts.json"
    labels.write_text(json.dumps([palm] * n_sealed))
    out = tmp_path / "palm.h5"
    build_masks(
        "train", synthetic_root, out=out, limit=6, part_labels=str(labels), show_progress=False
    )
    with MaskCache(out) as cache, MaskCache(mask_cache_train) as ref:
        assert cache.attrs.part_labels["source"] == "digit_json"
        for i in range(6):
            m, r = cache.mask(i), ref.mask(i)
            assert set(np.unique(m).tolist()) <= {0, 1, 17}  # every face is a palm face
            # same geometry: same coverage, and each pixel keeps its hand
            assert np.array_equal(m > 0, r > 0)
            assert np.array_equal(m == 17, r >= 17)
            # the fast reader equals h5py's own decoding
            h, w = r.shape
            assert np.array_equal(r, ref.file["masks"][i][:h, :w])


def test_torch_backend_writes_the_same_bytes(synthetic_root, mask_cache_train, tmp_path):
    out = tmp_path / "torch.h5"
    build_masks("train", synthetic_root, out=out, backend="torch", limit=6, show_progress=False)
    with h5py.File(out, "r") as f, h5py.File(mask_cache_train, "r") as g:
        assert json.loads(f.attrs["renderer"])["backend"] == "torch"
        for name in DATASETS:
            if name != "file_name":
                assert f[name][...].tobytes() == g[name][:6].tobytes(), name


def test_cli_shards_with_out_never_write_the_final_name(
    monkeypatch, capsys, synthetic_root, mask_cache_train, tmp_path
):
    """README's recipe with `--out FILE` on every shard (issue 24): each shard writes FILE's
    stem + .shard-K-of-N.h5, FILE appears only when merge joins them, and nothing calls a
    shard a complete mask cache."""
    final = tmp_path / "masks_train.h5"
    base = ["build-masks", "--split", "train", "--data-root", str(synthetic_root)]
    for k in range(2):
        code, _ = run_cli(monkeypatch, capsys, *base, "--shard", f"{k}/2", "--out", str(final))
        assert code == 0
        assert not final.exists()
    shard0 = tmp_path / "masks_train.shard-0-of-2.h5"
    assert shard0.is_file() and (tmp_path / "masks_train.shard-1-of-2.h5").is_file()
    code, err = run_cli(monkeypatch, capsys, *base, "--shard", "0/2", "--out", str(final))
    assert code == 1 and "complete" not in err
    assert f"{shard0}: shard 0/2 of a mask cache (rows 0..18) exists" in err
    from digit.data.dataset import InterHandDataset

    with pytest.raises(
        DigitError, match=r"it is shard 0/2: build all 2 and join them with `digit-"
    ):
        InterHandDataset(synthetic_root, "train", shard0, train=True, input_size=64)
    code, err = run_cli(monkeypatch, capsys, "merge", "--out", str(final), "--shards", "2")
    assert code == 0, err
    assert_same_datasets(final, mask_cache_train)
    # an --out named as another shard than --shard is refused
    other = tmp_path / "masks_train.shard-1-of-2.h5"
    code, err = run_cli(monkeypatch, capsys, *base, "--shard", "0/2", "--out", str(other))
    assert code == 1 and "named as shard 1/2, but --shard is 0/2" in err


def test_cli_shard_says_how_to_merge(monkeypatch, capsys, synthetic_root, tmp_path):
    final = tmp_path / "m.h5"
    monkeypatch.setattr(
        sys,
        "argv",
        ["digit-render", "build-masks", "--split", "val", "--data-root", str(synthetic_root),
         "--shard", "1/3", "--out", str(final)],
    )  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        render_main()
    out = capsys.readouterr().out
    assert exc.value.code == 0
    assert f"wrote {tmp_path / 'm.shard-1-of-3.h5'}: shard 1/3, " in out
    assert f"`digit-render merge --out {final} --shards 3`" in out
