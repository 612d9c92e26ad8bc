"""`make-synthetic` as a careless user meets it (issue 24): --overwrite deletes only a dataset
the generator wrote, impossible sizes are refused before any work, Ctrl-C leaves nothing."""

import shutil
import sys
from collections import namedtuple
from pathlib import Path

import pytest

from cli.render_app import main as render_main
from core.errors import DigitError, Interrupted
from core.paths import SYNTHETIC_MARKER
from render.synthetic_data import generate as gen
from render.synthetic_data.generate import SyntheticSettings, estimate_size, make_synthetic

BARE = SyntheticSettings(captures=1, eval_captures=1, cameras=2, frames=2, images=False)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_overwrite_refuses_a_folder_it_did_not_write(tmp_path):
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "letter.txt").write_text("dear ...")
    with pytest.raises(DigitError, match=r"not a dataset written by make-synthetic \(no SYNTH"):
        make_synthetic(documents, BARE, overwrite=True, show_progress=False)
    assert _files(documents) == {"letter.txt": b"dear ..."}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["documents"]


def test_overwrite_replaces_its_own_dataset(tmp_path):
    root = make_synthetic(tmp_path / "d", BARE, show_progress=False)
    before = _files(root)
    make_synthetic(root, SyntheticSettings(**{**vars(BARE), "seed": 9}), overwrite=True,
                   show_progress=False)  # fmt: skip
    after = _files(root)
    assert SYNTHETIC_MARKER in after and after != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no .partial, no old copy


def test_the_size_estimate_bounds_a_real_dataset(synthetic_root):
    """The estimate is an upper estimate of what a dataset with pictures takes, not far off."""
    from tests.conftest import SMALL_SYNTHETIC

    actual = sum(p.stat().st_size for p in synthetic_root.rglob("*") if p.is_file())
    estimate = estimate_size(SMALL_SYNTHETIC, workers=1)
    assert estimate.images == 3 * 4 * SMALL_SYNTHETIC.frames * SMALL_SYNTHETIC.cameras
    assert actual <= estimate.disk_bytes <= 1.6 * actual


def test_an_enormous_dataset_is_refused_before_any_work(tmp_path):
    out = tmp_path / "huge"
    with pytest.raises(DigitError, match=r"not enough free space for the synthetic dataset"):
        make_synthetic(out, SyntheticSettings(frames=10_000_000), show_progress=False)
    assert list(tmp_path.iterdir()) == []


def test_too_little_disk_or_memory_is_one_line(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(DigitError, match=r"\(about \d+ MB needed, 1 MB free\); use fewer"):
        make_synthetic(tmp_path / "a", BARE, show_progress=False)
    monkeypatch.undo()
    # Plenty of disk, so that the memory check speaks whatever the machine has free.
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**15, 0, 10**15))
    monkeypatch.setattr(gen, "_available_memory", lambda: 10**9)
    long = SyntheticSettings(captures=1, eval_captures=1, cameras=1, frames=100_000, images=False)
    with pytest.raises(DigitError, match=r"need about [\d.]+ GB of memory, 1.0 GB available"):
        make_synthetic(tmp_path / "b", long, workers=1, show_progress=False)
    assert list(tmp_path.iterdir()) == []


def _interrupted_generate(work, *_args, **_kwargs):
    (work / "images").mkdir(parents=True)
    (work / "images" / "half.jpg").write_bytes(b"\xff\xd8")
    raise KeyboardInterrupt


def test_ctrl_c_removes_the_unfinished_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(gen, "generate", _interrupted_generate)
    with pytest.raises(Interrupted, match=r"removed the unfinished d.partial; nothing was writ"):
        make_synthetic(tmp_path / "d", BARE, show_progress=False)
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_is_said_in_one_line_with_exit_130(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gen, "generate", _interrupted_generate)
    out = tmp_path / "d"
    monkeypatch.setattr(sys, "argv", ["digit-render", "make-synthetic", "--out", str(out)])
    with pytest.raises(SystemExit) as exc:
        render_main()
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 130
    assert err[-1] == (
        f"digit-render: interrupted: removed the unfinished d.partial; nothing was written to {out}"
    )
    assert list(tmp_path.iterdir()) == []
