"""The MANO fit given ground-truth joints: how much the fit itself loses, and how fast it is.

Every hand of a split with a ground-truth MANO fit is fitted (`digit.meshes.evaluate.fit_hands`,
the same call `digit-eval --meshes` makes) to its annotated camera-frame joints (unknown ones
left out) and their projections, in batches of `--batch` images; its mesh is compared with the
ground-truth mesh (root-aligned MPVPE, `digit.meshes.evaluate.mpvpe`). Prints the MPVPE's mean
and percentiles (all hands, single-hand and interacting images) and the fit's speed in hands per
second of wall time (fitting only).

    python -m benchmarks.bench_fit [--data-root ROOT] [--split test] [--batch 64] [--threads 2]
        [--limit N] [--penetration-weight W] [--device cpu|cuda]

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
from digit.meshes.evaluate import INTERACTING, fit_hands, mpvpe, true_meshes
from digit.meshes.fit import FitSettings
from render.hand_model import HandModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch", type=int, default=64, help="images per batched fit")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--penetration-weight", type=float, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = resolve_data_root(args.data_root)
    split = InterHandSplit.from_root(root, args.split)
    n = len(split) if args.limit is None else min(args.limit, len(split))
    model = HandModel.from_dir(root / "mano").to(args.device)
    settings = FitSettings()
    if args.penetration_weight is not None:
        settings = dataclasses.replace(settings, penetration_weight=args.penetration_weight)

    errors, kinds, fit_s, hands = [], [], 0.0, 0
    fit_hands(model, *_inputs(split.gather(np.arange(min(4, n)))), settings)  # warm-up
    for start in range(0, n, args.batch):
        batch = split.gather(np.arange(start, min(start + args.batch, n)))
        tic = time.perf_counter()
        fit, image, hand = fit_hands(model, *_inputs(batch), settings)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        fit_s += time.perf_counter() - tic
        gt_v, gt_j = true_meshes(model, batch)
        errors.append(mpvpe(fit.vertices, fit.joints, gt_v[image, hand], gt_j[image, hand]))
        kinds.append(batch.hand_type_code[image] == INTERACTING)
        hands += len(fit)
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
    print(
        f"speed: {hands / fit_s:.1f} hands/s ({fit_s:.1f} s fitting, batches of {args.batch} "
        f"images, {args.threads} threads, {args.device})"
    )


def _inputs(batch) -> tuple:
    """Ground-truth camera joints (B, 42, 3), their projections (B, 42, 2), K (B, 3, 3) and
    the hands with a MANO fit (B, 2)."""
    uv = project(batch.joints_cam, batch.K[:, None])
    return batch.joints_cam, uv, batch.K, batch.has_mano


if __name__ == "__main__":
    main()
