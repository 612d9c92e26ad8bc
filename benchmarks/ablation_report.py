"""The ablation's summary: mean +- std over seeds, the paired test of each variant against the
baseline on interacting images, and the figures (MPJPE per interaction bin, learning curves).

Reads `ablation.json` (benchmarks/ablation.py) and writes `ablation.md`, `ablation_by_bin.png` and
`ablation_curves.png` beside it. The statistics are small pure functions (tested by hand).
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from core.errors import DigitError
from core.files import atomic_path, atomic_write_bytes

METRICS = (
    ("mpjpe_ih", "IH MPJPE (mm)"),
    ("mpjpe_sh", "SH MPJPE (mm)"),
    ("mpjpe_all", "all MPJPE (mm)"),
    ("mrrpe", "MRRPE (mm)"),
    ("handedness_acc", "handedness"),
    ("segm_miou", "segm. mIoU"),
    ("pck_auc", "PCK AUC 0-50"),
    ("bone_asymmetry_mm", "L/R bone asym. (mm)"),
    ("train_seconds", "train s"),
)
BINS = ("single", "0", "(0,0.33]", "(0.33,0.67]", "(0.67,1]")
BASELINE = "baseline"
BOOTSTRAP_SAMPLES = 10_000


def _value(run: dict, key: str) -> float:
    """A run's metric as a float (NaN where missing, e.g. mIoU of a variant without
    segmentation)."""
    value = run.get(key)
    return float("nan") if value is None else float(value)


def mean_std(values: list[float]) -> tuple[float, float, int]:
    """(mean, sample std (ddof 1; NaN for one value), count) over the finite values."""
    x = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan"), 0
    std = float(x.std(ddof=1)) if x.size > 1 else float("nan")
    return float(x.mean()), std, int(x.size)


def seed_averaged_errors(runs: list[dict], interacting_only: bool = True) -> np.ndarray:
    """Per test image, the MPJPE averaged over the given runs (seeds) of one variant.

    runs: records of one variant (per_image.mpjpe lists in the same image order). Returns (N,)
    float64 over all test images, NaN where any run has no error for the image or (with
    `interacting_only`) where the image is not interacting."""
    errors = np.array(
        [[np.nan if e is None else e for e in r["per_image"]["mpjpe"]] for r in runs],
        dtype=np.float64,
    )
    mean = errors.mean(axis=0)  # NaN if any seed is NaN
    if interacting_only:
        keep = np.asarray(runs[0]["per_image"]["interacting"], dtype=bool)
        mean = np.where(keep, mean, np.nan)
    return mean


@dataclass(frozen=True)
class PairedTest:
    """variant minus baseline on the same images: n images, mean and median difference (mm),
    the paired bootstrap 95 % interval of the mean difference, and the two-sided Wilcoxon
    signed-rank p-value."""

    n: int
    mean_diff: float
    median_diff: float
    ci_low: float
    ci_high: float
    p_wilcoxon: float


def paired_test(a: np.ndarray, b: np.ndarray, seed: int = 0) -> PairedTest:
    """a, b (N,) per-image errors (NaN = unusable) of a variant and the baseline -> PairedTest
    of a - b over the images where both are finite."""
    from scipy.stats import wilcoxon

    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    if d.size < 2:
        nan = float("nan")
        return PairedTest(int(d.size), nan, nan, nan, nan, nan)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, (BOOTSTRAP_SAMPLES, d.size))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    p = float(wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    return PairedTest(int(d.size), float(d.mean()), float(np.median(d)), float(low), float(high), p)


def bin_means(run: dict) -> dict[str, tuple[float, int]]:
    """A run's mean of per-image MPJPE per interaction bin: {bin: (mm, images)}."""
    errors = np.array([np.nan if e is None else e for e in run["per_image"]["mpjpe"]])
    bins = np.asarray(run["per_image"]["bin"], dtype=object)
    out = {}
    for label in BINS:
        x = errors[(bins == label) & np.isfinite(errors)]
        out[label] = (float(x.mean()) if x.size else float("nan"), int(x.size))
    return out


def by_variant(runs: list[dict]) -> dict[str, list[dict]]:
    """Runs grouped by variant (in first-seen order), each group sorted by seed."""
    out: dict[str, list[dict]] = {}
    for run in runs:
        out.setdefault(run["variant"], []).append(run)
    return {v: sorted(rs, key=lambda r: r["seed"]) for v, rs in out.items()}


def _common_seeds(a: list[dict], b: list[dict]) -> tuple[list[dict], list[dict]]:
    seeds = sorted({r["seed"] for r in a} & {r["seed"] for r in b})
    pick = lambda runs: [r for r in runs if r["seed"] in seeds]  # noqa: E731
    return pick(a), pick(b)


def _fmt(mean: float, std: float, n: int, key: str) -> str:
    if n == 0:
        return "n/a"
    digits = 3 if key in ("handedness_acc", "segm_miou", "pck_auc") else 1
    if key == "train_seconds":
        digits = 0
    text = f"{mean:.{digits}f}"
    return text + (f" ± {std:.{digits}f}" if n > 1 else "")


