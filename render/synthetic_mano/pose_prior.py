"""The synthetic hand's joint axes and limits, and natural finger poses sampled within them.

Used at run time by the synthetic data generator (`sample_natural_hand_pose`) and at build time
for the model's relaxed mean pose and pose PCA (`render.synthetic_mano.build`).
"""

import functools
import math
from dataclasses import dataclass, replace

import numpy as np

from render.synthetic_mano.exact import cross, dot, unit
from render.synthetic_mano.layout import DIGITS, FINGER_JOINTS, LONG_FINGERS
from render.synthetic_mano.mesh import mean_build, to_mano_axes


@dataclass(frozen=True)
class FingerPoseLimits:
    """Per-joint rotation axes and limits for the 15 finger joints (MANO joints 1..15).

    axes: (15, 3, 3) float64, for each joint the unit axes (flexion, abduction, twist) in the
        model's rest frame (rows); MANO's per-joint axis-angle of a pose is the sum of
        angle * axis, and angle = dot(axis_angle, axis).
    lower, upper: (15, 3) float64 radians, limits of the angle about each axis.
    Positive flexion curls a digit towards the palm (the thumb towards its pad, which faces the
    fingers); positive abduction turns a long finger towards the thumb side; twist is about
    the bone, and the thumb opposes (pronates) with a negative CMC twist. The left hand's axes
    are the right's mirrored as axial vectors, (x, y, z) -> (x, -y, -z), so that the same angles
    give the mirror-image pose.
    """

    side: str
    axes: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


# Degrees, per bone (MCP, PIP, DIP): (flexion lo, hi), (abduction lo, hi), (twist lo, hi);
# hand_anatomy.md, with a few degrees of play where the table says "none".
_FINGER_LIMITS_DEG = (
    ((-20, 90), None, (-8, 8)),  # abduction per finger below
    ((0, 105), (-4, 4), (-4, 4)),
    ((-5, 80), (-4, 4), (-4, 4)),
)
_MCP_ABDUCTION_DEG = {"index": 25, "middle": 15, "ring": 20, "pinky": 25}
_THUMB_LIMITS_DEG = (  # CMC, MCP, IP; opposition turns the CMC by a negative twist
    ((-20, 35), (-25, 30), (-35, 10)),
    ((-5, 50), (-8, 8), (-6, 6)),
    ((-10, 80), (-4, 4), (-4, 4)),
)


def _rest_axes_right() -> np.ndarray:
    """(15, 3, 3) right-hand (flexion, abduction, twist) axes of MANO joints 1..15."""
    geo, _ = mean_build()
    axes = np.zeros((15, 3, 3))
    for d, name in enumerate(DIGITS):
        dirs = geo.digits[d].dirs
        for b, j in enumerate(FINGER_JOINTS[name]):
            along = to_mano_axes(dirs[b])
            nail = np.array([0.0, 1.0, 0.0])
            if name == "thumb":
                nail = to_mano_axes(geo.thumb_nails[b])
            nail = unit(nail - dot(nail, along) * along)
            flex = cross(nail, along)  # rotates `along` towards the palm / pad side
            axes[j - 1] = np.stack([flex, nail, along])
    return axes


def mirror_axis_angle(aa: np.ndarray) -> np.ndarray:
    """Axis-angle vectors (..., 3) of the mirror image x -> -x: (x, y, z) -> (x, -y, -z)."""
    return aa * np.array([1.0, -1.0, -1.0])


@functools.lru_cache(maxsize=2)
def _limits_cached(side: str) -> FingerPoseLimits:
    axes = _rest_axes_right()
    if side == "left":
        axes = mirror_axis_angle(axes)
    lower = np.zeros((15, 3))
    upper = np.zeros((15, 3))
    for name, joints in FINGER_JOINTS.items():
        for b, j in enumerate(joints):
            table = _THUMB_LIMITS_DEG if name == "thumb" else _FINGER_LIMITS_DEG
            for k, pair in enumerate(table[b]):
                lo, hi = pair or (-_MCP_ABDUCTION_DEG[name], _MCP_ABDUCTION_DEG[name])
                lower[j - 1, k] = math.radians(lo)
                upper[j - 1, k] = math.radians(hi)
    return FingerPoseLimits(side, axes, lower, upper)


