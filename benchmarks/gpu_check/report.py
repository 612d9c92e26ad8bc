"""Results of gpu_check: one `CheckResult` per check, their aggregation, the JSON and the
markdown table. Pure functions: nothing here touches a device."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

PASS, FAIL, NOT_RUN, ERROR = "pass", "fail", "not run", "error"
STATUSES = (PASS, FAIL, NOT_RUN, ERROR)


@dataclass(frozen=True)
class CheckResult:
    """What one check found.

    name: the check ("raster", "build", "train", "inference", "ddp"). status: pass (it ran and
    every assertion held), fail (it ran and one did not), not run (skipped: why in `note`),
    error (it raised: the message in `note`). figures: the measured numbers, flat
    {label: number or text}. note: one line for the reader. details: anything long (e.g. the
    list of differing pixels), kept in the JSON only.
    """

    name: str
    status: str
    figures: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status: {self.status!r} (one of {', '.join(STATUSES)})")


def overall(results: list[CheckResult]) -> str:
    """pass only if there is at least one result and every one passed; fail if any failed or
    raised; otherwise (some not run, none failed) "incomplete"."""
    if any(r.status in (FAIL, ERROR) for r in results):
        return FAIL
    if results and all(r.status == PASS for r in results):
        return PASS
    return "incomplete"


def to_json(results: list[CheckResult], meta: dict[str, Any]) -> str:
    """The whole report: meta (date, device, versions, budget), overall status, each check."""
    return json.dumps(
        {"meta": meta, "overall": overall(results), "checks": [asdict(r) for r in results]},
        indent=1,
        default=str,
    )


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(results: list[CheckResult], meta: dict[str, Any]) -> str:
    """A BENCHMARKS.md section: a heading line with date and device, then one row per figure
    (check, status, figure, value), then each check's note."""
    head = (
        f"**{meta.get('date', '?')}, {meta.get('device', '?')}** "
        f"(torch {meta.get('torch', '?')}, CUDA {meta.get('cuda', '?')}), "
        f"`make gpu-check`: overall **{overall(results)}**"
    )
    lines = [head, "", "| check | status | figure | value |", "|---|---|---|---:|"]
    for r in results:
        if not r.figures:
            lines.append(f"| {r.name} | {r.status} | | |")
        for k, (label, value) in enumerate(r.figures.items()):
            lines.append(
                f"| {r.name if k == 0 else ''} | {r.status if k == 0 else ''} | "
                f"{_cell(label)} | {_cell(value)} |"
            )
    notes = [f"- {r.name}: {r.note}" for r in results if r.note]
    return "\n".join(lines + (["", *notes] if notes else [])) + "\n"
