"""The paper's claim, measured: DIGIT against its ablation variants on interacting hands.

    python -m benchmarks.ablation [--steps 500] [--seeds 0 1 2]
        [--variants baseline segm_loss digit control]   # --labels adds class_labels, segm_only
        [--data-root DIR]     # default: the interacting synthetic set, made on first use
        [--runs DIR]          # run folders (default: $DIGIT_HOME/ablation/runs)
        [--results DIR]       # ablation.json, ablation.md and figures (benchmarks/results)
        [--report-only]       # rewrite the summary and figures from ablation.json
        [--rescore]           # score every finished run's last.pt again (a newer digit-eval)

Every run of a set trains the `cpu` preset (pretrained lite0 backbone, the preset's input size)
with the same data, seed list and number of optimizer steps (wall time is reported, not equalised:
the baseline is faster), then its last checkpoint is scored on the whole test split by
`digit-eval`'s code with the ground-truth root depths. A run is recorded in ablation.json as soon
as it ends, so the set can be run in several sittings: finished runs are skipped, a run cut short
resumes from its last.pt. The set's settings are stored with the results; a rerun with other
settings is refused (give another --results folder). The data is the `--mix interacting` synthetic
set (most frames interacting, hands in contact and overlapping), announced on stderr when it is
made.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ablation_report import read_results
from benchmarks.options import Parser, count, output_folder, path_arg, positive_int, run_main
from core.errors import DigitError
from core.files import atomic_write_bytes

# The control: `digit`'s network, parameter for parameter, trained without the segmentation
# loss (the paper's SF*), so `digit` minus `control` is what the part segmentation's supervision
# adds, with the fusion UNet and its extra parameters on both sides. Its part head learns from
# the pose losses through S' (SF*'s "features"), so it is never detached.
ARMS: dict[str, dict[str, Any]] = {
    "control": {"variant": "digit", "weight_segmentation": 0.0, "semantic_detach": False}
}
DEFAULT_VARIANTS = ("baseline", "segm_loss", "digit", "control")
LABEL_VARIANTS = ("class_labels", "segm_only")
RESULTS_JSON = "ablation.json"
# The data made for the question: 7 sequences per capture (5 interacting), subjects disjoint.
DATA_SETTINGS = {"captures": 20, "eval_captures": 5, "cameras": 5, "frames": 8}
DATA_NAME = "ablation-interacting"
# metrics.json keys copied into each run's record (absent ones are recorded as None)
ANALYSIS_KEYS = (
    "mpjpe_image_mean_by_bin",
    "segm_miou",
    "segmentation",
    "pck_auc",
    "pck_3d",
    "bone_asymmetry_mm",
    "bone_asymmetry",
)


def default_data_root() -> Path:
    from core.paths import SYNTHETIC_VERSION, digit_home

    return digit_home() / f"{DATA_NAME}-v{SYNTHETIC_VERSION}"


def prepare_data(data_root: Path | None, log=print) -> Path:
    """The ablation's dataset with train and test masks; the default one is generated and its
    masks built when missing, each step announced through `log`."""
    from core.paths import SYNTHETIC_MARKER, mask_cache_path, resolve_data_root
    from render.mask_cache.builder import build_masks
    from render.synthetic_data.generate import SyntheticSettings, make_synthetic

    if data_root is None:
        data_root = default_data_root()
        if not (data_root / SYNTHETIC_MARKER).is_file():
            log(f"ablation: creating the interacting synthetic dataset in {data_root} (once)")
            settings = SyntheticSettings(mix="interacting", **DATA_SETTINGS)
            make_synthetic(data_root, settings, overwrite=True)
    root = resolve_data_root(data_root)
    for split in ("train", "test"):
        path = mask_cache_path(None, root, split)
        if not path.is_file():
            log(f"ablation: building the {split} masks in {path} (once)")
            build_masks(split, root, out=path)
    return root


def run_config(variant: str, seed: int, steps: int, data_root: Path, run_dir: Path, **extra):
    """The TrainConfig of one run: the cpu preset with this variant (or arm, `ARMS`), seed and
    step count, validating 3 times on the first `val_limit` val images (learning curves)."""
    from digit.train import TrainConfig

    values = {
        "variant": variant,
        **ARMS.get(variant, {}),
        "seed": seed,
        "max_steps": steps,
        "data_root": str(data_root),
        "out": str(run_dir),
        "val_limit": 300,
        "eval_every": max(1, steps // 3),
        "save_every": max(1, steps // 3),
        "log_every": max(1, min(20, steps // 10)),
    } | extra
    return TrainConfig.preset_config("cpu").updated(values)


def _learning_curve(run_dir: Path) -> list[dict]:
    """(step, images seen, val MPJPE) of every validation of a run, from metrics.jsonl."""
    curve = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill: the run logs it again
            continue
        if rec.get("kind") == "val":
            curve.append(
                {"step": rec["step"], "images": rec.get("images_seen"), "mpjpe": rec["mpjpe_all"]}
            )
    return curve


def _num(x) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else round(x, 3)


def run_record(
    variant: str, seed: int, cfg, train_seconds: float, result, eval_dir: Path, interacting
) -> dict:
    """One run's line of ablation.json: settings, cost, test metrics and per-image errors.
    result: the test split's `EvalResult`; eval_dir: its digit-eval folder (for the mean-pose
    reference scored beside it); interacting (N,) bool per test image."""
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    summary = result.summary()
    return {
        "variant": variant,
        "seed": seed,
        "steps": cfg.max_steps,
        "images_seen": cfg.max_steps * cfg.images_per_step,
        "train_seconds": round(train_seconds, 1),
        "mpjpe_sh": summary["mpjpe_sh"],
        "mpjpe_ih": summary["mpjpe_ih"],
        "mpjpe_all": summary["mpjpe_all"],
        "mrrpe": summary["mrrpe"],
        "handedness_acc": summary["handedness_acc"],
        "mpjpe_by_bin": summary["mpjpe_by_bin"],
        # the paper's analysis outputs, where this digit-eval writes them
        **{k: summary.get(k) for k in ANALYSIS_KEYS},
        "mean_pose": metrics.get("references", {}).get("mean-pose"),
        "learning_curve": _learning_curve(Path(cfg.out)),
        # per test image, for the paired test (NaN -> None); same order in every run
        "per_image": {
            "mpjpe": [_num(x) for x in result.mpjpe_image],
            "interacting": [bool(x) for x in interacting],
            "bin": [str(b) for b in result.interaction_bin],
        },
    }


class Results:
    """ablation.json: {"settings": ..., "runs": [run records]}, rewritten atomically after each
    run. Settings of an existing file must equal this set's."""

    def __init__(self, path: Path, settings: dict) -> None:
        self.path = path
        doc = {"settings": settings, "runs": []}
        if path.is_file():
            doc = read_results(path)
            if doc.get("settings") != settings:
                raise DigitError(
                    f"{path}: holds a set with other settings ({doc.get('settings')}); "
                    "give another --results folder or the same options"
                )
        self.doc = doc

    def done(self, variant: str, seed: int) -> bool:
        return any(r["variant"] == variant and r["seed"] == seed for r in self.doc["runs"])

    def add(self, record: dict) -> None:
        self.doc["runs"].append(record)
        self.add_all()

    def add_all(self) -> None:
        """Write the document (runs sorted by variant and seed), atomically."""
        self.doc["runs"].sort(key=lambda r: (r["variant"], r["seed"]))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, (json.dumps(self.doc, indent=1) + "\n").encode())


