"""The synthetic dataset: InterHand2.6M's layout and types, geometry, determinism."""

import hashlib
import json
import re
from collections import Counter
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.camera import intrinsics
from core.errors import DigitError
from core.interhand.reader import InterHandSplit
from core.joints import skeleton_text
from core.splits import SPLITS
from render.hand_model import HandModel
from render.synthetic_data.generate import GENERATOR_VERSION, SyntheticSettings, make_synthetic

README = Path(__file__).resolve().parents[1] / "README.md"


def _ann(root: Path, split: str, kind: str) -> dict:
    return json.loads(
        (root / "annotations" / split / f"InterHand2.6M_{split}_{kind}.json").read_text()
    )


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_layout_and_reader(synthetic_root):
    for split in ("train", "val", "test"):
        data = InterHandSplit.from_root(synthetic_root, split)
        assert len(data) > 0
        for i in range(len(data)):
            assert data.image_path(i).exists()
        types = {data[i].hand_type for i in range(len(data))}
        assert types == {"right", "left", "interacting"}
    assert (synthetic_root / "mano" / "MANO_RIGHT.pkl").exists()
    assert (synthetic_root / "rootnet_output" / "rootnet_interhand2.6m_output_test.json").exists()
    assert not (
        synthetic_root / "rootnet_output" / "rootnet_interhand2.6m_output_train.json"
    ).exists()
    skeleton = (synthetic_root / "annotations" / "skeleton.txt").read_text().splitlines()
    assert skeleton[1] == "r_thumb4 0 1" and skeleton[21] == "r_wrist 20 -1"
    assert skeleton[22] == "l_thumb4 21 22" and skeleton[-1] == "l_wrist 41 -1"
    assert skeleton_text().count("\n") == 43


def test_json_types_match_the_real_files(synthetic_root):
    data = _ann(synthetic_root, "train", "data")
    image, ann = data["images"][0], data["annotations"][0]
    assert isinstance(image["camera"], str) and isinstance(image["frame_idx"], int)
    assert all(isinstance(v[0], int) and not isinstance(v[0], bool) for v in ann["joint_valid"])
    assert isinstance(ann["hand_type_valid"], int) and not isinstance(ann["hand_type_valid"], bool)
    joints = _ann(synthetic_root, "train", "joint_3d")
    frame = next(iter(next(iter(joints.values())).values()))
    assert all(isinstance(v[0], bool) for v in frame["joint_valid"])
    assert frame["hand_type_valid"] is True
    # Unannotated joints hold the placeholder, as in the real files.
    for capture in joints.values():
        for rec in capture.values():
            for xyz, (valid,) in zip(rec["world_coord"], rec["joint_valid"], strict=True):
                if not valid:
                    assert xyz == [1.0, 1.0, 1.0]


def test_bbox_validity_and_hand_type_follow_the_official_rules(synthetic_root):
    data = _ann(synthetic_root, "val", "data")
    cams = _ann(synthetic_root, "val", "camera")
    joints = _ann(synthetic_root, "val", "joint_3d")
    anns = {a["image_id"]: a for a in data["annotations"]}
    sizes = set()
    for image in data["images"]:
        ann = anns[image["id"]]
        cap, cam = str(image["capture"]), image["camera"]
        rec = joints[cap][str(image["frame_idx"])]
        world = np.array(rec["world_coord"])
        R = np.array(cams[cap]["camrot"][cam])
        campos = np.array(cams[cap]["campos"][cam])
        K = intrinsics(np.array(cams[cap]["focal"][cam]), np.array(cams[cap]["princpt"][cam]))
        x = (world - campos) @ R.T
        uv = x[:, :2] / x[:, 2:] * K[[0, 1], [0, 1]] + K[:2, 2]
        w, h = image["width"], image["height"]
        sizes.add((w, h))
        inside = (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)
        annotated = np.array([v[0] for v in rec["joint_valid"]])
        valid = np.array([v[0] for v in ann["joint_valid"]], bool)
        np.testing.assert_array_equal(valid, annotated & inside)
        assert ann["bbox"][2] > 0 and ann["bbox"][3] > 0
        lo, hi = uv[valid].min(0), uv[valid].max(0)
        c, s = (lo + hi) / 2, (hi - lo) * 1.2
        np.testing.assert_allclose(ann["bbox"], [*(c - s / 2), *s], atol=1e-6)
        hands = {"right": [1, 0], "left": [0, 1], "interacting": [1, 1]}[ann["hand_type"]]
        assert valid[:21].any() <= hands[0] and valid[21:].any() <= hands[1]
        assert ann["hand_type"] == rec["hand_type"]
    assert sizes <= {(334, 512), (512, 334)}


