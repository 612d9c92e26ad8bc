"""The mesh files: OBJ parsed back by an independent reader gives the same vertices (metres)
and faces (1-based); the MANO_NeuralAnnot JSON, read by the project's own reader (the one-file
reader and a whole `InterHandSplit` with an identity camera), rebuilds the fitted vertices."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.assets import SYNTHETIC_MANO_DIR
from core.camera import world_to_camera_exact
from core.errors import DigitError
from core.interhand.reader import InterHandSplit
from digit.meshes.files import (
    mano_entry,
    obj_text,
    read_mano_json,
    write_mano_json,
    write_obj,
)
from digit.meshes.fit import fit_mano
from render.hand_model import HandModel
from render.mask_cache.scene import pose_hands


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.from_dir(SYNTHETIC_MANO_DIR)


@pytest.fixture(scope="module")
def fitted(model):
    """A right and a left hand fitted to the joints of the model's mean hands, moved apart."""
    joints = []
    for side, x in (("right", -60.0), ("left", 60.0)):
        zero = torch.zeros(1, 48, dtype=torch.float64)
        out = model(side, zero, zero[:, :10], zero[:, :3])
        j = out.joints[0].numpy()
        joints.append(j - j[20] + np.array([x, 20.0, 600.0]))
    valid = np.ones((2, 21), bool)
    return fit_mano(model, np.stack(joints), valid, np.array([True, False]), image=np.zeros(2))


def parse_obj(text: str) -> tuple[np.ndarray, np.ndarray]:
    """A minimal OBJ reader: 'v x y z' and 'f a b c' lines (1-based), comments skipped."""
    verts, faces = [], []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0] == "v":
            verts.append([float(x) for x in fields[1:4]])
        elif fields[0] == "f":
            faces.append([int(x) for x in fields[1:4]])
    return np.array(verts), np.array(faces)


def test_obj_round_trip(tmp_path, model, fitted):
    faces = model.faces("left").numpy()
    path = tmp_path / "x_left.obj"
    write_obj(path, fitted.vertices[1], faces, "a left hand\ncamera frame, metres")
    text = path.read_text()
    assert text.startswith("# a left hand\n# camera frame, metres\n")
    verts, faces_read = parse_obj(text)
    assert verts.shape == (model.num_vertices("left"), 3)  # synthetic: 770 (MANO: 778)
    assert faces_read.shape == (len(faces), 3)  # synthetic: 1,490 (MANO: 1,538)
    np.testing.assert_allclose(verts * 1000.0, fitted.vertices[1], atol=1e-5)  # metres -> mm
    np.testing.assert_array_equal(faces_read, faces + 1)  # 1-based
    assert faces_read.min() == 1 and faces_read.max() == len(verts)
    assert not list(tmp_path.glob("*.tmp-*"))  # written through a temporary name
    with pytest.raises(ValueError, match="face indices"):
        obj_text(fitted.vertices[1], faces + 1)


def test_mano_json_rebuilds_the_fitted_vertices(tmp_path, model, fitted):
    path = tmp_path / "x_mano.json"
    entries = [mano_entry(fitted.pose[k], fitted.shape[k], fitted.trans[k]) for k in range(2)]
    write_mano_json(path, *entries)
    document = json.loads(path.read_text())
    assert list(document) == ["0"] and list(document["0"]) == ["0"]
    assert set(document["0"]["0"]) == {"right", "left"}
    assert len(document["0"]["0"]["right"]["pose"]) == 48
    for k, (side, fit) in enumerate(zip(("right", "left"), read_mano_json(path), strict=True)):
        out = model(side, *(torch.tensor(a[None]) for a in (fit.pose, fit.shape, fit.trans)))
        assert np.abs(out.vertices[0].numpy() - fitted.vertices[k]).max() < 1e-3  # mm


def test_mano_json_through_a_whole_split(tmp_path, model, fitted):
    """The file as a split's MANO_NeuralAnnot.json, next to an identity camera (camrot I,
    campos 0): the reader's fits, posed as the mask cache poses them and taken to the camera
    frame, are the fitted meshes."""
    folder = tmp_path / "annotations"
    folder.mkdir()
    write_mano_json(folder / "mano.json", *(
        mano_entry(fitted.pose[k], fitted.shape[k], fitted.trans[k]) for k in range(2)
    ))  # fmt: skip
    image = {"id": 1, "file_name": "a.jpg", "width": 334, "height": 512, "capture": 0,
             "subject": 0, "seq_name": "demo", "camera": "0", "frame_idx": 0}  # fmt: skip
    annotation = {"id": 1, "image_id": 1, "bbox": [0, 0, 10, 10], "joint_valid": [[1]] * 42,
                  "hand_type": "interacting", "hand_type_valid": 1}  # fmt: skip
    files = {
        "data.json": {"images": [image], "annotations": [annotation]},
        "camera.json": {"0": {"campos": {"0": [0, 0, 0]}, "camrot": {"0": np.eye(3).tolist()},
                              "focal": {"0": [1200, 1200]}, "princpt": {"0": [167, 256]}}},
        "joint_3d.json": {"0": {"0": {"world_coord": fitted.joints.reshape(42, 3).tolist(),
                                      "joint_valid": [[True]] * 42, "hand_type": "interacting",
                                      "hand_type_valid": True}}},
    }  # fmt: skip
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content))
    split = InterHandSplit.from_files(
        folder / "data.json", folder / "camera.json", folder / "joint_3d.json", tmp_path,
        mano_json=folder / "mano.json",
    )  # fmt: skip
    record = split[0]
    for k, (side, fit) in enumerate(zip(("right", "left"), record.mano, strict=True)):
        sealed, _ = pose_hands(model, side, fit.pose[None], fit.shape[None], fit.trans[None])
        R, t = record.camera.R[None], record.camera.t[None]
        cam = world_to_camera_exact(sealed, R, t)[0, : model.num_vertices(side)]
        assert np.abs(cam - fitted.vertices[k]).max() < 1e-3


def test_bad_mano_json_is_one_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"0": {"0": {"right": {"pose": [0.0] * 47}, "left": None}}}))
    with pytest.raises(DigitError, match=r"bad\.json: right: 'pose' has shape \(47,\)"):
        read_mano_json(path)
    path.write_text(json.dumps({"0": {"0": {}, "1": {}}}))
    with pytest.raises(DigitError, match="one frame of MANO_NeuralAnnot"):
        read_mano_json(path)
