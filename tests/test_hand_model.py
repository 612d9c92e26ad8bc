"""HandModel and its pure helpers, on hand-made arrays and the project's synthetic MANO model."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest
import smplx
import torch
from smplx.utils import Struct

import render.hand_model as hand_model
from core.assets import SYNTHETIC_MANO_DIR
from core.errors import DigitError
from render.hand_model import (
    HandModel,
    fix_left_shapedirs,
    ih_joint_regressor,
    seal_faces,
    skin_vertices,
    wrist_boundary_loop,
)
from render.mano import load_mano_pickle

MANO_DIR = SYNTHETIC_MANO_DIR
F64 = torch.float64
# reference/mano.md: IH index -> source ("v<finger>" = that finger's tip vertex, int = J row).
IH_TABLE = ["thumb", 15, 14, 13, "index", 3, 2, 1, "middle", 6, 5, 4]
IH_TABLE += ["ring", 12, 11, 10, "pinky", 9, 8, 7, 0]
TIP_ORDER = ["thumb", "index", "middle", "ring", "pinky"]
MIRROR_AA = np.array([1.0, -1.0, -1.0])  # axis-angle under x -> -x reflection
MIRROR_X = np.array([-1.0, 1.0, 1.0])


def synthetic_available() -> bool:
    return (MANO_DIR / "MANO_RIGHT.pkl").is_file() and (MANO_DIR / "MANO_LEFT.pkl").is_file()


needs_model = pytest.mark.skipif(
    not synthetic_available(),
    reason=f"synthetic MANO model not built yet ({MANO_DIR}/MANO_RIGHT.pkl, MANO_LEFT.pkl)",
)


@pytest.fixture(scope="module")
def arrays():
    if not synthetic_available():
        pytest.skip(f"synthetic MANO model not built yet ({MANO_DIR})")
    return {
        side: load_mano_pickle(MANO_DIR / f"MANO_{side.upper()}.pkl") for side in ("right", "left")
    }


@pytest.fixture(scope="module")
def model(arrays):
    return HandModel.from_dir(MANO_DIR)


def random_params(batch: int, seed: int, scale: float = 0.6):
    rng = np.random.default_rng(seed)
    pose = rng.normal(0.0, scale, (batch, 48))
    betas = rng.normal(0.0, 1.5, (batch, 10))
    trans = rng.normal(0.0, 0.2, (batch, 3))
    return pose, betas, trans


def undirected_edges(faces: np.ndarray) -> Counter:
    return Counter(
        tuple(sorted(e)) for f in faces.tolist() for e in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0]))
    )


def directed_edges(faces: np.ndarray) -> set:
    return {e for f in faces.tolist() for e in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0]))}


# --------------------------------------------------------------------------- pure helpers
def test_fix_left_shapedirs_negates_only_equal_x_rows():
    rng = np.random.default_rng(0)
    right = rng.normal(size=(30, 3, 10))
    buggy = right * MIRROR_X[None, :, None]
    buggy[:, 0, :] = right[:, 0, :] + 1e-6  # official left: x row (nearly) the right's
    fixed = fix_left_shapedirs(right, buggy)
    np.testing.assert_array_equal(fixed[:, 0, :], -buggy[:, 0, :])
    np.testing.assert_array_equal(fixed[:, 1:, :], buggy[:, 1:, :])
    assert buggy[0, 0, 0] == right[0, 0, 0] + 1e-6  # input untouched

    correct = right * MIRROR_X[None, :, None]  # already mirrored: sum |diff| far above 1
    np.testing.assert_array_equal(fix_left_shapedirs(right, correct), correct)
    near = right.copy()
    near[0, 0, 0] += 1.5  # differs by 1.5 in total: not the bug, left alone
    np.testing.assert_array_equal(fix_left_shapedirs(right, near), near)


def test_ih_regressor_rows_follow_the_table():
    rng = np.random.default_rng(1)
    j_reg = rng.uniform(size=(16, 778))
    tips = np.array([745, 317, 445, 556, 673])
    reg = ih_joint_regressor(j_reg, tips)
    assert reg.shape == (21, 778)
    official_tip = {"thumb": 745, "index": 317, "middle": 445, "ring": 556, "pinky": 673}
    for k, source in enumerate(IH_TABLE):
        if isinstance(source, str):
            expected = np.zeros(778)
            expected[official_tip[source]] = 1.0
        else:
            expected = j_reg[source]
        np.testing.assert_array_equal(reg[k], expected, err_msg=f"IH joint {k}")


def open_box():
    """Unit cube without its bottom (z = 0) face, wound outward: one 4-vertex boundary."""
    faces = np.array(
        [
            *([4, 5, 6], [4, 6, 7]),  # top
            *([0, 1, 5], [0, 5, 4], [1, 2, 6], [1, 6, 5]),  # front, right
            *([2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]),  # back, left
        ]
    )
    return faces


def test_skin_vertices_equals_a_per_vertex_loop():
    """Reference: for each image and vertex, (sum_j w_vj T_bj) @ [v, 1], written as loops."""
    rng = np.random.default_rng(3)
    b, v, j = 3, 5, 4
    weights = rng.dirichlet(np.ones(j), size=v)
    transforms = rng.normal(size=(b, j, 4, 4))
    transforms[:, :, 3] = [0.0, 0.0, 0.0, 1.0]
    v_posed = rng.normal(size=(b, v, 3))
    expected = np.zeros((b, v, 3))
    for i in range(b):
        for k in range(v):
            blended = sum(weights[k, m] * transforms[i, m] for m in range(j))
            expected[i, k] = (blended @ np.append(v_posed[i, k], 1.0))[:3]
    got = skin_vertices(*(torch.from_numpy(a) for a in (weights, transforms, v_posed)))
    assert got.shape == (b, v, 3)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)


def test_boundary_and_seal_on_hand_made_box():
    faces = open_box()
    loop = wrist_boundary_loop(faces, 8)
    assert loop.dtype == np.int64
    np.testing.assert_array_equal(loop, [0, 1, 2, 3])  # directions as the side faces use them
    fan = seal_faces(loop, 8, faces)
    # Each bottom edge a->b is used a->b by its side face, so the fan face runs b->a.
    np.testing.assert_array_equal(fan, [[8, 1, 0], [8, 2, 1], [8, 3, 2], [8, 0, 3]])
    sealed = np.concatenate([faces, fan])
    assert set(undirected_edges(sealed).values()) == {2}
    assert len(directed_edges(sealed)) == 3 * len(sealed)  # consistent winding everywhere
    # The loop direction given does not matter: winding follows the existing faces.
    reverse = seal_faces(loop[::-1], 8, faces)
    np.testing.assert_array_equal(reverse, [[8, 3, 2], [8, 2, 1], [8, 1, 0], [8, 0, 3]])


def test_boundary_errors():
    closed = np.concatenate([open_box(), [[0, 2, 1], [0, 3, 2]]])
    with pytest.raises(ValueError, match="no boundary"):
        wrist_boundary_loop(closed, 8)
    two_holes = open_box()[2:]  # top removed as well
    with pytest.raises(ValueError, match="more than one boundary loop"):
        wrist_boundary_loop(two_holes, 8)


# --------------------------------------------------------------------------- the model
def test_missing_dir_is_one_line_error(tmp_path):
    with pytest.raises(DigitError) as err:
        HandModel.from_dir(tmp_path / "nowhere")
    message = str(err.value)
    assert "\n" not in message and "nowhere" in message
    assert "MANO_RIGHT.pkl" in message and "MANO_LEFT.pkl" in message
    assert "MANO website" in message and "registration" in message and "synthetic" in message
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(b"")
    with pytest.raises(DigitError, match=r"missing \(MANO_LEFT\.pkl;"):
        HandModel.from_dir(tmp_path)


@needs_model
def test_model_identity(model, arrays):
    assert model.is_synthetic
    for side in ("right", "left"):
        digest = hashlib.sha256((MANO_DIR / f"MANO_{side.upper()}.pkl").read_bytes()).hexdigest()
        assert model.model_sha256[side] == digest
        np.testing.assert_array_equal(model.faces(side).numpy(), arrays[side]["f"])
        assert model.joint_regressor(side).dtype == F64


@needs_model
@pytest.mark.parametrize("side", ["right", "left"])
def test_regressor_matches_table_on_model(model, arrays, side):
    a = arrays[side]
    reg = model.joint_regressor(side).numpy()
    tips = dict(zip(TIP_ORDER, a["tip_vertex_ids"].tolist(), strict=True))
    for k, source in enumerate(IH_TABLE):
        expected = (
            a["J_regressor"][source]
            if isinstance(source, int)
            else np.eye(reg.shape[1])[tips[source]]
        )
        np.testing.assert_array_equal(reg[k], expected, err_msg=f"IH joint {k}")


@needs_model
@pytest.mark.parametrize("side", ["right", "left"])
def test_sealed_mesh_is_closed(model, arrays, side):
    faces = arrays[side]["f"]
    n_vertices = arrays[side]["v_template"].shape[0]
    boundary_edges = {e for e, n in undirected_edges(faces).items() if n == 1}
    boundary_vertices = sorted({v for e in boundary_edges for v in e})

    loop = model.boundary_loop(side).numpy()
    assert sorted(loop.tolist()) == boundary_vertices and len(loop) == len(boundary_edges)
    loop_edges = {
        tuple(sorted((int(a), int(b)))) for a, b in zip(loop, np.roll(loop, -1), strict=True)
    }
    assert loop_edges == boundary_edges

    sealed_faces = model.sealed_faces(side).numpy()
    k = len(loop)
    assert sealed_faces.shape == (len(faces) + k, 3)
    np.testing.assert_array_equal(sealed_faces[: len(faces)], faces)
    fan = sealed_faces[len(faces) :]
    assert np.all(fan[:, 0] == n_vertices)
    assert set(undirected_edges(sealed_faces).values()) == {2}  # closed: every edge twice
    existing = directed_edges(faces)
    for f in fan.tolist():  # each fan face runs its boundary edge against the existing face
        assert (f[2], f[1]) in existing and (f[1], f[2]) not in existing

    pose, betas, trans = random_params(2, seed=3)
    vertices = model(side, torch.tensor(pose), torch.tensor(betas), torch.tensor(trans)).vertices
    sealed = model.sealed(side, vertices)
    assert sealed.shape == (2, n_vertices + 1, 3)
    torch.testing.assert_close(sealed[:, :n_vertices], vertices, rtol=0, atol=0)
    expected_seal = vertices.numpy()[:, boundary_vertices].mean(axis=1)
    np.testing.assert_allclose(sealed[:, -1].numpy(), expected_seal, rtol=0, atol=1e-9)


@needs_model
@pytest.mark.parametrize("side", ["right", "left"])
def test_joints_are_the_regressor_on_vertices(model, arrays, side):
    pose, betas, trans = random_params(3, seed=4)
    out = model(side, torch.tensor(pose), torch.tensor(betas), torch.tensor(trans))
    v = out.vertices.numpy()
    assert out.vertices.dtype == F64 and out.joints.shape == (3, 21, 3)
    reg = ih_joint_regressor(arrays[side]["J_regressor"], arrays[side]["tip_vertex_ids"])
    np.testing.assert_allclose(out.joints.numpy(), np.einsum("jv,bvc->bjc", reg, v), atol=1e-9)
    wrist = np.einsum("v,bvc->bc", arrays[side]["J_regressor"][0], v)
    np.testing.assert_allclose(out.joints[:, 20].numpy(), wrist, rtol=0, atol=1e-9)
    tips = v[:, arrays[side]["tip_vertex_ids"]]
    np.testing.assert_allclose(out.joints[:, [0, 4, 8, 12, 16]].numpy(), tips, rtol=0, atol=1e-9)


@needs_model
@pytest.mark.parametrize("side", ["right", "left"])
def test_mm_units_mean_pose_and_translation(model, arrays, side):
    a = arrays[side]
    # Stored pose = -mean: the final pose is zero, so the mesh is the template, in mm.
    pose = np.concatenate([np.zeros(3), -a["hands_mean"]])[None]
    zeros = torch.zeros(1, 10, dtype=F64)
    out = model(side, torch.tensor(pose), zeros, torch.zeros(1, 3, dtype=F64))
    np.testing.assert_allclose(out.vertices[0].numpy(), a["v_template"] * 1000, rtol=0, atol=1e-9)

    pose, betas, trans = random_params(2, seed=5)
    still = model(side, torch.tensor(pose), torch.tensor(betas), torch.zeros(2, 3, dtype=F64))
    moved = model(side, torch.tensor(pose), torch.tensor(betas), torch.tensor(trans))
    shift = torch.tensor(trans)[:, None, :] * 1000
    torch.testing.assert_close(moved.vertices, still.vertices + shift, rtol=0, atol=1e-9)
    # Joints: J_regressor rows sum to 1 only up to rounding.
    torch.testing.assert_close(moved.joints, still.joints + shift, rtol=0, atol=1e-6)


@needs_model
def test_right_hand_matches_smplx_directly(model, arrays):
    """Independent reference: smplx.MANO with flat_hand_mean=False, metres -> mm."""
    pose, betas, trans = random_params(3, seed=6)
    layer = smplx.MANO(
        "", data_struct=Struct(**arrays["right"]), use_pca=False, flat_hand_mean=False, dtype=F64
    )
    ref = layer(
        betas=torch.tensor(betas),
        global_orient=torch.tensor(pose[:, :3]),
        hand_pose=torch.tensor(pose[:, 3:]),
        transl=torch.tensor(trans),
    )
    out = model("right", torch.tensor(pose), torch.tensor(betas), torch.tensor(trans))
    # smplx stores its buffers through float32 and nudges rotation vectors by 1e-8.
    np.testing.assert_allclose(out.vertices.numpy(), ref.vertices.numpy() * 1000, atol=1e-3)


def mirrored_left_pose(pose_right: np.ndarray, mean_right: np.ndarray, mean_left: np.ndarray):
    """Stored left pose whose final pose (stored + mean) mirrors the right's final pose."""
    final = pose_right.copy()
    final[:, 3:] += mean_right
    final = (final.reshape(-1, 16, 3) * MIRROR_AA).reshape(-1, 48)
    final[:, 3:] -= mean_left
    return final


