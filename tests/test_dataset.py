"""InterHandDataset / collate / make_loader on the small synthetic dataset and its mask cache.

References are computed here from the split's annotations (`InterHandSplit`), the crop maths
(`crop_transform`, `apply_affine`), the official target formulas and a hand-written bilinear
sampler, never from the dataset's own earlier output.
"""

import numpy as np
import pytest
import torch

from core.errors import DigitError
from core.interhand.reader import InterHandSplit
from core.mask_cache import MaskCache
from digit.data.augment import AugmentSettings
from digit.data.batch import Batch
from digit.data.crop import apply_affine, crop_transform
from digit.data.dataset import InterHandDataset, collate, make_loader, set_loader_epoch

NO_AUG = AugmentSettings(enabled=False)
FLIP_ONLY = AugmentSettings(shift=0.0, scale_factor=0.0, rot_prob=0.0, flip_prob=1.0,
                            color_gain=(1.0, 1.0))  # fmt: skip
ROT_ONLY = AugmentSettings(shift=0.0, scale_factor=0.0, rot_prob=1.0, flip_prob=0.0,
                           color_gain=(1.0, 1.0))  # fmt: skip
RIGHT, LEFT = range(1, 17), range(17, 33)


@pytest.fixture(scope="module")
def split(synthetic_root) -> InterHandSplit:
    return InterHandSplit.from_root(synthetic_root, "train")


@pytest.fixture(scope="module")
def cache_arrays(mask_cache_train):
    with MaskCache(mask_cache_train) as cache:
        return cache.file["valid"][:], cache.file["hands"][:], cache.file["lr_iou"][:]


def _train(root, masks, augment, **kw) -> InterHandDataset:
    return InterHandDataset(root, "train", masks=masks, train=True, augment=augment, **kw)


def _single_hand_rows(split, cache_arrays) -> list[int]:
    """Rows with one annotated hand whose mask is valid segmentation ground truth."""
    valid = cache_arrays[0]
    codes = split.gather(slice(None)).hand_type_code
    return [i for i in range(len(split)) if codes[i] in (0, 1) and valid[i]]


def _hand_label_rates(item, code: int) -> tuple[int, int, int]:
    """(own-hand, other-hand, total) labels of the 128 target under the valid in-crop joints
    of hand `code` (0 right, 1 left); pixel k of the target is crop pixel 2k."""
    segm = item["segm_target"].numpy()
    own_ids, other_ids = (RIGHT, LEFT) if code == 0 else (LEFT, RIGHT)
    own = other = total = 0
    for j in range(21 * code, 21 * code + 21):
        u, v = item["joints_crop"][j].tolist()
        if not item["joint_valid_crop"][j] or not (0 <= u < 255 and 0 <= v < 255):
            continue
        label = int(segm[round(v / 2), round(u / 2)])
        own += label in own_ids
        other += label in other_ids
        total += 1
    return own, other, total


def _bilinear(image: np.ndarray, x: float, y: float) -> np.ndarray:
    """(H, W, 3) image at (x, y), pixel centres at integers; (x, y) at least 1 px inside."""
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    fx, fy = x - x0, y - y0
    top = (1 - fx) * image[y0, x0] + fx * image[y0, x0 + 1]
    bottom = (1 - fx) * image[y0 + 1, x0] + fx * image[y0 + 1, x0 + 1]
    return (1 - fy) * top + fy * bottom


