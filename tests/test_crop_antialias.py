"""The antialiased crop (`NetworkConfig.antialias`) against a plain box-of-bilinear-samples
reference written here, a hand-computed checkerboard, and the plumbing from config to crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import DigitError
from digit.data.augment import AugmentSettings
from digit.data.crop import crop_transform, supersample_factor, warp_image
from digit.data.dataset import InterHandDataset
from digit.demo.predict import crop_batch
from digit.model import NetworkConfig


def _bilinear_or_zero(image: np.ndarray, x: float, y: float) -> np.ndarray:
    """(C, H, W) image at (x, y), pixel centres at integers, neighbours outside count as 0."""
    c, h, w = image.shape
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    fx, fy = x - x0, y - y0
    out = np.zeros(c)
    for yy, wy in ((y0, 1 - fy), (y0 + 1, fy)):
        for xx, wx in ((x0, 1 - fx), (x0 + 1, fx)):
            if 0 <= xx < w and 0 <= yy < h:
                out += wy * wx * image[:, yy, xx]
    return out


def _box_reference(image: np.ndarray, A: np.ndarray, size: int, k: int) -> np.ndarray:
    """Output pixel (i, j) = mean over a, b in 0..k-1 of the bilinear sample at A^-1 of
    (j - 0.5 + (b + 0.5) / k, i - 0.5 + (a + 0.5) / k): k x k cell centres of its square."""
    inv = np.linalg.inv(np.vstack([A, [0.0, 0.0, 1.0]]))
    out = np.zeros((image.shape[0], size, size))
    offsets = [(t + 0.5) / k - 0.5 for t in range(k)]
    for i in range(size):
        for j in range(size):
            acc = np.zeros(image.shape[0])
            for dy in offsets:
                for dx in offsets:
                    x, y, _ = inv @ [j + dx, i + dy, 1.0]
                    acc += _bilinear_or_zero(image, x, y)
            out[:, i, j] = acc / (k * k)
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_supersampled_warp_is_the_mean_of_bilinear_samples(k):
    rng = np.random.default_rng(k)
    image = rng.random((3, 41, 53))
    # a box larger than the image part it covers, turned and shifted: zero padding included
    A = crop_transform([4.0, -3.0, 46.0, 40.0], 12, rot_deg=27.0, scale=1.1, shift=(0.1, 0.05))
    got = warp_image(torch.from_numpy(image)[None], A, 12, supersample=k)[0].numpy()
    np.testing.assert_allclose(got, _box_reference(image, A, 12, k), rtol=0, atol=1e-12)


def test_antialiasing_removes_the_alias_of_a_fine_checkerboard():
    # a 1-pixel checkerboard shrunk 4x with the grid aligned: point samples all fall on one
    # colour (the alias: a flat 0 or 1), 4 x 4 samples at half-pixel offsets average to 0.5
    yy, xx = np.mgrid[0:64, 0:64]
    board = ((yy + xx) % 2).astype(np.float64)[None, None]
    A = np.array([[0.25, 0.0, 0.0], [0.0, 0.25, 0.0]])  # source (4q) -> output q
    assert supersample_factor(A) == 4
    point = warp_image(torch.from_numpy(board), A, 15)[0, 0].numpy()
    boxed = warp_image(torch.from_numpy(board), A, 15, supersample=4)[0, 0].numpy()
    assert np.all(point == point[0, 0]) and point[0, 0] in (0.0, 1.0)
    np.testing.assert_allclose(boxed[1:-1, 1:-1], 0.5, rtol=0, atol=1e-12)


def test_supersample_factor_counts_source_pixels_per_output_pixel():
    def shrink(f, rot=0.0):
        return crop_transform([0.0, 0.0, 64.0 * f, 64.0 * f], 64, rot_deg=rot)

    assert supersample_factor(shrink(1.0)) == 1
    assert supersample_factor(shrink(0.5)) == 1  # enlarging never supersamples
    assert supersample_factor(shrink(2.0)) == 2
    assert supersample_factor(shrink(2.5)) == 3
    assert supersample_factor(shrink(3.0, rot=33.0)) == 3  # a rotation keeps the footprint
    assert supersample_factor(shrink(20.0)) == 4  # capped
    with pytest.raises(DigitError, match="supersample"):
        warp_image(torch.zeros(1, 1, 4, 4), shrink(1.0), 8, supersample=0)


def test_network_config_checks_the_flag():
    assert NetworkConfig().antialias is False  # the release: cv2.warpAffine's point samples
    with pytest.raises(DigitError, match="antialias"):
        NetworkConfig(antialias="yes")


def test_dataset_and_demo_crop_with_the_antialiased_warp(synthetic_root, mask_cache_train):
    kwargs = {"masks": mask_cache_train, "train": False, "input_size": 64}
    plain = InterHandDataset(synthetic_root, "train", **kwargs)
    smooth = InterHandDataset(synthetic_root, "train", antialias=True, **kwargs)
    checked = 0
    for i in range(0, len(plain), 5):
        a, b = plain[i], smooth[i]
        A = b["crop_affine"].numpy()
        k = supersample_factor(A)
        assert k > 1  # the 64 px crop of a 512 x 334 picture shrinks it
        rgb = np.asarray(Image.open(plain.split.image_path(i)).convert("RGB"), np.float64)
        pixels = torch.from_numpy(rgb).permute(2, 0, 1)[None]
        want = (warp_image(pixels, A, 64, supersample=k)[0] / 255.0).clamp(0, 1)
        np.testing.assert_allclose(b["image"].numpy(), want.numpy(), rtol=0, atol=1e-5)
        # only the picture changes: labels, joints and targets are the same
        assert torch.equal(a["segm_target"], b["segm_target"])
        torch.testing.assert_close(
            a["joints_crop"], b["joints_crop"], rtol=0, atol=0, equal_nan=True
        )
        assert not torch.equal(a["image"], b["image"])
        # the demo's crop of the same picture and box is the same crop
        box = plain.split.gather([i]).crop_box[0]
        bbox = [box[0] + box[2] * 0.1, box[1] + box[3] * 0.1, box[2] * 0.8, box[3] * 0.8]
        batch = crop_batch([rgb.astype(np.uint8)], [np.array(bbox)], 64, antialias=True)
        np.testing.assert_allclose(batch.affines[0], A, rtol=0, atol=1e-9)
        np.testing.assert_allclose(batch.crops[0].numpy(), b["image"].numpy(), atol=1e-5)
        checked += 1
    assert checked >= 5


def test_augmented_training_crop_is_antialiased(synthetic_root, mask_cache_train):
    aug = AugmentSettings()
    ds = InterHandDataset(
        synthetic_root,
        "train",
        masks=mask_cache_train,
        train=True,
        augment=aug,
        input_size=64,
        antialias=True,
    )
    item = ds[3]
    A = item["crop_affine"].numpy()
    rgb = np.asarray(Image.open(ds.split.image_path(3)).convert("RGB"), np.float64)
    pixels = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    crop = warp_image(pixels, A, 64, supersample=supersample_factor(A))[0]
    gain = ds.augmentation(3).gain
    want = (crop * torch.tensor(gain, dtype=torch.float64)[:, None, None]).clamp(0, 255) / 255.0
    np.testing.assert_allclose(item["image"].numpy(), want.numpy(), rtol=0, atol=1e-5)
