"""`build-masks --shard slurm`: the shard of this Slurm array task.

An array job submitted with ``--array=MIN-MAX`` runs MAX - MIN + 1 tasks; task T builds shard
K = T - MIN of N = SLURM_ARRAY_TASK_COUNT. Only a contiguous range with step 1 maps onto shards
0..N-1 one to one, so stepped (``0-15:2``) and sparse (``0,3,7``) arrays are refused: their
shard files would not cover the split, and the merge could not tell which are missing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from core.errors import DigitError

ARRAY_VARIABLES = (
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_COUNT",
)


def slurm_array_shard(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """(K, N) of this array task from Slurm's variables (`environ`, default os.environ); one
    DigitError line outside an array job or for a stepped or sparse array."""
    env = os.environ if environ is None else environ
    missing = [name for name in ARRAY_VARIABLES if name not in env]
    if missing:
        raise DigitError(
            f"--shard slurm: not inside a Slurm array job ({missing[0]} is not set); submit "
            "with sbatch --array=0-N (or use --shard K/N)"
        )
    try:
        task, low, high, count = (int(env[name]) for name in ARRAY_VARIABLES)
        step = int(env.get("SLURM_ARRAY_TASK_STEP", "1"))
    except ValueError:
        raise DigitError(
            f"--shard slurm: unreadable array variables "
            f"({', '.join(f'{n}={env[n]}' for n in ARRAY_VARIABLES)})"
        ) from None
    if step != 1 or count != high - low + 1:
        raise DigitError(
            f"--shard slurm: array {low}-{high} has {count} tasks"
            + (f" in steps of {step}" if step != 1 else "")
            + f"; a shard per task needs a contiguous array, e.g. --array=0-{count - 1}"
        )
    if not low <= task <= high:
        raise DigitError(f"--shard slurm: task {task} outside the array {low}-{high}")
    return task - low, count
