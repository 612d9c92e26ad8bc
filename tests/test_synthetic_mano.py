"""The project's synthetic MANO-format hand model: contract, determinism, mesh, skinning, shape."""

from __future__ import annotations

import math
import pickle
import warnings
from collections import Counter, defaultdict

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from core.assets import SYNTHETIC_MANO_DIR
from render.synthetic_mano import build, mesh, pose_prior

smplx = pytest.importorskip("smplx")

FILES = {"right": "MANO_RIGHT.pkl", "left": "MANO_LEFT.pkl"}
PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
# MANO joints of each digit (proximal to distal) and its tip, from reference/mano.md.
CHAINS = {
    "thumb": (13, 14, 15),
    "index": (1, 2, 3),
    "middle": (4, 5, 6),
    "ring": (10, 11, 12),
    "pinky": (7, 8, 9),
}
TIP_ORDER = ("thumb", "index", "middle", "ring", "pinky")
# hand_anatomy.md, millimetres
HAND_LENGTH, PALM_BREADTH = 185.0, 85.0
DIGIT_LENGTH = {"thumb": 72.0, "index": 104.0, "middle": 115.0, "ring": 109.0, "pinky": 89.0}


def _load(side: str) -> dict:
    with open(SYNTHETIC_MANO_DIR / FILES[side], "rb") as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # scipy.sparse.csc, as in real MANO
        return pickle.load(fh, encoding="latin1")


@pytest.fixture(scope="module")
def right() -> dict:
    return _load("right")


@pytest.fixture(scope="module")
def left() -> dict:
    return _load("left")


def _smplx_model(data: dict, side: str, flat: bool = False, fix_left: bool = False):
    arrays = dict(data)
    arrays["J_regressor"] = data["J_regressor"].toarray()
    arrays["kintree_table"] = data["kintree_table"].astype(np.int64)
    if fix_left:
        arrays["shapedirs"] = data["shapedirs"].copy()
        arrays["shapedirs"][:, 0, :] *= -1.0
    return smplx.MANO(
        model_path=str(SYNTHETIC_MANO_DIR),
        data_struct=smplx.utils.Struct(**arrays),
        is_rhand=side == "right",
        use_pca=False,
        flat_hand_mean=flat,
        dtype=torch.float64,
    )


def _forward(model, hand_pose=None, betas=None, global_orient=None) -> tuple:
    n = 1 if hand_pose is None else len(hand_pose)
    z = torch.zeros
    with torch.no_grad():
        out = model(
            hand_pose=z(n, 45, dtype=torch.float64)
            if hand_pose is None
            else torch.tensor(hand_pose),
            betas=z(n, 10, dtype=torch.float64) if betas is None else torch.tensor(betas),
            global_orient=z(n, 3, dtype=torch.float64)
            if global_orient is None
            else torch.tensor(global_orient),
        )
    return out.vertices.numpy(), out.joints.numpy()


# ------------------------------------------------------------------ determinism and contract
def test_committed_pickles_are_a_fresh_build_byte_for_byte():
    for side, name in FILES.items():
        committed = (SYNTHETIC_MANO_DIR / name).read_bytes()
        assert build.synthetic_mano_bytes(side) == committed, f"{name}: rebuild differs"
    # a second build from scratch (caches cleared) gives the same bytes again
    for cached in (build._right_arrays, mesh.mean_build, pose_prior._limits_cached):
        cached.cache_clear()
    assert build.synthetic_mano_bytes("right") == (SYNTHETIC_MANO_DIR / FILES["right"]).read_bytes()


