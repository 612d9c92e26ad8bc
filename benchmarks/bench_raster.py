"""Rasterizer throughput on two-hand-like scenes (masks per second).

    python -m benchmarks.bench_raster [--batch 64] [--repeats 3] [--threads 1 N]
                                      [--depth 600] [--torch-batch 8] [--device cpu|cuda]

Scenes: two bumpy hand-sized ellipsoids (1536 faces each, 3072 in all, about one MANO
sealed mesh per hand) at about ``--depth`` mm in front of a camera with fx ~ fy ~ 1200 and a
512 x 334 (height x width) image, overlapping on screen; every image has its own random pose.
For numba (labels, pix_to_face + depth, silhouette) on each thread count (default: 1 and
numba's most, N = the cores or ``NUMBA_NUM_THREADS``): masks/s by wall
clock and masks per CPU-second (per core; fairer on a machine shared with other jobs). Then
the torch backend on ``--device``. Numba compilation happens before timing (cached on disk).

Speed as a ratio (measured in the same run, so it survives a busy machine): numba labels on
one thread against the slow exact reference rasterizer (`render.raster.reference`, numpy) on
the same ``--reference-batch`` scenes, CPU seconds per mask. No third-party rasterizer is
installed here (pytorch3d, nvdiffrast: none), so none is compared.
"""

from __future__ import annotations

import sys
import time

import numba
import numpy as np
import torch

from benchmarks.options import Parser, positive_float, positive_int, run_main
from core.errors import DigitError
from render.raster import RasterSettings, rasterize, rasterize_labels, rasterize_silhouette
from render.raster.scenes import two_blob_scene

HEIGHT, WIDTH = 512, 334


def _time(fn, repeats: int, sync=lambda: None) -> tuple[float, float]:
    """Best wall and best CPU seconds of ``repeats`` calls."""
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        sync()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def main() -> None:
    ap = Parser(prog="bench_raster", description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=positive_int, default=64)
    ap.add_argument("--repeats", type=positive_int, default=3)
    ap.add_argument("--threads", type=positive_int, nargs="+", default=None)
    ap.add_argument("--depth", type=positive_float, default=600.0)
    ap.add_argument("--torch-batch", type=positive_int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reference-batch", type=int, default=2)
    args = ap.parse_args()
    most = numba.config.NUMBA_NUM_THREADS
    threads = args.threads or sorted({1, most})
    if max(threads) > most:
        raise DigitError(
            f"--threads {max(threads)}: numba may use at most {most} here (the cores, or "
            "NUMBA_NUM_THREADS)"
        )

    verts, faces, K = two_blob_scene(
        np.random.default_rng(0), args.batch, HEIGHT, WIDTH, args.depth
    )
    labels_of = (np.arange(len(faces)) * 7 % 32 + 1).astype(np.uint8)
    hw = (HEIGHT, WIDTH)
    cover = (rasterize_labels(verts, faces, labels_of, K, hw) > 0).mean()
    print(
        f"scene: {len(faces)} faces, {HEIGHT}x{WIDTH} image, depth ~{args.depth:.0f} mm, "
        f"{100 * cover:.1f}% of pixels covered, batch {args.batch}"
    )

    numba_cases = {
        "labels": lambda: rasterize_labels(verts, faces, labels_of, K, hw),
        "pix_to_face+depth": lambda: rasterize(verts, faces, K, hw),
        "silhouette (one hand)": lambda: rasterize_silhouette(
            verts, faces[: len(faces) // 2], K, hw
        ),
        "silhouette (both)": lambda: rasterize_silhouette(verts, faces, K, hw),
    }
    for fn in numba_cases.values():  # compile (or load the cache) before timing
        fn()
    for n_threads in threads:
        numba.set_num_threads(n_threads)
        for name, fn in numba_cases.items():
            wall, cpu = _time(fn, args.repeats)
            print(
                f"numba {n_threads} thread(s) {name:22s} {args.batch / wall:8.0f} masks/s "
                f"(wall)  {args.batch / cpu:8.0f} masks/CPU-s"
            )

    # the same scenes through numba (one thread) and the reference: CPU seconds per mask
    k = args.reference_batch
    numba.set_num_threads(1)
    ref = RasterSettings(backend="reference")
    cases = {
        "numba": lambda: rasterize_labels(verts[:k], faces, labels_of, K, hw),
        "reference": lambda: rasterize_labels(verts[:k], faces, labels_of, K, hw, settings=ref),
    }
    cpu = {name: _time(fn, 1 if name == "reference" else args.repeats)[1] / k
           for name, fn in cases.items()}  # fmt: skip
    print(
        f"same {k} scenes, labels, one thread: numba {cpu['numba'] * 1e3:.2f} ms/mask, reference "
        f"{cpu['reference'] * 1e3:.0f} ms/mask: numba is {cpu['reference'] / cpu['numba']:,.0f} x "
        "the reference's speed"
    )

    dev = torch.device(args.device)
    settings = RasterSettings(backend="torch", device=str(dev))
    n = args.torch_batch
    tv = torch.from_numpy(verts[:n]).to(dev)
    tf, tk, tl = (torch.from_numpy(x).to(dev) for x in (faces, K, labels_of))
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch_cases = {
        "labels": lambda: rasterize_labels(tv, tf, tl, tk, hw, settings=settings),
        "pix_to_face+depth": lambda: rasterize(tv, tf, tk, hw, settings=settings),
        "silhouette (both)": lambda: rasterize_silhouette(tv, tf, tk, hw, settings=settings),
    }
    for name, fn in torch_cases.items():
        fn()
        wall, cpu = _time(fn, args.repeats, sync)
        print(
            f"torch {dev.type} ({torch.get_num_threads()} threads) {name:18s} "
            f"{n / wall:8.1f} masks/s (wall)  {n / cpu:8.1f} masks/CPU-s"
        )


if __name__ == "__main__":
    sys.exit(run_main("bench_raster", main))
