"""The synthetic hand's triangles: quads split along the shorter diagonal, oriented outwards."""

import math

import numpy as np

from render.synthetic_mano.mesh import Geometry


def triangulate(geo: Geometry) -> np.ndarray:
    """Split each quad along its shorter diagonal, orient all faces outwards, (F, 3) int64."""
    v = geo.verts
    faces = []
    for a, b, c, d in geo.quads:
        ac = float(np.sum((v[a] - v[c]) ** 2))
        bd = float(np.sum((v[b] - v[d]) ** 2))
        if ac <= bd * (1.0 - 1e-9):
            faces += [(a, b, c), (a, c, d)]
        else:
            faces += [(a, b, d), (b, c, d)]
    faces += list(geo.tris)
    faces = np.array(faces, dtype=np.int64)
    faces = _orient(faces)
    # outward: the swept volume of a closed-but-for-the-wrist hand is positive
    if _signed_volume(v, faces) < 0:
        faces = faces[:, ::-1].copy()
    return faces


def _orient(faces: np.ndarray) -> np.ndarray:
    """Flip faces so that every shared edge is traversed in opposite directions (BFS)."""
    edge_faces: dict[tuple[int, int], list[int]] = {}
    for fi, f in enumerate(faces.tolist()):
        for k in range(3):
            a, b = f[k], f[(k + 1) % 3]
            edge_faces.setdefault((min(a, b), max(a, b)), []).append(fi)
    out = faces.copy()
    done = np.zeros(len(faces), dtype=bool)
    for seed in range(len(faces)):
        if done[seed]:
            continue
        done[seed] = True
        stack = [seed]
        while stack:
            fi = stack.pop()
            f = out[fi].tolist()
            for k in range(3):
                a, b = f[k], f[(k + 1) % 3]
                for gj in edge_faces[(min(a, b), max(a, b))]:
                    if done[gj]:
                        continue
                    g = out[gj].tolist()
                    same = any(g[m] == a and g[(m + 1) % 3] == b for m in range(3))
                    if same:
                        out[gj] = out[gj][::-1]
                    done[gj] = True
                    stack.append(gj)
    return out


def _signed_volume(v: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    return math.fsum((np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0).tolist())