def summary_markdown(doc: dict, command: str) -> str:
    """The BENCHMARKS-ready summary of a results document."""
    groups = by_variant(doc["runs"])
    s = doc["settings"]
    lines = [
        f"Set: {s['steps']} optimizer steps per run, preset `{s['preset']}`, "
        f"test split of {s['test_images']} images ({s['data_root']}).",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}; date {date.today()}.",
        f"Command: `{command}`",
        "",
        "| variant | seeds | " + " | ".join(label for _, label in METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    for variant, runs in groups.items():
        cells = [_fmt(*mean_std([_value(r, k) for r in runs]), k) for k, _ in METRICS]
        seeds = ",".join(str(r["seed"]) for r in runs)
        lines.append(f"| {variant} | {seeds} | " + " | ".join(cells) + " |")
    ref = [r.get("mean_pose") or {} for r in doc["runs"]]
    ref_ih = mean_std([float(x.get("mpjpe_ih") or np.nan) for x in ref])[0]
    ref_all = mean_std([float(x.get("mpjpe_all") or np.nan) for x in ref])[0]
    lines += ["", f"Constant mean-pose predictor on the same test images: IH {ref_ih:.1f} mm, "
              f"all {ref_all:.1f} mm."]  # fmt: skip
    if BASELINE in groups:
        lines += [
            "",
            "Paired test on interacting test images (each image's MPJPE averaged over the seeds "
            "both variants have; Wilcoxon signed-rank, two-sided; 95 % paired-bootstrap "
            "interval of the mean difference):",
            "",
            "| variant - baseline | images | mean diff (mm) | 95 % CI | median diff | p |",
            "|---|---|---|---|---|---|",
        ]
        for variant, runs in groups.items():
            if variant == BASELINE:
                continue
            a, b = _common_seeds(runs, groups[BASELINE])
            if not a:
                continue
            t = paired_test(seed_averaged_errors(a), seed_averaged_errors(b))
            lines.append(
                f"| {variant} | {t.n} | {t.mean_diff:+.2f} | [{t.ci_low:+.2f}, {t.ci_high:+.2f}]"
                f" | {t.median_diff:+.2f} | {t.p_wilcoxon:.3g} |"
            )
    lines += [
        "",
        "Mean of per-image MPJPE (mm) per interaction bin (right/left mask IoU), mean ± std "
        "over seeds; images per bin in the header:",
        "",
    ]
    counts = bin_means(doc["runs"][0]) if doc["runs"] else {}
    lines.append("| variant | " + " | ".join(f"{b} ({counts[b][1]})" for b in BINS) + " |")
    lines.append("|---|" + "---|" * len(BINS))
    for variant, runs in groups.items():
        per = [bin_means(r) for r in runs]
        cells = [_fmt(*mean_std([p[b][0] for p in per]), "mpjpe") for b in BINS]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_by_bin(doc: dict, path: Path) -> None:
    """Fig. 8 style: MPJPE per interaction bin per variant, error bars = std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = by_variant(doc["runs"])
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=120)
    width = 0.8 / max(1, len(groups))
    x = np.arange(len(BINS))
    for i, (variant, runs) in enumerate(groups.items()):
        per = [bin_means(r) for r in runs]
        stats = [mean_std([p[b][0] for p in per]) for b in BINS]
        means = [m for m, _, _ in stats]
        errs = [0.0 if not np.isfinite(s) else s for _, s, _ in stats]
        ax.bar(x + (i - (len(groups) - 1) / 2) * width, means, width, yerr=errs, capsize=3,
               label=f"{variant} ({len(runs)} seeds)")  # fmt: skip
    counts = bin_means(doc["runs"][0])
    ax.set_xticks(x, [f"{b}\n{counts[b][1]} images" for b in BINS])
    ax.set_xlabel("interaction degree: IoU of the right and left hand masks (single = one hand)")
    ax.set_ylabel("MPJPE, mean over images (mm)")
    ax.set_title(f"Test MPJPE by interaction degree ({doc['settings']['steps']} steps per run)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def plot_curves(doc: dict, path: Path) -> None:
    """Validation MPJPE against optimizer steps: each seed thin, the mean over seeds thick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for i, (variant, runs) in enumerate(by_variant(doc["runs"]).items()):
        colour = f"C{i}"
        curves = [
            [{"step": p["step"], "mpjpe": np.nan if p["mpjpe"] is None else p["mpjpe"]} for p in c]
            for c in (r["learning_curve"] for r in runs)
            if c
        ]
        for c in curves:
            ax.plot([p["step"] for p in c], [p["mpjpe"] for p in c], color=colour, alpha=0.3, lw=1)
        steps = sorted({p["step"] for c in curves for p in c})
        mean = [
            np.nanmean([p["mpjpe"] for c in curves for p in c if p["step"] == s]) for s in steps
        ]
        ax.plot(steps, mean, color=colour, lw=2.2, marker="o", label=f"{variant} (mean of seeds)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("validation MPJPE (mm)")
    ax.set_title("Learning curves of the ablation runs")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def read_results(path: Path) -> dict:
    """An ablation.json document ({"settings": {...}, "runs": [...]}); a file that is truncated,
    not JSON or not such a document is one DigitError line naming it."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DigitError(
            f"{path}: unreadable results file ({why}); it is rewritten whole after each run, "
            "so restore it or give another --results folder"
        ) from None
    ok = isinstance(doc, dict) and isinstance(doc.get("settings"), dict)
    if not ok or not isinstance(doc.get("runs"), list):
        raise DigitError(f"{path}: not an ablation results file (no settings and runs)")
    return doc


def write_report(results: Path, out: Path, log=print, command: str | None = None) -> None:
    """ablation.md, ablation_by_bin.png and ablation_curves.png from `results` into `out`."""
    if not Path(results).is_file():
        raise DigitError(f"{results}: no ablation results yet (run python -m benchmarks.ablation)")
    doc = read_results(Path(results))
    if not doc["runs"]:
        log(f"ablation: {results} holds no finished run yet")
        return
    command = command or "python -m benchmarks.ablation"
    atomic_write_bytes(out / "ablation.md", summary_markdown(doc, command).encode())
    plot_by_bin(doc, out / "ablation_by_bin.png")
    plot_curves(doc, out / "ablation_curves.png")
    log(f"ablation: wrote {out / 'ablation.md'} and its figures")