def mirror_gap_mm(model, arrays, seed: int) -> float:
    pose, betas, trans = random_params(4, seed=seed)
    right = model("right", torch.tensor(pose), torch.tensor(betas), torch.tensor(trans))
    pose_left = mirrored_left_pose(
        pose, arrays["right"]["hands_mean"], arrays["left"]["hands_mean"]
    )
    left = model(
        "left", torch.tensor(pose_left), torch.tensor(betas), torch.tensor(trans * MIRROR_X)
    )
    gap = np.abs(left.vertices.numpy() - right.vertices.numpy() * MIRROR_X).max()
    joint_gap = np.abs(left.joints.numpy() - right.joints.numpy() * MIRROR_X).max()
    return max(gap, joint_gap)


@needs_model
def test_left_is_mirror_of_right_only_with_the_fix(model, arrays, monkeypatch):
    for seed in (7, 8):
        assert mirror_gap_mm(model, arrays, seed) < 1e-6
    monkeypatch.setattr(hand_model, "fix_left_shapedirs", lambda right, left: np.array(left))
    unfixed = HandModel(arrays["right"], arrays["left"])
    assert mirror_gap_mm(unfixed, arrays, 7) > 0.1  # the shape basis is then not mirrored


@needs_model
def test_empty_batch_dtype_and_to(model):
    side = "left"
    n_vertices = model.num_vertices(side)
    empty = model(side, torch.zeros(0, 48), torch.zeros(0, 10), torch.zeros(0, 3))
    assert empty.vertices.shape == (0, n_vertices, 3) and empty.joints.shape == (0, 21, 3)
    assert model.sealed(side, empty.vertices).shape == (0, n_vertices + 1, 3)

    pose, betas, trans = (torch.tensor(x) for x in random_params(2, seed=9))
    reference = model(side, pose, betas, trans)
    assert reference.vertices.dtype == F64 and reference.vertices.device.type == "cpu"
    model32 = HandModel.from_dir(MANO_DIR).to(torch.float32)
    out32 = model32(side, pose, betas, trans)  # inputs follow the module's dtype
    assert out32.vertices.dtype == torch.float32 and out32.joints.dtype == torch.float32
    torch.testing.assert_close(out32.vertices.double(), reference.vertices, rtol=0, atol=1e-2)
    meta = HandModel.from_dir(MANO_DIR).to("meta")
    assert all(t.device.type == "meta" for t in meta.buffers())
    assert meta.sealed_faces(side).device.type == "meta"
    if torch.cuda.is_available():
        cuda = HandModel.from_dir(MANO_DIR).to("cuda")
        out = cuda(side, pose, betas, trans)
        assert out.vertices.device.type == "cuda"
        torch.testing.assert_close(out.vertices.cpu(), reference.vertices, rtol=0, atol=1e-6)
