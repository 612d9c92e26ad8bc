"""`digit-demo` end to end with a tiny network: panels and JSON written, joints mapped back into
the crop box, bad inputs end with exit code 1 and one line naming the file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cli import demo_app
from core.image_io import load_rgb
from digit.checkpoint import save_checkpoint
from digit.data.crop import apply_affine, crop_transform
from digit.demo.inputs import parse_bbox, whole_image_bbox
from digit.demo.predict import predict_image
from digit.model import DigitNet, DigitOutput, NetworkConfig


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = DigitNet(NetworkConfig.preset("tiny"), init_backbone=False).eval()
    with torch.no_grad():  # hands "present" so the skeleton drawing path runs
        net.hand_fc[2].bias.copy_(torch.tensor([3.0, -3.0]))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", net)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for name, (h, w) in (("portrait", (512, 334)), ("landscape", (334, 512))):
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        path = folder / f"{name}.png" if name == "portrait" else folder / f"{name}.jpg"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def _run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["digit-demo", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        demo_app.main()
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def _inside(uv: np.ndarray, box, tol: float = 1e-6) -> bool:
    x, y, s, t = box
    return bool(
        np.all(uv[:, 0] >= x - tol)
        and np.all(uv[:, 0] <= x + s + tol)
        and np.all(uv[:, 1] >= y - tol)
        and np.all(uv[:, 1] <= y + t + tol)
    )


@pytest.mark.parametrize("bbox", ["whole", "60,100,120,90"])
def test_demo_writes_panels_and_json(tmp_path, monkeypatch, capsys, tiny_checkpoint, images, bbox):
    out = tmp_path / "out"
    args = [*images, "--checkpoint", tiny_checkpoint, "--out", out, "--bbox", bbox]
    code, _, err = _run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        ".digit-demo.lock",  # one run at a time (tests/test_demo_out_folder.py)
        "landscape_pred.png",
        "portrait_pred.png",
        "predictions.json",
    ]
    doc = json.loads((out / "predictions.json").read_text())
    assert doc["checkpoint"] == str(tiny_checkpoint) and doc["checkpoint_format"] == "digit-ckpt"
    assert [r["image"] for r in doc["images"]] == [str(p) for p in images]
    for record, path in zip(doc["images"], images, strict=True):
        h, w = np.asarray(Image.open(path)).shape[:2]
        joints = np.asarray(record["joints_uvd_img"])
        assert joints.shape == (42, 3) and np.all(np.isfinite(joints))
        assert np.asarray(record["handedness_prob"]).shape == (2,)
        assert isinstance(record["rel_root_depth_mm"], float)
        # the crop box: square x1.25 of the bbox (default: the whole image, -0.5 .. W - 0.5)
        if bbox != "whole":
            side, cx, cy = 1.25 * 120, 60 + 60, 100 + 45
        else:
            side, cx, cy = 1.25 * max(h, w), (w - 1) / 2, (h - 1) / 2
        np.testing.assert_allclose(record["crop_box"], [cx - side / 2, cy - side / 2, side, side])
        # soft-argmax u, v lie in the 256 crop, so mapped back they lie in the crop box
        assert _inside(joints[:, :2], record["crop_box"])
        panel = np.asarray(Image.open(out / record["panel"]).convert("RGB"))
        # two rows of tiles (image, prediction, parts; three 3D views), each ~300 px
        assert panel.shape[0] > 500 and panel.shape[1] > 800
        # the right hand is shown (bias +3), so the prediction red (#d62728) is drawn
        assert np.any(np.all(panel == (0xD6, 0x27, 0x28), axis=-1))


def test_predict_image_maps_joints_back(tiny_checkpoint, images):
    """u, v in the image = the inverse crop warp of the network's crop pixels (checked by
    mapping forward again), and the segmentation covers exactly the crop box's pixels."""
    from digit.checkpoint import load_network

    net, _ = load_network(tiny_checkpoint)
    image = load_rgb(images[1])  # landscape 334 x 512
    pred = predict_image(net, image, parse_bbox("200,100,50,80"))
    A = crop_transform(pred.crop_box)
    crop_uv = apply_affine(A, pred.joints_uvd_img[:, :2])
    assert np.all((crop_uv > 0) & (crop_uv < 256))
    np.testing.assert_allclose(pred.crop_box, [225 - 50, 140 - 50, 100, 100])
    seg = pred.segmentation
    assert seg is not None and seg.shape == image.shape[:2] and seg.dtype == np.uint8
    rows, cols = np.nonzero(seg)
    if len(rows):  # labels only inside the crop box (x 175..275, y 90..190)
        assert cols.min() >= 175 and cols.max() <= 275 and rows.min() >= 90 and rows.max() <= 190
    np.testing.assert_allclose(whole_image_bbox(334, 512), [-0.5, -0.5, 512, 334])


