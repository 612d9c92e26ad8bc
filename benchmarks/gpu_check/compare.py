"""Compare two rasterizers' fragments and give every differing pixel with its reason. Pure
numpy: the callers rasterize (on any device) and hand over numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TIE_RELATIVE = 1e-9
"""Depths closer than this (relative) are a tie: the winner is decided by rounding."""


@dataclass(frozen=True)
class PixelDiff:
    """One pixel where backends a and b disagree: image, row, col; each side's face (-1:
    background) and depth (mm, -1 for background); the reference's face (None if not asked);
    reason, one line."""

    image: int
    row: int
    col: int
    face_a: int
    face_b: int
    depth_a: float
    depth_b: float
    face_ref: int | None
    reason: str


def reason(fa: int, fb: int, za: float, zb: float, fref: int | None, names=("a", "b")) -> str:
    """Why two backends may disagree at a pixel (faces fa, fb; depths za, zb; -1 background)."""
    na, nb = names
    if fa >= 0 and fb >= 0:
        rel = abs(za - zb) / max(abs(za), abs(zb), 1e-300)
        if rel <= TIE_RELATIVE:
            why = f"depth tie: faces {fa} ({na}) and {fb} ({nb}) at {za:.9g} mm (rel. {rel:.1e})"
        else:
            why = f"nearer face differs: {fa} at {za:.9g} mm ({na}), {fb} at {zb:.9g} mm ({nb})"
    else:
        face, side = (fa, na) if fa >= 0 else (fb, nb)
        why = f"edge: face {face} covers the pixel centre on {side} only"
    if fref is not None:
        sides = [n for n, f in ((na, fa), (nb, fb)) if f == fref]
        why += f"; the reference rasterizer gives face {fref} ({', '.join(sides) or 'neither'})"
    return why


def differing_pixels(
    p2f_a: np.ndarray,
    depth_a: np.ndarray,
    p2f_b: np.ndarray,
    depth_b: np.ndarray,
    p2f_ref: np.ndarray | None = None,
    names: tuple[str, str] = ("a", "b"),
) -> list[PixelDiff]:
    """Every pixel whose face differs between a and b, with its reason.

    p2f_*: (B, H, W) int face ids (-1 background); depth_*: (B, H, W) float mm; p2f_ref:
    (B, H, W) of a third (reference) rasterizer, or None. The same shapes everywhere.
    """
    if p2f_a.shape != p2f_b.shape:
        raise ValueError(f"shapes differ: {p2f_a.shape} and {p2f_b.shape}")
    out = []
    for b, i, j in np.argwhere(p2f_a != p2f_b).tolist():
        fa, fb = int(p2f_a[b, i, j]), int(p2f_b[b, i, j])
        za, zb = float(depth_a[b, i, j]), float(depth_b[b, i, j])
        fref = None if p2f_ref is None else int(p2f_ref[b, i, j])
        out.append(PixelDiff(b, i, j, fa, fb, za, zb, fref, reason(fa, fb, za, zb, fref, names)))
    return out


def labels_identical(a: np.ndarray, b: np.ndarray) -> bool:
    """Byte-identical masks (same shape, dtype and bytes)."""
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
