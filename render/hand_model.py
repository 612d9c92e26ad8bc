"""The two-hand MANO model: posed meshes in world mm, InterHand2.6M joints, sealed wrist meshes.

Pure helpers do the maths (left-hand shape fix, 21-joint regressor, wrist boundary and its seal);
``HandModel`` owns one smplx MANO layer per hand plus buffers, so ``.to(device)`` moves it all.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import smplx
import torch
from smplx.lbs import batch_rigid_transform, blend_shapes, vertices2joints
from smplx.utils import Struct
from torch import nn

from core.errors import DigitError
from core.files import file_sha256
from render.mano import NUM_JOINTS, REQUIRED_KEYS, load_mano_pickle

SIDES: tuple[str, str] = ("right", "left")
MODEL_FILES: dict[str, str] = {"right": "MANO_RIGHT.pkl", "left": "MANO_LEFT.pkl"}
NUM_IH_JOINTS = 21
# InterHand2.6M joint k from MANO: ("tip", i) = fingertip vertex tip_vertex_ids[i] (thumb, index,
# middle, ring, pinky); ("joint", j) = row j of MANO's J_regressor. Order: thumb4..1, index4..1,
# middle4..1, ring4..1, pinky4..1, wrist.
IH_JOINT_SOURCES: tuple[tuple[str, int], ...] = (
    ("tip", 0), ("joint", 15), ("joint", 14), ("joint", 13),
    ("tip", 1), ("joint", 3), ("joint", 2), ("joint", 1),
    ("tip", 2), ("joint", 6), ("joint", 5), ("joint", 4),
    ("tip", 3), ("joint", 12), ("joint", 11), ("joint", 10),
    ("tip", 4), ("joint", 9), ("joint", 8), ("joint", 7),
    ("joint", 0),
)  # fmt: skip
# A left shapedirs x-row this close to the right's (sum of |diff|) is the known MANO_LEFT bug.
_LEFT_FIX_THRESHOLD = 1.0


# --------------------------------------------------------------------------- pure helpers
def fix_left_shapedirs(right_shapedirs: np.ndarray, left_shapedirs: np.ndarray) -> np.ndarray:
    """Undo MANO_LEFT's un-mirrored shape basis (smplx issue #48); the project's only copy.

    Args:
        right_shapedirs: (V, 3, B) right model's shape blend shapes.
        left_shapedirs: (V, 3, B) left model's shape blend shapes.

    Returns:
        (V, 3, B) float64 copy of the left shapedirs, with the x row (``[:, 0, :]``) negated when
        it equals the right model's (sum of absolute differences < 1), else unchanged.
    """
    right = np.asarray(right_shapedirs, dtype=np.float64)
    left = np.array(left_shapedirs, dtype=np.float64)
    if right.shape != left.shape or left.ndim != 3 or left.shape[1] != 3:
        raise ValueError(
            f"shapedirs shapes {right.shape} and {left.shape} differ or are not (V, 3, B)"
        )
    if np.abs(left[:, 0, :] - right[:, 0, :]).sum() < _LEFT_FIX_THRESHOLD:
        left[:, 0, :] *= -1.0
    return left


def ih_joint_regressor(j_regressor: np.ndarray, tip_vertex_ids: np.ndarray) -> np.ndarray:
    """InterHand2.6M's 21-joint regressor: MANO's J_regressor rows reordered plus fingertips.

    Args:
        j_regressor: (16, V) MANO joint regressor.
        tip_vertex_ids: (5,) fingertip vertex ids (thumb, index, middle, ring, pinky).

    Returns:
        (21, V) float64; applied to posed vertices (V, 3) it gives the 21 joints in IH order.
    """
    j_regressor = np.asarray(j_regressor, dtype=np.float64)
    tips = np.asarray(tip_vertex_ids, dtype=np.int64)
    if j_regressor.ndim != 2 or j_regressor.shape[0] != NUM_JOINTS or tips.shape != (5,):
        raise ValueError(f"expected (16, V) and (5,), got {j_regressor.shape} and {tips.shape}")
    out = np.zeros((NUM_IH_JOINTS, j_regressor.shape[1]), dtype=np.float64)
    for k, (kind, i) in enumerate(IH_JOINT_SOURCES):
        if kind == "tip":
            out[k, tips[i]] = 1.0
        else:
            out[k] = j_regressor[i]
    return out


def wrist_boundary_loop(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """The ordered boundary loop of the wrist opening (MANO's only hole).

    Args:
        faces: (F, 3) int vertex ids of a consistently wound mesh.
        n_vertices: V, the number of vertices.

    Returns:
        (K,) int64 boundary vertex ids, starting at the smallest and following each boundary
        edge in the direction its face traverses it.

    Raises:
        ValueError: no boundary, more than one loop, or a boundary that is not a simple loop.
    """
    faces = np.asarray(faces, dtype=np.int64)
    directed = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    undirected = np.sort(directed, axis=1)
    keys = undirected[:, 0] * n_vertices + undirected[:, 1]
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    if np.any(counts > 2):
        raise ValueError("mesh has edges shared by more than two faces")
    boundary = directed[counts[inverse] == 1]
    if len(boundary) == 0:
        raise ValueError("mesh has no boundary (no wrist opening)")
    successor: dict[int, int] = {}
    for a, b in boundary.tolist():
        if a in successor:
            raise ValueError(f"boundary is not a simple loop at vertex {a}")
        successor[a] = b
    start = min(successor)
    loop = [start]
    while (nxt := successor.get(loop[-1])) != start:
        if nxt is None or len(loop) > len(boundary):
            raise ValueError("boundary is not a closed loop")
        loop.append(nxt)
    if len(loop) != len(boundary):
        raise ValueError(f"mesh has more than one boundary loop ({len(boundary)} boundary edges)")
    return np.array(loop, dtype=np.int64)


def seal_faces(boundary_loop: np.ndarray, seal_index: int, faces: np.ndarray) -> np.ndarray:
    """Fan faces closing the wrist: the seal vertex to each consecutive boundary edge.

    Args:
        boundary_loop: (K,) ordered boundary vertex ids (closing edge from last to first).
        seal_index: id of the added seal vertex (V for a mesh of V vertices).
        faces: (F, 3) the existing faces, used to wind each fan face against its neighbour.

    Returns:
        (K, 3) int64; face i spans boundary_loop[i], boundary_loop[i + 1] and the seal vertex,
        traversing that edge opposite to the existing face that holds it.
    """
    loop = np.asarray(boundary_loop, dtype=np.int64)
    faces = np.asarray(faces, dtype=np.int64)
    directed = {(int(a), int(b)) for a, b in faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)}
    out = np.empty((len(loop), 3), dtype=np.int64)
    for i, a in enumerate(loop.tolist()):
        b = int(loop[(i + 1) % len(loop)])
        if (a, b) in directed:
            out[i] = (seal_index, b, a)
        elif (b, a) in directed:
            out[i] = (seal_index, a, b)
        else:
            raise ValueError(f"boundary edge ({a}, {b}) is not an edge of the mesh")
    return out


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula, exact in float64 (smplx adds 1e-8 to each component of the vector).

    Args:
        axis_angle: (..., 3) rotation vectors, angle in radians.

    Returns:
        (..., 3, 3) rotation matrices; mirroring (x, y, z) -> (x, -y, -z) mirrors the result
        exactly, which the left/right symmetry of MANO relies on.
    """
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1)
    skew = skew.reshape(*axis_angle.shape[:-1], 3, 3)
    theta2 = (axis_angle * axis_angle).sum(-1)
    small = theta2 < 1e-8
    # Series below 1e-4 rad (error ~theta^6); the safe value keeps gradients finite at zero.
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    half_sin = torch.sin(theta / 2)
    a = torch.where(small, 1 - theta2 / 6 + theta2 * theta2 / 120, torch.sin(theta) / theta)
    b = torch.where(
        small,
        0.5 - theta2 / 24 + theta2 * theta2 / 720,
        2 * half_sin * half_sin / (theta * theta),  # (1 - cos) / theta^2 without cancellation
    )
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a[..., None, None] * skew + b[..., None, None] * (skew @ skew)


