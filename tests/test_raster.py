"""The rasterizer: hand-computed golden scenes, backend agreement, conventions, errors."""

from __future__ import annotations

import platform
import re

import numpy as np
import pytest
import torch

from core.errors import DigitError
from render.raster import (
    Fragments,
    RasterSettings,
    rasterize,
    rasterize_labels,
    rasterize_labels_counts,
    rasterize_silhouette,
    resolve_backend,
)
from render.raster.scenes import blob, two_blob_scene

BACKENDS = ["numba", "torch", "reference"]
# fx = fy = 10, principal point 0: a vertex (X, Y, 10) projects to u = X, v = Y.
K10 = np.array([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 1.0]])


def at_depth(uv, z=10.0):
    """Camera-space vertices (1, N, 3) that project to the given (u, v) under K10."""
    uv = np.asarray(uv, dtype=np.float64)
    return np.concatenate([uv * z / 10.0, np.full((len(uv), 1), z)], axis=1)[None]


def run(backend, verts, faces, hw, K=K10, **kw):
    return rasterize(verts, faces, K, hw, settings=RasterSettings(backend=backend), **kw)


def numpy_of(x):
    return x.cpu().numpy() if isinstance(x, torch.Tensor) else x


# ---------------------------------------------------------------- golden scenes, by hand


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("winding", [(0, 1, 2), (0, 2, 1)])
def test_one_triangle_covers_hand_counted_pixels(backend, winding):
    # Triangle (0,0), (4,0), (0,4): pixel (i, j) is covered iff i, j >= 0 and i + j <= 4.
    # The five centres with i + j == 4 lie exactly on the hypotenuse and count as inside;
    # reversed winding (no culling) gives the same.
    verts = at_depth([(0, 0), (4, 0), (0, 4)])
    faces = np.array([winding])
    fr = run(backend, verts, faces, (6, 7), with_bary=True)
    assert isinstance(fr, Fragments)
    expected = np.zeros((6, 7), bool)
    for i in range(6):
        for j in range(7):
            expected[i, j] = i + j <= 4
    assert expected.sum() == 15
    assert fr.pix_to_face.dtype == np.int32 and fr.pix_to_face.shape == (1, 6, 7)
    np.testing.assert_array_equal(fr.pix_to_face[0] == 0, expected)
    np.testing.assert_array_equal(fr.pix_to_face[0][~expected], -1)
    np.testing.assert_array_equal(fr.depth[0][expected], 10.0)
    np.testing.assert_array_equal(fr.depth[0][~expected], -1.0)
    # At u = 2, v = 1 the weights of (0,0), (4,0), (0,4) are 1/4, 1/2, 1/4 (constant depth).
    weights = {0: 0.25, 1: 0.5, 2: 0.25}
    np.testing.assert_allclose(fr.bary[0, 1, 2], [weights[k] for k in winding], atol=1e-7)
    assert np.all(fr.bary[0][~expected] == -1.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_shared_diagonal_is_inside_both_and_goes_to_the_lower_index(backend):
    # Square (0,0)-(4,4) split along its diagonal; centres (k, k) lie on both faces at the
    # same depth 10: an exact tie, so face 0 takes them whichever face it is.
    verts = at_depth([(0, 0), (4, 0), (4, 4), (0, 4)])
    upper, lower = [0, 1, 2], [0, 2, 3]  # upper: j >= i, lower: i >= j
    for order in ([upper, lower], [lower, upper]):
        p2f = run(backend, verts, np.array(order), (5, 5)).pix_to_face[0]
        i, j = np.mgrid[0:5, 0:5]
        first = (j >= i) if order[0] is upper else (i >= j)
        np.testing.assert_array_equal(p2f, np.where(first, 0, 1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_nearer_triangle_wins_over_a_farther_one(backend):
    # Face 0: big triangle at z = 20 covering (0,0), (8,0), (0,8) on screen.
    # Face 1: small triangle at z = 10 covering (1,1), (3,1), (1,3), listed after it.
    verts = np.concatenate(
        [at_depth([(0, 0), (8, 0), (0, 8)], z=20.0), at_depth([(1, 1), (3, 1), (1, 3)])], 1
    )
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    fr = run(backend, verts, faces, (9, 9))
    i, j = np.mgrid[0:9, 0:9]
    small = (i >= 1) & (j >= 1) & (i + j <= 4)
    big = i + j <= 8
    np.testing.assert_array_equal(fr.pix_to_face[0], np.where(small, 1, np.where(big, 0, -1)))
    np.testing.assert_array_equal(fr.depth[0], np.where(small, 10.0, np.where(big, 20.0, -1.0)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_coplanar_overlap_goes_to_the_lower_index(backend):
    # Face 0 small, face 1 big, same plane z = 10: the overlap is an exact depth tie.
    verts = at_depth([(1, 1), (3, 1), (1, 3), (0, 0), (8, 0), (0, 8)])
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    p2f = run(backend, verts, faces, (9, 9)).pix_to_face[0]
    i, j = np.mgrid[0:9, 0:9]
    small = (i >= 1) & (j >= 1) & (i + j <= 4)
    np.testing.assert_array_equal(p2f, np.where(small, 0, np.where(i + j <= 8, 1, -1)))
    # Identical duplicate faces: the first one everywhere.
    p2f = run(backend, verts, np.array([[3, 4, 5], [3, 4, 5]]), (9, 9)).pix_to_face[0]
    np.testing.assert_array_equal(p2f, np.where(i + j <= 8, 0, -1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_depth_is_perspective_correct(backend):
    # The plane Z = 10 + X / 2 through (0,0,10), (20,0,20), (0,10,10), which project to
    # (0,0), (10,0), (0,10). Along the ray of pixel u, X = Z u / 10, so Z = 200 / (20 - u),
    # whatever v (screen-space linear interpolation would give 10 + u instead).
    verts = np.array([[[0.0, 0.0, 10.0], [20.0, 0.0, 20.0], [0.0, 10.0, 10.0]]])
    fr = run(backend, verts, np.array([[0, 1, 2]]), (11, 11), with_bary=True)
    for i, j in [(0, 0), (0, 10), (2, 4), (3, 5), (5, 5), (0, 7), (9, 1)]:
        assert fr.pix_to_face[0, i, j] == 0
        np.testing.assert_allclose(fr.depth[0, i, j], 200.0 / (20.0 - j), rtol=1e-12)
    # Perspective-correct barycentrics interpolate X linearly: X = 20 * bary_1 = Z u / 10.
    i, j = 2, 4
    np.testing.assert_allclose(20.0 * fr.bary[0, i, j, 1], 12.5 * j / 10.0, rtol=1e-6)
    np.testing.assert_allclose(fr.bary[0, i, j].sum(), 1.0, rtol=1e-6)
    assert fr.pix_to_face[0, 6, 5] == -1  # u + v = 11 > 10


@pytest.mark.parametrize("backend", BACKENDS)
def test_faces_touching_or_behind_the_near_plane_are_skipped(backend):
    front = [[0.0, 0.0, 10.0], [6.0, 0.0, 10.0], [0.0, 6.0, 10.0]]
    crossing = [[0.0, 0.0, 10.0], [40.0, 0.0, -5.0], [0.0, 40.0, 10.0]]
    touching = [[0.0, 0.0, 10.0], [40.0, 0.0, 0.0], [0.0, 40.0, 10.0]]
    verts = np.array([crossing + touching + front])
    faces = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    p2f = run(backend, verts, faces, (8, 8)).pix_to_face[0]
    assert set(np.unique(p2f)) == {-1, 2}
    p2f = run(backend, verts, faces[:2], (8, 8)).pix_to_face[0]
    assert np.all(p2f == -1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_scene_is_background(backend):
    verts = np.zeros((2, 0, 3))
    faces = np.zeros((0, 3), np.int64)
    s = RasterSettings(backend=backend)
    fr = rasterize(verts, faces, K10, (4, 5), settings=s, with_bary=True)
    assert fr.pix_to_face.shape == (2, 4, 5) and np.all(fr.pix_to_face == -1)
    assert np.all(fr.depth == -1.0) and np.all(fr.bary == -1.0)
    labels = rasterize_labels(verts, faces, np.zeros(0, np.uint8), K10, (4, 5), settings=s)
    assert labels.dtype == np.uint8 and labels.shape == (2, 4, 5) and not labels.any()
    sil = rasterize_silhouette(verts, faces, K10, (4, 5), settings=s)
    assert sil.dtype == np.bool_ and sil.shape == (2, 4, 5) and not sil.any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_per_image_sizes_leave_background_beyond_each_image(backend):
    verts = np.repeat(at_depth([(-1, -1), (9, 0), (0, 9)]), 2, axis=0)
    faces = np.array([[0, 1, 2]])
    fr = run(backend, verts, faces, np.array([[6, 7], [4, 5]]))
    assert fr.pix_to_face.shape == (2, 6, 7)
    np.testing.assert_array_equal(fr.pix_to_face[1, :4, :5], fr.pix_to_face[0, :4, :5])
    np.testing.assert_array_equal(fr.depth[1, :4, :5], fr.depth[0, :4, :5])
    assert np.all(fr.pix_to_face[1, 4:] == -1) and np.all(fr.pix_to_face[1, :, 5:] == -1)
    assert np.all(fr.depth[1, 4:] == -1.0) and np.all(fr.depth[1, :, 5:] == -1.0)
    assert (fr.pix_to_face[0, :4, :5] == 0).sum() > 10 and (fr.pix_to_face[0, 4:] == 0).any()


# ------------------------------------------------------- exactness on integer-grid scenes


def grid_scene(seed, n_faces=300, size=40):
    """Random triangles with integer screen vertices at depths 8, 16 or 32, K = identity.

    Edges pass exactly through pixel centres, and all arithmetic is exact (small integers,
    powers of two), so coplanar overlaps tie exactly: all backends must agree on every pixel.
    """
    rng = np.random.default_rng(seed)
    uv = rng.integers(-5, size + 5, size=(n_faces * 3, 2)).astype(np.float64)
    uv[: n_faces // 2 * 3] = np.clip(uv[: n_faces // 2 * 3], -3, 12)  # some small faces
    z = rng.choice([8.0, 16.0, 32.0], size=n_faces).repeat(3)
    verts = np.concatenate([uv * z[:, None], z[:, None]], axis=1)[None]
    return verts, np.arange(n_faces * 3).reshape(n_faces, 3), (size, size + 3)


@pytest.mark.parametrize("seed", [0, 1])
def test_all_backends_agree_exactly_on_grid_scenes_with_ties(seed):
    verts, faces, hw = grid_scene(seed)
    out = {b: run(b, verts, faces, hw, K=np.eye(3)) for b in BACKENDS}
    ref = out["reference"]
    # Torch in tiny chunks: ties then fall across chunk boundaries too.
    out["torch-chunked"] = rasterize(
        verts, faces, np.eye(3), hw, settings=RasterSettings(backend="torch", chunk_candidates=50)
    )
    for b in ("numba", "torch", "torch-chunked"):
        np.testing.assert_array_equal(out[b].pix_to_face, ref.pix_to_face)
        np.testing.assert_array_equal(out[b].depth, ref.depth)
    # The scene really exercises ties: many pixels lie under several faces at equal depth.
    z = verts[0, faces[:, 0], 2]
    cover = np.zeros((3, *hw), int)
    for f in range(len(faces)):
        hit = run("numba", verts, faces[f : f + 1], hw, K=np.eye(3)).pix_to_face[0] == 0
        cover[int(np.log2(z[f])) - 3] += hit
    assert (cover >= 2).sum() > 100


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numba_equals_torch_on_awkward_triangles(seed):
    # Huge, tiny, sliver and nearly collinear triangles, half of them snapped to pixel centres
    # (edges through centres): numba's row spans and transposition must not change a pixel.
    rng = np.random.default_rng(seed)
    n = 600
    scale = 10.0 ** rng.uniform(-1, 3, size=(n, 1, 1))
    uv = rng.uniform(0, 64, size=(n, 1, 2)) + scale * rng.normal(size=(n, 3, 2))
    uv[: n // 2] = np.round(uv[: n // 2])
    sliver = rng.random(n) < 0.2  # third vertex (almost) on the line through the first two
    t = rng.uniform(-0.5, 1.5, size=sliver.sum())[:, None]
    uv[sliver, 2] = uv[sliver, 0] + t * (uv[sliver, 1] - uv[sliver, 0])
    uv[sliver, 2] += rng.normal(size=(sliver.sum(), 2)) * 10.0 ** rng.uniform(
        -14, -2, (sliver.sum(), 1)
    )
    z = rng.uniform(50, 500, size=(n, 3))
    K = np.array([[300.0, 0, 0.25], [0, 300.0, -0.5], [0, 0, 1]])
    xy = (uv - np.array([0.25, -0.5])) / 300.0 * z[..., None]
    verts = np.concatenate([xy, z[..., None]], axis=-1).reshape(1, -1, 3)
    faces = np.arange(3 * n).reshape(n, 3)
    a = run("numba", verts, faces, (64, 80), K=K, with_bary=True)
    b = run("torch", verts, faces, (64, 80), K=K, with_bary=True)
    np.testing.assert_array_equal(a.pix_to_face, b.pix_to_face)
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_array_equal(a.bary, b.bary)
    # Each face alone (image k keeps only face k in front of the camera): identical coverage
    # and depth per face, not only for the winners.
    alone = np.repeat(verts, n, axis=0)
    alone[..., 2] = -1.0
    for k in range(n):
        alone[k, 3 * k : 3 * k + 3] = verts[0, 3 * k : 3 * k + 3]
    a = run("numba", alone, faces, (64, 80), K=K)
    b = run("torch", alone, faces, (64, 80), K=K)
    np.testing.assert_array_equal(a.pix_to_face, b.pix_to_face)
    np.testing.assert_array_equal(a.depth, b.depth)
    assert (a.pix_to_face >= 0).any(axis=(1, 2)).sum() > n // 2
    sil = rasterize_silhouette(alone, faces, K, (64, 80), settings=RasterSettings(backend="numba"))
    np.testing.assert_array_equal(sil, a.pix_to_face >= 0)


# ------------------------------------------------------------ random two-hand-like scenes


def face_bary_depth(verts, faces, K, f, i, j):
    """Float64 barycentrics (by a linear solve) and depth of face f at pixel (i, j)."""
    p = verts[faces[f]]
    uv = (p[:, :2] / p[:, 2:]) * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])
    A = np.vstack([uv.T, np.ones(3)])
    lam = np.linalg.solve(A, np.array([j, i, 1.0]))
    return lam, 1.0 / np.sum(lam / p[:, 2])


def compare_with_reference(verts, faces, K, fast, ref, hw, eps=1e-9):
    """Fast vs reference: same faces except at documented ambiguities; depth to 1e-9."""
    n_ambiguous = 0
    for b in range(verts.shape[0]):
        pf, pr = fast.pix_to_face[b], ref.pix_to_face[b]
        for i, j in zip(*np.nonzero(pf != pr), strict=True):
            fn, fr = pf[i, j], pr[i, j]
            lam_n = face_bary_depth(verts[b], faces, K, fn, i, j) if fn >= 0 else None
            lam_r = face_bary_depth(verts[b], faces, K, fr, i, j) if fr >= 0 else None
            near_edge = any(x is not None and abs(x[0]).min() < eps for x in (lam_n, lam_r))
            near_tie = (
                lam_n is not None
                and lam_r is not None
                and abs(lam_n[1] - lam_r[1]) < eps * lam_r[1]
            )
            assert near_edge or near_tie, (
                f"unexplained mismatch at image {b}, pixel {(i, j)}: {fn} vs {fr}"
            )
            n_ambiguous += 1
        same = (pf == pr) & (pf >= 0)
        np.testing.assert_allclose(fast.depth[b][same], ref.depth[b][same], rtol=1e-9)
        h, w = hw[b]
        assert np.all(pf[h:] == -1) and np.all(pf[:, w:] == -1)
    return n_ambiguous


@pytest.fixture(scope="module")
def blob_scenes():
    rng = np.random.default_rng(7)
    verts, faces, K = two_blob_scene(rng, 2, height=512, width=334)
    # Mixed portrait / landscape images with their own intrinsics.
    Ks = np.stack([K, K.copy()])
    Ks[1, 0, 2], Ks[1, 1, 2] = 256.0 + 0.4, 167.0 - 0.2
    hw = np.array([[512, 334], [334, 512]])
    return verts, faces, Ks, hw


def test_random_scenes_numba_equals_torch_bit_for_bit(blob_scenes):
    verts, faces, Ks, hw = blob_scenes
    a = rasterize(verts, faces, Ks, hw, settings=RasterSettings(backend="numba"), with_bary=True)
    b = rasterize(verts, faces, Ks, hw, settings=RasterSettings(backend="torch"), with_bary=True)
    assert a.pix_to_face.shape == (2, 512, 512)
    assert (a.pix_to_face >= 0).mean() > 0.1  # the blobs fill a good part of the images
    np.testing.assert_array_equal(a.pix_to_face, b.pix_to_face)
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_array_equal(a.bary, b.bary)
    # A small torch chunk size changes the work split, never the result.
    c = rasterize(
        verts, faces, Ks, hw, settings=RasterSettings(backend="torch", chunk_candidates=5000)
    )
    np.testing.assert_array_equal(c.pix_to_face, a.pix_to_face)
    np.testing.assert_array_equal(c.depth, a.depth)


def test_random_scenes_match_the_reference(blob_scenes):
    verts, faces, Ks, hw = blob_scenes
    fast = rasterize(verts, faces, Ks, hw, settings=RasterSettings(backend="numba"), with_bary=True)
    ref = rasterize(
        verts, faces, Ks, hw, settings=RasterSettings(backend="reference"), with_bary=True
    )
    n_ambiguous = 0
    for b in range(2):
        n_ambiguous += compare_with_reference(
            verts[b : b + 1], faces, Ks[b], _slice(fast, b), _slice(ref, b), hw[b : b + 1]
        )
    assert n_ambiguous <= 10
    same = fast.pix_to_face == ref.pix_to_face
    hit = same & (fast.pix_to_face >= 0)
    np.testing.assert_allclose(fast.bary[hit], ref.bary[hit], atol=1e-6)
    np.testing.assert_allclose(fast.bary[hit].sum(-1), 1.0, atol=1e-5)


def _slice(fr, b):
    return Fragments(fr.pix_to_face[b : b + 1], fr.depth[b : b + 1], None)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_labels_and_silhouettes_match_pix_to_face(blob_scenes, backend):
    verts, faces, Ks, hw = blob_scenes
    s = RasterSettings(backend=backend)
    rng = np.random.default_rng(3)
    face_labels = rng.integers(1, 33, size=len(faces)).astype(np.uint8)
    p2f = rasterize(verts, faces, Ks, hw, settings=s).pix_to_face
    labels = rasterize_labels(verts, faces, face_labels, Ks, hw, settings=s)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.where(p2f >= 0, face_labels[p2f], 0))
    np.testing.assert_array_equal(rasterize_silhouette(verts, faces, Ks, hw, settings=s), p2f >= 0)
    # A per-hand silhouette is the coverage of that hand's mesh alone.
    half = len(faces) // 2
    one = rasterize(verts, faces[half:], Ks, hw, settings=s).pix_to_face
    np.testing.assert_array_equal(
        rasterize_silhouette(verts, faces[half:], Ks, hw, settings=s), one >= 0
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_labels_with_group_counts_match_fragments_of_each_group(blob_scenes, backend):
    verts, faces, Ks, hw = blob_scenes
    s = RasterSettings(backend=backend)
    face_labels = np.random.default_rng(4).integers(1, 33, size=len(faces)).astype(np.uint8)
    half = len(faces) // 2
    labels, counts = rasterize_labels_counts(
        verts, faces, face_labels, Ks, hw, half, canvas_hw=(520, 530), settings=s
    )
    # independent: the numba faces kernel on the whole scene and on each group alone
    whole = RasterSettings(backend="numba")
    p2f = rasterize(verts, faces, Ks, hw, settings=whole).pix_to_face
    cover = [rasterize(verts, f, Ks, hw, settings=whole).pix_to_face >= 0 for f in
             (faces[:half], faces[half:])]  # fmt: skip
    assert labels.shape == (2, 520, 530) and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels[:, :512, :512], np.where(p2f >= 0, face_labels[p2f], 0))
    assert not labels[:, 512:].any() and not labels[:, :, 512:].any()
    expected = np.stack(
        [
            ((p2f >= 0) & (p2f < half)).sum((1, 2)),
            (p2f >= half).sum((1, 2)),
            (cover[0] & cover[1]).sum((1, 2)),
            (cover[0] | cover[1]).sum((1, 2)),
        ],
        axis=1,
    )
    np.testing.assert_array_equal(counts, expected)
    assert (counts[:, 2] > 0).all() and (counts[:, 2] < counts[:, 3]).all()  # the blobs overlap
    with pytest.raises(DigitError, match="canvas_hw"):
        rasterize_labels_counts(verts, faces, face_labels, Ks, hw, half, canvas_hw=(100, 100))
    with pytest.raises(DigitError, match="split"):
        rasterize_labels_counts(verts, faces, face_labels, Ks, hw, len(faces) + 1)


def _group_counts_reference(verts, faces, Ks, hw, split):
    """counts of rasterize_labels_counts from the numba faces kernel, group by group."""
    whole = RasterSettings(backend="numba")
    p2f = rasterize(verts, faces, Ks, hw, settings=whole).pix_to_face
    cover = [
        rasterize(verts, f, Ks, hw, settings=whole).pix_to_face >= 0
        if len(f)
        else np.zeros(p2f.shape, bool)
        for f in (faces[:split], faces[split:])
    ]
    return np.stack(
        [
            ((p2f >= 0) & (p2f < split)).sum((1, 2)),
            (p2f >= split).sum((1, 2)),
            (cover[0] & cover[1]).sum((1, 2)),
            (cover[0] | cover[1]).sum((1, 2)),
        ],
        axis=1,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_group_counts_when_only_one_group_can_draw(blob_scenes, backend):
    """Images where one group is behind the camera or has no faces take the kernel's
    one-group path (no coverage bytes): the counts must still be the fragments'."""
    verts, faces, Ks, hw = blob_scenes
    s = RasterSettings(backend=backend)
    labels_of = np.random.default_rng(5).integers(1, 33, size=len(faces)).astype(np.uint8)
    half = len(faces) // 2
    behind = verts.copy()
    late = np.unique(faces[half:])
    behind[0][np.setdiff1d(late, faces[:half]), 2] = -50.0  # image 0: group 1 never drawn
    early = np.setdiff1d(np.unique(faces[:half]), late)
    behind[1][early, 2] = -50.0  # image 1: group 0 never drawn
    for v, split in ((behind, half), (verts, 0), (verts, len(faces))):
        _, counts = rasterize_labels_counts(v, faces, labels_of, Ks, hw, split, settings=s)
        expected = _group_counts_reference(v, faces, Ks, hw, split)
        np.testing.assert_array_equal(counts, expected)
    _, counts = rasterize_labels_counts(behind, faces, labels_of, Ks, hw, half, settings=s)
    assert counts[0, 0] > 0 and counts[0, 1] == 0 and counts[1, 0] == 0 and counts[1, 1] > 0
    assert (counts[:, 2] == 0).all() and (counts[:, 3] == counts[:, :2].sum(1)).all()


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_a_pixel_does_not_depend_on_the_image_size(blob_scenes, backend):
    verts, faces, Ks, _ = blob_scenes
    s = RasterSettings(backend=backend)
    big = rasterize(verts[:1], faces, Ks[0], (512, 334), settings=s)
    crop = rasterize(verts[:1], faces, Ks[0], (300, 200), settings=s)
    np.testing.assert_array_equal(crop.pix_to_face, big.pix_to_face[:, :300, :200])
    np.testing.assert_array_equal(crop.depth, big.depth[:, :300, :200])


@pytest.mark.parametrize("z", [0.5, 1e-3])
def test_faces_reaching_close_to_the_camera_agree(z):
    # One vertex very close to the camera projects far outside the image (huge coordinates).
    rng = np.random.default_rng(11)
    verts, faces = blob(rng, (0.0, 0.0, 300.0), n_lat=8, n_lon=10)
    verts = verts.copy()
    verts[0] = [3.0, -2.0, z]
    K = np.array([[1200.0, 0, 160.3], [0, 1200.0, 120.6], [0, 0, 1]])
    a, b, r = (run(x, verts[None], faces, (240, 320), K=K) for x in BACKENDS)
    np.testing.assert_array_equal(a.pix_to_face, b.pix_to_face)
    np.testing.assert_array_equal(a.depth, b.depth)
    assert compare_with_reference(verts[None], faces, K, a, r, [(240, 320)]) <= 3


def test_sealed_hand_like_scene_right_then_left():
    # Two blobs packed right-then-left, as the mask builder does; labels by hand.
    rng = np.random.default_rng(5)
    vr, fr_ = blob(rng, (-20.0, 0.0, 600.0))
    vl, fl = blob(rng, (25.0, 10.0, 620.0))
    verts = np.concatenate([vr, vl])[None]
    faces = np.concatenate([fr_, fl + len(vr)])
    face_labels = np.concatenate([np.full(len(fr_), 1), np.full(len(fl), 17)]).astype(np.uint8)
    K = np.array([[1200.0, 0, 167.0], [0, 1200.0, 256.0], [0, 0, 1]])
    labels = rasterize_labels(verts, faces, face_labels, K, (512, 334))
    right = rasterize_silhouette(vr[None], fr_, K, (512, 334))
    left = rasterize_silhouette(vl[None], fl, K, (512, 334))
    assert set(np.unique(labels)) == {0, 1, 17}
    np.testing.assert_array_equal(labels > 0, right | left)
    np.testing.assert_array_equal(labels[right & ~left], 1)
    np.testing.assert_array_equal(labels[left & ~right], 17)
    both = right & left
    assert both.sum() > 100  # the hands overlap; the right one is nearer there
    assert (labels[both] == 1).mean() > 0.5


# ------------------------------------------------------------------ array kinds, devices


def test_torch_inputs_give_torch_outputs_and_numpy_gives_numpy():
    verts = at_depth([(0, 0), (4, 0), (0, 4)])
    faces = np.array([[0, 1, 2]])
    for backend in ("numba", "torch"):
        s = RasterSettings(backend=backend)
        fr = rasterize(
            torch.from_numpy(verts),
            torch.from_numpy(faces),
            torch.from_numpy(K10),
            (6, 6),
            settings=s,
        )
        assert isinstance(fr.pix_to_face, torch.Tensor) and fr.pix_to_face.dtype == torch.int32
        assert fr.depth.dtype == torch.float64
        labels = rasterize_labels(
            torch.from_numpy(verts), faces, np.array([5], np.uint8), K10, (6, 6), settings=s
        )
        assert isinstance(labels, torch.Tensor) and labels.dtype == torch.uint8
        assert int(labels.sum()) == 5 * 15
        fr = rasterize(verts, faces, K10, (6, 6), settings=s)
        assert isinstance(fr.pix_to_face, np.ndarray)


def test_auto_backend_choice():
    assert resolve_backend(RasterSettings()) == "numba"
    assert resolve_backend(RasterSettings(), torch.zeros(1, 3, 3)) == "numba"
    assert resolve_backend(RasterSettings(backend="torch")) == "torch"
    if torch.cuda.is_available():
        assert resolve_backend(RasterSettings(device="cuda")) == "torch"
        assert resolve_backend(RasterSettings(), torch.zeros(1, 3, 3, device="cuda")) == "torch"


def test_bad_settings_and_inputs_raise_one_line_digit_errors():
    verts = at_depth([(0, 0), (4, 0), (0, 4)])
    faces = np.array([[0, 1, 2]])
    cases = [
        lambda: RasterSettings(backend="opengl"),
        lambda: RasterSettings(near=0.0),
        lambda: rasterize(verts[0], faces, K10, (4, 4)),
        lambda: rasterize(verts, faces.astype(float), K10, (4, 4)),
        lambda: rasterize(verts, np.array([[0, 1, 3]]), K10, (4, 4)),
        lambda: rasterize(verts, faces, np.eye(4), (4, 4)),
        lambda: rasterize(
            verts, faces, K10 + np.array([[0, 1.0, 0], [0, 0, 0], [0, 0, 0]]), (4, 4)
        ),
        lambda: rasterize(verts, faces, K10, (4, 0)),
        lambda: rasterize(verts, faces, K10, np.array([[4, 4], [4, 4]])),
        lambda: rasterize(verts * np.nan, faces, K10, (4, 4)),
        lambda: rasterize_labels(verts, faces, np.array([1, 2]), K10, (4, 4)),
        lambda: (
            rasterize(
                verts, faces, K10, (4, 4), settings=RasterSettings(backend="numba", device="cuda:0")
            )
            if torch.cuda.is_available()
            else rasterize(verts, faces, K10, (4, 4), settings=RasterSettings(device="cuda"))
        ),
    ]
    for case in cases:
        with pytest.raises(DigitError) as err:
            case()
        msg = str(err.value)
        assert "\n" not in msg and ":" in msg, msg


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_says_so():
    with pytest.raises(DigitError, match="CUDA is not available"):
        resolve_backend(RasterSettings(backend="torch", device="cuda"))


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 assembly check")
def test_numba_kernels_contain_no_fused_multiply_add():
    # Compile uncached, serial copies of the kernels (same code and compiler flags) to read
    # their machine code: an FMA would round differently from torch's separate mul and add.
    import numba

    from render.raster import numba_kernel as nk
    from render.raster.inputs import prepare_scene

    verts, faces, K = two_blob_scene(np.random.default_rng(0), 1)
    sc = prepare_scene(verts, faces, K, (40, 40), np.ones(len(faces), np.uint8), None)
    fn = numba.njit(nk.raster_labels.py_func)
    fn(sc.verts, sc.faces, sc.face_labels, sc.kparams, sc.hw, 1e-6, np.zeros((1, 40, 40), np.uint8))
    asm = fn.inspect_asm(fn.signatures[0])
    assert "divsd" in asm and "mulsd" in asm  # the arithmetic is in there
    assert not re.search(r"\bv?f(n)?m(add|sub)", asm)