def train_and_score(
    variant: str, seed: int, steps: int, data_root: Path, run_dir: Path, log=print, **extra
) -> dict:
    """Train one run (resuming a run cut short), score its last.pt on the test split, and
    return its record."""
    from digit.train import train

    cfg = run_config(variant, seed, steps, data_root, run_dir, **extra)
    resume = (run_dir / "last.pt").is_file()
    t0 = time.perf_counter()
    result = train(cfg, resume=resume, show_progress=True)
    log(f"ablation: {variant} seed {seed}: {result.step} steps in {time.perf_counter() - t0:.0f} s")
    scored, eval_dir, interacting = score_run(run_dir, data_root)
    return run_record(variant, seed, cfg, result.train_seconds, scored, eval_dir, interacting)


def score_run(run_dir: Path, data_root: Path) -> tuple[Any, Path, list[bool]]:
    """digit-eval's scoring of a run's last.pt on the whole test split (ground-truth root
    depths, the mean-pose reference beside it): (EvalResult, its folder, interacting flags)."""
    from core.interhand.reader import InterHandSplit
    from digit.evaluate import run_evaluation

    eval_dir = run_dir / "test_eval"
    scored = run_evaluation(
        run_dir / "last.pt",
        "test",
        data_root,
        out=eval_dir,
        show_progress=True,
        references=("mean-pose",),
    )
    split = InterHandSplit.from_root(data_root, "test")
    interacting = [split[i].hand_type == "interacting" for i in range(len(split))]
    return scored, eval_dir, interacting


