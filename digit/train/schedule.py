"""The learning rate of each optimizer step: a pure function of where the run is.

"step" (the release's MultiStepLR, stepped per epoch): lr x gamma^(milestones passed by the
epoch). "cosine": lr x (r + (1 - r) (1 + cos(pi p)) / 2) with r = min_lr_ratio and p the run's
progress in [0, 1], the larger of steps done / total steps and, with a time limit, time used /
time allowed (so a run on a budget still ends its decay at the budget). Either is multiplied by
a linear warm-up (step + 1) / warmup_steps over the first warmup_steps steps.
"""

from __future__ import annotations

import bisect
import math


def learning_rate(
    base_lr: float,
    schedule: str,
    step: int,
    epoch: int,
    progress: float,
    *,
    milestones: tuple[int, ...] = (),
    gamma: float = 0.1,
    min_lr_ratio: float = 0.0,
    warmup_steps: int = 0,
) -> float:
    """The rate of optimizer step `step` (0-based) in `epoch`; `progress` in [0, 1] (clipped)."""
    if schedule == "step":
        lr = base_lr * gamma ** bisect.bisect_right(milestones, epoch)
    elif schedule == "cosine":
        p = min(max(progress, 0.0), 1.0)
        lr = base_lr * (min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * p)))
    else:
        raise ValueError(f"lr_schedule: unknown schedule {schedule!r}")
    if warmup_steps and step < warmup_steps:
        lr *= (step + 1) / warmup_steps
    return lr


def run_progress(
    step: int, total_steps: int, elapsed_s: float, time_limit_s: float | None
) -> float:
    """How far a run is, in [0, 1]: steps done / total, or time used / allowed if larger."""
    p = step / max(total_steps, 1)
    if time_limit_s:
        p = max(p, elapsed_s / time_limit_s)
    return min(p, 1.0)
