"""The synthetic model's pickle contents, bytes and files (offline; see scripts/)."""

import functools
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse

from core.files import atomic_write_bytes
from render.mano import MANO_PARENTS
from render.synthetic_mano.exact import SplitMix64, jacobi_eigh, mean_rows
from render.synthetic_mano.faces import triangulate
from render.synthetic_mano.layout import N_JOINTS
from render.synthetic_mano.mesh import (
    SHAPE_DIRECTIONS,
    HandDimensions,
    build_geometry,
    mean_build,
    to_mano_axes,
    world_metres,
)
from render.synthetic_mano.pickle_writer import pickle_bytes
from render.synthetic_mano.pose_prior import (
    mirror_axis_angle,
    pose_from_angles,
    relaxed_angles,
    sample_angles,
)
from render.synthetic_mano.skinning import joint_regressor, regress_joints, skinning_weights

SYNTHETIC_MODEL_VERSION = 1
ROOT_PARENT_UINT32 = 4294967295
_ROUND_M = 10  # decimals kept for metre-valued arrays (0.1 nm grid)
_ROUND_UNIT = 12  # decimals kept for unitless arrays (weights, regressor, pose)


def _pose_pca() -> np.ndarray:
    """(45, 45) orthonormal rows: principal directions of sampled natural right-hand poses."""
    poses = pose_from_angles(sample_angles(SplitMix64(20210101), 4000), "right")
    x = poses - mean_rows(poses)
    cov = np.zeros((45, 45))
    for i in range(45):
        for j in range(i, 45):
            cov[i, j] = cov[j, i] = math.fsum((x[:, i] * x[:, j]).tolist()) / len(x)
    vals, vecs = jacobi_eigh(cov)
    order = sorted(range(45), key=lambda k: (-vals[k], k))
    comps = vecs[:, order].T.copy()
    for r in range(45):  # sign: the largest entry positive
        k = int(np.argmax(np.abs(comps[r])))
        if comps[r, k] < 0:
            comps[r] = -comps[r]
    return comps


def _shape_dirs(shift: np.ndarray) -> np.ndarray:
    """(V, 3, 10) metres per unit beta: central differences of the construction."""
    base = HandDimensions()
    out = []
    for _, field, step in SHAPE_DIRECTIONS:
        plus = build_geometry(replace(base, **{field: getattr(base, field) + step})).verts
        minus = build_geometry(replace(base, **{field: getattr(base, field) - step})).verts
        out.append((to_mano_axes(plus) - to_mano_axes(minus)) / 2000.0)
    return np.stack(out, axis=2)


@functools.lru_cache(maxsize=1)
def _right_arrays() -> dict:
    geo, shift = mean_build()
    v = np.round(world_metres(geo.verts, shift), _ROUND_M)
    faces = triangulate(geo)
    reg = joint_regressor(geo)
    reg.data = np.round(reg.data, _ROUND_UNIT)
    weights = np.round(skinning_weights(geo), _ROUND_UNIT)
    joints = np.round(regress_joints(reg, v), _ROUND_M)
    mean = np.round(pose_from_angles(relaxed_angles()[None], "right")[0], _ROUND_UNIT)
    return {
        "v_template": v,
        "f": faces.astype(np.uint32),
        "weights": weights,
        "J_regressor": reg,
        "kintree_table": _kintree(),
        "shapedirs": np.round(_shape_dirs(shift), _ROUND_M),
        "posedirs": np.zeros((len(v), 3, 135)),
        "hands_components": np.round(_pose_pca(), _ROUND_UNIT),
        "hands_mean": mean,
        "J": joints,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "tip_vertex_ids": np.array(geo.tips, dtype=np.int64),
        "synthetic_model_version": SYNTHETIC_MODEL_VERSION,
    }


def _kintree() -> np.ndarray:
    parents = [ROOT_PARENT_UINT32 if p < 0 else p for p in MANO_PARENTS]
    return np.array([parents, list(range(N_JOINTS))], dtype=np.uint32)


def build_synthetic_mano(side: str = "right") -> dict:
    """The synthetic model's pickle contents for 'right' or 'left' (fresh copies).

    Keys as in MANO (reference/mano.md): v_template (V, 3) metres, f (F, 3) uint32, weights
    (V, 16), J_regressor csc (16, V), kintree_table (2, 16) uint32, shapedirs (V, 3, 10),
    posedirs (V, 3, 135) zeros, hands_components (45, 45), hands_mean (45,), J (16, 3),
    bs_style, bs_type, plus tip_vertex_ids (5,) int64 (thumb, index, middle, ring, little) and
    synthetic_model_version. The left model mirrors the right (x -> -x, reversed winding,
    mirrored poses) but stores shapedirs[:, 0, :] equal to the right's, as real MANO_LEFT does.
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    right = _right_arrays()
    out = {
        k: (v.copy() if isinstance(v, np.ndarray | scipy.sparse.csc_matrix) else v)
        for k, v in right.items()
    }
    if side == "left":
        mirror = np.array([-1.0, 1.0, 1.0])
        out["v_template"] = out["v_template"] * mirror
        out["J"] = out["J"] * mirror
        out["f"] = out["f"][:, ::-1].copy()
        # real MANO_LEFT quirk: shapedirs[:, 0, :] is not negated (smplx issue #48)
        out["hands_mean"] = mirror_axis_angle(out["hands_mean"].reshape(15, 3)).reshape(45)
        out["hands_components"] = mirror_axis_angle(
            out["hands_components"].reshape(45, 15, 3)
        ).reshape(45, 45)
    for key in ("v_template", "J", "hands_mean", "hands_components"):
        out[key] = out[key] + 0.0  # -0.0 -> 0.0, so the bytes never carry a sign of zero
    return out


def synthetic_mano_bytes(side: str = "right") -> bytes:
    """The exact bytes of MANO_RIGHT.pkl / MANO_LEFT.pkl (protocol 2, load with latin1)."""
    return pickle_bytes(build_synthetic_mano(side))


def write_synthetic_mano(out_dir: Path) -> list[Path]:
    """Write MANO_RIGHT.pkl and MANO_LEFT.pkl into out_dir; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for side, name in (("right", "MANO_RIGHT.pkl"), ("left", "MANO_LEFT.pkl")):
        path = out_dir / name
        atomic_write_bytes(path, synthetic_mano_bytes(side))
        paths.append(path)
    return paths
