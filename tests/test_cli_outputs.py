"""Outputs checked before any work (issue 24): `show`, `preview`, `hand-gallery` and `legend`
refuse a name without a picture suffix, a folder, a place under a file or an empty --out in one
error line and write nothing, and write a good name whole (a JPEG too); every command refuses
`--out ''` (which would mean the current folder)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

from cli.render_app import main as render_main
from core.errors import DigitError
from core.picture_files import check_picture_path, picture_format, save_picture


def _cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["digit-render", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        render_main()
    return int(exc.value.code or 0), capsys.readouterr().err


def _bad_outs(tmp_path: Path) -> list[tuple[str, str]]:
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "folder").mkdir(exist_ok=True)
    return [
        (str(tmp_path / "sheet"), "no suffix is not a picture type that can be written"),
        (str(tmp_path / "sheet.h5"), "'.h5' is not a picture type"),
        (str(tmp_path / "folder"), "is a folder; name a picture file"),
        (str(tmp_path / "a_file" / "x.png"), "a_file is a file, not a folder"),
        ("", "--out: empty path"),
    ]


@pytest.mark.parametrize("command", ["show", "preview", "hand-gallery"])
def test_a_bad_picture_name_is_one_line_before_any_work(
    command, tmp_path, monkeypatch, capsys, synthetic_root, mask_cache_train
):
    before = sorted(p.name for p in tmp_path.iterdir())
    for out, message in _bad_outs(tmp_path):
        args = {
            "show": ["show", mask_cache_train, "--index", "0"],
            "preview": ["preview", "--data-root", synthetic_root, "--count", "2"],
            "hand-gallery": ["hand-gallery"],
        }[command]
        code, err = _cli(monkeypatch, capsys, *args, "--out", out)
        assert code == 1, (out, err)
        assert err.count("\n") == 1 and err.startswith("digit-render: error: --out"), err
        assert message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({*before, "a_file", "folder"})
    assert list((tmp_path / "folder").iterdir()) == []


def test_legend_checks_its_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "a_file").write_text("x")
    code, err = _cli(monkeypatch, capsys, "legend", "--out-dir", tmp_path / "a_file")
    assert code == 1 and "--out-dir" in err and "is a file, not a folder" in err
    code, err = _cli(monkeypatch, capsys, "legend", "--out-dir", "")
    assert code == 1 and "--out-dir: empty path" in err
    code, err = _cli(monkeypatch, capsys, "legend", "--out-dir", tmp_path / "legend")
    assert code == 0, err
    assert Image.open(tmp_path / "legend" / "legend.png").format == "PNG"


def test_pictures_are_written_in_the_format_of_their_name(tmp_path):
    assert picture_format("x.PNG") == "PNG" and picture_format("x.jpeg") == "JPEG"
    assert picture_format("x.h5") is None and picture_format("x") is None
    rgba = Image.new("RGBA", (8, 6), (10, 20, 30, 255))
    for name, fmt in (("a.png", "PNG"), ("b.jpg", "JPEG"), ("deep/c.webp", "WEBP")):
        path = save_picture(rgba, tmp_path / name)
        with Image.open(path) as img:
            assert img.format == fmt and img.size == (8, 6)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "b.jpg", "c.webp", "deep"]
    with pytest.raises(DigitError, match=r"^--out .*x\.txt: '\.txt' is not a picture type"):
        check_picture_path(tmp_path / "x.txt")


@pytest.mark.parametrize(
    ("app", "args"),
    [
        ("cli.render_app", ["make-synthetic", "--out", ""]),
        ("cli.render_app", ["build-masks", "--split", "train", "--out", ""]),
        ("cli.render_app", ["merge", "--out", "", "--shards", "2"]),
        ("cli.train_app", ["--out", ""]),
        ("cli.train_app", ["--out", " ", "--resume"]),
    ],
)
def test_an_empty_out_is_one_line_everywhere(app, args, tmp_path, monkeypatch, capsys):
    import importlib

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIGIT_HOME", str(tmp_path / "home"))
    main = importlib.import_module(app).main
    monkeypatch.setattr(sys, "argv", ["prog", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err
    assert exc.value.code == 1 and err.count("\n") == 1
    assert err.endswith(": error: --out: empty path; name the file or folder to write\n")
    assert list(tmp_path.iterdir()) == []