def skin_vertices(
    weights: torch.Tensor, transforms: torch.Tensor, v_posed: torch.Tensor
) -> torch.Tensor:
    """Linear blend skinning: each vertex moved by its weighted sum of the joints' transforms.

    Args:
        weights: (V, J) skinning weights.
        transforms: (B, J, 4, 4) rigid transforms of the joints (smplx's ``A``: the rest pose's
            joint positions already removed).
        v_posed: (B, V, 3) vertices after the shape and pose blend shapes.

    Returns:
        (B, V, 3) skinned vertices. The weights multiply the top three rows of the transforms in
        one (V, J) x (J, B * 12) product, and each vertex's 3 x 4 matrix is applied element by
        element: the sums of smplx's ``lbs`` (the same bits on the synthetic model), without
        its batched products over an expanded weight tensor and over V x B tiny 4 x 4
        matrices: on one CPU thread, a whole 32-frame float64 forward with it took 2.25-2.37
        ms where smplx's ``lbs`` alone took 2.9-3.0 (BENCHMARKS.md, 2026-12-06).
    """
    b, j = transforms.shape[:2]
    rows = transforms[:, :, :3, :].permute(1, 0, 2, 3).reshape(j, b * 12)
    blended = (weights @ rows).reshape(-1, b, 3, 4).permute(1, 0, 2, 3)  # (B, V, 3, 4)
    x, y, z = (c[..., None] for c in v_posed.unbind(-1))
    return ((blended[..., 0] * x + blended[..., 1] * y) + blended[..., 2] * z) + blended[..., 3]


