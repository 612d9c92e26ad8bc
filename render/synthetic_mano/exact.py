"""Bit-reproducible arithmetic for the model build: element-wise numpy, libm and exact sums only.

Nothing here calls BLAS / LAPACK or numpy's SIMD transcendental functions, whose last bits vary
between machines and versions, so the built model's bytes are the same everywhere.
"""

import math

import numpy as np


def unit(v: np.ndarray) -> np.ndarray:
    """v (3,) scaled to length 1 (exact-sum norm)."""
    return v / math.sqrt(math.fsum(float(x) * float(x) for x in v))


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a x b for (3,) vectors, written out element by element."""
    return np.array(
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    )


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """Exact-sum (fsum) dot product of two equally long vectors."""
    return math.fsum(float(x) * float(y) for x, y in zip(a, b, strict=True))


def mean_rows(p: np.ndarray) -> np.ndarray:
    """Exact (fsum) mean of the rows of p (N, 3)."""
    return np.array([math.fsum(p[:, k].tolist()) / p.shape[0] for k in range(p.shape[1])])


def libm_pow(x: np.ndarray, e: float) -> np.ndarray:
    """x (N,) ** e by libm, element by element (numpy's SIMD pow differs in the last bit
    between CPUs)."""
    return np.array([math.pow(float(v), e) for v in x])


class SplitMix64:
    """A tiny, version-proof uniform generator (SplitMix64) for the model build."""

    def __init__(self, seed: int) -> None:
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def _next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return z ^ (z >> 31)

    def random(self, shape) -> np.ndarray:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        count = int(np.prod(shape)) if shape else 1
        vals = [(self._next() >> 11) * (1.0 / 9007199254740992.0) for _ in range(count)]
        return np.array(vals).reshape(shape)


def jacobi_eigh(a: np.ndarray, sweeps: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors (columns) of a symmetric matrix, cyclic Jacobi.

    Only element-wise operations, so the result is the same on every machine (unlike LAPACK).
    """
    a = a.copy()
    n = a.shape[0]
    vec = np.eye(n)
    for _ in range(sweeps):
        off = math.fsum((a[np.triu_indices(n, 1)] ** 2).tolist())
        if off < 1e-30:
            break
        for p in range(n - 1):
            for q in range(p + 1, n):
                apq = a[p, q]
                if apq == 0.0:
                    continue
                theta = (a[q, q] - a[p, p]) / (2.0 * apq)
                t = (1.0 if theta >= 0 else -1.0) / (abs(theta) + math.sqrt(theta * theta + 1.0))
                c = 1.0 / math.sqrt(t * t + 1.0)
                s = t * c
                ap, aq = a[:, p].copy(), a[:, q].copy()
                a[:, p] = c * ap - s * aq
                a[:, q] = s * ap + c * aq
                ap, aq = a[p, :].copy(), a[q, :].copy()
                a[p, :] = c * ap - s * aq
                a[q, :] = s * ap + c * aq
                vp, vq = vec[:, p].copy(), vec[:, q].copy()
                vec[:, p] = c * vp - s * vq
                vec[:, q] = s * vp + c * vq
    return np.diag(a).copy(), vec
