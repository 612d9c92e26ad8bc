"""How fast the learner fits what it sees: a fixed set of training images, augmentation off,
scored on those same images by `digit-eval`'s code as training goes.

    python -m benchmarks.overfit [--steps 1000] [--images 64] [--eval-every 100]
        [--preset cpu] [--set KEY=VALUE ...]   # any digit-train config key, e.g. lr=3e-3
        [--label NAME]                         # the run's name in the results (default: the --set)
        [--data-root DIR] [--masks DIR]        # default: the synthetic default and its masks
        [--runs DIR] [--results FILE]          # run folders; benchmarks/results/overfit.json

The first `--images` images of the train split (data.json order) are the training set and the
evaluation set: the same crops (the dataset without augmentation gives a training item equal to
the evaluation item), scored with ground-truth root depths. The curve records, per validation,
the MPJPE (official pooling; where a joint has no valid sample among so few images, the mean of
the per-joint means) and its two sources: "2D" (predicted u, v with the true root-relative
depths) and "depth" (true u, v with the predicted depths). The run counts optimizer steps, so
the curve does not depend on the machine's speed; wall time is reported beside it.
Results are kept per label in the results file (a rerun of a label replaces its entry).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from core.errors import DigitError
from core.files import atomic_write_bytes

RESULTS = Path("benchmarks/results/overfit.json")


def parse_sets(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings -> {key: YAML-parsed value} (so 3e-3 is a number, true a bool)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DigitError(f"--set: expected KEY=VALUE, got {item!r}")
        if key in out:
            raise DigitError(f"--set: {key} given twice")
        out[key] = yaml.safe_load(value)
    return out


def overfit_config(preset: str, images: int, steps: int, eval_every: int, out: Path, sets: dict):
    """The TrainConfig of one overfit run: `preset` with augmentation off, `steps` optimizer
    steps, a validation every `eval_every` steps, no time limit, then the `--set` values."""
    from digit.train import TrainConfig

    values = {
        "augment": False,
        "train_limit": images,
        "max_steps": steps,
        "time_limit": None,
        "eval_every": eval_every,
        "save_every": 0,
        "log_every": max(1, min(20, steps // 20)),
        "out": str(out),
    }
    return TrainConfig.preset_config(preset).updated(values).updated(sets, "--set")


def overfit_datasets(cfg, data_root: Path, masks: Path | None):
    """(train, evaluation) datasets over the same first `cfg.train_limit` train images."""
    from digit.data.augment import AugmentSettings
    from digit.data.dataset import InterHandDataset

    common = {
        "input_size": cfg.network.input_size,
        "antialias": cfg.network.antialias,
        "seed": cfg.seed,
        "limit": cfg.train_limit,
    }
    train_set = InterHandDataset(
        data_root, "train", masks, train=True, augment=AugmentSettings(enabled=False), **common
    )
    eval_set = InterHandDataset(data_root, "train", masks, train=False, **common)
    return train_set, eval_set


def learning_curve(run_dir: Path) -> list[dict]:
    """(step, seconds, MPJPE, its 2D and depth parts) of each validation, from metrics.jsonl."""
    from digit.train.loop import best_metric

    seconds = {}
    curve = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("kind") == "train":
            seconds[rec["step"]] = rec["seconds"]
        elif rec.get("kind") == "val":
            curve.append(
                {
                    "step": rec["step"],
                    "seconds": seconds.get(rec["step"]),
                    "mpjpe": best_metric(rec),
                    "mpjpe_2d": rec.get("mpjpe_2d"),
                    "mpjpe_depth": rec.get("mpjpe_depth"),
                }
            )
    return curve


def run_overfit(cfg, data_root: Path, masks: Path | None, show_progress: bool = True) -> dict:
    """Train `cfg` from scratch on its images and return the run's record."""
    from digit.data.dataset import make_loader
    from digit.train import train

    train_set, eval_set = overfit_datasets(cfg, data_root, masks)
    t0 = time.perf_counter()
    result = train(
        cfg,
        train_set=train_set,
        val_set=eval_set,
        loader_fn=make_loader,
        show_progress=show_progress,
    )
    return {
        "steps": result.step,
        "images": cfg.train_limit,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "curve": learning_curve(Path(cfg.out)),
    }


def save_record(path: Path, label: str, record: dict) -> None:
    """Put `record` under `label` in the results file (atomically; other labels kept)."""
    doc: dict = {}
    if path.is_file():
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DigitError(f"{path}: unreadable results file ({exc})") from None
        if not isinstance(doc, dict):
            raise DigitError(f"{path}: not an overfit results file")
    doc[label] = record
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(doc, indent=1) + "\n").encode())


def curve_table(record: dict) -> str:
    """A markdown table of the record's curve."""

    def mm(x) -> str:
        return "-" if x is None else f"{x:.1f}"

    rows = ["| step | MPJPE mm | 2D mm | depth mm | s |", "|---:|---:|---:|---:|---:|"]
    for p in record["curve"]:
        sec = "-" if p["seconds"] is None else f"{p['seconds']:.0f}"
        rows.append(
            f"| {p['step']} | {mm(p['mpjpe'])} | {mm(p['mpjpe_2d'])} | "
            f"{mm(p['mpjpe_depth'])} | {sec} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--label", default=None)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--masks", type=Path, default=None)
    parser.add_argument("--runs", type=Path, default=None)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    for name in ("steps", "images", "eval_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expected a positive integer")

    from core.paths import digit_home, mask_cache_path
    from render.mask_cache.builder import build_masks
    from render.synthetic_data.default import prepare_data_root

    try:
        sets = parse_sets(args.sets)
        label = args.label or (" ".join(args.sets) or f"{args.preset} preset")
        runs = args.runs or digit_home() / "overfit" / "runs"
        run_dir = runs / label.replace(" ", "_").replace("/", "-")
        if run_dir.exists():
            # a rerun starts afresh, but only a digit-train run folder is ours to remove
            if not (run_dir / "config.yaml").is_file():
                raise DigitError(f"{run_dir}: exists and is not a run folder; pass another --runs")
            import shutil

            shutil.rmtree(run_dir)
        cfg = overfit_config(args.preset, args.images, args.steps, args.eval_every, run_dir, sets)
        data_root = prepare_data_root(args.data_root)
        masks = mask_cache_path(args.masks, data_root, "train")
        if not masks.is_file():
            print(f"overfit: building the train masks in {masks} (once)", file=sys.stderr)
            build_masks("train", data_root, out=masks)
        record = {"label": label, "preset": args.preset, "sets": sets} | run_overfit(
            cfg, data_root, masks.parent
        )
        save_record(args.results, label, record)
    except DigitError as exc:
        print(f"overfit: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("overfit: interrupted; nothing was recorded for this run", file=sys.stderr)
        return 130
    print(f"overfit: {label}: {record['steps']} steps in {record['wall_seconds']:.0f} s")
    print(curve_table(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
