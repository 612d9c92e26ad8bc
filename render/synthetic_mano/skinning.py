"""Skinning weights and the joint regressor of the synthetic hand."""

import math

import numpy as np
import scipy.sparse

from render.synthetic_mano.layout import DIGITS, FINGER_JOINTS, N_JOINTS
from render.synthetic_mano.mesh import PALM_OWNER, Geometry

_THENAR_BLEND = (-6.0, 0.45)  # palm -> thumb1 ramp: centre (mm from J13), width (x metacarpal)
_THENAR_REACH = (14.0, 12.0)  # palm vertices this close (mm) to the thumb's axis, then fading


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _ramp(s: np.ndarray, centre: float, width: float) -> np.ndarray:
    """0 before centre - width/2, 1 after centre + width/2, C1-smooth in between."""
    return _smoothstep((s - centre) / width + 0.5)


def _chain_weights(s: np.ndarray, lengths: np.ndarray, root_centre: float, root_width: float):
    """(N, 4) weights of (parent, bone1, bone2, bone3) along a digit at distances s (mm)."""
    u0 = _ramp(s, root_centre, root_width)
    u1 = _ramp(s, lengths[0], lengths[:2].min() / 3.0)
    u2 = _ramp(s, lengths[0] + lengths[1], lengths[1:].min() / 3.0)
    return np.stack([1.0 - u0, u0 - u1, u1 - u2, u2], axis=1)


def skinning_weights(geo: Geometry) -> np.ndarray:
    """(V, 16) rows summing to 1: palm, then each digit's bones, blended across each joint."""
    v = geo.verts
    w = np.zeros((len(v), N_JOINTS))
    palm = geo.owner == PALM_OWNER
    w[palm, 0] = 1.0
    for d, name in enumerate(DIGITS):
        origin, dirs, lengths = geo.digits[d].origin, geo.digits[d].dirs, geo.digits[d].lengths
        joints = list(FINGER_JOINTS[name])
        if name == "thumb":  # the thenar blends into the palm around the opening
            centre, width = _THENAR_BLEND
            width *= lengths[0]
        else:
            centre, width = 0.0, lengths[0] / 3.0
        tube = geo.owner == d
        cw = _chain_weights(geo.tube_s[tube], lengths, centre, width)
        w[np.ix_(tube, [0, *joints])] = cw
        # palm vertices: by their projection on the digit's first bone
        rel = v[palm] - origin
        s = np.sum(rel * dirs[0], axis=1)
        cw = _chain_weights(s, lengths, centre, width)
        if name == "thumb":
            perp = np.sqrt(np.maximum(np.sum(rel * rel, axis=1) - s * s, 0.0))
            reach = 1.0 - _smoothstep((perp - _THENAR_REACH[0]) / _THENAR_REACH[1])
        else:
            reach = (geo.palm_column[palm] == d).astype(np.float64)
        share = cw[:, 1:] * reach[:, None]
        pw = w[palm]
        pw[:, joints] += share
        pw[:, 0] -= share.sum(axis=1)
        w[palm] = pw
    w = np.maximum(w, 0.0)
    return w / w.sum(axis=1, keepdims=True)


def joint_regressor(geo: Geometry) -> scipy.sparse.csc_matrix:
    """(16, V) csc: each joint the plain mean of its ring of vertices (`regressor_sets`)."""
    n = len(geo.verts)
    rows, cols, vals = [], [], []
    for j, ids in enumerate(geo.regressor_sets):
        for i in sorted(ids):
            rows.append(j)
            cols.append(i)
            vals.append(1.0 / len(ids))
    return scipy.sparse.csc_matrix(
        (np.array(vals), (np.array(rows), np.array(cols))), shape=(N_JOINTS, n)
    )


def regress_joints(reg: scipy.sparse.csc_matrix, v: np.ndarray) -> np.ndarray:
    """Exact-sum joints (16, 3) from vertices (V, 3)."""
    csr = reg.tocsr()
    out = np.zeros((N_JOINTS, 3))
    for j in range(N_JOINTS):
        lo, hi = csr.indptr[j], csr.indptr[j + 1]
        idx, val = csr.indices[lo:hi], csr.data[lo:hi]
        for k in range(3):
            out[j, k] = math.fsum((val * v[idx, k]).tolist())
    return out