def _frozen(a: np.ndarray) -> np.ndarray:
    out = np.array(a, dtype=np.float64)
    out.flags.writeable = False
    return out


# --------------------------------------------------------------------------- the module
@dataclass(frozen=True)
class HandOutput:
    """One hand posed by ``HandModel.forward``.

    vertices: (B, V, 3) world mm. joints: (B, 21, 3) world mm, InterHand2.6M order (20 = wrist).
    """

    vertices: torch.Tensor
    joints: torch.Tensor


def _mano_layer(arrays: Mapping[str, np.ndarray], is_rhand: bool, dtype: torch.dtype) -> nn.Module:
    """smplx MANO layer with exact float buffers (smplx casts through float32 otherwise)."""
    struct = Struct(**{k: arrays[k] for k in REQUIRED_KEYS})
    with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a "10 shape coefficients" note
        layer = smplx.MANO(
            "",
            is_rhand=is_rhand,
            data_struct=struct,
            use_pca=False,
            flat_hand_mean=False,
            dtype=dtype,
            create_global_orient=False,
            create_hand_pose=False,
            create_betas=False,
            create_transl=False,
        )
    n_vertices = arrays["v_template"].shape[0]
    exact = {
        "v_template": arrays["v_template"],
        "shapedirs": arrays["shapedirs"],
        "J_regressor": arrays["J_regressor"],
        "posedirs": arrays["posedirs"].reshape(n_vertices * 3, -1).T,
        "lbs_weights": arrays["weights"],
    }
    for name, value in exact.items():
        layer.register_buffer(name, torch.tensor(value, dtype=dtype))
    return layer


