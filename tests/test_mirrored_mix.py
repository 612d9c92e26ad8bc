"""`make-synthetic --mix mirrored`: each mirror sequence shows, in each camera, its source's hands
reflected through the plane facing that camera at the right wrist. Checked against the
reflection done here by hand on the written annotations (camera frame: x, y kept, z -> 2 z_wrist
- z, right and left swapped), and the MANO fits against the joints they must reproduce."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.camera import world_to_camera_centred
from render.hand_model import HandModel
from render.synthetic_data import settings as settings_module
from render.synthetic_data.generate import SyntheticSettings, make_synthetic
from render.synthetic_data.settings import SEQUENCE_MIXES, SequenceKind, check_mix

SETTINGS = SyntheticSettings(
    captures=1, eval_captures=1, cameras=3, frames=2, mix="mirrored", p_missing_fit=0.0
)


def _ann(root: Path, split: str, kind: str) -> dict:
    return json.loads(
        (root / "annotations" / split / f"InterHand2.6M_{split}_{kind}.json").read_text()
    )


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mirrored") / "root"
    return make_synthetic(out, SETTINGS, workers=1, show_progress=False)


def _camera(cams: dict, capture: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    return np.array(cams[capture]["campos"][name]), np.array(cams[capture]["camrot"][name])


@pytest.mark.parametrize("split", ["train", "val"])  # capture 0 (even) and 1 (odd: sides swapped)
def test_a_mirror_frame_is_its_source_reflected_in_the_camera_it_is_seen_by(mirrored, split):
    joints = _ann(mirrored, split, "joint_3d")
    cams = _ann(mirrored, split, "camera")
    data = _ann(mirrored, split, "data")
    hand_type = {a["image_id"]: a["hand_type"] for a in data["annotations"]}
    checked = Counter()
    for im in data["images"]:
        kinds = SETTINGS.capture_sequences(im["capture"])
        s = next(i for i, k in enumerate(kinds) if k.name == im["seq_name"])
        if kinds[s].mirror_of < 0:
            continue
        capture, cam_name = str(im["capture"]), im["camera"]
        b = int(cam_name[-2:])  # the rig's k-th camera (render/synthetic_data/rig.py)
        frame = (im["frame_idx"] // 6 - len(kinds) * SETTINGS.frames) // SETTINGS.cameras
        f = frame - s * SETTINGS.frames
        assert SETTINGS.frame_index(s, f, b) == im["frame_idx"]
        source = joints[capture][str(SETTINGS.frame_index(kinds[s].mirror_of, f))]
        twin = joints[capture][str(im["frame_idx"])]
        campos, camrot = _camera(cams, capture, cam_name)
        src_cam = world_to_camera_centred(np.array(source["world_coord"]), campos, camrot)
        twin_cam = world_to_camera_centred(np.array(twin["world_coord"]), campos, camrot)
        z_wrist = src_cam[20, 2] if source["hand_type"] != "left" else src_cam[41, 2]
        expected = src_cam.copy()
        expected[:, 2] = 2.0 * z_wrist - src_cam[:, 2]
        expected = np.concatenate([expected[21:], expected[:21]])  # right <-> left
        src_valid = np.array([v[0] for v in source["joint_valid"]], bool)
        src_present = np.concatenate([src_valid[21:], src_valid[:21]])
        twin_valid = np.array([v[0] for v in twin["joint_valid"]], bool)
        both = src_present & twin_valid
        assert both.sum() >= 19
        np.testing.assert_allclose(twin_cam[both], expected[both], atol=1e-6)
        swapped = {"right": "left", "left": "right", "interacting": "interacting"}
        assert twin["hand_type"] == swapped[source["hand_type"]] == hand_type[im["id"]]
        checked[twin["hand_type"]] += 1
    single = "left" if split == "train" else "right"  # the mirror of the prior's hand
    assert checked[single] >= 4 and checked["interacting"] >= 4


def test_every_frame_has_one_index_and_a_mirror_frame_one_camera(mirrored):
    data = _ann(mirrored, "train", "data")
    joints = _ann(mirrored, "train", "joint_3d")
    for capture, frames in joints.items():
        seen = Counter(im["frame_idx"] for im in data["images"] if str(im["capture"]) == capture)
        assert set(seen) == {int(f) for f in frames}
        kinds = SEQUENCE_MIXES["mirrored"]
        for frame_idx, count in seen.items():
            mirror = frame_idx // 6 >= len(kinds) * SETTINGS.frames
            assert count == 1 if mirror else count <= SETTINGS.cameras
    names = Counter(im["seq_name"] for im in data["images"])
    assert names["ROM02_LT_Finger_Occlusions_Mirror"] == names["ROM02_RT_Finger_Occlusions"]


def test_the_mirror_fits_reproduce_the_mirror_joints(mirrored):
    model = HandModel.from_dir(mirrored / "mano")
    joints = _ann(mirrored, "val", "joint_3d")
    mano = _ann(mirrored, "val", "MANO_NeuralAnnot")
    first_mirror = len(SEQUENCE_MIXES["mirrored"]) * SETTINGS.frames * 6
    checked = 0
    for capture, frames in joints.items():
        for frame, rec in frames.items():
            if int(frame) < first_mirror:
                continue
            world = np.array(rec["world_coord"])
            valid = np.array([v[0] for v in rec["joint_valid"]], bool)
            for side, block in (("right", slice(0, 21)), ("left", slice(21, 42))):
                fit = mano[capture][frame][side]
                if fit is None:
                    continue
                out = model(
                    side,
                    torch.tensor([fit["pose"]], dtype=torch.float64),
                    torch.tensor([fit["shape"]], dtype=torch.float64),
                    torch.tensor([fit["trans"]], dtype=torch.float64),
                )
                got = out.joints[0].numpy()[valid[block]]
                np.testing.assert_allclose(got, world[block][valid[block]], atol=1e-5)
                checked += 1
    assert checked >= 12


def test_a_mirror_picture_is_its_source_picture_but_for_the_hand(mirrored):
    """A single-hand picture and its mirror: the joints' boxes agree to a few pixels (the
    outline cannot tell them apart), the light, background and sensor noise are the same (most
    pixels equal), and the hand differs (the other side of it faces the camera)."""
    data = _ann(mirrored, "train", "data")
    by_name = {(im["seq_name"], im["camera"], im["frame_idx"]): im for im in data["images"]}
    src = by_name[("ROM02_RT_Finger_Occlusions", "400000", SETTINGS.frame_index(0, 0))]
    twin = by_name[("ROM02_LT_Finger_Occlusions_Mirror", "400000", SETTINGS.frame_index(1, 0, 0))]
    ann = {a["image_id"]: a for a in data["annotations"]}
    box_src, box_twin = np.array(ann[src["id"]]["bbox"]), np.array(ann[twin["id"]]["bbox"])
    assert np.abs(box_src - box_twin).max() < 0.15 * box_src[2:].max()
    root = mirrored / "images" / "train"
    a = np.asarray(Image.open(root / src["file_name"]), dtype=np.float64)
    b = np.asarray(Image.open(root / twin["file_name"]), dtype=np.float64)
    same = (np.abs(a - b) <= 2).all(axis=-1)
    assert same.mean() > 0.5
    x, y, w, h = (max(int(v), 0) for v in box_src)
    hand = np.abs(a - b)[y : y + h, x : x + w]
    assert hand.size > 0
    assert hand.mean() > 8.0


def test_the_mirrored_mix_is_as_large_as_the_default():
    default = replace(SETTINGS, mix="default")
    for split in ("train", "val", "test"):
        assert SETTINGS.image_slots(split) == default.image_slots(split)


def test_a_mirror_of_nothing_is_refused(monkeypatch):
    bad = (SequenceKind("right", "A"), SequenceKind("right", "B", mirror_of=0))
    monkeypatch.setitem(settings_module.SEQUENCE_MIXES, "bad", bad)
    with pytest.raises(ValueError, match="must be the other hand"):
        check_mix("bad")
    forward = (SequenceKind("left", "A", mirror_of=1), SequenceKind("right", "B"))
    monkeypatch.setitem(settings_module.SEQUENCE_MIXES, "bad", forward)
    with pytest.raises(ValueError, match="mirrors no earlier plain sequence"):
        check_mix("bad")


def test_the_hand_drawn_from_the_prior_alternates_sides_over_captures(mirrored):
    """Even captures mirror a right hand, odd ones a left hand: the prior's depth bias (fingers
    towards the camera more often than not), reversed by a mirror, then favours neither side."""
    for split, plain, mirror in (("train", "right", "left"), ("val", "left", "right")):
        data = _ann(mirrored, split, "data")
        seq = {im["id"]: im["seq_name"] for im in data["images"]}
        types = {seq[a["image_id"]]: a["hand_type"] for a in data["annotations"]}
        singles = {name: t for name, t in types.items() if t != "interacting"}
        assert sorted(singles.values()) == sorted([plain, mirror])
        (mirror_name,) = [n for n in singles if n.endswith("_Mirror")]
        assert singles[mirror_name] == mirror
    default = replace(SETTINGS, mix="default")
    assert default.capture_sequences(1) == default.sequences  # plain mixes never swap
