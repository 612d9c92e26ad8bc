"""`digit-eval` folders side by side: arms of several runs (seeds), their headline numbers as
mean +- std, and each arm against a reference arm, paired image by image.

    python -m benchmarks.compare_evals \
        --arm digit   RUNS/digit0/eval RUNS/digit1/eval RUNS/digit2/eval \
        --arm control RUNS/ctl0/eval   RUNS/ctl1/eval   RUNS/ctl2/eval \
        --against control [--out comparison.md]

Each folder is what `digit-eval --out` wrote (metrics.json, predictions.npz), all on the same
data root and split. The paired tests recompute each image's MPJPE from predictions.npz and the
split's annotations with the official formulas (`digit.metrics`: each hand aligned at its own
root, the official validity), on the interacting images and on all of them: seed-averaged (each
image's error averaged over an arm's runs; bootstrap 95 % interval and Wilcoxon p,
`benchmarks.ablation_report.paired_test`) and run by run (an arm's i-th run against the
reference's i-th: give the runs in the same seed order). This is how the ablations at the
demo's recipe in BENCHMARKS.md were scored; `benchmarks.ablation` trains and scores its own set.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.ablation_report import PairedTest, mean_std, paired_test
from benchmarks.options import Parser, path_arg, run_main
from core.errors import DigitError
from core.files import atomic_write_bytes

INTERACTING = 2  # hand_type_code of an image with both hands (0 right, 1 left)
# (label, path into metrics.json, digits): the headline numbers of each arm
COLUMNS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("MPJPE", ("mpjpe_all",), 2),
    ("SH", ("mpjpe_sh",), 2),
    ("IH", ("mpjpe_ih",), 2),
    ("handedness", ("handedness_acc",), 3),
    ("MRRPE", ("mrrpe",), 2),
    ("mIoU", ("segmentation", "miou"), 3),
    ("R/L px single", ("segmentation", "side_accuracy_single"), 3),
    ("R/L px two-hand", ("segmentation", "side_accuracy_interacting"), 3),
    ("hands exchanged", ("hands_exchanged", "share"), 3),
)


@dataclass(frozen=True)
class EvalRun:
    """One `digit-eval` folder: metrics (metrics.json), image_id (N,) int64 and joints_cam_mm
    (N, 42, 3) float64 camera-frame predictions in mm (predictions.npz)."""

    folder: Path
    metrics: dict
    image_id: np.ndarray
    joints_cam_mm: np.ndarray

    @property
    def data(self) -> tuple[str, str]:
        """(data root, split) the folder was evaluated on."""
        data = self.metrics.get("data") or {}
        return str(data.get("root")), str(data.get("split"))

    def value(self, path: tuple[str, ...]) -> float:
        """The metrics.json number at `path`, NaN where absent or null (e.g. the mIoU of a
        network without segmentation)."""
        node = self.metrics
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return float(node) if isinstance(node, int | float) else float("nan")


def read_eval(folder: str | Path) -> EvalRun:
    """An `EvalRun`, or one DigitError line naming the file and what is wrong with it."""
    folder = Path(folder)
    metrics_path, npz_path = folder / "metrics.json", folder / "predictions.npz"
    for path in (metrics_path, npz_path):
        if not path.is_file():
            raise DigitError(f"{path}: not found (is {folder} a digit-eval --out folder?)")
    try:
        metrics = json.loads(metrics_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DigitError(f"{metrics_path}: not readable JSON ({exc})") from None
    try:
        with np.load(npz_path) as npz:
            image_id = np.asarray(npz["image_id"], dtype=np.int64)
            joints = np.asarray(npz["joints_cam_mm"], dtype=np.float64)
    except (OSError, ValueError, KeyError) as exc:
        raise DigitError(f"{npz_path}: not a digit-eval predictions file ({exc})") from None
    if joints.shape != (len(image_id), 42, 3):
        raise DigitError(
            f"{npz_path}: joints_cam_mm is {joints.shape}, expected ({len(image_id)}, 42, 3)"
        )
    return EvalRun(folder, metrics, image_id, joints)


@dataclass(frozen=True)
class SplitTruth:
    """The annotations the per-image errors need: image_id (N,), joints_cam (N, 42, 3) mm,
    joint_valid (N, 42) bool (official validity), interacting (N,) bool."""

    image_id: np.ndarray
    joints_cam: np.ndarray
    joint_valid: np.ndarray
    interacting: np.ndarray


def split_truth(root: str | Path, split: str) -> SplitTruth:
    from core.interhand.reader import InterHandSplit

    g = InterHandSplit.from_root(Path(root), split).gather(slice(None))
    return SplitTruth(
        np.asarray(g.image_id, dtype=np.int64),
        np.asarray(g.joints_cam, dtype=np.float64),
        np.asarray(g.joint_valid, dtype=bool),
        np.asarray(g.hand_type_code) == INTERACTING,
    )


def per_image_mpjpe(run: EvalRun, truth: SplitTruth) -> np.ndarray:
    """(N,) mm over the split's images in `truth` order: each image's MPJPE (official formulas),
    NaN for images the run did not evaluate or without a valid joint."""
    from digit.metrics import mpjpe_per_image, per_joint_errors

    row = {int(i): k for k, i in enumerate(truth.image_id)}
    unknown = [int(i) for i in run.image_id if int(i) not in row]
    if unknown:
        raise DigitError(
            f"{run.folder / 'predictions.npz'}: image_id {unknown[0]} is not in the split "
            f"({len(unknown)} unknown)"
        )
    rows = np.array([row[int(i)] for i in run.image_id], dtype=np.int64)
    errors = per_joint_errors(run.joints_cam_mm, truth.joints_cam[rows], truth.joint_valid[rows])
    out = np.full(len(truth.image_id), np.nan)
    out[rows] = mpjpe_per_image(errors)
    return out


def _cell(values: list[float], digits: int) -> str:
    """mean ± sample std of the finite values; "(k of n)" where some runs lack the number (an
    older digit-eval wrote no such key)."""
    mean, std, n = mean_std(values)
    if n == 0:
        return "n/a"
    text = f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if n > 1 else "")
    return text + (f" ({n} of {len(values)})" if n < len(values) else "")


def _mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of a - b over the images where both are finite (`PairedTest.mean_diff` without its
    bootstrap and test, for the run-by-run column); NaN if there are none."""
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    return float(d.mean()) if d.size else float("nan")