def finger_pose_limits(side: str = "right") -> FingerPoseLimits:
    """Rotation axes and limits of the 15 finger joints of the synthetic model ('right'/'left')."""
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    lim = _limits_cached(side)
    return replace(lim, axes=lim.axes.copy(), lower=lim.lower.copy(), upper=lim.upper.copy())


def pose_from_angles(angles: np.ndarray, side: str = "right") -> np.ndarray:
    """(n, 15, 3) radians about (flexion, abduction, twist) -> (n, 45) MANO finger pose."""
    axes = _limits_cached(side).axes
    aa = angles[..., 0:1] * axes[:, 0] + angles[..., 1:2] * axes[:, 1]
    aa = aa + angles[..., 2:3] * axes[:, 2]
    return aa.reshape(angles.shape[0], 45)


def angles_from_pose(pose: np.ndarray, side: str = "right") -> np.ndarray:
    """(n, 45) MANO finger pose -> (n, 15, 3) radians about (flexion, abduction, twist)."""
    axes = _limits_cached(side).axes
    aa = np.asarray(pose, dtype=np.float64).reshape(-1, 15, 1, 3)
    return np.sum(aa * axes[None], axis=-1)


def relaxed_angles() -> np.ndarray:
    """(15, 3) radians of the relaxed hand (the model's hands_mean)."""
    deg = np.zeros((15, 3))
    for c, name in enumerate(LONG_FINGERS):
        j1, j2, j3 = FINGER_JOINTS[name]
        cascade = 1.0 + 0.25 * c  # the relaxed hand curls more towards the little finger
        deg[j1 - 1, 0] = 10.0 * cascade
        deg[j2 - 1, 0] = 16.0 * cascade
        deg[j3 - 1, 0] = 10.0 * cascade
    deg[12] = (6.0, 3.0, -5.0)
    deg[13, 0] = 10.0
    deg[14, 0] = 12.0
    return np.radians(deg)


def _normal(rng, shape) -> np.ndarray:
    """Approximately standard normal samples from four uniforms (Irwin-Hall), no libm."""
    u = rng.random((4, *shape))
    return (u.sum(axis=0) - 2.0) * math.sqrt(3.0)


# Independent noise (degrees, one sigma) on (flexion, abduction, twist): MCP, PIP, DIP per
# long finger, then the thumb's CMC, MCP, IP.
_NOISE_DEG = np.array(
    [[5.0, 3.0, 2.0], [0.0, 1.0, 1.0], [4.0, 1.0, 1.0]] * 4
    + [[5.0, 5.0, 4.0], [6.0, 3.0, 2.0], [0.0, 1.0, 1.0]]
)
_FAN = {"index": 1.0, "middle": 0.2, "ring": -0.8, "pinky": -1.4}  # MCP abduction per spread


def sample_angles(rng, n: int) -> np.ndarray:
    """(n, 15, 3) radians of natural right-hand finger poses; rng needs only .random(shape).

    A shared grasp amplitude curls all fingers (each with its own deviation), a shared spread
    fans them, an opposition amplitude drives the thumb; DIP follows two thirds of PIP.
    """
    deg = _normal(rng, (n, 15, 3)) * _NOISE_DEG
    u = rng.random((n,))
    grasp = u * (0.4 + 0.6 * u)  # in [0, 1], biased towards open hands
    spread = rng.random((n,)) * 1.4 - 0.4  # negative: fingers pressed together
    hyper = rng.random((n,)) < 0.15  # some open hands hyperextend at the knuckles
    for c, name in enumerate(LONG_FINGERS):
        mcp, pip, dip = (j - 1 for j in FINGER_JOINTS[name])
        curl = np.clip(grasp + 0.18 * _normal(rng, (n,)) + 0.05 * c, 0.0, 1.0)
        bent = np.where(hyper & (curl < 0.2), -15.0 * rng.random((n,)), -8.0 + 88.0 * curl)
        deg[:, mcp, 0] += bent
        deg[:, mcp, 1] += 12.0 * spread * _FAN[name] * (1.0 - 0.6 * curl)
        deg[:, pip, 0] += 105.0 * np.clip(curl + 0.1 * _normal(rng, (n,)), 0.0, 1.0)
        deg[:, dip, 0] += deg[:, pip, 0] * (2.0 / 3.0)
    opp = np.clip(0.7 * grasp + 0.4 * rng.random((n,)) - 0.1, 0.0, 1.0)
    deg[:, 12, 0] += -10.0 + 40.0 * opp
    deg[:, 12, 1] += -10.0 + 30.0 * rng.random((n,))
    deg[:, 12, 2] -= 30.0 * opp  # pronation: the pad turns towards the fingers
    deg[:, 13, 0] += 45.0 * opp
    deg[:, 14, 0] += -5.0 + 75.0 * np.clip(opp + 0.2 * _normal(rng, (n,)), 0.0, 1.0)
    lim = _limits_cached("right")
    return np.clip(np.radians(deg), lim.lower, lim.upper)


