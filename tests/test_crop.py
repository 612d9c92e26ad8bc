"""Crop geometry against hand-computed maps and the official three-point construction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from geometry_reference import (
    compose_affine,
    downsample_labels_nearest,
    flip_joints,
    flip_matrix,
)

from core.parts import swap_hands
from digit.data.crop import (
    apply_affine,
    crop_transform,
    inside_crop,
    invert_affine,
    swap_joint_hands,
    upsample_labels_nearest,
    warp_image,
    warp_labels,
)

BOX = [100.0, 50.0, 200.0, 200.0]  # centre (200, 150), 200 px -> 256 px: factor 1.28


def _official_affine(box, size, rot, scale, shift, flip, width):
    """The official construction, written from its description: shift the box by a fraction of
    its size; on flip, mirror the image (x -> W - 1 - x, box centre too); map the box centre,
    the centre + half the (rotated, scaled) down axis and the centre + half the right axis to
    the crop's centre, bottom-middle and right-middle; solve the 3-point affine."""
    x, y, w, h = box
    x, y = x + w * shift[0], y + h * shift[1]
    cx, cy = x + w / 2, y + h / 2
    if flip:
        cx = width - cx - 1
    t = np.pi * rot / 180

    def rot2(v):
        return np.array([v[0] * np.cos(t) - v[1] * np.sin(t), v[0] * np.sin(t) + v[1] * np.cos(t)])

    c = np.array([cx, cy])
    src = [c, c + rot2([0, h * scale / 2]), c + rot2([w * scale / 2, 0])]
    dst = [np.array([size / 2, size / 2]), np.array([size / 2, size]), np.array([size, size / 2])]
    # solve A @ [p, 1] = q for the three pairs
    P = np.array([[*p, 1.0] for p in src])
    Q = np.array(dst)
    A = np.linalg.solve(P, Q).T
    if flip:  # applied to the mirrored image: compose with x -> W - 1 - x
        A = A @ np.array([[-1.0, 0, width - 1], [0, 1, 0], [0, 0, 1]])
    return A


def test_box_centre_and_corners_by_hand():
    A = crop_transform(BOX)
    np.testing.assert_allclose(A, [[1.28, 0, -128.0], [0, 1.28, -64.0]], atol=1e-12)
    pts = np.array([[200.0, 150.0], [100.0, 50.0], [300.0, 250.0], [100.0, 250.0]])
    np.testing.assert_allclose(
        apply_affine(A, pts), [[128, 128], [0, 0], [256, 256], [0, 256]], atol=1e-12
    )


def test_rotation_by_90_degrees_by_hand():
    A = crop_transform(BOX, rot_deg=90.0)
    # a point 50 px right of the centre ends up 50 * 1.28 = 64 px above the crop centre
    # (content turns counter-clockwise on screen); 50 px below the centre goes right.
    np.testing.assert_allclose(apply_affine(A, [250.0, 150.0]), [128, 64], atol=1e-9)
    np.testing.assert_allclose(apply_affine(A, [200.0, 200.0]), [192, 128], atol=1e-9)