def test_unaugmented_crop_follows_the_crop_geometry(synthetic_root, mask_cache_train, split):
    from PIL import Image

    ds = _train(synthetic_root, mask_cache_train, NO_AUG)
    assert len(ds) == len(split) == 36
    rows = list(range(0, len(ds), 2))  # right, left and interacting frames
    items = [ds[i] for i in rows]
    rec = split.gather(slice(None))
    rng = np.random.default_rng(0)
    checked = 0
    for i, item in zip(rows, items, strict=True):
        A = crop_transform(rec.crop_box[i], 256)
        np.testing.assert_allclose(item["crop_affine"].numpy(), A, rtol=0, atol=1e-12)
        expected = apply_affine(A, rec.joints_img[i])
        np.testing.assert_allclose(item["joints_crop"].numpy(), expected, rtol=0, atol=1e-9)
        image = item["image"]
        assert image.dtype == torch.float32 and image.shape == (3, 256, 256)
        assert 0.0 <= image.min() and image.max() <= 1.0
        # a few crop pixels against bilinear sampling of the original at A^-1 q
        if i % 6 == 0:  # 6 images
            original = np.asarray(Image.open(split.image_path(i)).convert("RGB"), np.float64)
            h, w = original.shape[:2]
            inv = np.linalg.inv(np.vstack([A, [0.0, 0.0, 1.0]]))
            for q in rng.integers(0, 256, size=(40, 2)):
                x, y, _ = inv @ [q[0], q[1], 1.0]
                if 0 <= x < w - 1 and 0 <= y < h - 1:
                    ref = _bilinear(original, x, y) / 255.0
                    got = image[:, q[1], q[0]].numpy()
                    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-3)
                    checked += 1
    assert checked > 100

    # targets by the official formulas, written out here
    b = collate(items)
    for k, i in enumerate(rows):
        uv = apply_affine(crop_transform(rec.crop_box[i], 256), rec.joints_img[i])
        z = rec.joints_cam[i, :, 2]
        root = np.repeat(z[[20, 41]], 21)
        z_hm = ((z - root) / 200.0 + 1.0) / 2.0 * 64.0
        with np.errstate(invalid="ignore"):
            inside = ((uv >= 0) & (uv < 256)).all(-1) & (z_hm >= 0) & (z_hm < 64)
        valid = rec.joint_valid[i] & inside
        assert np.array_equal(b.targets.joint_valid[k].numpy(), valid)
        got = b.targets.joints_hm[k].numpy()
        np.testing.assert_allclose(got[valid, :2], uv[valid] / 4.0, rtol=0, atol=1e-4)
        np.testing.assert_allclose(got[valid, 2], z_hm[valid], rtol=0, atol=1e-4)
        assert b.targets.hand_type[k].tolist() == rec.hand_type_pair[i].tolist()
        both = rec.hand_type_code[i] == 2 and valid[20] and valid[41]
        rel = ((z[41] - z[20]) / 200.0 + 1.0) / 2.0 * 64.0
        assert bool(b.targets.rel_root_valid[k]) == bool(both and 0 <= rel < 64)
        if both:
            assert b.targets.rel_root_bins[k].item() == pytest.approx(rel, abs=1e-4)
    assert b.targets.rel_root_valid.any()


def test_mask_labels_lie_under_their_hand(synthetic_root, mask_cache_train, split, cache_arrays):
    ds = _train(synthetic_root, mask_cache_train, NO_AUG)
    codes = split.gather(slice(None)).hand_type_code
    own = other = total = 0
    for i in _single_hand_rows(split, cache_arrays):
        item = ds[i]
        assert item["segm_valid"] and item["segm_target"].dtype == torch.uint8
        o, x, t = _hand_label_rates(item, int(codes[i]))
        own, other, total = own + o, other + x, total + t
    assert total > 200
    assert other == 0
    assert own / total >= 0.7, (own, total)


def test_forced_flip_mirrors_the_sample_and_swaps_hands(
    synthetic_root, mask_cache_train, split, cache_arrays
):
    plain = _train(synthetic_root, mask_cache_train, NO_AUG)
    flipped = _train(synthetic_root, mask_cache_train, FLIP_ONLY)
    rec = split.gather(slice(None))
    rights = [i for i in _single_hand_rows(split, cache_arrays) if rec.hand_type_code[i] == 0]
    assert len(rights) >= 3
    for i in rights[:4]:
        a, f = plain[i], flipped[i]
        assert bool(f["flip"]) and not bool(a["flip"])
        b = collate([f])
        assert b.targets.hand_type[0].tolist() == [0.0, 1.0]
        assert not b.targets.joint_valid[0, :21].any() and b.targets.joint_valid[0, 21:].any()
        # the mirrored right hand is the left block; u -> 256 - u about the crop centre
        A_flip = crop_transform(rec.crop_box[i], 256, flip=True)
        left = f["joints_crop"][21:].numpy()
        np.testing.assert_allclose(left, apply_affine(A_flip, rec.joints_img[i, :21]), atol=1e-9)
        right_plain = a["joints_crop"][:21].numpy()
        np.testing.assert_allclose(left[:, 0], 256.0 - right_plain[:, 0], atol=1e-9)
        np.testing.assert_allclose(left[:, 1], right_plain[:, 1], atol=1e-9)
        # labels: only background and left parts, the mirror of the plain labels
        labels = f["segm_target"].numpy()
        assert set(np.unique(labels)) <= {0, *LEFT} and (labels >= 17).sum() > 50
        mirrored = a["segm_target"].numpy()[:, :0:-1]  # target column k <-> 128 - k
        swapped = np.where(mirrored > 0, mirrored + 16, 0)
        assert (labels[:, 1:] == swapped).mean() > 0.99
        # image: crop column j <-> 256 - j
        np.testing.assert_allclose(f["image"][:, :, 1:], a["image"].flip(-1)[:, :, :-1], atol=2e-3)
        # evaluation fields never flip
        for key in ("joint_valid", "joints_cam", "abs_depth", "hand_type_code"):
            assert torch.equal(f[key].nan_to_num(), a[key].nan_to_num()), key
        assert not torch.equal(f["crop_affine"], a["crop_affine"])