@pytest.mark.parametrize("side", ["right", "left"])
def test_keys_dtypes_and_shapes(side):
    d = _load(side)
    v = d["v_template"]
    n = v.shape[0]
    assert 700 <= n <= 1000
    assert v.dtype == np.float64 and v.shape == (n, 3)
    assert d["f"].dtype == np.uint32 and d["f"].shape[1] == 3 and d["f"].max() < n
    assert d["weights"].dtype == np.float64 and d["weights"].shape == (n, 16)
    assert isinstance(d["J_regressor"], sp.csc_matrix)
    assert d["J_regressor"].shape == (16, n) and d["J_regressor"].dtype == np.float64
    kt = d["kintree_table"]
    assert kt.dtype == np.uint32 and kt.shape == (2, 16)
    assert kt[0, 0] == 4294967295
    assert kt[0, 1:].tolist() == PARENTS[1:] and kt[1].tolist() == list(range(16))
    assert d["shapedirs"].shape == (n, 3, 10) and d["shapedirs"].dtype == np.float64
    assert d["posedirs"].shape == (n, 3, 135) and d["posedirs"].dtype == np.float64
    assert d["hands_components"].shape == (45, 45) and d["hands_mean"].shape == (45,)
    assert d["J"].shape == (16, 3)
    assert d["bs_style"] == "lbs" and d["bs_type"] == "lrotmin"
    assert d["tip_vertex_ids"].dtype == np.int64 and d["tip_vertex_ids"].shape == (5,)
    assert isinstance(d["synthetic_model_version"], int) and d["synthetic_model_version"] >= 1
    for key in ("v_template", "weights", "shapedirs", "posedirs", "hands_components", "J"):
        assert np.isfinite(d[key]).all(), key


def test_pickle_names_only_the_globals_of_real_mano_files():
    import pickletools

    raw = (SYNTHETIC_MANO_DIR / FILES["right"]).read_bytes()
    assert raw[:2] == b"\x80\x02"  # protocol 2
    names = {arg for op, arg, _ in pickletools.genops(raw) if op.name == "GLOBAL"}
    allowed = {
        "numpy dtype",
        "numpy ndarray",
        "numpy.core.multiarray _reconstruct",
        "scipy.sparse.csc csc_matrix",
    }
    assert names <= allowed


def test_project_loader_reads_it(right):
    loader = pytest.importorskip("render.mano")
    d = loader.load_mano_pickle(SYNTHETIC_MANO_DIR / FILES["right"])
    np.testing.assert_array_equal(np.asarray(d["v_template"]), right["v_template"])
    np.testing.assert_array_equal(np.asarray(d["J_regressor"]), right["J_regressor"].toarray())


def test_hands_components_orthonormal_and_mean_relaxed(right):
    c = right["hands_components"]
    np.testing.assert_allclose(c @ c.T, np.eye(45), atol=1e-9)
    ang = pose_prior.angles_from_pose(right["hands_mean"][None], "right")[0]
    flex = np.degrees(ang[:, 0])
    assert (flex > 2.0).all() and (flex < 35.0).all()  # slightly flexed, every joint
    assert np.abs(np.degrees(ang[:, 1:])).max() < 10.0


# ------------------------------------------------------------------ mesh topology
def _edges(faces: np.ndarray) -> tuple[Counter, Counter]:
    und, directed = Counter(), Counter()
    for tri in faces.tolist():
        for k in range(3):
            a, b = tri[k], tri[(k + 1) % 3]
            und[(min(a, b), max(a, b))] += 1
            directed[(a, b)] += 1
    return und, directed


def _boundary_loops(faces: np.ndarray) -> list[list[int]]:
    und, _ = _edges(faces)
    adj = defaultdict(list)
    for (a, b), c in und.items():
        if c == 1:
            adj[a].append(b)
            adj[b].append(a)
    loops, seen = [], set()
    for start in sorted(adj):
        if start in seen:
            continue
        comp, stack = [], [start]
        while stack:
            x = stack.pop()
            if x not in seen:
                seen.add(x)
                comp.append(x)
                stack.extend(adj[x])
        loops.append(comp)
    return loops