def test_mano_fits_reproduce_the_annotated_joints(synthetic_root):
    model = HandModel.from_dir(synthetic_root / "mano")
    assert model.is_synthetic
    joints = _ann(synthetic_root, "train", "joint_3d")
    mano = _ann(synthetic_root, "train", "MANO_NeuralAnnot")
    n_missing_frames = n_checked = 0
    for cap, frames in joints.items():
        for frame, rec in frames.items():
            fits = mano.get(cap, {}).get(frame)
            if fits is None:
                n_missing_frames += 1
                continue
            world = np.array(rec["world_coord"])
            for side, block in (("right", slice(0, 21)), ("left", slice(21, 42))):
                if fits[side] is None:
                    continue
                out = model(
                    side,
                    torch.tensor([fits[side]["pose"]], dtype=torch.float64),
                    torch.tensor([fits[side]["shape"]], dtype=torch.float64),
                    torch.tensor([fits[side]["trans"]], dtype=torch.float64),
                )
                valid = np.array([v[0] for v in rec["joint_valid"]])[block]
                np.testing.assert_allclose(
                    out.joints[0].numpy()[valid], world[block][valid], atol=1e-6
                )
                n_checked += 1
    assert n_checked > 10


def test_interacting_hands_are_close_and_grey_cameras_are_grey(synthetic_root):
    data = InterHandSplit.from_root(synthetic_root, "train")
    distances, grey_checked = [], 0
    for i in range(len(data)):
        rec = data[i]
        if rec.hand_type == "interacting" and rec.joint_valid_3d[[20, 41]].all():
            distances.append(np.linalg.norm(rec.joints_world[20] - rec.joints_world[41]))
        if rec.camera_name.startswith("41") and grey_checked < 3:
            px = np.asarray(Image.open(rec.image_path).convert("RGB")).astype(int)
            # JPEG chroma subsampling leaves tiny differences between channels of a grey image.
            assert np.abs(px[..., 0] - px[..., 2]).mean() < 2.0
            grey_checked += 1
    assert distances and max(distances) < 260.0 and min(distances) < 150.0


def test_same_seed_gives_identical_files(tmp_path):
    settings = SyntheticSettings(captures=1, eval_captures=1, cameras=2, frames=2, seed=3)
    a = make_synthetic(tmp_path / "a", settings, workers=1, show_progress=False)
    b = make_synthetic(tmp_path / "b", settings, workers=1, show_progress=False)
    assert _tree_digest(a) == _tree_digest(b)
    other = make_synthetic(
        tmp_path / "c", replace(settings, seed=4), workers=1, show_progress=False
    )
    assert _tree_digest(other) != _tree_digest(a)


@pytest.mark.slow
def test_the_worker_count_changes_no_byte(tmp_path):
    settings = SyntheticSettings(captures=2, eval_captures=1, cameras=3, frames=2, seed=5)
    one = make_synthetic(tmp_path / "one", settings, workers=1, show_progress=False)
    two = make_synthetic(tmp_path / "two", settings, workers=2, show_progress=False)
    digest = _tree_digest(one)
    assert digest == _tree_digest(two)
    assert sum(name.endswith(".jpg") for name in digest) > 50


def test_annotations_do_not_depend_on_the_pictures(synthetic_root, tmp_path):
    info = json.loads((synthetic_root / "SYNTHETIC.json").read_text())
    assert info["generator_version"] == GENERATOR_VERSION
    settings = replace(SyntheticSettings(**info["settings"]), images=False)
    bare = make_synthetic(tmp_path / "bare", settings, workers=1, show_progress=False)

    def annotations(root: Path) -> dict[str, str]:
        return {k: v for k, v in _tree_digest(root).items() if k.startswith(("annot", "rootnet"))}

    assert annotations(bare) == annotations(synthetic_root)
    assert len(annotations(bare)) == 15  # 4 files per split, skeleton, 2 RootNet files


