"""The mask cache: layout, agreement with the annotations, and the geometry behind it.

References are independent of the builder: the raw annotation JSON files, the hand model run
one image at a time with numpy's matmul for the camera transform, and the rasterizer's slow
reference backend.
"""

import binascii
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from core.camera import world_to_camera_exact
from core.interhand.reader import InterHandSplit
from core.mask_cache import ATTRIBUTES, DATASETS, MaskCache
from core.parts import class_table_json
from render.hand_model import SIDES, HandModel
from render.mano import load_mano_pickle
from render.mask_cache.scene import (
    FORWARD_BATCH,
    fit_error_mm,
    mask_valid,
    pose_hands,
    silhouette_iou,
    world_to_camera_into,
)
from render.part_labels import face_classes, vertex_parts_from_weights
from render.raster import RasterSettings, rasterize

# MANO part ids (core.parts.PART_NAMES) of each IH finger: thumb, index, middle, ring, pinky.
FINGER_PARTS = ((13, 14, 15), (1, 2, 3), (4, 5, 6), (10, 11, 12), (7, 8, 9))


def _json(root: Path, kind: str) -> dict:
    return json.loads((root / "annotations/train" / f"InterHand2.6M_train_{kind}.json").read_text())


@pytest.fixture(scope="module")
def data(synthetic_root) -> InterHandSplit:
    return InterHandSplit.from_root(synthetic_root, "train")


# --------------------------------------------------------------------------- layout
def test_layout_matches_the_contract(mask_cache_train, synthetic_root):
    raw = _json(synthetic_root, "data")
    images = raw["images"]
    with h5py.File(mask_cache_train, "r") as f:
        assert set(f.keys()) == set(DATASETS)
        assert set(f.attrs.keys()) == set(ATTRIBUTES)  # a whole-split build: no "selection"
        n = len(images)
        hmax = max(im["height"] for im in images)
        wmax = max(im["width"] for im in images)
        masks = f["masks"]
        assert masks.dtype == np.uint8 and masks.shape == (n, hmax, wmax)
        assert masks.chunks == (1, hmax, wmax) and masks.compression == "gzip"
        expected = {
            "image_id": (np.int64, (n,)),
            "image_hw": (np.int32, (n, 2)),
            "hands": (np.bool_, (n, 2)),
            "valid": (np.bool_, (n,)),
            "fit_error_mm": (np.float32, (n, 2)),
            "lr_iou": (np.float32, (n,)),
            "mask_crc32": (np.uint32, (n,)),
            "visible_px": (np.int32, (n, 2)),
        }
        for name, (dtype, shape) in expected.items():
            assert f[name].dtype == dtype and f[name].shape == shape, name
        assert h5py.check_string_dtype(f["file_name"].dtype).encoding == "utf-8"
        # data.json order, names and sizes
        assert f["image_id"][...].tolist() == [im["id"] for im in images]
        assert f["file_name"].asstr()[...].tolist() == [im["file_name"] for im in images]
        assert f["image_hw"][...].tolist() == [[im["height"], im["width"]] for im in images]
        assert bool(f.attrs["complete"]) is True
        assert f.attrs["split"] == "train" and f.attrs["format_version"] == 2
        assert json.loads(f.attrs["classes"]) == json.loads(class_table_json())
        renderer = json.loads(f.attrs["renderer"])
        assert renderer["compression"] == "gzip" and renderer["compression_opts"] == 1
        assert renderer["backend"] == "numba" and renderer["chunks"] == [1, hmax, wmax]
        assert json.loads(f.attrs["mano"])["synthetic"] is True
        assert json.loads(f.attrs["part_labels"]) == {"source": "skinning"}
        import hashlib

        digest = hashlib.sha256(
            (synthetic_root / "annotations/train/InterHand2.6M_train_data.json").read_bytes()
        )
        assert json.loads(f.attrs["annotations"])["data_json_sha256"] == digest.hexdigest()
        # outside each image the canvas is 0; class ids in 0..32
        for i, (h, w) in enumerate(f["image_hw"][...]):
            m = masks[i]
            assert m.max() <= 32 and not m[h:].any() and not m[:, w:].any()
            # integrity and visibility, from the stored pixels with the standard CRC-32
            # (binascii's, not the builder's helper) and plain class counts
            assert f["mask_crc32"][i] == binascii.crc32(m[:h, :w].tobytes())
            right = int(((m >= 1) & (m <= 16)).sum())
            left = int(((m >= 17) & (m <= 32)).sum())
            assert f["visible_px"][i].tolist() == [right, left]