class _FixedNet(torch.nn.Module):
    """Stands in for the network: known crop-pixel joints and a known segmentation."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.config = NetworkConfig(input_size=256)  # the crop size the demo must use

    def forward(self, images):
        assert images.shape == (1, 3, 256, 256)
        uvd = torch.zeros(1, 42, 3)
        uvd[0, :4, :2] = torch.tensor([[128.0, 128.0], [0.0, 0.0], [256.0, 256.0], [64.0, 192.0]])
        uvd[0, :, 2] = 7.0
        segm = torch.zeros(1, 33, 128, 128)
        segm[0, 0] = 0.5
        segm[0, 5, :64, :64] = 1.0  # class 5 in the crop's top-left quarter
        return DigitOutput(
            joints_uvd=uvd,
            rel_root_depth_mm=torch.tensor([33.0]),
            handedness_logits=torch.tensor([[2.0, -2.0]]),
            segm_logits=segm,
            heatmaps=torch.zeros(1, 42, 64, 64),
            joints_hm=torch.zeros(1, 42, 3),
            rel_root_depth_bins=torch.zeros(1),
            root_depth_logits=torch.zeros(1, 64),
        )


def test_predict_image_by_hand():
    """Crop box [175, 90, 100, 100] (bbox 200,100,50,80): crop pixel q is image pixel
    175 + q * 100 / 256 (x), 90 + q * 100 / 256 (y)."""
    image = np.zeros((334, 512, 3), np.uint8)
    pred = predict_image(_FixedNet(), image, parse_bbox("200,100,50,80"))
    np.testing.assert_allclose(pred.crop_box, [175, 90, 100, 100])
    np.testing.assert_allclose(
        pred.joints_uvd_img[:4],
        [[225, 140, 7], [175, 90, 7], [275, 190, 7], [200, 165, 7]],
        atol=1e-9,
    )
    np.testing.assert_allclose(pred.handedness_prob, [1 / (1 + np.exp(-2)), 1 / (1 + np.exp(2))])
    assert pred.rel_root_depth_mm == 33.0
    # crop pixels 0..127 (labels 0..63 upsampled) cover image pixels 175..224 / 90..139
    seg = pred.segmentation
    assert np.all(seg[90:140, 175:225] == 5) and (seg == 5).sum() == 50 * 50
    assert set(np.unique(seg)) == {0, 5}


def test_missing_image_is_one_line(tmp_path, monkeypatch, capsys, tiny_checkpoint, images):
    missing = tmp_path / "ghost.jpg"
    out = tmp_path / "out"
    code, _, err = _run_cli(
        monkeypatch, capsys, images[0], missing, "--checkpoint", tiny_checkpoint, "--out", out
    )
    assert code == 1
    assert err.strip().count("\n") == 0 and str(missing) in err and "not found" in err
    assert not out.exists()  # nothing written when an input is bad


def test_corrupt_image_is_one_line(tmp_path, monkeypatch, capsys, tiny_checkpoint):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    code, _, err = _run_cli(
        monkeypatch, capsys, bad, "--checkpoint", tiny_checkpoint, "--out", tmp_path / "o"
    )
    assert code == 1 and err.strip().count("\n") == 0 and str(bad) in err


def test_missing_checkpoint_is_one_line(tmp_path, monkeypatch, capsys, images):
    ckpt = tmp_path / "none.pt"
    code, _, err = _run_cli(monkeypatch, capsys, *images, "--checkpoint", ckpt, "--out", tmp_path)
    assert code == 1
    assert err.strip().count("\n") == 0 and str(ckpt) in err and "not found" in err


def test_bad_bbox_is_one_line(tmp_path, monkeypatch, capsys, tiny_checkpoint, images):
    code, _, err = _run_cli(
        monkeypatch,
        capsys,
        images[0],
        "--checkpoint",
        tiny_checkpoint,
        "--bbox",
        "1,2,3",
        "--out",
        tmp_path,
    )
    assert code == 1 and "--bbox" in err and err.strip().count("\n") == 0


def test_split_images_use_their_annotated_boxes(
    tmp_path, monkeypatch, capsys, tiny_checkpoint, synthetic_root
):
    from core.boxes import crop_box_from_bbox
    from core.interhand.reader import InterHandSplit

    out = tmp_path / "split"
    code, _, err = _run_cli(
        monkeypatch, capsys, "--split", "test", "--data-root", str(synthetic_root),
        "--count", "2", "--checkpoint", str(tiny_checkpoint), "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads((out / "predictions.json").read_text())
    data = InterHandSplit.from_root(synthetic_root, "test")
    by_path = {str(data.image_path(i)): data[i] for i in range(len(data))}
    assert len(doc["images"]) == 2
    for rec in doc["images"]:
        ann = by_path[rec["image"]]
        np.testing.assert_allclose(rec["bbox"], ann.bbox)
        np.testing.assert_allclose(rec["crop_box"], crop_box_from_bbox(ann.bbox))
    code, _, err = _run_cli(
        monkeypatch, capsys, "--split", "test", "x.jpg",
        "--checkpoint", str(tiny_checkpoint), "--out", str(out),
    )  # fmt: skip
    assert code == 1 and "either IMAGE" in err


# ---- odd inputs: one line, or the picture a viewer shows -------------------------------------


def _demo_err(monkeypatch, capsys, tmp_path, ckpt, *args) -> tuple[int, str]:
    code, _, err = _run_cli(monkeypatch, capsys, *args, "--checkpoint", ckpt)
    return code, err


@pytest.mark.parametrize(
    "bbox", ["600,100,50,50", "-200,-200,100,100", "100,334,30,30", "0,0,0,40", "0,0,40,-5"]
)
def test_bbox_off_the_image_or_empty_is_one_line(
    tmp_path, monkeypatch, capsys, tiny_checkpoint, images, bbox
):
    out = tmp_path / "out"
    code, err = _demo_err(
        monkeypatch, capsys, tmp_path, tiny_checkpoint, images[1], "--bbox", bbox, "--out", out
    )  # landscape: 512 wide, 334 high; 100,334 starts below the last row (centre 333, edge 333.5)
    assert code == 1 and err.strip().count("\n") == 0 and "--bbox" in err, err
    assert not out.exists()


def test_bbox_partly_outside_the_image_is_used(
    tmp_path, monkeypatch, capsys, tiny_checkpoint, images
):
    out = tmp_path / "out"
    code, _, err = _run_cli(
        monkeypatch, capsys, images[1], "--checkpoint", tiny_checkpoint,
        "--bbox", "480,300,100,100", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads((out / "predictions.json").read_text())
    np.testing.assert_allclose(doc["images"][0]["bbox"], [480, 300, 100, 100])


def test_out_naming_a_file_is_one_line(tmp_path, monkeypatch, capsys, tiny_checkpoint, images):
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    for out in (taken, taken / "sub"):
        code, err = _demo_err(
            monkeypatch, capsys, tmp_path, tiny_checkpoint, images[0], "--out", out
        )
        assert code == 1 and err.strip().count("\n") == 0 and str(out) in err, err
    assert taken.read_text() == "keep me"


def test_one_pixel_image_is_one_line(tmp_path, monkeypatch, capsys, tiny_checkpoint):
    dot = tmp_path / "dot.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(dot)
    code, err = _demo_err(
        monkeypatch, capsys, tmp_path, tiny_checkpoint, dot, "--out", tmp_path / "o"
    )
    assert code == 1 and err.strip().count("\n") == 0 and str(dot) in err and "1x1" in err


def test_16_bit_and_float_images_reach_the_network_as_a_viewer_shows_them(
    tmp_path, tiny_checkpoint
):
    """A mid-grey 16-bit PNG and float TIFF give the network the same input, hence the same
    prediction, as the same grey stored as an 8-bit PNG (not all white / all black)."""
    from digit.checkpoint import load_network
    from digit.demo.run import run_demo

    grey = np.full((48, 64), 0.4)
    Image.fromarray(np.rint(grey * 65535).astype(np.uint16)).save(tmp_path / "g16.png")
    Image.fromarray(grey.astype(np.float32)).save(tmp_path / "f.tif")
    Image.fromarray(np.rint(grey * 255).astype(np.uint8)).save(tmp_path / "g8.png")
    paths = [tmp_path / n for n in ("g8.png", "g16.png", "f.tif")]
    network = load_network(tiny_checkpoint)
    records = run_demo(paths, *network, tmp_path / "out", pictures=False).records
    joints = [np.asarray(r["joints_uvd_img"]) for r in records]
    np.testing.assert_allclose(joints[1], joints[0], atol=1e-6)
    np.testing.assert_allclose(joints[2], joints[0], atol=1e-6)
    white = tmp_path / "white.png"
    Image.fromarray(np.full((48, 64), 255, np.uint8)).save(white)
    other = run_demo([white], *network, tmp_path / "out2", pictures=False).records[0]
    assert not np.allclose(np.asarray(other["joints_uvd_img"]), joints[0], atol=1e-6)


def test_flip_test_prediction_on_a_mirrored_image_is_the_mirrored_prediction(
    tiny_checkpoint, images
):
    """With --flip-test the answer on the mirrored image is the answer on the image mirrored
    (u -> W - 1 - u with pixel centres at integers, hands exchanged, left-minus-right root depth
    negated; the part sides' mapping: tests/test_flip_test.py); one pass of an untrained
    network is not. The crop maps its box's centre to S / 2 (the official convention), not to
    the crop's middle (S - 1) / 2, so the crop of the mirrored image is the mirror of the crop
    only with the mirrored box moved right by one crop pixel (s / S image pixels)."""
    from digit.checkpoint import load_network

    net, _ = load_network(tiny_checkpoint)
    image = load_rgb(images[1])  # landscape 334 x 512
    mirrored = np.ascontiguousarray(image[:, ::-1])
    w, size = image.shape[1], net.config.input_size
    box = np.array([100.0, 50.0, 200.0, 160.0])
    side = 1.25 * 200.0
    box_m = np.array([w - 1 - (box[0] + box[2]) + side / size, box[1], box[2], box[3]])

    def mismatch(flip_test: bool) -> float:
        a = predict_image(net, image, box, flip_test=flip_test)
        b = predict_image(net, mirrored, box_m, flip_test=flip_test)
        expect = np.concatenate([b.joints_uvd_img[21:], b.joints_uvd_img[:21]])
        expect[:, 0] = (w - 1) - expect[:, 0]
        if flip_test:
            np.testing.assert_allclose(a.handedness_prob, b.handedness_prob[::-1], atol=1e-6)
            assert a.rel_root_depth_mm == pytest.approx(-b.rel_root_depth_mm, abs=1e-3)
        return float(np.abs(a.joints_uvd_img - expect).max())

    assert mismatch(True) < 1e-2  # px and mm: float rounding only
    assert mismatch(False) > 1.0


def test_demo_flip_test_is_recorded_and_changes_the_answer(
    tmp_path, monkeypatch, capsys, tiny_checkpoint, images
):
    docs = {}
    for flag in ([], ["--flip-test"]):
        out = tmp_path / ("flip" if flag else "plain")
        args = [images[0], "--checkpoint", tiny_checkpoint, "--out", out, "--bbox", "whole"]
        args += ["--no-pictures", *flag]
        code, _, err = _run_cli(monkeypatch, capsys, *args)
        assert code == 0, err
        docs[bool(flag)] = json.loads((out / "predictions.json").read_text())
    assert docs[False]["flip_test"] is False and docs[True]["flip_test"] is True
    plain, flip = (np.asarray(docs[k]["images"][0]["joints_uvd_img"]) for k in (False, True))
    assert np.abs(plain - flip).max() > 0.1
