"""`digit-demo`'s output folder stays consistent with its predictions.json (issue 24): an earlier
run is replaced only with --overwrite and then wholly, nothing else in the folder is touched,
two runs never write one folder at once, an interrupted run changes nothing, and neither an
input folder nor an empty --out is taken as the output folder."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cli import demo_app
from core.errors import DigitError
from digit.checkpoint import load_network, save_checkpoint
from digit.demo import run as demo_run
from digit.demo.run import run_demo
from digit.model import DigitNet, NetworkConfig


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = DigitNet(NetworkConfig.preset("tiny"), init_backbone=False).eval()
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", net)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(1)
    for name in ("a", "b", "c"):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(
            folder / f"{name}.png"
        )
    return folder


def _cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["digit-demo", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        demo_app.main()
    return int(exc.value.code or 0), capsys.readouterr().err


def _listing(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != ".digit-demo.lock"}


def _demo(monkeypatch, capsys, checkpoint, out, *images, extra=()) -> tuple[int, str]:
    args = [*images, "--bbox", "whole", "--checkpoint", checkpoint, "--out", out, *extra]
    return _cli(monkeypatch, capsys, *args)


def test_an_earlier_run_is_replaced_only_with_overwrite_and_wholly(
    tmp_path, monkeypatch, capsys, checkpoint, photos
):
    out = tmp_path / "out"
    code, err = _demo(monkeypatch, capsys, checkpoint, out, photos / "a.png", photos / "b.png")
    assert code == 0, err
    (out / "notes.txt").write_text("mine")
    before = _listing(out)
    assert sorted(before) == ["a_pred.png", "b_pred.png", "notes.txt", "predictions.json"]
    # again without --overwrite: one line, nothing changed
    code, err = _demo(monkeypatch, capsys, checkpoint, out, photos / "c.png")
    assert code == 1 and err.count("\n") == 1
    assert (
        "holds an earlier digit-demo run (predictions.json and 2 files it lists); pass "
        "--overwrite" in err
    )
    assert _listing(out) == before
    # with --overwrite: the earlier run (index and its pictures) goes, the user's file stays
    code, err = _demo(monkeypatch, capsys, checkpoint, out, photos / "c.png", extra=["--overwrite"])
    assert code == 0, err
    after = _listing(out)
    assert sorted(after) == ["c_pred.png", "notes.txt", "predictions.json"]
    assert after["notes.txt"] == b"mine"
    doc = json.loads(after["predictions.json"])
    assert [r["panel"] for r in doc["images"]] == ["c_pred.png"]


def test_a_picture_no_run_lists_is_never_replaced(
    tmp_path, monkeypatch, capsys, checkpoint, photos
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_pred.png").write_bytes(b"someone else's picture")
    for extra in ([], ["--overwrite"]):
        code, err = _demo(monkeypatch, capsys, checkpoint, out, photos / "a.png", extra=extra)
        assert code == 1 and "a_pred.png exists and no digit-demo run there lists it" in err
    assert _listing(out) == {"a_pred.png": b"someone else's picture"}


def test_mesh_files_belong_to_their_run(tmp_path, monkeypatch, capsys, checkpoint, photos):
    """With --meshes the run's mesh files are part of it: --overwrite removes the earlier run's
    mesh files with its pictures, and a mesh file that no run lists is never replaced."""
    out = tmp_path / "out"
    code, err = _demo(monkeypatch, capsys, checkpoint, out, photos / "a.png", extra=["--meshes"])
    assert code == 0, err
    first = json.loads((out / "predictions.json").read_text())["images"][0]["meshes"]
    written = {n for n in first["obj"].values() if n} | {first["mano_json"], first["picture"]}
    assert "a_mano.json" in written and "a_mesh.png" in written
    assert written <= set(_listing(out))
    code, err = _demo(monkeypatch, capsys, checkpoint, out, photos / "b.png", extra=["--overwrite"])
    assert code == 0, err
    assert sorted(_listing(out)) == ["b_pred.png", "predictions.json"]  # a's meshes went too
    (out / "b_mano.json").write_text("someone else's fit")
    code, err = _demo(
        monkeypatch, capsys, checkpoint, out, photos / "b.png", extra=["--overwrite", "--meshes"]
    )
    assert code == 1 and "b_mano.json exists and no digit-demo run there lists it" in err
    assert (out / "b_mano.json").read_text() == "someone else's fit"


def test_the_input_folder_is_not_an_output_folder(
    tmp_path, monkeypatch, capsys, checkpoint, photos
):
    code, err = _demo(monkeypatch, capsys, checkpoint, photos, photos)
    assert code == 1 and "holds the input image a.png" in err
    assert sorted(p.name for p in photos.iterdir()) == ["a.png", "b.png", "c.png"]


def test_an_empty_out_is_refused(tmp_path, monkeypatch, capsys, checkpoint, photos):
    monkeypatch.chdir(tmp_path)
    code, err = _demo(monkeypatch, capsys, checkpoint, "", photos / "a.png")
    assert (
        code == 1
        and err.strip() == "digit-demo: error: --out: empty path; name the file or folder to write"
    )
    assert list(tmp_path.iterdir()) == []


def test_two_runs_into_one_folder_do_not_both_succeed(tmp_path, monkeypatch, checkpoint, photos):
    """The first run holds the folder while it draws; the second stops with one line at once,
    and the first run's records are all there when it ends."""
    net, info = load_network(checkpoint)
    out = tmp_path / "out"
    drawing, release = threading.Event(), threading.Event()
    save = demo_run.save_figure

    def slow_save(fig, path):
        drawing.set()
        assert release.wait(60)
        save(fig, path)

    monkeypatch.setattr(demo_run, "save_figure", slow_save)
    results = {}

    def first():
        results["first"] = run_demo([photos / "a.png", photos / "b.png"], net, info, out,
                                    show_progress=False)  # fmt: skip

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert drawing.wait(60)
        with pytest.raises(
            DigitError, match=r"another digit-demo is writing this folder \(process"
        ):
            run_demo([photos / "c.png"], net, info, out, pictures=False, show_progress=False)
    finally:
        release.set()
        thread.join()
    doc = json.loads((out / "predictions.json").read_text())
    assert [r["panel"] for r in doc["images"]] == ["a_pred.png", "b_pred.png"]
    assert sorted(_listing(out)) == ["a_pred.png", "b_pred.png", "predictions.json"]


def test_an_interrupted_run_changes_nothing(tmp_path, monkeypatch, checkpoint, photos):
    net, info = load_network(checkpoint)
    out = tmp_path / "out"
    run_demo([photos / "a.png"], net, info, out, show_progress=False)
    before = _listing(out)
    calls, save = [], demo_run.save_figure

    def interrupt(fig, path):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        save(fig, path)

    monkeypatch.setattr(demo_run, "save_figure", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_demo([photos / "b.png", photos / "c.png"], net, info, out, overwrite=True,
                 show_progress=False)  # fmt: skip
    assert _listing(out) == before  # no partial folder, the earlier run untouched