def _captures_and_subjects(root: Path) -> dict[str, tuple[set, set]]:
    out = {}
    for split in SPLITS:
        images = _ann(root, split, "data")["images"]
        captures = {im["capture"] for im in images}
        # every capture of a split is described by that split's files, and only there
        assert {int(c) for c in _ann(root, split, "camera")} == captures
        assert {int(c) for c in _ann(root, split, "joint_3d")} == captures
        out[split] = (captures, {im["subject"] for im in images})
    return out


def _assert_disjoint(per_split: dict[str, tuple[set, set]]) -> None:
    for a, b in combinations(SPLITS, 2):
        for what, name in enumerate(("captures", "subjects")):
            assert not per_split[a][what] & per_split[b][what], f"{a} and {b} share {name}"


def test_every_split_has_its_own_captures_and_subjects(synthetic_root):
    _assert_disjoint(_captures_and_subjects(synthetic_root))


@pytest.mark.slow
def test_the_default_is_what_the_readme_says(tmp_path):
    """The annotations alone (the same as with pictures, see above) give the image counts."""
    said = re.search(
        r"The default \(([\d,]+)\s+train,\s+([\d,]+)\s+val\s+and\s+([\d,]+)\s+test\s+images",
        README.read_text(),
    )
    assert said, "README: the synthetic default's image counts are missing"
    settings = replace(SyntheticSettings(), images=False)
    root = make_synthetic(tmp_path / "default", settings, show_progress=False)
    per_split = _captures_and_subjects(root)
    _assert_disjoint(per_split)
    counts = []
    for split in SPLITS:
        anns = _ann(root, split, "data")["annotations"]
        counts.append(len(anns))
        assert len(anns) <= settings.image_slots(split)
        assert len(per_split[split][0]) == len(settings.split_captures(split))
        types = Counter(a["hand_type"] for a in anns)
        # a quarter right, a quarter left, half interacting, but for views with nothing in them
        assert abs(types["right"] - types["left"]) <= 0.02 * len(anns)
        assert abs(types["interacting"] - len(anns) / 2) <= 0.02 * len(anns)
    assert counts == [int(n.replace(",", "")) for n in said.groups()]
    assert 4000 <= counts[0] <= 6000 and all(600 <= n <= 1000 for n in counts[1:])


def test_no_images_and_refusing_to_overwrite(tmp_path):
    root = make_synthetic(
        tmp_path / "d",
        SyntheticSettings(captures=1, eval_captures=1, cameras=2, frames=2, images=False),
    )
    assert not (root / "images").exists()
    assert len(InterHandSplit.from_root(root, "test")) > 0

    with pytest.raises(DigitError, match="exists and is not empty"):
        make_synthetic(root, SyntheticSettings(images=False))
    with pytest.raises(DigitError, match=r"^--workers: must be at least 1, got 0$"):
        make_synthetic(tmp_path / "e", SyntheticSettings(images=False), workers=0)
    with pytest.raises(DigitError, match=r"^--eval-captures: must be at least 1, got 0$"):
        make_synthetic(tmp_path / "e", SyntheticSettings(eval_captures=0))
    assert not (tmp_path / "e").exists() and not (tmp_path / "e.partial").exists()


def test_the_interacting_mix_is_mostly_interacting_sequences(tmp_path):
    settings = SyntheticSettings(
        captures=1, eval_captures=1, cameras=2, frames=2, images=False, mix="interacting"
    )
    root = make_synthetic(tmp_path / "mix", settings, workers=1, show_progress=False)
    data = _ann(root, "test", "data")
    seq = {im["id"]: im["seq_name"] for im in data["images"]}
    types = {seq[a["image_id"]]: a["hand_type"] for a in data["annotations"]}
    # 7 sequences: right, left and 5 interacting (touch, clasp, overlap, cross-over, interlace)
    assert sorted(types.values()).count("interacting") == 5
    assert sorted(v for v in types.values() if v != "interacting") == ["left", "right"]
    assert len(set(types)) == 7
    # the default mix keeps its four sequences
    default = make_synthetic(
        tmp_path / "default", replace(settings, mix="default"), workers=1, show_progress=False
    )
    names = {im["seq_name"] for im in _ann(default, "test", "data")["images"]}
    assert names == {
        "ROM02_RT_Finger_Occlusions",
        "ROM03_LT_No_Occlusion",
        "ROM04_dh_touch",
        "0051_dh_clasp",
    }


def test_an_unknown_mix_is_one_line():
    with pytest.raises(DigitError, match=r"--mix: unknown 'lots' \(choose from default, inter"):
        SyntheticSettings(mix="lots").check()
