"""End-to-end `build-masks` speed, random read speed and size of the mask cache.

    python -m benchmarks.bench_masks [--captures 4] [--cameras 8] [--frames 25]
                                     [--workers 1 2] [--reads 3000] [--device cpu|cuda]

Generates a synthetic dataset (annotations only: build-masks reads no images) in a temporary
folder, then for each worker count builds the train split's cache from scratch and reports
images/s by wall clock (everything included: model and annotation loading, worker start-up,
rendering, compression, assembly). Then: where the time of one 256-image piece goes in one
process; random single-mask reads/s in one process (h5py ``ds[i]`` and ``MaskCache.mask``);
cache size per image; and the time the full InterHand2.6M train split (1,361,062 images)
would take at the measured rates. ``--device cuda`` also times the torch backend on the GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from benchmarks.options import Parser, positive_int, run_main

TRAIN_IMAGES = 1_361_062


def _piece_breakdown(root: Path, device: str) -> None:
    from benchmarks.bench_build_stages import split_setup
    from render.mask_cache.pieces import write_piece
    from render.mask_cache.scene import piece_input, pose_piece, render_piece
    from render.raster import RasterSettings, rasterize_labels, rasterize_silhouette

    model, topo, data = split_setup(root, "train")
    canvas = tuple(int(x) for x in data.columns.hw.max(0))
    # a piece with two-hand images (the first interacting one onwards)
    start = int(np.flatnonzero(data.columns.hand_type_code == 2)[0])
    start = max(0, min(start, len(data) - 256))
    n = min(256, len(data) - start)
    inp = piece_input(data, start, start + n)
    backends = [("numba", None)] + ([("torch", "cuda")] if device == "cuda" else [])
    for backend, dev in backends:
        settings = RasterSettings(backend=backend, device=dev)
        render_piece(model, topo, piece_input(data, 0, 8), canvas, settings)  # warm up
        t = {}
        t0 = time.perf_counter()
        posed = pose_piece(model, inp)
        t["pose (MANO + camera)"] = time.perf_counter() - t0
        scene = np.concatenate(posed.verts, axis=1)
        t0 = time.perf_counter()
        rasterize_labels(scene, topo.faces, topo.face_labels, inp.K, inp.hw, settings=settings)
        t["labels (both hands)"] = time.perf_counter() - t0
        both = np.flatnonzero(posed.rendered.all(1))
        t0 = time.perf_counter()
        for h in range(2):
            rasterize_silhouette(
                posed.verts[h][both],
                topo.hand_faces[h],
                inp.K[both],
                inp.hw[both],
                settings=settings,
            )
        t[f"silhouettes ({len(both)} two-hand images)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = render_piece(model, topo, inp, canvas, settings)
        t["render_piece total"] = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            write_piece(Path(tmp) / "p.h5", result)
            t["compress + write piece"] = time.perf_counter() - t0
        print(f"one piece of {n} images, {backend} on {dev or 'cpu'}, one process:")
        for name, sec in t.items():
            print(f"  {name:34s} {sec * 1000:8.1f} ms  {n / sec:9.0f} images/s")


def _reads(path: Path, count: int) -> None:
    from core.mask_cache import MaskCache

    rng = np.random.default_rng(0)
    with h5py.File(path, "r") as f:
        ds = f["masks"]
        idx = rng.integers(0, ds.shape[0], count)
        t0 = time.perf_counter()
        for i in idx:
            ds[int(i)]
        plain = count / (time.perf_counter() - t0)
    with MaskCache(path) as cache:
        t0 = time.perf_counter()
        for i in idx:
            cache.mask(int(i))
        fast = count / (time.perf_counter() - t0)
        n, canvas = len(cache), cache.canvas_hw
    size = os.path.getsize(path)
    print(
        f"random single-mask reads, one process, chunks (1, {canvas[0]}, {canvas[1]}): "
        f"h5py ds[i] {plain:.0f}/s, MaskCache.mask {fast:.0f}/s"
    )
    print(f"cache size: {size / n / 1024:.2f} KB per image ({size / 2**20:.1f} MiB for {n})")
    print(
        f"  full train split: {size / n * TRAIN_IMAGES / 2**30:.1f} GiB; reading it all at "
        f"{plain:.0f}/s: {TRAIN_IMAGES / plain / 60:.0f} min"
    )


_BUILD = """
import json, sys, time
from pathlib import Path
from render.mask_cache.builder import build_masks
root, out, workers, device = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
r = build_masks("train", root, out=out, workers=workers, device=device, show_progress=False)
hwm = [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")][0]
print(json.dumps({"images": r.images, "seconds": r.seconds, "backend": r.backend, "hwm_kib": hwm}))
"""


def _build(root: Path, out: Path, workers: int, device: str) -> dict:
    """One build in a fresh process (its peak RSS is its own); the main process's peak only."""
    cmd = [sys.executable, "-c", _BUILD, str(root), str(out), str(workers), device]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _dataset(folder: Path, captures: int, cameras: int, frames: int) -> Path:
    from render.synthetic_data.generate import SyntheticSettings, make_synthetic

    settings = SyntheticSettings(captures=captures, cameras=cameras, frames=frames, images=False)
    return make_synthetic(folder / f"root{captures}", settings)


def main() -> None:
    parser = Parser(prog="bench_masks", description=__doc__.split("\n")[0])
    parser.add_argument("--captures", type=positive_int, default=4)
    parser.add_argument("--cameras", type=positive_int, default=8)
    parser.add_argument("--frames", type=positive_int, default=25)
    parser.add_argument("--workers", type=positive_int, nargs="+", default=[1, 2])
    parser.add_argument("--reads", type=positive_int, default=3000)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = _dataset(Path(tmp), args.captures, args.cameras, args.frames)
        print(f"os.cpu_count() = {os.cpu_count()}")
        rates = {}
        runs = [(w, "cpu") for w in args.workers]
        if args.device == "cuda":
            runs.append((1, "cuda"))
        for workers, device in runs:
            out = root / "masks" / f"masks_train.w{workers}.{device}.h5"
            r = _build(root, out, workers, device)
            rate = r["images"] / r["seconds"]
            rates[(workers, device)] = rate
            print(
                f"build-masks, {r['images']} images, {workers} worker(s), {r['backend']} on "
                f"{device}: {r['seconds']:.2f} s, {rate:.0f} images/s end to end, main process "
                f"peak RSS {r['hwm_kib'] / 1024:.0f} MiB"
            )
        # memory stays flat: the same build on a split 4x as large
        big = _dataset(Path(tmp), 4 * args.captures, args.cameras, args.frames)
        r = _build(big, big / "masks" / "m.h5", 1, "cpu")
        print(
            f"build-masks, {r['images']} images (4x), 1 worker: {r['seconds']:.2f} s, "
            f"{r['images'] / r['seconds']:.0f} images/s, peak RSS {r['hwm_kib'] / 1024:.0f} MiB"
        )
        _piece_breakdown(root, args.device)
        _reads(root / "masks" / f"masks_train.w{args.workers[0]}.cpu.h5", args.reads)
        for (workers, device), rate in rates.items():
            hours = TRAIN_IMAGES / rate / 3600
            print(
                f"extrapolated full train split ({TRAIN_IMAGES:,} images), {workers} worker(s) "
                f"on {device}: {hours:.2f} h"
            )


if __name__ == "__main__":
    sys.exit(run_main("bench_masks", main))