class HandModel(nn.Module):
    """Right and left MANO hands posed from NeuralAnnot parameters, in world millimetres.

    Built from two ``load_mano_pickle`` dicts (or ``HandModel.from_dir``). The left model's
    shapedirs are fixed once here with ``fix_left_shapedirs``. Buffers per side: the (21, V)
    InterHand2.6M regressor, MANO's faces (F, 3), the wrist boundary loop (K,) and the sealed
    faces (F + K, 3). Official MANO: V = 778, F = 1538, K = 16, sealed mesh 779 vertices and
    1554 faces.
    """

    def __init__(
        self,
        right: Mapping[str, np.ndarray],
        left: Mapping[str, np.ndarray],
        dtype: torch.dtype = torch.float64,
        model_sha256: Mapping[str, str] | None = None,
        source: str = "MANO model",
    ) -> None:
        super().__init__()
        left = dict(left)
        left["shapedirs"] = fix_left_shapedirs(right["shapedirs"], left["shapedirs"])
        models = {"right": right, "left": left}
        versions = {s: m.get("synthetic_model_version") for s, m in models.items()}
        if (versions["right"] is None) != (versions["left"] is None):
            raise DigitError(
                f"{source}: one hand is the project's synthetic model and the other is not"
            )
        self.is_synthetic: bool = versions["right"] is not None
        self.synthetic_model_version = (
            None if versions["right"] is None else np.asarray(versions["right"]).item()
        )
        self._model_sha256 = dict(model_sha256 or {})
        # what callers would otherwise re-read the pickles for (numpy, read-only)
        self._weights = {s: _frozen(m["weights"]) for s, m in models.items()}
        self._hands_mean = {s: _frozen(m["hands_mean"]) for s, m in models.items()}
        self._hands_components = {s: _frozen(m["hands_components"]) for s, m in models.items()}
        self.layers = nn.ModuleDict()
        for side, arrays in models.items():
            where = f"{source} ({MODEL_FILES[side]})"
            faces = np.asarray(arrays["f"], dtype=np.int64)
            n_vertices = arrays["v_template"].shape[0]
            try:
                boundary = wrist_boundary_loop(faces, n_vertices)
                fan = seal_faces(boundary, n_vertices, faces)
            except ValueError as err:
                raise DigitError(f"{where}: key 'f': {err}") from None
            self.layers[side] = _mano_layer(arrays, side == "right", dtype)
            reg = ih_joint_regressor(arrays["J_regressor"], arrays["tip_vertex_ids"])
            self.register_buffer(f"{side}_regressor", torch.tensor(reg, dtype=dtype))
            self.register_buffer(f"{side}_faces", torch.from_numpy(faces.copy()))
            self.register_buffer(f"{side}_boundary", torch.from_numpy(boundary))
            sealed = np.concatenate([faces, fan], axis=0)
            self.register_buffer(f"{side}_sealed_faces", torch.from_numpy(sealed))
            self.register_buffer(
                f"{side}_tip_vertex_ids",
                torch.tensor(np.asarray(arrays["tip_vertex_ids"]), dtype=torch.int64),
            )

    @classmethod
    def from_dir(cls, mano_dir: str | Path, dtype: torch.dtype = torch.float64) -> HandModel:
        """Load ``MANO_RIGHT.pkl`` and ``MANO_LEFT.pkl`` from a folder (real or synthetic)."""
        mano_dir = Path(mano_dir)
        paths = {side: mano_dir / name for side, name in MODEL_FILES.items()}
        missing = [p.name for p in paths.values() if not p.is_file()]
        if missing:
            raise DigitError(
                f"{mano_dir}: MANO model files missing ({', '.join(missing)}; they come from the "
                "MANO website after registration: put or link them here or pass --mano-dir; "
                "without --data-root the project's synthetic model is used)"
            )
        arrays = {side: load_mano_pickle(p) for side, p in paths.items()}
        sha = {side: file_sha256(p) for side, p in paths.items()}
        return cls(
            arrays["right"], arrays["left"], dtype=dtype, model_sha256=sha, source=str(mano_dir)
        )

    # ----------------------------------------------------------------------- accessors
    @property
    def model_sha256(self) -> dict[str, str]:
        """{"right": hex, "left": hex} sha256 of the model files ({} if built from arrays)."""
        return dict(self._model_sha256)

    @staticmethod
    def model_file(side: str) -> str:
        """The model file name of `side`: MANO_RIGHT.pkl or MANO_LEFT.pkl."""
        return MODEL_FILES[side]

    def skinning_weights(self, side: str) -> np.ndarray:
        """(V, 16) float64 linear-blend-skinning weights of `side`'s model (read-only)."""
        return self._weights[self._side(side)]

    def hands_mean(self, side: str) -> np.ndarray:
        """(45,) float64 mean finger pose (axis-angle) of `side`'s model (read-only)."""
        return self._hands_mean[self._side(side)]

    def hands_components(self, side: str) -> np.ndarray:
        """(45, 45) float64 pose PCA components of `side`'s model, one per row (read-only): a
        finger pose minus `hands_mean` is coefficients (45,) @ components."""
        return self._hands_components[self._side(side)]

    @property
    def dtype(self) -> torch.dtype:
        return self.right_regressor.dtype

    @property
    def device(self) -> torch.device:
        return self.right_regressor.device

    def _side(self, side: str) -> str:
        if side not in SIDES:
            raise ValueError(f"side must be 'right' or 'left', got {side!r}")
        return side

    def faces(self, side: str) -> torch.Tensor:
        """(F, 3) int64 MANO faces of that hand."""
        return getattr(self, f"{self._side(side)}_faces")

    def sealed_faces(self, side: str) -> torch.Tensor:
        """(F + K, 3) int64: MANO's faces, then the K fan faces to the seal vertex (id V)."""
        return getattr(self, f"{self._side(side)}_sealed_faces")

    def boundary_loop(self, side: str) -> torch.Tensor:
        """(K,) int64 ordered wrist boundary vertex ids."""
        return getattr(self, f"{self._side(side)}_boundary")

    def joint_regressor(self, side: str) -> torch.Tensor:
        """(21, V) InterHand2.6M joint regressor (MANO rows reordered plus fingertips)."""
        return getattr(self, f"{self._side(side)}_regressor")

    def num_vertices(self, side: str) -> int:
        """V, MANO vertices of that hand (the sealed mesh has V + 1)."""
        return self.joint_regressor(side).shape[1]

    # ----------------------------------------------------------------------- maths
    def forward(
        self, side: str, pose: torch.Tensor, shape: torch.Tensor, trans: torch.Tensor
    ) -> HandOutput:
        """Pose one hand from NeuralAnnot parameters.

        Args:
            side: "right" or "left".
            pose: (B, 48) axis-angle; [:, :3] global orientation in the world frame, [:, 3:] the
                15 finger joints in MANO order, stored minus MANO's mean pose.
            shape: (B, 10) betas.
            trans: (B, 3) world translation in metres.

        Returns:
            HandOutput with vertices (B, V, 3) and joints (B, 21, 3), world mm, IH joint order.
        """
        layer = self.layers[self._side(side)]
        pose = self._input(pose, 48, "pose")
        shape = self._input(shape, 10, "shape")
        trans = self._input(trans, 3, "trans")
        if not pose.shape[0] == shape.shape[0] == trans.shape[0]:
            raise ValueError(
                f"batch sizes differ: pose {pose.shape[0]}, shape {shape.shape[0]}, "
                f"trans {trans.shape[0]}"
            )
        regressor = self.joint_regressor(side)
        if pose.shape[0] == 0:
            empty = pose.new_zeros((0, regressor.shape[1], 3))
            return HandOutput(vertices=empty, joints=pose.new_zeros((0, NUM_IH_JOINTS, 3)))
        # smplx.MANO's forward with flat_hand_mean=False adds pose_mean (0 for the global
        # orientation, hands_mean for the fingers); rotations come from the exact Rodrigues.
        full_pose = pose + layer.pose_mean
        rotations = axis_angle_to_matrix(full_pose.reshape(-1, NUM_JOINTS, 3))
        # smplx's lbs (pose2rot=False), with the skinning step of `skin_vertices`
        v_shaped = layer.v_template + blend_shapes(shape, layer.shapedirs)
        rest_joints = vertices2joints(layer.J_regressor, v_shaped)
        eye = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
        pose_feature = (rotations[:, 1:] - eye).reshape(len(rotations), -1)
        v_posed = v_shaped + (pose_feature @ layer.posedirs).reshape(len(rotations), -1, 3)
        _, transforms = batch_rigid_transform(rotations, rest_joints, layer.parents)
        vertices_m = skin_vertices(layer.lbs_weights, transforms, v_posed)
        vertices = (vertices_m + trans[:, None, :]) * 1000.0  # metres -> mm
        joints = torch.einsum("jv,bvc->bjc", regressor, vertices)
        return HandOutput(vertices=vertices, joints=joints)

    def _input(self, value: torch.Tensor, width: int, name: str) -> torch.Tensor:
        tensor = torch.as_tensor(value, dtype=self.dtype, device=self.device)
        if tensor.ndim != 2 or tensor.shape[1] != width:
            raise ValueError(f"{name} must be (B, {width}), got {tuple(tensor.shape)}")
        return tensor

    def sealed(self, side: str, vertices: torch.Tensor) -> torch.Tensor:
        """Append the seal vertex (mean of the posed wrist boundary) to posed vertices.

        Args:
            vertices: (B, V, 3) posed vertices of that hand (any unit).

        Returns:
            (B, V + 1, 3), to be used with ``sealed_faces(side)``.
        """
        boundary = self.boundary_loop(side)
        seal = vertices[:, boundary].mean(dim=1, keepdim=True)
        return torch.cat([vertices, seal], dim=1)
