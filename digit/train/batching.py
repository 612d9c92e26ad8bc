"""How a run's global batch is split over processes and forward passes.

A config fixes the *global* batch, G = batch_size x grad_accum images per optimizer step (the
paper: 64 = 32 x 2), whatever the number of processes W. Each process takes G / W images per
step, in `accum` forward passes of `micro` images: micro is the largest divisor of G / W that
is at most the per-device cap (`max_batch_per_device`, default batch_size, the micro-batch the
preset is known to fit in memory). Only G not divisible by W cannot be split (DDP averages the
processes' gradients with equal weights, so every process must see as many images).

The micro-batches of an epoch are one list, the same for every W (fixed by seed, epoch and
micro); step k uses its W x accum micro-batches k * W * accum ... and process r takes the r-th
block of accum of them. So W processes compute exactly the micro-batches one process would
accumulate, and a resumed run on another process count continues the same sample order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import DigitError


@dataclass(frozen=True)
class BatchPlan:
    """global_batch images per optimizer step = world_size processes x accum forward passes
    x micro images; cap: the per-device limit micro was chosen under."""

    global_batch: int
    world_size: int
    accum: int
    micro: int
    cap: int

    @property
    def micro_per_step(self) -> int:
        """Micro-batches per optimizer step over all processes."""
        return self.world_size * self.accum

    def describe(self) -> str:
        """The one line the trainer prints about its choice."""
        procs = f"{self.world_size} process{'es' if self.world_size != 1 else ''}"
        passes = f"{self.accum} pass{'es' if self.accum != 1 else ''}"
        return (
            f"batch {self.global_batch} images per step = {procs} x {passes} x {self.micro} "
            f"images (at most {self.cap} per device)"
        )

    def rank_batches(self, batches: Sequence[Sequence[int]], rank: int) -> list[list[int]]:
        """Process `rank`'s micro-batches, in order, from an epoch's list of micro-batches
        (whole steps only): of each step's `micro_per_step`, the block [rank x accum,
        (rank + 1) x accum)."""
        if not 0 <= rank < self.world_size:
            raise ValueError(f"rank {rank} outside 0..{self.world_size - 1}")
        per_step = self.micro_per_step
        steps = len(batches) // per_step
        return [
            list(batches[k * per_step + rank * self.accum + i])
            for k in range(steps)
            for i in range(self.accum)
        ]


def plan_batches(
    batch_size: int, grad_accum: int, world_size: int, max_batch_per_device: int | None = None
) -> BatchPlan:
    """The split of the global batch batch_size x grad_accum over `world_size` processes, with
    at most `max_batch_per_device` (None: batch_size) images per forward pass. One DigitError
    line when the global batch does not divide evenly over the processes."""
    global_batch = batch_size * grad_accum
    cap = batch_size if max_batch_per_device is None else max_batch_per_device
    if world_size < 1 or cap < 1:
        raise DigitError(f"batch: need >= 1 process and >= 1 image per device, got {world_size}")
    if global_batch % world_size:
        divisors = [w for w in range(1, global_batch + 1) if global_batch % w == 0]
        raise DigitError(
            f"batch: the global batch of {global_batch} images ({batch_size} x {grad_accum}) "
            f"cannot be split evenly over {world_size} processes (process counts that divide it: "
            f"{', '.join(map(str, divisors))})"
        )
    share = global_batch // world_size
    micro = max(m for m in range(1, min(cap, share) + 1) if share % m == 0)
    return BatchPlan(global_batch, world_size, share // micro, micro, cap)