def test_hands_valid_and_fit_error_follow_the_annotations(mask_cache_train, synthetic_root):
    raw, mano = _json(synthetic_root, "data"), _json(synthetic_root, "MANO_NeuralAnnot")
    hand_type = {a["image_id"]: a["hand_type"] for a in raw["annotations"]}
    with MaskCache(mask_cache_train) as cache:
        hands, valid = cache.file["hands"][...], cache.file["valid"][...]
        fit, iou = cache.file["fit_error_mm"][...], cache.file["lr_iou"][...]
    seen = set()
    for i, im in enumerate(raw["images"]):
        fits = mano.get(str(im["capture"]), {}).get(str(im["frame_idx"])) or {}
        has = [fits.get("right") is not None, fits.get("left") is not None]
        assert hands[i].tolist() == has
        kind = hand_type[im["id"]]
        rule = {
            "interacting": has[0] and has[1],
            "right": has[0] and not has[1],
            "left": has[1] and not has[0],
        }[kind]
        assert valid[i] == rule
        seen.add((kind, tuple(has)))
        # annotated joints ARE the synthetic model's regressed joints: params -> MANO ->
        # world -> camera must reproduce them
        for h in range(2):
            if has[h]:
                assert fit[i, h] < 1e-3
            else:
                assert np.isnan(fit[i, h])
        assert np.isnan(iou[i]) == (not (has[0] and has[1]))
    assert {
        ("interacting", (True, True)),
        ("right", (True, False)),
        ("left", (False, True)),
    } <= seen


