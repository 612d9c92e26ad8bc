"""A fast differentiable copy of `HandModel.forward` for the fit's inner loop.

smplx's `lbs` applies each vertex's 4x4 blend transform as one tiny batched matrix product per
vertex, which dominates a fit's time on the CPU (N x V products of 4x4 by 4x1, forward and
backward). Here the same maths is written with one (V, 16) x (N, 16, 12) product for the blended
transforms and elementwise multiply-adds for their application, the kinematic chain is walked
level by level (MANO's tree has three levels below the root), and MANO's joints come from the
shape parameters directly (they are linear in the betas). A `SkinningArrays` may also hold only
some vertices (`subset`): those the 21 joints are regressed from and those the interpenetration
term looks at, which is all the fit needs. Same inputs, same outputs as `HandModel.forward` (up to
float rounding; tests/test_meshes_fit.py checks it); the fit's final meshes still come from
`HandModel.forward` itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from render.hand_model import HandModel, axis_angle_to_matrix
from render.mano import MANO_PARENTS

# MANO joints by depth in the kinematic tree below the root (index, middle, pinky, ring, thumb).
LEVELS: tuple[tuple[int, ...], ...] = ((1, 4, 7, 10, 13), (2, 5, 8, 11, 14), (3, 6, 9, 12, 15))


@dataclass(frozen=True)
class SkinningArrays:
    """One side's model as plain tensors (one dtype and device), for S of its V vertices.

    vertex_ids (S,) int64, which vertices; v_template (S, 3) m; shapedirs (S * 3, 10);
    posedirs (135, S * 3); weights (S, 16); joint_template (16, 3) m and joint_shapedirs
    (48, 10): MANO's 16 rest joints (J_regressor of the full mesh) and their change per beta;
    pose_mean (48,) (0 for the global orientation, then the mean finger pose); ih_regressor
    (21, S) InterHand2.6M's joints from these vertices (exact only if they hold its support).
    """

    vertex_ids: torch.Tensor
    v_template: torch.Tensor
    shapedirs: torch.Tensor
    posedirs: torch.Tensor
    weights: torch.Tensor
    joint_template: torch.Tensor
    joint_shapedirs: torch.Tensor
    pose_mean: torch.Tensor
    ih_regressor: torch.Tensor

    @classmethod
    def of(cls, model: HandModel, side: str, dtype: torch.dtype) -> SkinningArrays:
        """All V vertices of `side`'s model, cast to `dtype` on the model's device."""
        layer = model.layers[side]
        v = layer.v_template.shape[0]
        shapedirs = layer.shapedirs[..., :10]  # (V, 3, 10)
        joint_dirs = torch.einsum("jv,vcl->jcl", layer.J_regressor, shapedirs)

        def cast(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to(dtype=dtype, device=model.device)

        return cls(
            vertex_ids=torch.arange(v, device=model.device),
            v_template=cast(layer.v_template),
            shapedirs=cast(shapedirs.reshape(v * 3, 10)),
            posedirs=cast(layer.posedirs),
            weights=cast(layer.lbs_weights),
            joint_template=cast(layer.J_regressor @ layer.v_template),
            joint_shapedirs=cast(joint_dirs.reshape(-1, 10)),
            pose_mean=cast(layer.pose_mean.reshape(-1)),
            ih_regressor=cast(model.joint_regressor(side)),
        )

    def subset(self, vertex_ids: np.ndarray) -> SkinningArrays:
        """The same model restricted to `vertex_ids` (S,) of the current vertices."""
        ids = torch.as_tensor(np.asarray(vertex_ids, dtype=np.int64), device=self.v_template.device)
        coords = (ids[:, None] * 3 + torch.arange(3, device=ids.device)).reshape(-1)
        return replace(
            self,
            vertex_ids=self.vertex_ids[ids],
            v_template=self.v_template[ids],
            shapedirs=self.shapedirs[coords],
            posedirs=self.posedirs[:, coords],
            weights=self.weights[ids],
            ih_regressor=self.ih_regressor[:, ids],
        )


def regressor_support(arrays: SkinningArrays) -> np.ndarray:
    """(K,) int64 positions (in `arrays`) of the vertices its 21 joints are regressed from."""
    return torch.nonzero(arrays.ih_regressor.abs().sum(0) > 0)[:, 0].cpu().numpy()


def _chain(rotations: torch.Tensor, joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World rotations (N, 16, 3, 3) and positions (N, 16, 3) of MANO's joints after posing."""
    # whole levels at a time: level 1's parent is the root for all five fingers, each deeper
    # level's parents are the previous level's joints in the same order
    rot, pos = [rotations[:, :1]], [joints[:, :1]]
    parent_rot, parent_pos = rotations[:, :1], joints[:, :1]  # (N, 1, 3, 3), (N, 1, 3)
    for level in LEVELS:
        parents = [MANO_PARENTS[j] for j in level]
        offset = joints[:, list(level)] - joints[:, parents]
        parent_pos = parent_pos + (parent_rot @ offset[..., None]).squeeze(-1)
        parent_rot = parent_rot @ rotations[:, list(level)]
        rot.append(parent_rot)
        pos.append(parent_pos)
    # back to MANO's joint order: root, then (level 1, 2, 3) per finger
    order = [0] + [1 + 5 * depth + finger for finger in range(5) for depth in range(3)]
    return torch.cat(rot, dim=1)[:, order], torch.cat(pos, dim=1)[:, order]


def pose_hand(
    arrays: SkinningArrays, pose: torch.Tensor, betas: torch.Tensor, trans: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """`HandModel.forward` of one side: pose (N, 48) NeuralAnnot axis-angle, betas (N, 10),
    trans (N, 3) metres -> vertices (N, S, 3) (the arrays' vertices) and InterHand2.6M joints
    (N, 21, 3), mm."""
    n = pose.shape[0]
    v_shaped = arrays.v_template + (betas @ arrays.shapedirs.T).reshape(n, -1, 3)
    joints = arrays.joint_template + (betas @ arrays.joint_shapedirs.T).reshape(n, 16, 3)
    rotations = axis_angle_to_matrix((pose + arrays.pose_mean).reshape(n, 16, 3))
    eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
    pose_feature = (rotations[:, 1:] - eye).reshape(n, -1)
    v_posed = v_shaped + (pose_feature @ arrays.posedirs).reshape(n, -1, 3)
    world_rot, world_pos = _chain(rotations, joints)
    # blend transforms: x -> R x + (p - R j_rest), per joint, weighted per vertex
    shift = world_pos - (world_rot @ joints[..., None])[..., 0]
    transform = torch.cat([world_rot, shift[..., None]], dim=-1).reshape(n, 16, 12)
    b0, b1, b2, b3 = (arrays.weights @ transform).reshape(n, -1, 3, 4).unbind(-1)  # (N, S, 3)
    x, y, z = (c[..., None] for c in v_posed.unbind(-1))
    verts_mm = (b0 * x + b1 * y + b2 * z + b3 + trans[:, None]) * 1e3
    return verts_mm, torch.einsum("jv,nvc->njc", arrays.ih_regressor, verts_mm)