def rescore(results_dir: Path, runs: Path, log=print) -> None:
    """Score every recorded run's last.pt again and update its test metrics in place (its
    training, cost and learning curve stay): for metrics added to digit-eval after a set ran."""
    from digit.train import resolve_config

    path = results_dir / RESULTS_JSON
    if not path.is_file():
        raise DigitError(f"{path}: no results to rescore")
    doc = read_results(path)
    results = Results(path, doc["settings"])
    data_root = Path(doc["settings"]["data_root"])
    for i, old in enumerate(doc["runs"]):
        run_dir = runs / f"{old['variant']}-seed{old['seed']}"
        if not (run_dir / "last.pt").is_file():
            raise DigitError(f"{run_dir / 'last.pt'}: missing, cannot rescore {old['variant']}")
        cfg = resolve_config(config_file=run_dir / "config.yaml")
        scored, eval_dir, interacting = score_run(run_dir, data_root)
        new = run_record(
            old["variant"], old["seed"], cfg, old["train_seconds"], scored, eval_dir, interacting
        )
        results.doc["runs"][i] = new
        log(f"ablation: rescored {old['variant']} seed {old['seed']}")
    results.add_all()


def run_set(
    variants: list[str],
    seeds: list[int],
    steps: int,
    data_root: Path,
    runs: Path,
    results_dir: Path,
    log=print,
    **extra,
) -> Results:
    """Train and score every (variant, seed) not yet in `results_dir/ablation.json`."""
    from core.interhand.reader import InterHandSplit

    settings = {
        "steps": steps,
        "preset": "cpu",
        "data_root": str(data_root),
        "test_images": len(InterHandSplit.from_root(data_root, "test")),
        "extra": extra,
    }
    results = Results(results_dir / RESULTS_JSON, settings)
    for seed in seeds:  # seeds outermost: a set cut short still compares variants
        for variant in variants:
            if results.done(variant, seed):
                log(f"ablation: {variant} seed {seed}: done, skipped")
                continue
            run_dir = runs / f"{variant}-seed{seed}"
            results.add(train_and_score(variant, seed, steps, data_root, run_dir, log, **extra))
    return results


def main(argv: list[str] | None = None) -> int:
    from digit.model import VARIANTS

    parser = Parser(prog="ablation", description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=positive_int, default=500)
    parser.add_argument("--seeds", type=count, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=[*VARIANTS, *ARMS]
    )
    parser.add_argument("--labels", action="store_true", help="add class_labels and segm_only")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--runs", type=path_arg, default=None)
    parser.add_argument("--results", type=path_arg, default=Path("benchmarks/results"))
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--rescore", action="store_true")
    args = parser.parse_args(argv)

    from benchmarks.ablation_report import write_report
    from core.paths import digit_home

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def run() -> None:
        runs = output_folder(args.runs or digit_home() / "ablation" / "runs", "--runs")
        output_folder(args.results, "--results")  # before hours of training
        if args.rescore:
            rescore(args.results, runs, log)
        elif not args.report_only:
            variants = list(args.variants) + (list(LABEL_VARIANTS) if args.labels else [])
            data_root = prepare_data(args.data_root, log)
            run_set(variants, args.seeds, args.steps, data_root, runs, args.results, log)
        write_report(args.results / RESULTS_JSON, args.results, log)

    return run_main("ablation", run, "every finished run is in ablation.json")


if __name__ == "__main__":
    sys.exit(main())