def test_forced_rotation_keeps_joints_on_their_hand(
    synthetic_root, mask_cache_train, split, cache_arrays
):
    ds = _train(synthetic_root, mask_cache_train, ROT_ONLY)
    rec = split.gather(slice(None))
    own = other = total = 0
    angles = []
    for i in _single_hand_rows(split, cache_arrays):
        params = ds.augmentation(i)
        assert params.rot_deg != 0.0 and not params.flip and params.scale == 1.0
        angles.append(abs(params.rot_deg))
        item = ds[i]
        A = crop_transform(rec.crop_box[i], 256, rot_deg=params.rot_deg)
        np.testing.assert_allclose(item["crop_affine"].numpy(), A, atol=1e-12)
        np.testing.assert_allclose(
            item["joints_crop"].numpy(), apply_affine(A, rec.joints_img[i]), atol=1e-9
        )
        o, x, t = _hand_label_rates(item, int(rec.hand_type_code[i]))
        own, other, total = own + o, other + x, total + t
    assert max(angles) > 20.0
    assert other == 0 and own / total >= 0.7, (own, other, total)


def test_colour_gain_is_clipped_before_dividing(synthetic_root, mask_cache_train):
    gain = AugmentSettings(shift=0.0, scale_factor=0.0, rot_prob=0.0, flip_prob=0.0,
                           color_gain=(1.6, 1.6))  # fmt: skip
    base = _train(synthetic_root, mask_cache_train, NO_AUG)[3]["image"]
    bright = _train(synthetic_root, mask_cache_train, gain)[3]["image"]
    assert (base * 1.6 > 1.0).any()
    torch.testing.assert_close(bright, (base * 1.6).clamp(max=1.0), rtol=0, atol=1e-5)


def test_augmentation_depends_only_on_seed_epoch_and_index(synthetic_root, mask_cache_train):
    a = _train(synthetic_root, mask_cache_train, AugmentSettings(), seed=3, limit=8)
    b = _train(synthetic_root, mask_cache_train, AugmentSettings(), seed=3, limit=8)
    for i in (5, 0, 2):  # any order of access
        x, y = a[i], b[i]
        assert x.keys() == y.keys()
        for key in x:
            assert torch.equal(x[key].nan_to_num(), y[key].nan_to_num()), key
    first = a[2]
    a.set_epoch(1)
    assert not torch.equal(a[2]["crop_affine"], first["crop_affine"])
    assert not torch.equal(a[2]["image"], first["image"])
    a.set_epoch(0)
    assert torch.equal(a[2]["image"], first["image"])
    other_seed = _train(synthetic_root, mask_cache_train, AugmentSettings(), seed=4, limit=8)
    assert not torch.equal(other_seed[2]["crop_affine"], first["crop_affine"])

    # two worker processes give the batches of the main process
    loader = make_loader(b, batch_size=3, shuffle=False, num_workers=2)
    set_loader_epoch(loader, 1)
    a.set_epoch(1)
    batches = list(loader)
    assert [len(x.index) for x in batches] == [3, 3, 2]
    direct = collate([a[i] for i in range(3, 6)])
    assert torch.equal(batches[1].image, direct.image)
    assert torch.equal(batches[1].segm_target, direct.segm_target)
    assert torch.equal(
        batches[1].targets.joints_hm.nan_to_num(), direct.targets.joints_hm.nan_to_num()
    )

    # the shuffled order is a function of (seed, epoch)
    shuffled = make_loader(a, batch_size=4, shuffle=True, num_workers=0)
    orders = []
    for epoch in (0, 1, 0):
        set_loader_epoch(shuffled, epoch)
        orders.append(torch.cat([x.index for x in shuffled]).tolist())
    assert sorted(orders[0]) == list(range(8))
    assert orders[0] == orders[2] != orders[1]