def sample_natural_hand_pose(rng: np.random.Generator, n: int, side: str = "right") -> np.ndarray:
    """(n, 45) float64 natural full finger poses (MANO axis-angle, NOT minus hands_mean).

    Shared grasp / spread / opposition amplitudes plus small independent noise; PIP and DIP flex
    together (DIP about two thirds of PIP); every angle lies within finger_pose_limits(side).
    rng: anything with numpy's ``random(shape)`` (a numpy Generator).
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    return pose_from_angles(sample_angles(rng, int(n)), side)


def sample_everyday_angles(rng, n: int) -> np.ndarray:
    """(n, 15, 3) radians of everyday right-hand finger poses (generator v4 onwards).

    Unlike `sample_angles` (kept as it is: the model's pose PCA is built from it), a curling
    finger bends at the knuckle (MCP) about as much as at its middle joint (PIP), so hands close
    rather than claw; open and relaxed hands are the most common, the fingers fan less, and the
    DIP follows 0.6 of the PIP.
    """
    deg = _normal(rng, (n, 15, 3)) * _NOISE_DEG
    u = rng.random((n,))
    grasp = u * (0.25 + 0.75 * u)  # in [0, 1], most hands open or relaxed
    spread = rng.random((n,)) * 1.0 - 0.3
    for c, name in enumerate(LONG_FINGERS):
        mcp, pip, dip = (j - 1 for j in FINGER_JOINTS[name])
        curl = np.clip(grasp + 0.12 * _normal(rng, (n,)) + 0.04 * c, 0.0, 1.0)
        deg[:, mcp, 0] += -5.0 + 85.0 * curl
        deg[:, mcp, 1] += 10.0 * spread * _FAN[name] * (1.0 - 0.6 * curl)
        deg[:, pip, 0] += 95.0 * np.clip(curl + 0.08 * _normal(rng, (n,)), 0.0, 1.0)
        deg[:, dip, 0] += deg[:, pip, 0] * 0.6
    opp = np.clip(0.6 * grasp + 0.4 * rng.random((n,)) - 0.1, 0.0, 1.0)
    deg[:, 12, 0] += -10.0 + 40.0 * opp
    deg[:, 12, 1] += -10.0 + 30.0 * rng.random((n,))
    deg[:, 12, 2] -= 30.0 * opp
    deg[:, 13, 0] += 40.0 * opp
    deg[:, 14, 0] += -5.0 + 60.0 * np.clip(opp + 0.2 * _normal(rng, (n,)), 0.0, 1.0)
    lim = _limits_cached("right")
    return np.clip(np.radians(deg), lim.lower, lim.upper)


def sample_everyday_hand_pose(rng: np.random.Generator, n: int, side: str = "right") -> np.ndarray:
    """(n, 45) float64 everyday full finger poses (`sample_everyday_angles`, MANO axis-angle,
    NOT minus hands_mean), every angle within finger_pose_limits(side)."""
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    return pose_from_angles(sample_everyday_angles(rng, int(n)), side)
