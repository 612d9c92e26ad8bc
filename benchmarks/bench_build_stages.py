"""`build-masks` end to end next to its stages alone, measured in the same run (ratios).

    python -m benchmarks.bench_build_stages [--data-root DIR] [--split train] [--repeats 3]
                                            [--json FILE]

Without --data-root: the synthetic default's annotations (`SyntheticSettings()`, the same
annotations as the default dataset under $DIGIT_HOME; build-masks reads no images), written to
a temporary folder. Each repeat times, in one process and in this order:

- end to end: `build_masks` of the split into a fresh file, one worker (the CLI's default):
  rendering, checksums, compression, piece files and assembly (planning and indexing apart,
  as the CLI's "in N s" line);
- the stages alone over the same pieces of 256 images: MANO (`pose_piece`: forward and camera
  transforms), rasterizing the labels alone (`rasterize_labels`, numba, every core: the
  reference), the build's rasterizer pass (`rasterize_labels_counts`: labels plus each hand's
  visible and silhouette pixel counts), checksums (`mask_checksums`) and compression
  (`compress_masks`, deflate level 1 in threads).

Reported per repeat and as the median over repeats: end to end / rasterizing the labels alone
(the build's speed as a multiple of its rasterizer's; also in CPU seconds, which a busy machine
disturbs less, with the build's planning and indexing counted against it), and end to end / the
sum of the stages (the build's own overhead). Ratios of one run survive a machine shared with
other work; the
absolute times do not. One JSON object per repeat on stdout, a table on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.options import positive_int, run_main

PIECE = 256


def _clock():
    return time.perf_counter(), time.process_time()


def _since(t: tuple[float, float]) -> tuple[float, float]:
    w, c = _clock()
    return w - t[0], c - t[1]


def split_setup(root: Path, split: str):
    """(hand model, packed two-hand topology with skinning part labels, the split) of an
    InterHand2.6M-layout root: what rendering a split's pieces needs."""
    from core.interhand.reader import InterHandSplit
    from render.hand_model import HandModel
    from render.mask_cache.scene import scene_topology, vertex_parts

    model = HandModel.from_dir(root / "mano")
    topo = scene_topology(model, vertex_parts(root / "mano", "skinning", model))
    return model, topo, InterHandSplit.from_root(root, split)


def stage_times(
    root: Path, split: str, raster=None, limit: int | None = None
) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of each stage alone over the split (its first `limit` images),
    pieces of `PIECE` images:
    "mano", "labels" (numba `rasterize_labels`, the reference), "labels_counts" (the build's
    pass with `raster`, a RasterSettings; default numba), "crc", "compress"."""
    from render.mask_cache.pieces import compress_masks
    from render.mask_cache.scene import mask_checksums, piece_input, pose_piece
    from render.raster import RasterSettings, rasterize_labels, rasterize_labels_counts

    model, topo, data = split_setup(root, split)
    canvas = tuple(int(x) for x in data.columns.hw.max(0))
    numba = RasterSettings(backend="numba")
    raster = raster or numba
    split_face = len(topo.hand_faces[0])
    totals = {k: [0.0, 0.0] for k in ("mano", "labels", "labels_counts", "crc", "compress")}

    def add(name: str, t: tuple[float, float]) -> None:
        w, c = _since(t)
        totals[name][0] += w
        totals[name][1] += c

    n = len(data) if limit is None else min(limit, len(data))
    for start in range(0, n, PIECE):
        inp = piece_input(data, start, min(start + PIECE, n))
        t = _clock()
        posed = pose_piece(model, inp)
        add("mano", t)
        scene = np.concatenate(posed.verts, axis=1)
        t = _clock()
        rasterize_labels(scene, topo.faces, topo.face_labels, inp.K, inp.hw, settings=numba)
        add("labels", t)
        t = _clock()
        masks, _ = rasterize_labels_counts(
            scene, topo.faces, topo.face_labels, inp.K, inp.hw, split_face,
            canvas_hw=canvas, settings=raster,
        )  # fmt: skip
        add("labels_counts", t)
        t = _clock()
        mask_checksums(masks, inp.hw)
        add("crc", t)
        t = _clock()
        compress_masks(masks)
        add("compress", t)
    return {k: (v[0], v[1]) for k, v in totals.items()}


def end_to_end(root: Path, split: str, out: Path) -> tuple[int, float, float]:
    """(images, build seconds as the CLI reports them, CPU seconds of the whole call)."""
    from render.mask_cache.builder import build_masks

    c0 = time.process_time()
    r = build_masks(split, root, out=out, overwrite=True, show_progress=False)
    return r.images, r.seconds, time.process_time() - c0


def one_repeat(root: Path, split: str, work: Path) -> dict:
    images, e2e, e2e_cpu = end_to_end(root, split, work / f"masks_{split}.h5")
    st = stage_times(root, split)
    stage_sum = st["mano"][0] + st["labels_counts"][0] + st["crc"][0] + st["compress"][0]
    return {
        "images": images,
        "end_to_end_s": e2e,
        "end_to_end_cpu_s": e2e_cpu,
        **{f"{k}_s": v[0] for k, v in st.items()},
        **{f"{k}_cpu_s": v[1] for k, v in st.items()},
        "stages_sum_s": stage_sum,
        "ratio_vs_labels": e2e / st["labels"][0],
        "ratio_cpu_vs_labels": e2e_cpu / st["labels"][1],
        "ratio_vs_stages": e2e / stage_sum,
        "load_1min": os.getloadavg()[0],
    }


def synthetic_default_annotations(folder: Path) -> Path:
    """The synthetic default's annotations (no images) under `folder`."""
    from render.synthetic_data.generate import SyntheticSettings, make_synthetic

    settings = SyntheticSettings(images=False)
    return make_synthetic(folder / "root", settings, show_progress=False)


