"""Counting the training samples that could not be read, and stopping when there are too many.

The dataset replaces an unreadable sample (missing, truncated or corrupt image, damaged mask
chunk) by the next readable one and reports it in `Batch.skipped` (`digit.data.dataset`).
`BadImageLog` gathers those lines: each distinct one is printed once as a counted warning and
appended to `<run>/bad_images.txt`; once more distinct samples are bad than `max_bad_images`
allows (a count, or a fraction of the training split), the run stops with one line, before
the optimizer step. Under torchrun every process learns every process's new lines at each step,
so all of them stop at the same step. A resumed run starts from the lines already listed; a
fresh run starts an empty list.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torch.distributed as torch_dist

from core.errors import DigitError
from digit.train.distributed import Dist

BAD_IMAGES_FILE = "bad_images.txt"
DEFAULT_MAX_BAD_IMAGES = 0.01


def check_max_bad_images(value: object) -> None:
    """DigitError unless `value` is a count (integer >= 0) or a fraction (float in [0, 1])."""
    is_count = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    is_fraction = isinstance(value, float) and 0.0 <= value <= 1.0
    if not (is_count or is_fraction):
        raise DigitError(
            "max_bad_images: expected a count (integer >= 0) or a fraction of the training "
            f"split (0.0 .. 1.0, e.g. 0.01), got {value!r}"
        )


def parse_max_bad_images(text: str) -> int | float:
    """`--max-bad-images`: "5" -> 5 images, "0.01" -> 1 %, "2%" -> 0.02."""
    text = text.strip()
    try:
        if text.endswith("%"):
            value: int | float = float(text[:-1]) / 100.0
        elif text.isdigit():
            value = int(text)
        else:
            value = float(text)
    except ValueError:
        value = text  # refused below with the expected forms
    try:
        check_max_bad_images(value)
    except DigitError:
        raise DigitError(
            f"--max-bad-images: expected a count (e.g. 5) or a fraction (e.g. 0.01 or 1%), "
            f"got {text!r}"
        ) from None
    return value


def allowed_bad_images(max_bad_images: int | float, n_images: int) -> int:
    """How many distinct bad samples a split of `n_images` may have: the count itself, or
    floor(fraction x n_images)."""
    if isinstance(max_bad_images, float):
        return math.floor(max_bad_images * n_images + 1e-9)
    return int(max_bad_images)


class BadImageLog:
    """The bad samples of one run (see the module doc). `add` takes a batch's `skipped` lines
    (any process); `settle` is called by every process once per optimizer step."""

    def __init__(
        self,
        run_dir: Path,
        max_bad_images: int | float,
        n_images: int,
        dist: Dist,
        resume: bool,
        say: Callable[[str], None],
    ) -> None:
        self.path = Path(run_dir) / BAD_IMAGES_FILE
        self.spec = max_bad_images
        self.n_images = n_images
        self.limit = allowed_bad_images(max_bad_images, n_images)
        self.dist = dist
        self.say = say
        self.seen: dict[str, None] = {}  # insertion-ordered set
        self._new: list[str] = []
        if resume and self.path.is_file():
            lines = self.path.read_text(encoding="utf-8").splitlines()
            self.seen = dict.fromkeys(line for line in lines if line.strip())
        elif dist.is_main:
            self.path.unlink(missing_ok=True)  # a fresh run: an earlier attempt's list goes

    def add(self, skipped: Iterable[str]) -> None:
        self._new.extend(line for line in skipped if line not in self.seen)

    def settle(self) -> None:
        """Share this step's new lines between processes, record and announce them, and raise
        the one-line DigitError once more samples are bad than allowed."""
        new = self._gather(self._new)
        self._new = []
        fresh = [line for line in dict.fromkeys(new) if line not in self.seen]
        if not fresh:
            return
        for line in fresh:
            self.seen[line] = None
            self.say(
                f"digit-train: skipped a bad training sample ({len(self.seen)} so far, "
                f"{self.limit} allowed): {line}"
            )
        if self.dist.is_main:
            with self.path.open("a", encoding="utf-8") as f:
                f.writelines(f"{line}\n" for line in fresh)
        if len(self.seen) > self.limit:
            raise DigitError(
                f"{len(self.seen)} training samples could not be read, more than "
                f"--max-bad-images {self.spec} allows ({self.limit} of {self.n_images}); "
                f"stopped before this step's update; they are listed in {self.path}"
            )

    def _gather(self, lines: list[str]) -> list[str]:
        """Every process's `lines` on every process (the lines themselves without DDP)."""
        if not self.dist.enabled:
            return lines
        count = torch.tensor([len(lines)], device=self.dist.device)
        torch_dist.all_reduce(count)
        if int(count.item()) == 0:
            return []
        everyone: list[list[str] | None] = [None] * self.dist.world_size
        torch_dist.all_gather_object(everyone, lines)
        return [line for part in everyone for line in (part or [])]