@pytest.mark.parametrize("side", ["right", "left"])
def test_mesh_single_wrist_boundary_manifold_consistent(side):
    d = _load(side)
    f = d["f"].astype(np.int64)
    v = d["v_template"]
    und, directed = _edges(f)
    assert set(und.values()) <= {1, 2}
    assert max(directed.values()) == 1  # every shared edge is walked once each way
    loops = _boundary_loops(f)
    assert len(loops) == 1
    loop = loops[0]
    for a in loop:  # a simple loop: every boundary vertex has two boundary edges
        assert sum(1 for (x, y), c in und.items() if c == 1 and a in (x, y)) == 2
    # the opening is at the wrist: proximal of the wrist joint, away from the fingers
    j0 = d["J"][0]
    sign = 1.0 if side == "right" else -1.0
    assert (sign * (v[loop, 0] - j0[0]) > 0).all()
    assert len(np.unique(f)) == len(v)
    # sealing the opening gives a closed genus-0 surface (Euler characteristic 2)
    n_v = len(v) + 1
    n_e = len(und) + len(loop)
    n_f = len(f) + len(loop)
    assert n_v - n_e + n_f == 2
    # every vertex's faces form one fan (no pinched vertices)
    around = defaultdict(list)
    for tri in f.tolist():
        for k in range(3):
            around[tri[k]].append((tri[(k + 1) % 3], tri[(k + 2) % 3]))
    for vid, wedges in around.items():
        nxt = dict(wedges)
        assert len(nxt) == len(wedges)
        start = wedges[0][0]
        # walk forwards from a boundary start if there is one
        starts = set(nxt) - set(nxt.values())
        if starts:
            start = starts.pop()
        seen, x = 0, start
        while x in nxt and seen <= len(wedges):
            x = nxt[x]
            seen += 1
            if x == start:
                break
        assert seen == len(wedges), f"vertex {vid} is not a single fan"


def test_outward_orientation(right):
    v, f = right["v_template"], right["f"].astype(np.int64)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    volume = np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0
    assert volume > 0  # outward normals (the open wrist changes this only slightly)
    assert 1e-4 < volume < 1e-3  # a few hundred cm^3, as a hand


def _segment_hits_triangle(p0, p1, a, b, c):
    d, e1, e2 = p1 - p0, b - a, c - a
    h = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, h)
    ok = np.abs(det) > 1e-15
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = p0 - a
    u = np.einsum("ij,ij->i", s, h) * inv
    q = np.cross(s, e1)
    w = np.einsum("ij,ij->i", d, q) * inv
    t = np.einsum("ij,ij->i", e2, q) * inv
    return ok & (u > 0) & (w > 0) & (u + w < 1) & (t > 0) & (t < 1)


def test_rest_mesh_has_no_self_intersections(right):
    v, f = right["v_template"], right["f"].astype(np.int64)
    tri = v[f]
    lo, hi = tri.min(1), tri.max(1)
    pairs = []
    for i in range(len(f)):
        j = np.arange(i + 1, len(f))
        j = j[np.all((lo[j] <= hi[i]) & (hi[j] >= lo[i]), axis=1)]
        j = j[~(f[j][:, :, None] == f[i][None, None, :]).any(axis=(1, 2))]
        pairs.extend((i, k) for k in j)
    p = np.array(pairs)
    a, b = tri[p[:, 0]], tri[p[:, 1]]
    hit = np.zeros(len(p), dtype=bool)
    for x, y in ((a, b), (b, a)):
        for k in range(3):
            hit |= _segment_hits_triangle(x[:, k], x[:, (k + 1) % 3], y[:, 0], y[:, 1], y[:, 2])
    assert not hit.any(), f"{int(hit.sum())} intersecting triangle pairs"


