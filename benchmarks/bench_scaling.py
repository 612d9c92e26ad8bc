"""Scaling out: build-masks images/s against --workers and against shards, and the training
data loader's samples/s against its worker count at 256 x 256.

    python -m benchmarks.bench_scaling [--captures 4] [--cameras 8] [--frames 25]
        [--workers 1 2 4] [--shards 1 2 4] [--loader-workers 0 1 2 4] [--batches 20]
        [--data-root DIR]   # loader: an InterHand2.6M-layout root with train masks
                            # (default: the synthetic default, ~/.cache/digit/synthetic-v2)
        [--quick]           # tiny sizes: checks that the script runs; the numbers mean nothing

build-masks (annotations only: it reads no images): a synthetic train split is generated in a
temporary folder; for each worker count one process builds the whole split (wall clock,
everything included); for each shard count N, N processes build `--shard K/N` at the same time
(one worker each; a machine's job array), then `digit-render merge` joins them (timed apart).
From the best rate per core it extrapolates the full InterHand2.6M train split (1,361,062
images) to 1, 8 and 64 cores (perfect scaling over cores: an upper bound where the file
system keeps up) and its size from the bytes per image.

Data loader: `InterHandDataset` (train, augmentation on, 256 px crops) through `make_loader`
with batches of 32, timed over `--batches` batches after the first (worker start-up apart);
samples/s per worker says how many workers a GPU needs (a GPU step's images / its seconds).
In-process (0 workers) it is also timed against its reference in the same run: decoding the
very JPEGs it read (`core.image_io.load_rgb`) alone; `loader_over_decode` is the share of
decoding's speed the loader keeps (crop, warp, augmentation and the mask read cost the rest).

One JSON line per measurement on stdout; a table on stderr. Run it on a quiet machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.options import Parser, count, positive_int, run_main
from core.errors import DigitError

TRAIN_IMAGES = 1_361_062
CORES = (1, 8, 64)


def _say(record: dict) -> None:
    print(json.dumps(record), flush=True)


def _render(*args: str) -> float:
    """Seconds of one `digit-render` run (a fresh process, as a user runs it)."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "cli.render_app", *args]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def bench_build(root: Path, work: Path, workers: list[int], shards: list[int]) -> dict:
    from core.interhand.reader import InterHandSplit

    n = len(InterHandSplit.from_root(root, "train"))
    base = ["build-masks", "--split", "train", "--data-root", str(root)]
    rates: dict[str, float] = {}
    size = 0
    for w in workers:
        out = work / f"w{w}" / "masks_train.h5"
        seconds = _render(*base, "--out", str(out), "--workers", str(w))
        size = out.stat().st_size
        rates[f"workers={w}"] = n / seconds
        _say({"bench": "build_masks", "workers": w, "images": n, "seconds": seconds,
              "images_per_s": n / seconds, "bytes_per_image": size / n})  # fmt: skip
    for k in shards:
        folder = work / f"s{k}"
        t0 = time.perf_counter()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cli.render_app",
                    *base,
                    "--masks",
                    str(folder),
                    "--shard",
                    f"{i}/{k}",
                    "--workers",
                    "1",
                ],
                stdout=subprocess.DEVNULL,
            )
            for i in range(k)
        ]
        if any(p.wait() for p in procs):
            raise DigitError(f"a shard build failed ({k} shards)")
        build_s = time.perf_counter() - t0
        merge_s = _render("merge", "--out", str(folder / "masks_train.h5"), "--shards", str(k))
        rates[f"shards={k}"] = n / build_s
        _say({"bench": "build_masks_shards", "shards": k, "images": n, "build_seconds": build_s,
              "merge_seconds": merge_s, "images_per_s": n / build_s,
              "images_per_s_with_merge": n / (build_s + merge_s)})  # fmt: skip
    per_core = max(rates.get("workers=1", 0.0), rates.get("shards=1", 0.0))
    if per_core:
        for cores in CORES:
            hours = TRAIN_IMAGES / (per_core * cores) / 3600
            _say({"bench": "train_split_extrapolated", "cores": cores, "hours": hours,
                  "gigabytes": size / n * TRAIN_IMAGES / 1e9 if size else None})  # fmt: skip
    return rates


def bench_loader(data_root: Path | None, workers: list[int], batches: int, size: int) -> None:
    from core.image_io import load_rgb
    from core.paths import mask_cache_path, resolve_data_root
    from digit.data.augment import AugmentSettings
    from digit.data.dataset import InterHandDataset, make_loader

    root = resolve_data_root(str(data_root) if data_root else None)
    masks = mask_cache_path(None, root, "train")
    if not masks.is_file():
        raise DigitError(f"{masks} not found; build the train masks first")
    data = InterHandDataset(
        root, "train", masks, train=True, augment=AugmentSettings(enabled=True), input_size=size
    )
    batch = 32
    for w in workers:
        loader = make_loader(data, batch, True, w)
        it = iter(loader)
        next(it)  # worker start-up and the first batch apart
        t0, seen, rows = time.perf_counter(), 0, []
        for _ in range(batches):
            try:
                b = next(it)
            except StopIteration:
                break
            seen += int(b.image.shape[0])
            rows += b.index.tolist()
        seconds = time.perf_counter() - t0
        rate = seen / seconds
        record = {"bench": "loader", "workers": w, "input_size": size, "batch": batch,
                  "samples": seen, "samples_per_s": rate,
                  "samples_per_s_per_worker": rate / max(w, 1)}  # fmt: skip
        if w == 0:  # the reference, right after: decoding the same JPEGs alone, same process
            t0 = time.perf_counter()
            for i in rows:
                load_rgb(data.split.image_path(i))
            decode = len(rows) / (time.perf_counter() - t0)
            record |= {"decode_only_per_s": decode, "loader_over_decode": rate / decode}
        _say(record)


def main() -> None:
    parser = Parser(prog="bench_scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--captures", type=positive_int, default=4)
    parser.add_argument("--cameras", type=positive_int, default=8)
    parser.add_argument("--frames", type=positive_int, default=25)
    parser.add_argument("--workers", type=positive_int, nargs="+", default=None)
    parser.add_argument("--shards", type=positive_int, nargs="+", default=None)
    parser.add_argument("--loader-workers", type=count, nargs="+", default=None)
    parser.add_argument("--batches", type=positive_int, default=20)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="tiny sizes; meaningless numbers")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    ladder = [c for c in (1, 2, 4, 8, 16, 32, 64) if c <= cores]
    workers = args.workers or ladder
    shards = args.shards or ladder
    loader_workers = args.loader_workers or [0, *ladder]
    size, batches = 256, args.batches
    if args.quick:
        args.captures, args.cameras, args.frames = 1, 2, 2
        workers, shards, loader_workers, size, batches = [1], [2], [0], 64, 1

    from render.synthetic_data.generate import SyntheticSettings, make_synthetic

    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        settings = SyntheticSettings(
            captures=args.captures, cameras=args.cameras, frames=args.frames, images=False,
            eval_captures=1,
        )  # fmt: skip
        root = make_synthetic(Path(tmp) / "root", settings, workers=1, show_progress=False)
        bench_build(root, Path(tmp) / "work", workers, shards)
    bench_loader(args.data_root, loader_workers, batches, size)


if __name__ == "__main__":
    sys.exit(run_main("bench_scaling", main))