def test_masks_agree_with_the_annotated_joints(mask_cache_train, data):
    b = data.gather(slice(0, len(data)))
    own = other = background = 0
    finger_hits = np.zeros((4, 2))  # per joint position within a finger: tip, 3, 2, 1(MCP)
    mcp_own_or_palm = np.zeros(2)
    with MaskCache(mask_cache_train) as cache:
        hands = cache.file["hands"][...]
        for i in range(len(cache)):
            code = int(b.hand_type_code[i])
            if code == 2 or not hands[i, code] or hands[i, 1 - code]:
                continue  # single-hand frames: nothing of the other hand can hide a joint
            mask = cache.mask(i)
            offset = 1 + 16 * code
            for k in range(21):
                j = 21 * code + k
                if not b.joint_valid[i, j]:
                    continue
                u, v = b.joints_img[i, j]
                row, col = round(v), round(u)
                if not (0 <= row < mask.shape[0] and 0 <= col < mask.shape[1]):
                    continue
                label = int(mask[row, col])
                if label == 0:
                    background += 1
                elif offset <= label < offset + 16:
                    own += 1
                else:
                    other += 1
                if k < 20:
                    on_finger = label - offset in FINGER_PARTS[k // 4]
                    finger_hits[k % 4] += (on_finger, 1)
                    if k % 4 == 3:
                        f = k // 4
                        near = [FINGER_PARTS[g] for g in (f - 1, f + 1) if 0 <= g < 5]
                        beside = any(label - offset in parts for parts in near)
                        mcp_own_or_palm += (on_finger or label == offset or beside, 1)
    total = own + other + background
    assert total > 150
    assert other == 0
    assert own / total >= 0.8, (own, background)
    rates = finger_hits[:, 0] / finger_hits[:, 1]
    # tips and the two inner finger joints: mostly on their own finger (measured 0.70-0.84)
    assert (rates[:3] >= 0.6).all(), rates
    # the knuckle (MCP) sits where the finger meets the palm, and in generator v4's everyday
    # poses (the MCP flexes as much as the PIP) a curled neighbouring finger often covers it:
    # measured on this set 45 own finger, 21 palm, 14 a neighbouring finger, 6 elsewhere of 86
    assert mcp_own_or_palm[0] / mcp_own_or_palm[1] >= 0.85, mcp_own_or_palm


def _reference_render(model, weights, rec):
    """Labels and per-hand coverage of one image: batch-1 forward, matmul camera transform,
    the slow reference rasterizer."""
    verts, faces, labels, single = [], [], [], []
    offset = 0
    for h, side in enumerate(SIDES):
        fit = rec.mano[h]
        if fit is None:
            continue
        out = model(side, *(torch.as_tensor(a)[None] for a in (fit.pose, fit.shape, fit.trans)))
        world = model.sealed(side, out.vertices)[0].numpy()
        cam = world @ rec.camera.R.T + rec.camera.t
        f = model.sealed_faces(side).numpy()
        verts.append(cam)
        faces.append(f + offset)
        labels.append(face_classes(f, vertex_parts_from_weights(weights[side]), side))
        single.append((cam, f))
        offset += len(cam)
    settings = RasterSettings(backend="reference")
    p2f = rasterize(
        np.concatenate(verts)[None], np.concatenate(faces), rec.camera.K, rec.hw, settings=settings
    ).pix_to_face[0]
    lab = np.concatenate(labels)
    mask = np.where(p2f >= 0, lab[np.maximum(p2f, 0)], 0)
    cover = [
        rasterize(v[None], f, rec.camera.K, rec.hw, settings=settings).pix_to_face[0] >= 0
        for v, f in single
    ]
    return mask, cover


def test_masks_equal_an_independent_rendering(mask_cache_train, data, synthetic_root):
    model = HandModel.from_dir(synthetic_root / "mano")
    weights = {
        s: load_mano_pickle(synthetic_root / "mano" / f"MANO_{s.upper()}.pkl")["weights"]
        for s in SIDES
    }
    with MaskCache(mask_cache_train) as cache:
        hands = cache.file["hands"][...]
        iou = cache.file["lr_iou"][...]
        both = int(np.flatnonzero(hands.all(1))[0])
        one = int(np.flatnonzero(hands.sum(1) == 1)[0])
        for i in (both, one):
            mask, cover = _reference_render(model, weights, data[i])
            differ = int(np.count_nonzero(mask != cache.mask(i)))
            assert differ <= 5, (i, differ)  # other rounding in the geometry may move an edge pixel
            assert (mask > 0).sum() > 500
            if len(cover) == 2:
                assert abs(silhouette_iou(cover[0][None], cover[1][None])[0] - iou[i]) < 2e-3


# --------------------------------------------------------------------------- geometry
def test_pose_hands_does_not_depend_on_the_batch(synthetic_root, data):
    model = HandModel.from_dir(synthetic_root / "mano")
    fr = data.frames
    rows = np.flatnonzero(fr.has_mano[:, 0])
    pose, shape, trans = (a[rows, 0] for a in (fr.mano_pose, fr.mano_shape, fr.mano_trans))
    full_v, full_j = pose_hands(model, "right", pose, shape, trans)
    assert len(rows) > 3
    rng = np.random.default_rng(0)
    for _ in range(3):  # the same frames at other positions, with other neighbours
        order = rng.permutation(len(rows))
        v, j = pose_hands(model, "right", pose[order], shape[order], trans[order])
        assert np.array_equal(v, full_v[order]) and np.array_equal(j, full_j[order])
    v1, _ = pose_hands(model, "right", pose[2:3], shape[2:3], trans[2:3])
    assert np.array_equal(v1[0], full_v[2])
    assert FORWARD_BATCH >= 16  # MKL rounds batches below 16 differently (measured)
    # and they are the model's vertices (rounding aside)
    out = model("right", *(torch.as_tensor(a[:1]) for a in (pose, shape, trans)))
    assert np.allclose(full_v[0, :-1], out.vertices[0].numpy(), atol=1e-9)


def test_compiled_world_to_camera_is_the_exact_forms_bits():
    """The build's compiled transform equals `world_to_camera_exact` bit for bit (no fused
    multiply-add, same order of sums), through its gather, and flags an overflow."""
    rng = np.random.default_rng(3)
    points = rng.normal(size=(4, 50, 3)) * 300 + rng.normal(size=(4, 1, 3)) * 1000
    q, _ = np.linalg.qr(rng.normal(size=(6, 3, 3)))
    R, t = q, rng.normal(size=(6, 3)) * 500
    images, where = np.array([5, 0, 2, 3]), np.array([1, 1, 3, 0])
    out = np.full((6, 50, 3), np.nan)
    finite = world_to_camera_into(points, where, R, t, images, out)
    want = world_to_camera_exact(points[where], R[images], t[images])
    assert finite.all() and np.array_equal(out[images], want)
    assert np.isnan(out[[1, 4]]).all()  # images not asked for are left alone
    points[3, 7, 0] = 1e308  # finite in, infinite out
    finite = world_to_camera_into(points, where, R * 10, t, images, out)
    assert finite.tolist() == [True, True, False, True]


def test_mask_valid_rule():
    codes = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    rendered = np.array(
        [[1, 0], [1, 1], [0, 0], [0, 1], [1, 1], [1, 0], [1, 1], [1, 0], [0, 1], [0, 0]], bool
    )
    expected = [True, False, False, True, False, False, True, False, False, False]
    assert mask_valid(codes, rendered).tolist() == expected


def test_fit_error_and_iou_by_hand():
    joints = np.zeros((1, 2, 21, 3))
    ann = np.zeros((1, 42, 3))
    ann[0, 0] = [3.0, 4.0, 0.0]  # 5 mm off
    ann[0, 1] = [0.0, 0.0, 1.0]  # 1 mm off
    valid = np.zeros((1, 42), bool)
    valid[0, :2] = True
    err = fit_error_mm(joints, ann, valid, np.array([[True, True]]))
    assert err[0, 0] == pytest.approx(3.0) and np.isnan(err[0, 1])  # left: no valid joint
    err = fit_error_mm(joints, ann, valid, np.array([[False, True]]))
    assert np.isnan(err).all()
    a = np.zeros((1, 4, 4), bool)
    b = np.zeros((1, 4, 4), bool)
    a[0, :2] = True  # 8 pixels
    b[0, 1:3] = True  # 8 pixels, 4 shared
    assert silhouette_iou(a, b)[0] == pytest.approx(4 / 12)
    assert silhouette_iou(a & False, b & False)[0] == 0.0


def test_checksums_and_compression_in_threads_match_zlib_one_mask_at_a_time():
    import zlib

    from render.mask_cache.pieces import compress_masks
    from render.mask_cache.scene import mask_checksums

    rng = np.random.default_rng(0)
    masks = np.zeros((7, 20, 30), np.uint8)
    masks[:, 5:15, 3:25] = rng.integers(0, 33, size=(7, 10, 22))
    hw = np.array([[20, 30], [12, 30], [20, 17], [1, 1], [20, 30], [9, 9], [20, 30]])
    for threads in (1, 3, 8):
        crcs = mask_checksums(masks, hw, threads=threads)
        assert crcs.tolist() == [
            zlib.crc32(masks[i, :h, :w].tobytes()) for i, (h, w) in enumerate(hw)
        ]
        chunks = compress_masks(masks, threads=threads)
        assert [zlib.decompress(c) for c in chunks] == [m.tobytes() for m in masks]


@pytest.mark.parametrize("shape", [(512, 512), (7, 5), (1, 1), (3, 300)])
def test_deflated_masks_inflate_to_their_bytes_with_zlib_and_hdf5(shape, tmp_path):
    import zlib

    import h5py

    from render.mask_cache.pieces import deflate_mask

    rng = np.random.default_rng(1)
    h, w = shape
    cases = [np.zeros(shape, np.uint8), rng.integers(0, 256, shape).astype(np.uint8)]
    for _ in range(12):  # labels in a band of rows, zero rows above and below (or none)
        m = np.zeros(shape, np.uint8)
        r0 = int(rng.integers(0, h))
        r1 = int(rng.integers(r0, h)) + 1
        m[r0:r1] = rng.integers(0, 33, (r1 - r0, w)) * (rng.random((r1 - r0, w)) < 0.5)
        cases.append(m)
    for r, c in ((0, 0), (h - 1, w - 1), (h // 2, 0)):
        m = np.zeros(shape, np.uint8)
        m[r, c] = 32
        cases.append(m)
    for m in cases:
        stream = deflate_mask(m)
        assert zlib.decompress(stream) == m.tobytes()
        # no bigger than zlib's level 1 (noise, stored either way, within 0.1 %)
        assert len(stream) <= len(zlib.compress(m.tobytes(), 1)) * 1.001 + 32
    with h5py.File(tmp_path / "m.h5", "w") as f:  # HDF5's own deflate filter reads them
        ds = f.create_dataset("m", (len(cases), h, w), np.uint8, chunks=(1, h, w),
                              compression="gzip", compression_opts=1)  # fmt: skip
        for j, m in enumerate(cases):
            ds.id.write_direct_chunk((j, 0, 0), deflate_mask(m), 0)
    with h5py.File(tmp_path / "m.h5", "r") as f:
        np.testing.assert_array_equal(f["m"][...], np.stack(cases))


def test_the_in_process_build_writes_what_render_piece_gives_piece_by_piece(
    mask_cache_train, synthetic_root
):
    """The in-process build renders pieces in lanes, one per core, that finish in any order;
    every row must still be what `render_piece` gives for its piece alone, in order (pieces of
    8: several pieces in flight at once)."""
    from render.mask_cache.scene import piece_input, render_piece, scene_topology, vertex_parts

    mano = synthetic_root / "mano"
    model = HandModel.from_dir(mano)
    topo = scene_topology(model, vertex_parts(mano, "skinning", model))
    split = InterHandSplit.from_root(synthetic_root, "train")
    with h5py.File(mask_cache_train, "r") as f:
        canvas = f["masks"].shape[1:]
        n = len(f["image_id"])
        assert n > 3 * 8
        for start in range(0, n, 8):
            stop = min(start + 8, n)
            want = render_piece(
                model, topo, piece_input(split, start, stop), canvas, RasterSettings("numba")
            )
            np.testing.assert_array_equal(f["masks"][start:stop], want.masks)
            np.testing.assert_array_equal(f["image_id"][start:stop], want.image_id)
            np.testing.assert_array_equal(f["mask_crc32"][start:stop], want.mask_crc32)
            np.testing.assert_array_equal(f["visible_px"][start:stop], want.visible_px)
            np.testing.assert_array_equal(f["lr_iou"][start:stop], want.lr_iou)


def test_lanes_and_overlapping_stages_write_the_same_bytes(synthetic_root, tmp_path, monkeypatch):
    """The two in-process schedules of the numba backend: lanes (one per core, each piece on one
    thread; what runs where the threading layer allows it) and three overlapping stages (MANO,
    the rasterizer on every core, the writes; the workqueue layer's and the torch backend's).
    Pieces of 5 images, so both have several pieces in flight; every dataset equal, byte for
    byte, and the lanes really ran on lane threads."""
    import threading

    import render.mask_cache.builder as builder

    threads = set()
    real_render_posed = builder.render_posed

    def spy(*args, **kwargs):
        threads.add(threading.current_thread().name)
        return real_render_posed(*args, **kwargs)

    monkeypatch.setattr(builder, "render_posed", spy)
    lanes, staged = tmp_path / "lanes.h5", tmp_path / "staged.h5"
    kw = dict(limit=23, piece_size=5, show_progress=False, backend="numba")
    builder.build_masks("train", synthetic_root, out=lanes, **kw)
    assert threads and all(name.startswith("lane") for name in threads), threads
    threads.clear()
    monkeypatch.setattr(builder, "_lanes_fit", lambda ctx: False)
    builder.build_masks("train", synthetic_root, out=staged, **kw)
    assert threads == {threading.main_thread().name}
    with h5py.File(lanes, "r") as a, h5py.File(staged, "r") as b:
        assert len(a["image_id"]) == 23
        for name in DATASETS:
            x, y = a[name][...], b[name][...]
            if x.dtype == object:  # file names: variable-length strings
                assert x.tolist() == y.tolist(), name
            else:
                assert x.tobytes() == y.tobytes(), name


def test_the_threading_layer_is_started_and_named():
    from render.raster.numba_kernel import start_threading_layer

    assert start_threading_layer() in ("omp", "tbb", "workqueue")
