"""The MANO fit given ground-truth joints: how much the fit itself loses, and how fast it is.

Every hand of a split with a ground-truth MANO fit is fitted (`digit.meshes.evaluate.fit_hands`,
the same call `digit-eval --meshes` makes) to its annotated camera-frame joints (unknown ones
left out) and their projections, in batches of `--batch` images; its mesh is compared with the
ground-truth mesh (root-aligned MPVPE, `digit.meshes.evaluate.mpvpe`). Prints the MPVPE's mean
and percentiles (all hands, single-hand and interacting images) and the fit's speed in hands per
second of wall time (fitting only), and how deep the hands of interacting images sit in each
other, fitted and true (the synthetic generator lets hands overlap).

    python -m benchmarks.bench_fit [--data-root ROOT] [--split test] [--batch 64] [--threads 2]
        [--limit N] [--penetration-weight W] [--device cpu|cuda]

It also prints the CPU time of the process (both cores count), which unlike wall time does not
grow with other jobs on the machine.

Default data: the synthetic default dataset (its annotations: `--no-images` gives the same).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from core.camera import project
from core.interhand.reader import InterHandSplit
from core.paths import resolve_data_root
from digit.meshes.capsules import capsule_radii, penetration_depths
from digit.meshes.evaluate import INTERACTING, fit_hands, mpvpe, true_meshes
from digit.meshes.fit import FitSettings
from render.hand_model import HandModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch", type=int, default=64, help="images per batched fit")
    parser.add_argument("--threads", type=int, default=1, help="torch threads while fitting")
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--penetration-weight", type=float, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    root = resolve_data_root(args.data_root)
    split = InterHandSplit.from_root(root, args.split)
    n = len(split) if args.limit is None else min(args.limit, len(split))
    model = HandModel.from_dir(root / "mano").to(args.device)
    settings = FitSettings(threads=args.threads)
    if args.penetration_weight is not None:
        settings = dataclasses.replace(settings, penetration_weight=args.penetration_weight)

    errors, kinds, fit_s, cpu_s, hands = [], [], 0.0, 0.0, 0
    depth_fit, depth_true, radii = [], [], _radii(model)
    fit_hands(model, *_inputs(split.gather(np.arange(min(4, n)))), settings)  # warm-up
    for start in range(0, n, args.batch):
        batch = split.gather(np.arange(start, min(start + args.batch, n)))
        tic, cpu = time.perf_counter(), time.process_time()
        fit, image, hand = fit_hands(model, *_inputs(batch), settings)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        fit_s += time.perf_counter() - tic
        cpu_s += time.process_time() - cpu
        gt_v, gt_j = true_meshes(model, batch)
        errors.append(mpvpe(fit.vertices, fit.joints, gt_v[image, hand], gt_j[image, hand]))
        kinds.append(batch.hand_type_code[image] == INTERACTING)
        hands += len(fit)
        both = np.flatnonzero(np.bincount(image, minlength=len(batch)) == 2)
        depth_fit.append(fit.penetration_mm[np.isin(image, both)].reshape(-1, 2).max(1))
        depth_true.append(_true_depth(gt_v[both], gt_j[both], radii))
    error, inter = np.concatenate(errors), np.concatenate(kinds)
    print(f"{args.split} split of {root}: {n} images, {hands} hands with a ground-truth fit")
    print(f"settings: {settings}")
    for name, mask in (("all", np.ones_like(inter)), ("single-hand images", ~inter),
                       ("interacting images", inter)):  # fmt: skip
        e = error[mask]
        p50, p90, p95, p99 = np.percentile(e, [50, 90, 95, 99])
        print(
            f"MPVPE {name}: {len(e)} hands, mean {e.mean():.2f} mm, median {p50:.2f}, "
            f"p90 {p90:.2f}, p95 {p95:.2f}, p99 {p99:.2f}, max {e.max():.2f}"
        )
    fitted, true = np.concatenate(depth_fit), np.concatenate(depth_true)
    print(
        f"interpenetration, deepest vertex in the other hand's capsules, {len(true)} images "
        f"with both hands: fitted median {np.median(fitted):.1f} mm (mean {fitted.mean():.1f}), "
        f"ground truth median {np.median(true):.1f} mm (mean {true.mean():.1f})"
    )
    print(
        f"speed: {hands / fit_s:.1f} hands/s ({fit_s:.1f} s fitting, batches of {args.batch} "
        f"images, {args.threads} threads, {args.device}); {hands / cpu_s:.1f} hands per CPU-s"
    )


def _radii(model: HandModel) -> np.ndarray:
    """(2, 20) capsule radii (right, left) of the mean hands, as the fit measures them."""
    out = []
    for side in ("right", "left"):
        zero = torch.zeros(1, 48, dtype=model.dtype, device=model.device)
        with torch.no_grad():
            rest = model(side, zero, zero[:, :10], zero[:, :3])
        out.append(capsule_radii(rest.vertices[0].cpu().numpy(), rest.joints[0].cpu().numpy()))
    return np.stack(out)


def _true_depth(verts: np.ndarray, joints: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """(P,) deepest vertex of either true hand in the other's capsules; verts (P, 2, V, 3),
    joints (P, 2, 21, 3) mm (right, left)."""
    v, j, r = torch.as_tensor(verts), torch.as_tensor(joints), torch.as_tensor(radii)
    right_in_left = penetration_depths(v[:, 0], j[:, 1], r[1]).amax(-1)
    left_in_right = penetration_depths(v[:, 1], j[:, 0], r[0]).amax(-1)
    return torch.maximum(right_in_left, left_in_right).numpy()


def _inputs(batch) -> tuple:
    """Ground-truth camera joints (B, 42, 3), their projections (B, 42, 2), K (B, 3, 3) and
    the hands with a MANO fit (B, 2)."""
    uv = project(batch.joints_cam, batch.K[:, None])
    return batch.joints_cam, uv, batch.K, batch.has_mano


if __name__ == "__main__":
    main()