def summary(runs: list[dict]) -> dict:
    """Median and range over repeats of the ratios, median of every time."""
    out = {"repeats": len(runs), "images": runs[0]["images"]}
    for key in runs[0]:
        if key.endswith("_s") or key.startswith("ratio"):
            values = [r[key] for r in runs]
            out[key] = statistics.median(values)
            if key.startswith("ratio"):
                out[f"{key}_range"] = [min(values), max(values)]
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--split", default="train")
    ap.add_argument("--repeats", type=positive_int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the summary here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = args.data_root or synthetic_default_annotations(work)
        end_to_end(root, args.split, work / "warm.h5")  # numba's cache, first imports
        stage_times(root, args.split, limit=PIECE)  # rasterize_labels too: no compile timed
        runs = []
        for k in range(args.repeats):
            r = one_repeat(root, args.split, work)
            runs.append(r)
            print(json.dumps({"repeat": k, **r}), flush=True)
    s = summary(runs)
    n = s["images"]
    print(
        f"build-masks --split {args.split}, {n} images, {s['repeats']} repeats "
        f"(os.cpu_count() {os.cpu_count()}, load {runs[0]['load_1min']:.1f} -> "
        f"{runs[-1]['load_1min']:.1f}):",
        file=sys.stderr,
    )
    rows = [
        ("end to end (build-masks)", "end_to_end"),
        ("rasterize labels alone (reference)", "labels"),
        ("build's rasterizer pass (labels + counts)", "labels_counts"),
        ("MANO + camera", "mano"),
        ("checksums", "crc"),
        ("compression (deflate 1)", "compress"),
        ("sum of the build's stages", "stages_sum"),
    ]
    for name, key in rows:
        sec = s[f"{key}_s"]
        print(f"  {name:44s} {sec:7.2f} s  {n / sec:8.0f} images/s", file=sys.stderr)
    for key, what in (
        ("ratio_vs_labels", "labels alone"),
        ("ratio_cpu_vs_labels", "labels alone, CPU seconds (planning included)"),
        ("ratio_vs_stages", "sum of stages"),
    ):
        lo, hi = s[f"{key}_range"]
        print(
            f"  end to end / {what}: {s[key]:.2f} x (repeats {lo:.2f} .. {hi:.2f})",
            file=sys.stderr,
        )
    if args.json:
        args.json.write_text(json.dumps(s, indent=1) + "\n")
    return s


if __name__ == "__main__":
    sys.exit(run_main("bench_build_stages", main, "the repeats printed so far stand"))