def test_collate_fills_the_batch_contract(synthetic_root, mask_cache_train, cache_arrays):
    ds = _train(synthetic_root, mask_cache_train, AugmentSettings(), limit=24)
    batch = next(iter(make_loader(ds, batch_size=3, shuffle=False, num_workers=0)))
    assert isinstance(batch, Batch)
    expected = {
        "image": ((3, 3, 256, 256), torch.float32),
        "segm_target": ((3, 128, 128), torch.int64),
        "segm_valid": ((3,), torch.bool),
        "index": ((3,), torch.int64),
        "image_id": ((3,), torch.int64),
        "crop_affine": ((3, 2, 3), torch.float64),
        "joints_cam": ((3, 42, 3), torch.float64),
        "joint_valid": ((3, 42), torch.bool),
        "abs_depth": ((3, 2), torch.float64),
        "focal": ((3, 2), torch.float64),
        "princpt": ((3, 2), torch.float64),
        "hand_type_code": ((3,), torch.int64),
        "hand_type_valid": ((3,), torch.bool),
        "lr_iou": ((3,), torch.float32),
    }
    for name, (shape, dtype) in expected.items():
        value = getattr(batch, name)
        assert tuple(value.shape) == shape and value.dtype == dtype, name
    t = batch.targets
    assert t.joints_hm.shape == (3, 42, 3) and t.joints_hm.dtype == torch.float32
    assert t.joint_valid.shape == (3, 42) and t.joint_valid.dtype == torch.bool
    assert t.rel_root_bins.shape == (3,) and t.rel_root_valid.shape == (3,)
    assert t.hand_type.shape == (3, 2) and t.hand_type_valid.shape == (3,)
    assert batch.index.tolist() == [0, 1, 2]
    assert int(batch.segm_target.max()) <= 32 and int(batch.segm_target.min()) >= 0
    assert batch.segm_valid.tolist() == cache_arrays[0][:3].tolist()
    # an interacting row carries the cache's interaction degree
    row = ds[20]
    assert row["lr_iou"].item() == pytest.approx(float(cache_arrays[2][20]))
    assert batch.to("cpu").image.shape == (3, 3, 256, 256)


def test_training_without_masks_is_one_clear_line(synthetic_root, tmp_path):
    absent = tmp_path / "masks_train.h5"
    with pytest.raises(DigitError) as err:
        InterHandDataset(synthetic_root, "train", masks=absent, train=True, augment=NO_AUG)
    message = str(err.value)
    assert "\n" not in message and str(absent) in message
    assert "digit-render build-masks --split train" in message


def test_evaluation_works_without_masks(synthetic_root, tmp_path):
    ds = InterHandDataset(
        synthetic_root, "test", masks=tmp_path / "none", train=False, augment=AugmentSettings()
    )
    test = InterHandSplit.from_root(synthetic_root, "test")
    assert not ds.has_masks and len(ds) == len(test)
    rows = [0, 20, 35]
    batch = collate([ds[i] for i in rows])
    assert not batch.segm_valid.any() and not batch.segm_target.any()
    assert torch.isnan(batch.lr_iou).all()
    for k, i in enumerate(rows):
        rec = test[i]
        assert batch.image_id[k].item() == rec.image_id and batch.index[k].item() == i
        K = rec.camera.K
        assert batch.focal[k].tolist() == [K[0, 0], K[1, 1]]
        assert batch.princpt[k].tolist() == [K[0, 2], K[1, 2]]
        roots = [rec.joints_cam[20, 2], rec.joints_cam[41, 2]]  # NaN for an absent hand
        np.testing.assert_array_equal(batch.abs_depth[k].numpy(), roots)
        assert batch.joint_valid[k].tolist() == rec.joint_valid.tolist()
        np.testing.assert_array_equal(batch.joints_cam[k].numpy(), rec.joints_cam)
        assert batch.hand_type_code[k].item() == ["right", "left", "interacting"].index(
            rec.hand_type
        )
        # evaluation never augments, even with augmentation settings given
        A = crop_transform(rec.crop_box, 256)
        np.testing.assert_allclose(batch.crop_affine[k].numpy(), A, atol=1e-12)


def test_mismatched_caches_are_refused(synthetic_root, mask_cache_train, tmp_path):
    from render.mask_cache.builder import build_masks

    with pytest.raises(DigitError, match="mask cache of split 'train', not of split 'val'"):
        InterHandDataset(synthetic_root, "val", masks=mask_cache_train, train=False)
    partial = tmp_path / "masks_train.h5"
    build_masks("train", synthetic_root, out=partial, limit=4, show_progress=False,
                log=lambda *a, **k: None)  # fmt: skip
    with pytest.raises(DigitError, match="lacks 32 of the 36 images"):
        _train(synthetic_root, partial, NO_AUG)
    # a folder holding masks_{split}.h5 is accepted, and --limit fits the partial cache
    ds = _train(synthetic_root, tmp_path, NO_AUG, limit=4)
    assert ds.mask_path == partial and len(ds) == 4
    assert torch.equal(
        ds[3]["segm_target"], _train(synthetic_root, mask_cache_train, NO_AUG)[3]["segm_target"]
    )
