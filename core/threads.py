"""Run a function that releases the GIL (zlib's compress and crc32, numpy copies) over a
sequence in a few threads, results in order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def threaded_map(fn: Callable[[T], R], items: Sequence[T], threads: int) -> list[R]:
    """``[fn(x) for x in items]``, computed in `threads` threads, each on one contiguous block
    (one task per block: a task per item costs more than a small item's work)."""
    n = len(items)
    if threads <= 1 or n < 2:
        return [fn(x) for x in items]
    blocks = min(threads, n)
    bounds = [n * k // blocks for k in range(blocks + 1)]

    def run(k: int) -> list[R]:
        return [fn(items[i]) for i in range(bounds[k], bounds[k + 1])]

    with ThreadPoolExecutor(max_workers=blocks) as pool:
        return [r for part in pool.map(run, range(blocks)) for r in part]