def test_scale_shift_flip_by_hand():
    # scale 2 zooms out: 1.28 / 2 per pixel; shift 0.1 x 200 = 20 px moves the centre to 220
    A = crop_transform(BOX, scale=2.0, shift=(0.1, -0.25))
    np.testing.assert_allclose(apply_affine(A, [220.0, 100.0]), [128, 128], atol=1e-12)
    np.testing.assert_allclose(apply_affine(A, [320.0, 100.0]), [128 + 64, 128], atol=1e-12)
    # flip: a point 10 px right of the box centre appears 12.8 px left of the crop centre
    A = crop_transform(BOX, flip=True)
    np.testing.assert_allclose(apply_affine(A, [210.0, 160.0]), [115.2, 140.8], atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_matches_the_official_construction(seed):
    rng = np.random.default_rng(seed)
    box = [*rng.uniform(-50, 300, 2), *rng.uniform(20, 400, 2)]
    rot = float(rng.uniform(-90, 90))
    scale = float(rng.uniform(0.75, 1.25))
    shift = tuple(rng.uniform(-0.15, 0.15, 2))
    flip = bool(seed % 2)
    width = int(rng.integers(300, 700))
    ours = crop_transform(box, 256, rot, scale, shift, flip)
    ref = _official_affine(box, 256, rot, scale, shift, flip, width)
    np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_flip_is_mirror_then_crop_of_the_mirrored_box():
    width = 512
    x, y, w, h = BOX
    mirrored = [width - 1 - (x + w), y, w, h]  # same box, mirrored image
    direct = crop_transform(BOX, rot_deg=30, scale=1.1, flip=True)
    composed = compose_affine(crop_transform(mirrored, rot_deg=30, scale=1.1), flip_matrix(width))
    np.testing.assert_allclose(direct, composed, atol=1e-9)


def test_invert_affine_is_the_inverse():
    rng = np.random.default_rng(3)
    A = crop_transform([10, 20, 150, 90], rot_deg=37, scale=0.8, shift=(0.1, 0.05), flip=True)
    pts = rng.uniform(-100, 400, (50, 2))
    np.testing.assert_allclose(apply_affine(invert_affine(A), apply_affine(A, pts)), pts, atol=1e-9)
    np.testing.assert_allclose(compose_affine(A, invert_affine(A)), np.eye(3)[:2], atol=1e-12)
    # batched, and torch
    As = np.stack([A, crop_transform(BOX, rot_deg=-20)])
    np.testing.assert_allclose(
        compose_affine(invert_affine(As), As), [np.eye(3)[:2]] * 2, atol=1e-12
    )
    At = torch.from_numpy(As)
    inv_t = invert_affine(At)
    assert isinstance(inv_t, torch.Tensor)
    np.testing.assert_allclose(inv_t.numpy(), invert_affine(As), atol=1e-12)
    pts_b = rng.uniform(0, 300, (2, 5, 2))
    out = apply_affine(As, pts_b)
    np.testing.assert_allclose(out[1], apply_affine(As[1], pts_b[1]), atol=1e-12)
    np.testing.assert_allclose(apply_affine(At, torch.from_numpy(pts_b)).numpy(), out, atol=1e-12)


def _dot_image(h, w, x, y):
    img = torch.zeros(1, 3, h, w, dtype=torch.float64)
    img[0, :, y, x] = 1.0
    return img


def test_warp_image_integer_translation_moves_a_pixel_exactly():
    # a 256 px box has scale 1: the map is a pure translation by -(x, y)
    A = crop_transform([30.0, 12.0, 256.0, 256.0])
    target = apply_affine(A, [100.0, 80.0])
    np.testing.assert_allclose(target, [70, 68], atol=1e-12)
    out = warp_image(_dot_image(300, 320, 100, 80), A, 256)
    assert out.shape == (1, 3, 256, 256) and out.dtype == torch.float64
    expected = torch.zeros_like(out)
    expected[0, :, 68, 70] = 1.0
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_warp_image_fractional_translation_spreads_bilinearly():
    A = crop_transform([29.75, 11.5, 256.0, 256.0])  # translation by (-29.75, -11.5)
    tx, ty = apply_affine(A, [100.0, 80.0])  # (70.25, 68.5)
    out = warp_image(_dot_image(300, 320, 100, 80), A, 256)[0, 0].numpy()
    expected = np.zeros((256, 256))
    for row, wy in ((68, 0.5), (69, 0.5)):
        for col, wx in ((70, 0.75), (71, 0.25)):
            expected[row, col] = wx * wy
    np.testing.assert_allclose(out, expected, atol=1e-6)
    rows, cols = np.mgrid[:256, :256]
    centroid = [(out * cols).sum() / out.sum(), (out * rows).sum() / out.sum()]
    np.testing.assert_allclose(centroid, [tx, ty], atol=1e-6)


def test_warp_image_rotation_is_a_pixel_permutation():
    rng = np.random.default_rng(0)
    img = rng.random((300, 300, 3))
    x, y = 10, 20  # box centre (138, 148) is integer: a 90 degree turn maps pixels to pixels
    A = crop_transform([x, y, 256.0, 256.0], rot_deg=90.0)
    out = warp_image(torch.from_numpy(img).permute(2, 0, 1)[None], A, 256)[0].permute(1, 2, 0)
    # out[i, j] = img[cy + j - 128, cx + 128 - i] (hand-derived from p = c + R(90)(q - 128))
    sub = img[y : y + 256, x + 1 : x + 257]
    np.testing.assert_allclose(out.numpy(), np.rot90(sub, k=1), atol=1e-9)


def test_warp_image_pads_with_zeros_and_accepts_batches():
    img = torch.ones(2, 3, 40, 60)
    # first: translation by +10 (box of 64 px at -10); second: a stretch inside the image
    A = np.stack([crop_transform([-10.0, -10.0, 64, 64], 64), crop_transform([0, 0, 30, 20], 64)])
    out = warp_image(img, A, 64)
    assert out.shape == (2, 3, 64, 64) and out.dtype == torch.float32
    # outside the image: 0 (up to float32 rounding of the normalised grid)
    assert out[0, :, :10].abs().max() < 1e-5 and out[0, :, :, :10].abs().max() < 1e-5
    assert out[0, :, 50:].abs().max() < 1e-5  # below the image (source y >= 40)
    torch.testing.assert_close(out[0, :, 10:50, 10:], torch.ones(3, 40, 54))
    torch.testing.assert_close(out[1], torch.ones(3, 64, 64))


def test_warp_labels_translation_nearest_and_no_new_labels():
    rng = np.random.default_rng(1)
    classes = np.array([0, 3, 17, 30], dtype=np.uint8)
    mask = classes[rng.integers(0, 4, (2, 120, 90))]
    # integer translation: exactly a slice, 0 outside
    A = crop_transform([10.0, 5.0, 64.0, 64.0], 64)
    out = warp_labels(mask, A, 64)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == (2, 64, 64)
    np.testing.assert_array_equal(out, mask[:, 5:69, 10:74])
    # half-pixel shift: rounds up (cv2 INTER_NEAREST), source x = q + 10.5 -> column q + 11
    out = warp_labels(mask, crop_transform([10.5, 5.0, 64.0, 64.0], 64), 64)
    np.testing.assert_array_equal(out, mask[:, 5:69, 11:75])
    # rotation + scale: only input labels appear; torch in -> torch out
    A = crop_transform([0.0, 0.0, 90.0, 120.0], rot_deg=33.0, scale=1.3, flip=True)
    out_t = warp_labels(torch.from_numpy(mask).long(), A, 256)
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.long
    assert set(np.unique(out_t.numpy())) <= set(classes.tolist())
    assert len(np.unique(out_t.numpy())) == 4


def test_warp_labels_follows_the_image_warp():
    """The label of each crop pixel is the class of the original pixel that the (bilinear)
    image warp sees there, wherever that is unambiguous (sample lands near a pixel centre)."""
    rng = np.random.default_rng(5)
    mask = rng.integers(0, 33, (1, 80, 100)).astype(np.uint8)
    A = crop_transform([5.0, 3.0, 90.0, 70.0], rot_deg=-20, scale=1.1)
    labels = warp_labels(mask, A, 128)[0]
    src = apply_affine(invert_affine(A), np.stack(np.mgrid[:128, :128][::-1], -1).astype(float))
    near = np.rint(src)
    close = (np.abs(src - near).max(-1) < 0.3) & (near[..., 0] >= 0) & (near[..., 0] < 100)
    close &= (near[..., 1] >= 0) & (near[..., 1] < 80)
    idx = near.astype(int)
    np.testing.assert_array_equal(labels[close], mask[0, idx[close][:, 1], idx[close][:, 0]])
    assert close.sum() > 1000


def test_downsample_takes_the_top_left_pixel_of_each_block():
    labels = torch.arange(256 * 256).reshape(1, 256, 256)
    out = downsample_labels_nearest(labels)
    assert out.shape == (1, 128, 128)
    assert out[0, 3, 5] == labels[0, 6, 10]
    # the same as DIGIT's F.interpolate(nearest) of the target
    ref = torch.nn.functional.interpolate(labels[None].float(), 128, mode="nearest")[0].long()
    torch.testing.assert_close(out, ref)
    np.testing.assert_array_equal(downsample_labels_nearest(labels.numpy()), ref.numpy())
    np.testing.assert_array_equal(upsample_labels_nearest(out)[0, 7, 11], labels[0, 6, 10])


def _two_hands():
    """Right hand joints around x = 30, left hand around x = 120, on a 100 x 160 image, and
    a mask painting each hand's joints with one of its part labels."""
    rng = np.random.default_rng(2)
    joints = np.zeros((42, 3))
    joints[:21, 0] = rng.integers(15, 45, 21)
    joints[21:, 0] = rng.integers(105, 135, 21)
    joints[:, 1] = rng.integers(20, 80, 42)
    joints[:, 2] = rng.normal(800, 20, 42)
    valid = np.ones(42, bool)
    valid[[3, 30]] = False
    mask = np.zeros((100, 160), np.uint8)
    mask[10:90, 10:50] = 5  # right index part
    mask[10:90, 100:140] = 21  # left index part
    return joints, valid, mask


def test_flipping_twice_is_the_identity():
    joints, valid, _ = _two_hands()
    j1, v1 = flip_joints(joints, valid, 160)
    assert not np.allclose(j1, joints)
    j2, v2 = flip_joints(j1, v1, 160)
    np.testing.assert_allclose(j2, joints, atol=0)
    np.testing.assert_array_equal(v2, valid)
    np.testing.assert_array_equal(j1[21 + 3], [160 - 1 - joints[3, 0], *joints[3, 1:]])
    assert not v1[21 + 3] and not v1[30 - 21]
    np.testing.assert_allclose(compose_affine(flip_matrix(160), flip_matrix(160)), np.eye(3)[:2])


def test_flip_and_swap_keep_labels_on_their_hands():
    joints, valid, mask = _two_hands()
    # flip the original image, then swap
    flipped_mask = swap_hands(mask[:, ::-1])
    fj, fv = flip_joints(joints, valid, 160)
    uv = fj[:, :2].astype(int)
    at = flipped_mask[uv[:, 1], uv[:, 0]]
    assert np.all((at[:21] >= 1) & (at[:21] <= 16)) and np.all(at[21:] >= 17)
    # the same through a flipped crop (original image in, swap after the warp)
    A = crop_transform([0.0, -30.0, 160.0, 160.0], out_size=256, flip=True)
    crop_mask = swap_hands(warp_labels(mask[None], A, 256)[0])
    cj, cv = swap_joint_hands(apply_affine(A, joints[:, :2]), valid)
    assert np.all(inside_crop(cj))
    ij = np.rint(cj).astype(int)
    at = crop_mask[ij[:, 1], ij[:, 0]]
    assert np.all((at[:21] >= 1) & (at[:21] <= 16)) and np.all(at[21:] >= 17)
    np.testing.assert_array_equal(cv, fv)
    # the crop of the flipped joints equals the flipped crop of the original joints
    A0 = crop_transform([160 - 1 - 160.0, -30.0, 160.0, 160.0], out_size=256)
    np.testing.assert_allclose(apply_affine(A0, fj[:, :2]), cj, atol=1e-9)


def test_inside_crop_is_half_open():
    uv = np.array([[0, 0], [255.9, 10], [256, 10], [-0.01, 3], [3, 256]])
    np.testing.assert_array_equal(inside_crop(uv), [True, True, False, False, False])
