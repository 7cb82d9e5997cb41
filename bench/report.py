"""Tables for the signaling benchmarks: medians over rounds, ratios to the baseline."""

from __future__ import annotations

import os
import statistics
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Column:
    title: str
    key: str
    fmt: Callable[[float], str]
    ratio: bool = False  # whether a ratio to the baseline means something here


def num(digits: int) -> Callable[[float], str]:
    return lambda v: f"{v:.{digits}f}"


def pct(v: float) -> str:
    return f"{100 * v:.0f}%"


def median(rows: Sequence[Row], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return head + ("-dirty" if dirty else "")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores, {model}"


def table(
    title: str,
    columns: Sequence[Column],
    results: dict[str, list[Row]],
    pairs: Sequence[tuple[str, str]],
) -> tuple[str, dict[str, Any]]:
    """Medians per contender, then for each (name, reference) of ``pairs`` the ratio of
    name's medians to reference's; returns the text and the figures for the JSON line."""
    names = list(results)
    medians = {n: {c.key: median(results[n], c.key) for c in columns} for n in names}
    ratios: dict[str, dict[str, float | None]] = {}
    for name, reference in pairs:
        label = f"{name} / {reference}"
        ratios[label] = {}
        for c in columns:
            mine, base = medians[name][c.key], medians[reference][c.key]
            ok = c.ratio and mine is not None and base is not None and base != 0
            ratios[label][c.key] = mine / base if ok and mine is not None and base else None
    labels = ["server", *names, *ratios]
    cells = [[c.title for c in columns]]
    cells += [[_cell(medians[n][c.key], c.fmt) for c in columns] for n in names]
    cells += [[_cell(r[c.key], lambda v: f"{v:.2f}x") for c in columns] for r in ratios.values()]
    width = max(len(label) for label in labels) + 2
    widths = [max(len(row[i]) for row in cells) + 2 for i in range(len(columns))]
    lines = [title]
    for label, row in zip(labels, cells, strict=True):
        values = "".join(v.rjust(w) for v, w in zip(row, widths, strict=True))
        lines.append(label.ljust(width) + values)
    return "\n".join(lines), {"medians": medians, "ratios": ratios}


def _cell(value: float | None, fmt: Callable[[float], str]) -> str:
    return "-" if value is None else fmt(value)
