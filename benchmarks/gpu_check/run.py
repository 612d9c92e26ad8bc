"""gpu_check's settings, skip rule, order of checks and time budget; writes the JSON and table."""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import torch

from benchmarks.gpu_check.report import (
    ERROR,
    NOT_RUN,
    CheckResult,
    markdown_table,
    overall,
    to_json,
)

SKIP_LINE = "make gpu-check: SKIPPED, no CUDA device"


@dataclass(frozen=True)
class GpuCheckSettings:
    """What to run. device: "cuda" (the point) or "cpu" (tests, tiny sizes). preset: the
    trainer's preset whose network is trained and timed; input_size: override of its input
    (None: the preset's). train_batch / train_steps / amp_modes: the training check;
    infer_batches: the inference check; raster_images: scenes of the rasterizer check;
    build_limit: the build check's first images only (None: the whole split);
    synthetic: sizes of the synthetic split for the rasterizer and build checks (annotations
    only; None: the synthetic default, 4,785 train images); ddp_procs (None: every GPU);
    budget_s: checks that would start after this many seconds are reported as not run."""

    device: str = "cuda"
    preset: str = "paper"
    input_size: int | None = None
    train_batch: int = 32
    train_steps: int = 6
    amp_modes: tuple[str, ...] = ("bf16", "fp16", "off")
    infer_batches: tuple[int, ...] = (1, 32)
    infer_repeats: int = 10
    raster_images: int = 512
    raster_repeats: int = 3
    build_limit: int | None = None
    synthetic: dict | None = None
    ddp_procs: int | None = None
    budget_s: float = 480.0
    checks: tuple[str, ...] = ("raster", "build", "train", "inference", "ddp")
    out: Path = field(default_factory=lambda: Path("gpu_check_out"))


TINY_CPU = GpuCheckSettings(
    device="cpu", preset="tiny", input_size=64, train_batch=2, train_steps=2,
    amp_modes=("bf16",), infer_batches=(1, 2), infer_repeats=1, raster_images=2,
    raster_repeats=1, build_limit=2,
    synthetic={"captures": 1, "eval_captures": 1, "cameras": 2, "frames": 2}, ddp_procs=1,
)  # fmt: skip
"""Every check on the CPU at toy sizes: the code paths run, the figures mean nothing."""


def skip_reason(device: str, cuda_available: bool) -> str | None:
    """The one line to print instead of running (None: run): CUDA asked for but absent."""
    if device.startswith("cuda") and not cuda_available:
        return SKIP_LINE
    return None


def device_words(device: str) -> str:
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        n = torch.cuda.device_count()
        return f"{n} x {props.name} ({props.total_memory / 2**30:.0f} GiB)"
    return f"CPU ({platform.processor() or platform.machine()}), no GPU"


def _train_config(s: GpuCheckSettings):
    from digit.train.config import TrainConfig

    cfg = TrainConfig.preset_config(s.preset)
    if s.input_size is not None:
        cfg = replace(cfg, network=replace(cfg.network, input_size=s.input_size))
    return cfg


def plan(s: GpuCheckSettings, work: Path) -> list[tuple[str, Callable[[], CheckResult]]]:
    """(name, thunk) of each check to run, in order; the synthetic split is made on demand."""
    from benchmarks.gpu_check import checks

    root_box: list[Path] = []

    def root() -> Path:
        if not root_box:
            from render.synthetic_data.generate import SyntheticSettings, make_synthetic

            settings = SyntheticSettings(images=False, **(s.synthetic or {}))
            root_box.append(make_synthetic(work / "root", settings, show_progress=False))
        return root_box[0]

    procs = s.ddp_procs or (torch.cuda.device_count() if s.device.startswith("cuda") else 1)
    cfg = _train_config(s)
    thunks = {
        "raster": lambda: checks.raster_check(
            checks.split_scenes(root(), "train", s.raster_images), s.device, s.raster_repeats
        ),
        "build": lambda: checks.build_check(root(), "train", s.device, work, s.build_limit),
        "train": lambda: checks.train_check(
            cfg, s.device, s.train_batch, s.train_steps, s.amp_modes
        ),
        "inference": lambda: checks.inference_check(
            cfg, s.device, s.infer_batches, s.infer_repeats
        ),
        "ddp": lambda: checks.ddp_check(s.device, procs),
    }
    return [(name, thunks[name]) for name in s.checks]


def run_checks(
    steps: list[tuple[str, Callable[[], CheckResult]]],
    budget_s: float,
    clock: Callable[[], float] = time.perf_counter,
) -> list[CheckResult]:
    """Run each step in order; one that raises is an error result, and every step that would
    start past `budget_s` is reported as not run (never as passed)."""
    start = clock()
    results = []
    for name, thunk in steps:
        elapsed = clock() - start
        if elapsed > budget_s:
            results.append(
                CheckResult(name, NOT_RUN, note=f"time budget of {budget_s:.0f} s spent")
            )
            continue
        t0 = clock()
        try:
            result = thunk()
        except Exception as exc:  # report it and go on: the other checks still run
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            result = CheckResult(name, ERROR, note=f"{type(exc).__name__}: {first}")
        figures = {**result.figures, "check wall s": clock() - t0}
        results.append(replace(result, figures=figures))
    return results


def write_outputs(results: list[CheckResult], meta: dict, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / "gpu_check.json", out / "gpu_check.md"
    js.write_text(to_json(results, meta) + "\n")
    md.write_text(markdown_table(results, meta))
    return js, md


def execute(s: GpuCheckSettings) -> tuple[list[CheckResult], dict]:
    """Run the checks of `s` (the caller has decided not to skip) and write the outputs."""
    meta = {
        "date": date.today().isoformat(),
        "device": device_words(s.device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "settings": {k: str(v) for k, v in s.__dict__.items()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        results = run_checks(plan(s, Path(tmp)), s.budget_s)
    write_outputs(results, meta, s.out)
    return results, meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run every CUDA path once, with figures.")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, default=Path("gpu_check_out"))
    ap.add_argument("--budget-s", type=float, default=480.0)
    ap.add_argument("--checks", default=",".join(GpuCheckSettings.checks))
    ap.add_argument("--tiny", action="store_true", help="toy sizes (a smoke test of the code)")
    args = ap.parse_args(argv)
    line = skip_reason(args.device, torch.cuda.is_available())
    if line:
        print(line)
        return 0
    base = TINY_CPU if args.tiny else GpuCheckSettings()
    s = replace(
        base, device=args.device, out=args.out, budget_s=args.budget_s,
        checks=tuple(c for c in args.checks.split(",") if c),
    )  # fmt: skip
    results, meta = execute(s)
    print(markdown_table(results, meta), end="")
    print(
        f"wrote {s.out / 'gpu_check.json'} and {s.out / 'gpu_check.md'}; overall {overall(results)}"
    )
    return 1 if overall(results) == "fail" else 0