def _paired_cell(test: PairedTest) -> str:
    if not math.isfinite(test.mean_diff):
        return "n/a"
    return (
        f"{test.mean_diff:+.2f} [{test.ci_low:+.2f}, {test.ci_high:+.2f}] "
        f"p {test.p_wilcoxon:.1g} (n {test.n})"
    )


def compare(arms: dict[str, list[EvalRun]], against: str, truth: SplitTruth) -> str:
    """The markdown report: one row per arm (mean ± sample std over its runs), then each other
    arm minus `against`, paired per image on interacting and on all images."""
    lines = [
        "| arm | runs | " + " | ".join(label for label, _, _ in COLUMNS) + " |",
        "|---|---:|" + "---:|" * len(COLUMNS),
    ]
    for name, runs in arms.items():
        cells = [_cell([r.value(path) for r in runs], d) for _, path, d in COLUMNS]
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    errors = {name: np.stack([per_image_mpjpe(r, truth) for r in rs]) for name, rs in arms.items()}
    ref = errors[against]
    lines += [
        "",
        f"Paired per-image MPJPE, arm minus `{against}` (mm; mean [95 % bootstrap interval], "
        "Wilcoxon p, images): seed-averaged, then run by run (the i-th runs of each arm).",
        "",
        "| arm | images | seed-averaged | run by run (mean) |",
        "|---|---|---|---|",
    ]
    for name, err in errors.items():
        if name == against:
            continue
        for label, keep in (
            ("interacting", truth.interacting),
            ("all", np.ones_like(ref[0], bool)),
        ):
            a = np.where(keep, err.mean(0), np.nan)
            b = np.where(keep, ref.mean(0), np.nan)
            pairs = range(min(len(err), len(ref)))
            by_run = ", ".join(
                f"{_mean_difference(np.where(keep, err[i], np.nan), ref[i]):+.2f}" for i in pairs
            )
            lines.append(f"| {name} | {label} | {_paired_cell(paired_test(a, b))} | {by_run} |")
    return "\n".join(lines) + "\n"


def load_arms(specs: list[list[str]]) -> dict[str, list[EvalRun]]:
    """`--arm NAME FOLDER...` lists -> {name: runs}; every folder on the same data and split."""
    arms: dict[str, list[EvalRun]] = {}
    for spec in specs:
        name, folders = spec[0], spec[1:]
        if not folders:
            raise DigitError(f"--arm {name}: give at least one digit-eval folder after the name")
        if name in arms:
            raise DigitError(f"--arm {name}: named twice")
        arms[name] = [read_eval(f) for f in folders]
    runs = [r for rs in arms.values() for r in rs]
    for run in runs[1:]:
        if run.data != runs[0].data:
            raise DigitError(
                f"{run.folder}: evaluated on {run.data}, but {runs[0].folder} on "
                f"{runs[0].data}; compare runs on the same data and split"
            )
    return arms


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m benchmarks.compare_evals", description=__doc__.split("\n")[0])
    parser.add_argument("--arm", nargs="+", action="append", required=True, metavar="NAME DIR")
    parser.add_argument("--against", required=True, help="the reference arm's name")
    parser.add_argument("--out", type=path_arg, default=None, help="also write the markdown here")
    args = parser.parse_args(argv)

    def run() -> None:
        arms = load_arms(args.arm)
        if args.against not in arms:
            raise DigitError(f"--against {args.against}: no such arm ({', '.join(arms)})")
        root, split = next(iter(arms.values()))[0].data
        report = compare(arms, args.against, split_truth(root, split))
        print(report, end="")
        if args.out is not None:
            atomic_write_bytes(args.out, report.encode())

    return run_main("compare_evals", run)


if __name__ == "__main__":
    sys.exit(main())
