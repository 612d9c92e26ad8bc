"""The dataset's splits, and the contiguous shards a split is cut into for parallel builds."""

from __future__ import annotations

from core.errors import DigitError

SPLITS: tuple[str, ...] = ("train", "val", "test")


def check_split(split: str) -> str:
    """`split` if it names one of `SPLITS`, else one DigitError line for the `--split` option."""
    if split not in SPLITS:
        raise DigitError(f"--split: unknown split {split!r} (allowed: {', '.join(SPLITS)})")
    return split


def shard_bounds(n_items: int, k: int, n: int) -> tuple[int, int]:
    """[start, stop) of shard k of n: the k-th of n contiguous blocks, start = k * n_items // n.

    Block sizes differ by at most one; the larger blocks come last. k counts from 0.
    """
    if n < 1 or not 0 <= k < n:
        raise DigitError(f"--shard {k}/{n}: need N >= 1 and 0 <= K < N")
    return k * n_items // n, (k + 1) * n_items // n