# ------------------------------------------------------------------ joints and skinning
def test_regressor_reproduces_J_and_is_convex(right):
    reg = right["J_regressor"].toarray()
    assert (reg >= 0).all()
    np.testing.assert_allclose(reg.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(reg @ right["v_template"], right["J"], atol=1e-9)
    # MANO's wrist in the real rest frame (published joint position), fingers along -x
    np.testing.assert_allclose(right["J"][0], [0.09566994, 0.00638343, 0.0061863], atol=1e-6)


def _winding_number(v: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Generalised winding number of points w.r.t. the triangle soup (Van Oosterom-Strackee)."""
    out = []
    for p in points:
        a, b, c = (v[faces[:, k]] - p for k in range(3))
        la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
        num = np.einsum("ij,ij->i", a, np.cross(b, c))
        den = la * lb * lc + np.einsum("ij,ij->i", a, b) * lc
        den += np.einsum("ij,ij->i", b, c) * la + np.einsum("ij,ij->i", c, a) * lb
        out.append(np.arctan2(num, den).sum() * 2.0 / (4.0 * math.pi))
    return np.array(out)


def test_joints_inside_the_hand_and_inside_their_parts(right):
    v, f, j = right["v_template"], right["f"].astype(np.int64), right["J"]
    # seal the wrist with one vertex at the opening's centre, then every joint is inside
    loop = _boundary_loops(f)[0]
    sealed_v = np.vstack([v, v[loop].mean(0)])
    und, directed = _edges(f)
    fan = [(b, a, len(v)) for (a, b), c in directed.items() if und[(min(a, b), max(a, b))] == 1]
    sealed_f = np.vstack([f, np.array(fan)])
    wn = _winding_number(sealed_v, sealed_f, j)
    np.testing.assert_allclose(wn, 1.0, atol=0.05)
    label = right["weights"].argmax(axis=1)
    for k in range(16):
        near = np.argsort(np.linalg.norm(v - j[k], axis=1))[:4]
        allowed = {k, PARENTS[k] if k else 0}
        assert set(label[near].tolist()) <= allowed, (k, label[near])


def test_weights_are_smooth_partitions_with_sixteen_parts(right):
    w = right["weights"]
    assert (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    counts = np.bincount(w.argmax(axis=1), minlength=16)
    assert (counts >= 15).all(), counts
    assert counts[0] == counts.max()  # the palm is the largest part, as in MANO
    for k in range(1, 16):  # blended across each joint: vertices shared with the parent
        both = (w[:, k] > 0.2) & (w[:, PARENTS[k]] > 0.2)
        assert both.sum() >= 6, k
    # a vertex's weights involve at most three joints of one branch (joint, parent, child)
    assert ((w > 1e-6).sum(axis=1) <= 3).all()


def test_tip_vertices_are_the_distal_ends_of_the_digits(right):
    v, w, j = right["v_template"], right["weights"], right["J"]
    label = w.argmax(axis=1)
    for name, vid in zip(TIP_ORDER, right["tip_vertex_ids"], strict=True):
        distal = CHAINS[name][2]
        assert label[vid] == distal
        mine = np.flatnonzero(label == distal)
        far = mine[np.argmax(np.linalg.norm(v[mine] - j[distal], axis=1))]
        dist = np.linalg.norm(v[vid] - j[distal])
        assert dist >= np.linalg.norm(v[far] - j[distal]) - 1e-3, name


# ------------------------------------------------------------------ anatomy
def _knuckle_breadth(v: np.ndarray, data: dict) -> float:
    """Width (along z) of the vertices around the four MCP joints (the metacarpal heads)."""
    ids = np.unique(np.concatenate([data["J_regressor"][k].nonzero()[1] for k in (1, 4, 7, 10)]))
    return float(np.ptp(v[ids, 2]))


def test_sizes_match_the_anatomy_table(right):
    v, j, tips = right["v_template"] * 1000, right["J"] * 1000, right["tip_vertex_ids"]
    tip = dict(zip(TIP_ORDER, tips, strict=True))
    length = j[0, 0] - v[tip["middle"], 0]  # fingers point along -x
    assert abs(length / HAND_LENGTH - 1) < 0.1, length
    label = right["weights"].argmax(axis=1)
    breadth = _knuckle_breadth(v, right)
    assert abs(breadth / PALM_BREADTH - 1) < 0.1, breadth
    for name, (mcp, _, _) in CHAINS.items():
        base = j[14] if name == "thumb" else j[mcp]
        got = np.linalg.norm(v[tip[name]] - base)
        assert abs(got / DIGIT_LENGTH[name] - 1) < 0.12, (name, got)
    thick = np.ptp(v[:, 1][np.isin(label, [0])])
    assert 22 < thick < 40, thick  # palm thickness about 30 mm
    for name, (_, pip, _) in CHAINS.items():  # a ring around the PIP joint
        ring = right["J_regressor"][pip].nonzero()[1]
        diameter = 2 * np.linalg.norm(v[ring] - j[pip], axis=1).mean()
        assert 12 < diameter < 24, (name, diameter)


def test_thumb_is_opposable(right):
    j = right["J"]
    index_meta = j[1] - j[0]
    thumb_meta = j[14] - j[13]
    cosang = index_meta @ thumb_meta / np.linalg.norm(index_meta) / np.linalg.norm(thumb_meta)
    assert 35 <= math.degrees(math.acos(cosang)) <= 55
    # CMC near the wrist on the radial (+z) side, towards the palm (-y)
    assert j[13, 2] > j[1, 2] - 0.01 and j[0, 0] - j[13, 0] < 0.04
    # flexing the thumb brings its tip towards the fingers and the palm
    model = _smplx_model(right, "right", flat=True)
    lim = pose_prior.finger_pose_limits("right")
    angles = np.zeros((2, 15, 3))
    angles[1, 12:15, 0] = np.radians([30, 45, 60])
    verts, _ = _forward(model, pose_prior.pose_from_angles(angles, "right"))
    tip = verts[:, right["tip_vertex_ids"][0]]
    target = j[[1, 4]].mean(0) - [0, 0.01, 0]  # palm surface under the index / middle MCPs
    assert np.linalg.norm(tip[1] - target) < np.linalg.norm(tip[0] - target) - 0.02
    assert tip[1, 1] < tip[0, 1] - 0.01  # towards the palm side (-y)
    assert lim.axes.shape == (15, 3, 3)


# ------------------------------------------------------------------ smplx behaviour
def test_smplx_flat_and_mean_pose(right):
    relaxed = _smplx_model(right, "right", flat=False)
    flat = _smplx_model(right, "right", flat=True)
    v_rel, _ = _forward(relaxed)
    v_flat, j_flat = _forward(flat)
    np.testing.assert_allclose(v_flat[0], right["v_template"], atol=1e-12)
    np.testing.assert_allclose(j_flat[0, :16], right["J"], atol=1e-9)
    v_mean, _ = _forward(flat, right["hands_mean"][None])
    np.testing.assert_allclose(v_rel, v_mean, atol=1e-12)
    # the mean curls every fingertip towards the palm (-y for the right hand)
    tips = right["tip_vertex_ids"]
    assert (v_rel[0, tips, 1] < v_flat[0, tips, 1] - 0.003).all()


def test_random_natural_poses_stay_hand_sized(right):
    model = _smplx_model(right, "right", flat=True)
    rng = np.random.default_rng(0)
    n = 64
    pose = pose_prior.sample_natural_hand_pose(rng, n, "right")
    orient = rng.normal(size=(n, 3))
    betas = rng.normal(size=(n, 10))
    verts, joints = _forward(model, pose, betas, orient)
    assert np.isfinite(verts).all()
    radius = np.linalg.norm(verts - joints[:, :1], axis=2).max(axis=1)
    assert (radius < 0.23).all() and (radius > 0.07).all(), radius
    extent = np.ptp(verts, axis=1).max(axis=1)
    assert (extent < 0.26).all()


def test_left_model_is_the_mirror_with_the_real_shapedirs_quirk(right, left):
    mirror = np.array([-1.0, 1.0, 1.0])
    np.testing.assert_array_equal(left["v_template"], right["v_template"] * mirror)
    np.testing.assert_array_equal(left["J"], right["J"] * mirror)
    np.testing.assert_array_equal(left["f"], right["f"][:, ::-1])
    np.testing.assert_array_equal(left["weights"], right["weights"])
    np.testing.assert_array_equal(left["tip_vertex_ids"], right["tip_vertex_ids"])
    flip = np.tile([1.0, -1.0, -1.0], 15)
    np.testing.assert_array_equal(left["hands_mean"], right["hands_mean"] * flip)
    np.testing.assert_array_equal(left["hands_components"], right["hands_components"] * flip)
    # the quirk of the real files: x displacements stored as the right's, not negated
    assert np.abs(left["shapedirs"][:, 0, :] - right["shapedirs"][:, 0, :]).sum() < 1.0
    assert np.abs(right["shapedirs"][:, 0, :]).sum() > 1.0
    # with the project's fix (negate it) the left hand is the mirror for any shape and pose
    rng = np.random.default_rng(1)
    betas = rng.normal(size=(3, 10))
    pose = pose_prior.sample_natural_hand_pose(rng, 3, "right")
    orient = rng.normal(size=(3, 3)) * 0.5
    v_r, _ = _forward(_smplx_model(right, "right", flat=True), pose, betas, orient)
    mirror_aa = np.tile([1.0, -1.0, -1.0], 15)
    args = (pose * mirror_aa, betas, orient * [1.0, -1.0, -1.0])
    v_fixed, _ = _forward(_smplx_model(left, "left", flat=True, fix_left=True), *args)
    # (smplx adds 1e-8 to axis-angles before taking their norm, which is not mirror-symmetric)
    np.testing.assert_allclose(v_fixed, v_r * mirror, rtol=0, atol=1e-7)
    v_raw, _ = _forward(_smplx_model(left, "left", flat=True), *args)
    assert np.abs(v_raw - v_r * mirror).max() > 1e-3  # without the fix it is wrong


# ------------------------------------------------------------------ shape directions
def _measures(v: np.ndarray, data: dict) -> dict:
    """Independent measurements (mm, degrees) of a template, from the regressor and tips."""
    j = data["J_regressor"] @ v * 1000
    v = v * 1000
    tip = dict(zip(TIP_ORDER, data["tip_vertex_ids"], strict=True))
    label = data["weights"].argmax(axis=1)

    def angle(a, b):
        return math.degrees(math.acos(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))

    mid_palm = (label == 0) & (np.abs(v[:, 0] - (j[0, 0] + j[4, 0]) / 2) < 12)
    pip = data["J_regressor"][5].nonzero()[1]
    return {
        "hand_length": j[0, 0] - v[tip["middle"], 0],
        "palm_breadth": _knuckle_breadth(v, data),
        "palm_length": np.linalg.norm(j[4] - j[0]),
        "middle_length": np.linalg.norm(v[tip["middle"]] - j[4]),
        "index_length": np.linalg.norm(v[tip["index"]] - j[1]),
        "pinky_length": np.linalg.norm(v[tip["pinky"]] - j[7]),
        "thumb_length": np.linalg.norm(v[tip["thumb"]] - j[13]),
        "finger_thickness": 2 * np.linalg.norm(v[pip] - j[5], axis=1).mean(),
        "palm_thickness": np.ptp(v[mid_palm, 1]),
        "spread": angle(j[3] - j[1], j[9] - j[7]),
        "thumb_angle": angle(j[14] - j[13], j[1] - j[0]),
    }


# shape direction -> (measure that must change by at least `min` percent or degrees per unit,
# measures that must stay within 0.5 % / 0.5 degree)
SHAPE_EXPECTATIONS = {
    0: ("hand_length", 2.0, []),
    1: ("palm_breadth", 2.0, ["hand_length", "middle_length", "palm_thickness"]),
    2: ("palm_length", 2.0, ["middle_length", "palm_breadth", "thumb_length"]),
    3: ("middle_length", 2.0, ["palm_length", "palm_breadth", "thumb_length"]),
    4: ("thumb_length", 2.0, ["hand_length", "palm_breadth", "index_length"]),
    5: ("finger_thickness", 3.0, ["palm_breadth", "thumb_angle"]),
    6: ("palm_thickness", 3.0, ["hand_length", "palm_breadth", "finger_thickness"]),
    7: ("spread", 1.5, ["hand_length", "palm_breadth", "thumb_length"]),
    8: ("pinky_length", 2.0, ["middle_length", "index_length", "thumb_length"]),
    9: ("thumb_angle", 2.0, ["hand_length", "palm_breadth", "middle_length"]),
}
ANGLES = {"spread", "thumb_angle"}


@pytest.mark.parametrize("k", range(10))
def test_each_shape_direction_changes_what_it_says(right, k):
    base = _measures(right["v_template"], right)
    plus = _measures(right["v_template"] + right["shapedirs"][:, :, k], right)
    minus = _measures(right["v_template"] - right["shapedirs"][:, :, k], right)

    def change(name):
        if name in ANGLES:
            return (plus[name] - minus[name]) / 2
        return 100 * (plus[name] - minus[name]) / 2 / base[name]

    name, least, still = SHAPE_EXPECTATIONS[k]
    assert least <= change(name) <= 8.0, (mesh.SHAPE_DIRECTIONS[k][0], name, change(name))
    for other in still:
        assert abs(change(other)) < 0.5, (mesh.SHAPE_DIRECTIONS[k][0], other, change(other))


# ------------------------------------------------------------------ pose limits and sampling
@pytest.mark.parametrize("side", ["right", "left"])
def test_sampled_poses_respect_limits_and_couple_joints(side):
    lim = pose_prior.finger_pose_limits(side)
    np.testing.assert_allclose(
        np.einsum("jab,jcb->jac", lim.axes, lim.axes),
        np.broadcast_to(np.eye(3), (15, 3, 3)),
        atol=1e-12,
    )
    pose = pose_prior.sample_natural_hand_pose(np.random.default_rng(5), 500, side)
    assert pose.shape == (500, 45) and pose.dtype == np.float64
    ang = np.einsum("njb,jab->nja", pose.reshape(500, 15, 3), lim.axes)
    assert (ang >= lim.lower - 1e-12).all() and (ang <= lim.upper + 1e-12).all()
    np.testing.assert_allclose(pose_prior.pose_from_angles(ang, side), pose, atol=1e-12)
    for name in ("index", "middle", "ring", "pinky"):
        _, pip, dip = (j - 1 for j in CHAINS[name])
        r = np.corrcoef(ang[:, pip, 0], ang[:, dip, 0])[0, 1]
        assert r > 0.8, (name, r)
        ratio = np.median(
            ang[:, dip, 0][ang[:, pip, 0] > 0.5] / ang[:, pip, 0][ang[:, pip, 0] > 0.5]
        )
        assert 0.5 < ratio < 0.8
    # fingers flex together: shared grasp amplitude
    flex = ang[:, [0, 3, 9, 6], 1 - 1]
    assert np.corrcoef(flex.T)[np.triu_indices(4, 1)].min() > 0.5


def test_left_limits_mirror_right():
    r, lft = pose_prior.finger_pose_limits("right"), pose_prior.finger_pose_limits("left")
    np.testing.assert_allclose(lft.axes, r.axes * np.array([1.0, -1.0, -1.0]))
    np.testing.assert_array_equal(lft.lower, r.lower)
    # the right index flexes about +z (fingers along -x, palm towards -y)
    np.testing.assert_allclose(r.axes[0, 0], [0, 0, 1], atol=0.1)
    with pytest.raises(ValueError):
        pose_prior.finger_pose_limits("middle")
