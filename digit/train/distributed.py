"""Process group and device of a training process (DDP when launched by torchrun)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist

from core.errors import DigitError


@dataclass(frozen=True)
class Dist:
    """rank / world_size / local_rank of this process (0 / 1 / 0 without torchrun) and the
    device it trains on. `enabled`: a process group is up (torchrun set RANK, WORLD_SIZE and
    LOCAL_RANK)."""

    enabled: bool
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and prints."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def launched_rank() -> int:
    """This process's rank as torchrun set it (0 without torchrun), before any process group."""
    return int(os.environ["RANK"]) if launched_by_torchrun() else 0


def launched_world_size() -> int:
    """The process count torchrun set (1 without torchrun), before any process group."""
    return int(os.environ["WORLD_SIZE"]) if launched_by_torchrun() else 1


def setup(device: str = "auto") -> Dist:
    """Start the process group if torchrun launched us; pick the device ("auto": this process's
    CUDA device if there is one, else CPU)."""
    if device == "cuda" and not torch.cuda.is_available():
        raise DigitError("device: cuda requested but no CUDA device is available")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if not launched_by_torchrun():
        return Dist(False, 0, 1, 0, torch.device("cuda" if use_cuda else "cpu"))
    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if rank != 0:
        warnings.filterwarnings("ignore")  # only the main process warns (and prints)
    if use_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Dist(True, rank, world, local, dev)


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def mean_across(d: Dist, value: torch.Tensor) -> torch.Tensor:
    """Average of a scalar tensor over all processes (itself without DDP)."""
    if not d.enabled:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / d.world_size


def teardown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


def from_main(d: Dist, value: float) -> float:
    """The main process's `value` on every process (itself without DDP): decisions that depend
    on a clock, such as a time limit, must be the same everywhere."""
    if not d.enabled:
        return value
    t = torch.tensor([value if d.is_main else 0.0], dtype=torch.float64, device=d.device)
    dist.broadcast(t, src=0)
    return float(t.item())
