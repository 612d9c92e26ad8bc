"""InterHand2.6M index: the four real samples, hand-edited copies of them, and bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from geometry_reference import joints_in_image

from core.boxes import bbox_from_joints, crop_box_from_bbox
from core.errors import DigitError
from core.interhand.reader import (
    InterHandSplit,
)
from core.joints import hand_type_pair
from core.splits import shard_bounds

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "interhand26m_samples"
NAMES = {
    "data": "test_interhand2.6m_data.json",
    "camera": "test_interhand2.6m_camera.json",
    "joint_3d": "test_interhand2.6m_joint_3d.json",
}
# From the fixture README (independent of the loader): image id -> expected facts.
EXPECTED = {
    326750: ("image69148.jpg", 3, "400026", 69148, (512, 334), "interacting", 42),
    286291: ("image44669.jpg", 2, "400012", 44669, (512, 334), "interacting", 42),
    680801: ("image29590.jpg", 7, "410053", 29590, (512, 334), "left", 21),
    471953: ("image2017.jpg", 4, "410028", 2017, (334, 512), "right", 21),
}
ORDER = [326750, 286291, 680801, 471953]  # data.json image order


def need_samples() -> None:
    if not SAMPLES.is_dir():
        pytest.skip("shared InterHand2.6M samples not available")


def load_raw() -> dict:
    need_samples()
    return {k: json.loads((SAMPLES / v).read_text()) for k, v in NAMES.items()}


def write_copy(tmp_path: Path, raw: dict) -> dict:
    """Write (possibly edited) JSON objects to tmp_path; returns the paths by role."""
    paths = {}
    for key, obj in raw.items():
        paths[key] = tmp_path / f"{key}.json"
        paths[key].write_text(json.dumps(obj))
    return paths


def load_copy(tmp_path: Path, raw: dict, **kwargs) -> InterHandSplit:
    p = write_copy(tmp_path, raw)
    return InterHandSplit.from_files(p["data"], p["camera"], p["joint_3d"], SAMPLES, **kwargs)


@pytest.fixture(scope="module")
def samples() -> InterHandSplit:
    need_samples()
    return InterHandSplit.from_files(
        SAMPLES / NAMES["data"], SAMPLES / NAMES["camera"], SAMPLES / NAMES["joint_3d"], SAMPLES
    )


def by_id(split: InterHandSplit) -> dict:
    return {r.image_id: r for r in split}


# ---- the real samples --------------------------------------------------------------------


def test_all_four_parse_with_the_readme_facts(samples):
    assert len(samples) == 4
    assert [r.image_id for r in samples] == ORDER
    for r in samples:
        name, capture, camera, frame, hw, hand_type, n_valid = EXPECTED[r.image_id]
        assert r.file_name == name and r.image_path == SAMPLES / name
        assert r.image_path.is_file()
        assert (r.capture, r.camera_name, r.frame_idx, r.hw) == (capture, camera, frame, hw)
        assert r.hand_type == hand_type and r.hand_type_valid
        assert int(r.joint_valid.sum()) == n_valid
        assert r.annot_id == r.image_id  # as in these files
        assert r.mano == (None, None) and r.rootnet is None
    assert samples.report.frames_missing_joints == 0
    assert samples.report.frames_missing_mano is None


def test_single_hand_samples_validate_the_right_block(samples):
    recs = by_id(samples)
    left, right = recs[680801], recs[471953]
    assert not left.joint_valid[:21].any() and left.joint_valid[21:].all()
    assert right.joint_valid[:21].all() and not right.joint_valid[21:].any()
    # The unannotated hand holds the [1, 1, 1] placeholder in the file: never a position.
    assert np.isnan(left.joints_world[:21]).all() and np.isfinite(left.joints_world[21:]).all()
    np.testing.assert_array_equal(left.hand_type_pair, [0, 1])
    np.testing.assert_array_equal(right.hand_type_pair, [1, 0])
    np.testing.assert_array_equal(recs[326750].hand_type_pair, [1, 1])


def test_projecting_valid_joints_reproduces_the_annotated_bbox(samples):
    raw = load_raw()
    cams = raw["camera"]
    for r in samples:
        # Independent projection straight from the JSON, with the dataset's formula.
        c, cam = str(r.capture), r.camera_name
        X = np.array(raw["joint_3d"][c][str(r.frame_idx)]["world_coord"])
        Xc = (np.array(cams[c]["camrot"][cam]) @ (X - np.array(cams[c]["campos"][cam])).T).T
        (fx, fy), (cx, cy) = cams[c]["focal"][cam], cams[c]["princpt"][cam]
        uv = np.stack([fx * Xc[:, 0] / Xc[:, 2] + cx, fy * Xc[:, 1] / Xc[:, 2] + cy], 1)
        v = r.joint_valid
        np.testing.assert_allclose(r.joints_img[v], uv[v], atol=1e-6)
        np.testing.assert_allclose(r.joints_cam[v], Xc[v], atol=1e-6)
        lo, hi = uv[v].min(0), uv[v].max(0)
        centre, size = (lo + hi) / 2, (hi - lo) * 1.2
        np.testing.assert_allclose(r.bbox, [*(centre - size / 2), *size], atol=0.01)
        np.testing.assert_allclose(bbox_from_joints(r.joints_img, v), r.bbox, atol=0.01)
        # data.json validity means inside the image, with integer pixel centres.
        assert joints_in_image(r.joints_img, r.hw)[v].all()


def test_crop_box_is_square_and_contains_the_bbox(samples):
    for r in samples:
        x, y, w, h = r.crop_box
        assert w == pytest.approx(h)
        bx, by, bw, bh = r.bbox
        assert x <= bx and y <= by and x + w >= bx + bw and y + h >= by + bh
        assert w == pytest.approx(1.25 * max(bw, bh))
    # by hand: centre (30, 70), side 100 * 1.25 = 125
    np.testing.assert_allclose(
        crop_box_from_bbox([10.0, 20.0, 40.0, 100.0]), [-32.5, 7.5, 125, 125]
    )


def test_gather_agrees_with_records(samples):
    batch = samples.gather(np.arange(4))
    for k, r in enumerate(samples):
        assert batch.image_id[k] == r.image_id and batch.file_name[k] == r.file_name
        np.testing.assert_array_equal(batch.hw[k], r.hw)
        np.testing.assert_array_equal(batch.K[k], r.camera.K)
        np.testing.assert_array_equal(batch.joint_valid[k], r.joint_valid)
        np.testing.assert_array_equal(batch.joint_valid_3d[k], r.joint_valid_3d)
        np.testing.assert_array_equal(batch.joints_img[k], r.joints_img)
        np.testing.assert_array_equal(batch.crop_box[k], r.crop_box)
    assert not batch.has_mano.any() and np.isnan(batch.mano_pose).all()
    assert batch.has_rootnet is None


def test_columns_are_read_only(samples):
    assert not samples.columns.joint_valid.flags.writeable
    assert not samples.frames.joints_world.flags.writeable
    with pytest.raises(ValueError):
        samples.columns.bbox[0, 0] = 1.0


def test_small_pure_rules_by_hand():
    uv = np.array([[0.0, 0.0], [10.0, 20.0], [100.0, 100.0]])
    # tight box [0, 0, 10, 20]: centre (5, 10), size (12, 24)
    np.testing.assert_allclose(bbox_from_joints(uv, [True, True, False]), [-1, -2, 12, 24])
    assert np.isnan(bbox_from_joints(uv, [False] * 3)).all()
    pts = np.array([[333.0, 511.0], [333.01, 0.0], [0.0, 511.5], [-0.01, 5.0], [np.nan, 1.0]])
    np.testing.assert_array_equal(
        joints_in_image(pts, (512, 334)), [True, False, False, False, False]
    )
    np.testing.assert_array_equal(hand_type_pair([0, 1, 2]), [[1, 0], [0, 1], [1, 1]])


# ---- selection ---------------------------------------------------------------------------


def test_shard_bounds_and_shards(samples):
    assert [shard_bounds(10, k, 3) for k in range(3)] == [(0, 3), (3, 6), (6, 10)]
    assert [shard_bounds(2, k, 4) for k in range(4)] == [(0, 0), (0, 1), (1, 1), (1, 2)]
    with pytest.raises(DigitError, match="--shard"):
        shard_bounds(10, 3, 3)
    ids = [r.image_id for k in range(3) for r in samples.shard(k, 3)]
    assert ids == ORDER
    shard = samples.shard(1, 2)
    assert [r.position for r in shard] == [2, 3]
    np.testing.assert_array_equal(shard[0].joints_img, samples[2].joints_img)
    sub = samples.subset([3, 0])
    assert [r.image_id for r in sub] == [ORDER[3], ORDER[0]]
    assert [r.position for r in sub] == [3, 0]
    np.testing.assert_array_equal(samples.find([680801, 1, 326750]), [2, -1, 0])
    assert samples[-1].image_id == ORDER[-1]
    with pytest.raises(IndexError):
        samples[4]


# ---- hand-edited copies ------------------------------------------------------------------


def test_join_is_by_image_id_not_position(samples, tmp_path):
    raw = load_raw()
    raw["data"]["annotations"].reverse()
    for a in raw["data"]["annotations"]:
        a["id"] += 1_000_000  # annotation ids differ from image ids in v1.0
    orphan = dict(raw["data"]["annotations"][0], id=5, image_id=12345)
    raw["data"]["annotations"].insert(1, orphan)
    split = load_copy(tmp_path, raw)
    assert [r.image_id for r in split] == ORDER  # image order kept
    assert split.report.orphan_annotations == 1
    ref = by_id(samples)
    for r in split:
        assert r.annot_id == r.image_id + 1_000_000
        np.testing.assert_array_equal(r.bbox, ref[r.image_id].bbox)
        np.testing.assert_array_equal(r.joint_valid, ref[r.image_id].joint_valid)
        assert r.hand_type == ref[r.image_id].hand_type


def _annotation(raw: dict, image_id: int) -> dict:
    return next(a for a in raw["data"]["annotations"] if a["image_id"] == image_id)


def test_invalid_root_invalidates_its_hand_only(tmp_path):
    raw = load_raw()
    _annotation(raw, 326750)["joint_valid"][20] = [0]  # right wrist
    _annotation(raw, 286291)["joint_valid"][41] = [0]  # left wrist
    _annotation(raw, 286291)["joint_valid"][3] = [0]  # one right joint
    recs = by_id(load_copy(tmp_path, raw))
    a, b = recs[326750], recs[286291]
    assert not a.joint_valid[:21].any() and a.joint_valid[21:].all()
    assert not b.joint_valid[21:].any()
    assert b.joint_valid[:21].sum() == 20 and not b.joint_valid[3]
    assert a.joint_valid_3d.all() and b.joint_valid_3d.all()  # joint_3d's flags kept apart


def test_placeholder_joint_is_never_trusted(tmp_path):
    raw = load_raw()
    frame = raw["joint_3d"]["3"]["69148"]
    frame["world_coord"][5] = [1.0, 1.0, 1.0]  # data.json and joint_3d still say valid
    frame["world_coord"][41] = [1.0, 1.0, 1.0]  # left root
    split = load_copy(tmp_path, raw)
    r = by_id(split)[326750]
    assert not r.joint_valid[5] and r.joint_valid[:21].sum() == 20
    assert not r.joint_valid[21:].any()  # its root is unknown
    assert not r.joint_valid_3d[5] and not r.joint_valid_3d[41]
    assert np.isnan(r.joints_world[5]).all()
    assert split.report.untrusted_valid_joints == 2


def test_frame_missing_from_joint_3d(tmp_path):
    raw = load_raw()
    del raw["joint_3d"]["4"]["2017"]
    split = load_copy(tmp_path, raw)
    r = by_id(split)[471953]
    assert np.isnan(r.joints_world).all() and not r.joint_valid.any()
    assert not r.joint_valid_3d.any()
    np.testing.assert_array_equal(r.bbox, by_id(split)[471953].bbox)  # bbox still as annotated
    assert split.report.frames_missing_joints == 1 and split.report.images_missing_joints == 1
    assert by_id(split)[326750].joint_valid.sum() == 42


def _fit(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "pose": rng.normal(size=48).tolist(),
        "shape": rng.normal(size=10).tolist(),
        "trans": rng.normal(size=3).tolist(),
    }


def test_mano_fits_null_hands_and_missing_frames(tmp_path):
    raw = load_raw()
    mano = {
        "3": {"69148": {"right": _fit(1), "left": None}},
        "2": {"1": {"right": _fit(9), "left": _fit(9)}},  # frame 44669 missing
        "7": {"29590": {"right": _fit(2), "left": _fit(3)}},
    }  # capture 4 missing altogether
    mano_path = tmp_path / "MANO_NeuralAnnot.json"
    mano_path.write_text(json.dumps(mano))
    split = load_copy(tmp_path, raw, mano_json=mano_path)
    recs = by_id(split)
    right, left = recs[326750].mano
    assert left is None
    np.testing.assert_array_equal(right.pose, mano["3"]["69148"]["right"]["pose"])
    np.testing.assert_array_equal(right.shape, mano["3"]["69148"]["right"]["shape"])
    np.testing.assert_array_equal(right.trans, mano["3"]["69148"]["right"]["trans"])
    assert recs[286291].mano == (None, None) and recs[471953].mano == (None, None)
    r7, l7 = recs[680801].mano
    np.testing.assert_array_equal(l7.pose, mano["7"]["29590"]["left"]["pose"])
    np.testing.assert_array_equal(r7.trans, mano["7"]["29590"]["right"]["trans"])
    batch = split.gather([0, 1, 2, 3])
    np.testing.assert_array_equal(batch.has_mano, [[1, 0], [0, 0], [1, 1], [0, 0]])
    assert np.isnan(batch.mano_shape[1]).all()
    assert split.report.frames_missing_mano == 2 and split.report.null_mano_hands == 1


def test_rootnet_file_keyed_by_annot_id(tmp_path):
    raw = load_raw()
    rootnet = [
        {"annot_id": 471953, "bbox": [1.0, 2.0, 30.0, 30.0], "abs_depth": [900.5, 950.0],
         "root_valid": [1, 0]},
        {"annot_id": 326750, "bbox": [5.0, 6.0, 70.0, 70.0], "abs_depth": [1001.0, 1002.0]},
        {"annot_id": 99, "bbox": [0.0, 0.0, 1.0, 1.0], "abs_depth": [1.0, 1.0]},
    ]  # fmt: skip
    path = tmp_path / "rootnet.json"
    path.write_text(json.dumps(rootnet))
    split = load_copy(tmp_path, raw, rootnet_json=path)
    recs = by_id(split)
    r = recs[471953].rootnet
    np.testing.assert_array_equal(r.abs_depth, [900.5, 950.0])
    np.testing.assert_array_equal(r.root_valid, [True, False])
    np.testing.assert_array_equal(r.bbox, [1.0, 2.0, 30.0, 30.0])
    r = recs[326750].rootnet
    np.testing.assert_array_equal(r.abs_depth, [1001.0, 1002.0])
    np.testing.assert_array_equal(r.root_valid, [True, True])  # absent means valid
    assert recs[286291].rootnet is None and recs[680801].rootnet is None
    assert split.report.images_missing_rootnet == 2 and split.report.rootnet_unused == 1
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps([rootnet[0], rootnet[0]]))
    with pytest.raises(DigitError, match="annot_id 471953"):
        load_copy(tmp_path, raw, rootnet_json=dup)


def test_from_root_layout(tmp_path):
    need_samples()
    folder = tmp_path / "annotations" / "val"
    folder.mkdir(parents=True)
    for key, name in NAMES.items():
        shutil.copy(SAMPLES / name, folder / f"InterHand2.6M_val_{key}.json")
    split = InterHandSplit.from_root(tmp_path, "val")
    assert split.split == "val" and len(split) == 4
    assert split[0].image_path == tmp_path / "images" / "val" / "image69148.jpg"
    assert split.report.frames_missing_mano is None  # no MANO file there
    with pytest.raises(DigitError, match="unknown split 'dev'"):
        InterHandSplit.from_root(tmp_path, "dev")
    (folder / "InterHand2.6M_val_camera.json").unlink()
    with pytest.raises(DigitError, match=r"InterHand2.6M_val_camera.json: file not found"):
        InterHandSplit.from_root(tmp_path, "val")


# ---- bad input ---------------------------------------------------------------------------


def _error(tmp_path: Path, raw: dict) -> str:
    with pytest.raises(DigitError) as info:
        load_copy(tmp_path, raw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_malformed_json_names_file_line_and_column(tmp_path):
    raw = load_raw()
    p = write_copy(tmp_path, raw)
    p["data"].write_text('{"images": [],\n "annotations": [}\n')
    with pytest.raises(DigitError) as info:
        InterHandSplit.from_files(p["data"], p["camera"], p["joint_3d"], SAMPLES)
    message = str(info.value)
    assert message.startswith(f"{p['data']}: malformed JSON at line 2, column 18")


def test_image_without_annotation_is_named(tmp_path):
    raw = load_raw()
    raw["data"]["annotations"] = [a for a in raw["data"]["annotations"] if a["image_id"] != 286291]
    assert "image id 286291 has no annotation" in _error(tmp_path, raw)


def test_missing_camera_is_named(tmp_path):
    raw = load_raw()
    for key in ("campos", "camrot", "focal", "princpt"):
        raw["camera"]["2"][key]["400099"] = raw["camera"]["2"][key].pop("400012")
    message = _error(tmp_path, raw)
    assert "camera.json" in message and "'400012'" in message and "capture 2" in message
    del raw["camera"]["2"]
    assert "capture 2" in _error(tmp_path, raw)


@pytest.mark.parametrize(
    ("role", "edit", "expected"),
    [
        ("data", lambda d: d["images"][2].pop("frame_idx"), "images[2]: missing key 'frame_idx'"),
        ("data", lambda d: d["annotations"][1].pop("bbox"), "annotations[1]: missing key 'bbox'"),
        ("data", lambda d: d.pop("annotations"), "missing key 'annotations'"),
        (
            "data",
            lambda d: d["annotations"][0].update(hand_type="both"),
            "annotations[0]: 'hand_type' is 'both'",
        ),
        (
            "data",
            lambda d: d["annotations"][3]["joint_valid"].pop(),
            "annotations[3]: 'joint_valid' has shape (41, 1)",
        ),
        ("camera", lambda c: c["3"].pop("focal"), "capture '3': missing key 'focal'"),
        (
            "joint_3d",
            lambda j: j["7"]["29590"].pop("world_coord"),
            "capture 7, frame 29590: missing key 'world_coord'",
        ),
    ],
)
def test_wrong_schema_is_one_line(tmp_path, role, edit, expected):
    raw = load_raw()
    edit(raw[role])
    message = _error(tmp_path, raw)
    assert f"{role}.json" in message and expected in message, message


def test_duplicate_image_id(tmp_path):
    raw = load_raw()
    raw["data"]["images"][1]["id"] = raw["data"]["images"][0]["id"]
    assert "image id 326750 appears twice" in _error(tmp_path, raw)
