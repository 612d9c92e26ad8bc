"""`core.image_io.load_rgb` on the images users have: every kind becomes the RGB a viewer would
show (hand-computed from the pixels written), and what cannot be used is one DigitError line."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import image_io
from core.errors import DigitError
from core.image_io import load_rgb

RNG = np.random.default_rng(12)
H, W = 6, 9


def _one_line(err: pytest.ExceptionInfo, path: Path) -> str:
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def _png(path: Path, pixels: np.ndarray, color_type: int) -> Path:
    """A 16-bit PNG written by hand (Pillow writes 16 bits only for grey): pixels (H, W, C)
    uint16, color_type 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA."""
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1).astype(">u2").tobytes()
    stride = rows and len(rows) // h
    raw = b"".join(b"\0" + rows[r * stride : (r + 1) * stride] for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def _rgb8(unit: np.ndarray) -> np.ndarray:
    """Reference: values in [0, 1] (H, W) or (H, W, 3) -> RGB uint8, rounded."""
    out = np.rint(np.clip(unit, 0, 1) * 255).astype(np.uint8)
    return np.repeat(out[..., None], 3, -1) if out.ndim == 2 else out


# ---- kinds that are read ------------------------------------------------------------------------


def test_16_bit_grey_png_and_tiff_scale_by_65535(tmp_path):
    grey = RNG.integers(0, 65536, (H, W), dtype=np.uint16)
    grey[0, :3] = [0, 65535, 32768]
    expected = _rgb8(grey / 65535.0)
    for name in ("g16.png", "g16.tif"):
        Image.fromarray(grey).save(tmp_path / name)
        got = load_rgb(tmp_path / name)
        assert got.dtype == np.uint8 and got.shape == (H, W, 3)
        np.testing.assert_array_equal(got, expected)
    assert list(load_rgb(tmp_path / "g16.png")[0, :3, 0]) == [0, 255, 128]
    hand_png = _png(tmp_path / "g16b.png", grey[..., None], 0)
    np.testing.assert_array_equal(load_rgb(hand_png), expected)


def test_16_bit_rgb_and_rgba_png(tmp_path):
    rgb = RNG.integers(0, 65536, (H, W, 3), dtype=np.uint16)
    got = load_rgb(_png(tmp_path / "rgb16.png", rgb, 2))
    # a viewer shows 40000 / 65535 of full brightness: within one 8-bit step of that
    assert np.abs(got.astype(float) - rgb / 65535.0 * 255).max() <= 1.0
    alpha = np.full((H, W, 1), 65535, np.uint16)
    alpha[0, 0] = 0
    got = load_rgb(_png(tmp_path / "rgba16.png", np.concatenate([rgb, alpha], -1), 6))
    assert np.abs(got[1:].astype(float) - rgb[1:] / 65535.0 * 255).max() <= 1.0
    assert list(got[0, 0]) == [0, 0, 0]  # fully transparent: the black background
    ga = np.concatenate([rgb[..., :1], np.full((H, W, 1), 65535, np.uint16)], -1)
    got = load_rgb(_png(tmp_path / "la16.png", ga, 4))
    assert np.abs(got.astype(float) - rgb[..., :1] / 65535.0 * 255).max() <= 1.0


def test_float_tiff_is_taken_as_0_to_1_and_clipped(tmp_path):
    values = RNG.random((H, W), dtype=np.float32)
    values[0, :4] = [-0.5, 0.0, 1.0, 7.0]
    path = tmp_path / "f.tif"
    Image.fromarray(values).save(path)
    got = load_rgb(path)
    np.testing.assert_array_equal(got, _rgb8(values.astype(np.float64)))
    assert list(got[0, :4, 0]) == [0, 0, 255, 255]
    assert got[1:].mean() > 60  # not the all-black picture of a plain conversion


def test_float_tiff_with_nan_is_refused(tmp_path):
    values = np.full((H, W), 0.5, np.float32)
    values[2, 2] = np.nan
    path = tmp_path / "nan.tif"
    Image.fromarray(values).save(path)
    with pytest.raises(DigitError) as err:
        load_rgb(path)
    assert "NaN" in _one_line(err, path)


def test_32_bit_integer_tiff_scales_by_its_maximum(tmp_path):
    values = np.array([[0, 2**31 - 1, 2**30]] * 2, dtype=np.int32)
    path = tmp_path / "i32.tif"
    Image.fromarray(values).save(path)
    np.testing.assert_array_equal(load_rgb(path), _rgb8(values / (2**31 - 1)))


def test_8_bit_kinds_grey_palette_alpha(tmp_path):
    rgb = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    alpha = RNG.integers(0, 256, (H, W), dtype=np.uint8)
    grey = rgb[..., 0]

    Image.fromarray(grey).save(tmp_path / "l.png")
    np.testing.assert_array_equal(load_rgb(tmp_path / "l.png"), np.stack([grey] * 3, -1))

    rgba = np.concatenate([rgb, alpha[..., None]], -1)
    over_black = np.rint(rgb * (alpha[..., None] / 255.0)).astype(np.uint8)
    for name in ("rgba.png", "rgba.tif"):
        Image.fromarray(rgba, "RGBA").save(tmp_path / name)
        np.testing.assert_array_equal(load_rgb(tmp_path / name), over_black)

    la = np.stack([grey, alpha], -1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    grey_over_black = np.rint(grey * (alpha / 255.0)).astype(np.uint8)
    np.testing.assert_array_equal(
        load_rgb(tmp_path / "la.png"), np.stack([grey_over_black] * 3, -1)
    )

    palette = [10, 20, 30, 200, 100, 50, 255, 255, 255] + [0] * (256 * 3 - 9)
    index = RNG.integers(0, 3, (H, W), dtype=np.uint8)
    img = Image.fromarray(index, "P")
    img.putpalette(palette)
    img.save(tmp_path / "p.png")
    table = np.array(palette[:9], np.uint8).reshape(3, 3)
    np.testing.assert_array_equal(load_rgb(tmp_path / "p.png"), table[index])
    img.save(tmp_path / "pt.png", transparency=2)  # entry 2 (white) fully transparent
    expected = table[index].copy()
    expected[index == 2] = 0
    np.testing.assert_array_equal(load_rgb(tmp_path / "pt.png"), expected)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:20, :30] = (255, 0, 0)  # red top-left quarter as stored
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=95)
    got = load_rgb(path)
    assert got.shape == (60, 40, 3)
    # turned clockwise, the stored top-left quarter is now the top-right one
    assert got[:30, 20:, 0].mean() > 200 and got[:30, 20:, 1].mean() < 50
    assert got[:30, :20, 0].mean() < 50


def test_rgb_jpeg_is_unchanged(tmp_path):
    pixels = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    path = tmp_path / "x.jpg"
    Image.fromarray(pixels).save(path)
    with Image.open(path) as img:
        reference = np.asarray(img.convert("RGB"))
    got = load_rgb(path)
    np.testing.assert_array_equal(got, reference)
    assert got.flags.writeable


# ---- refused with one line ---------------------------------------------------------------------


def test_tiny_empty_missing_and_damaged_files_are_one_line(tmp_path):
    one = tmp_path / "one.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(one)
    with pytest.raises(DigitError) as err:
        load_rgb(one)
    assert "1x1" in _one_line(err, one)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(DigitError) as err:
        load_rgb(empty)
    assert "empty" in _one_line(err, empty)
    with pytest.raises(DigitError) as err:
        load_rgb(tmp_path / "ghost.png")
    assert "not found" in _one_line(err, tmp_path / "ghost.png")
    good = tmp_path / "good.jpg"
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[:400])
    with pytest.raises(DigitError) as err:
        load_rgb(cut)
    _one_line(err, cut)


def test_huge_image_is_refused_before_decoding(tmp_path, monkeypatch):
    # a 12000 x 12000 PNG header: 432 MB decoded as RGB (Pillow itself only warns)
    path = _png(tmp_path / "huge.png", np.zeros((1, 1, 1), np.uint16), 0)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", 12000, 12000)  # width, height in IHDR
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1))
    with pytest.raises(DigitError) as err:
        load_rgb(path)
    assert "12000x12000" in _one_line(err, path) and not decoded
    # above Pillow's own bomb limit too: still our line, not DecompressionBombError
    data[16:24] = struct.pack(">II", 30000, 30000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    with pytest.raises(DigitError) as err:
        load_rgb(path)
    _one_line(err, path)
    assert "too large" in str(err.value)
    assert image_io.MAX_PIXELS < 12000 * 12000
