"""Figures and result files: percentiles and medians, ``bench/results/<stem>.{json,md}``."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.lib.runtime import RESULTS

QUANTILES = {"p50": 49, "p90": 89, "p99": 98}


def percentiles(samples: list[float], fields: tuple[str, ...] = ("p50", "p90", "p99", "max")) -> dict[str, float]:
    """``fields`` of ``samples`` (n, p50, p90, p99, max, min, mean), rounded to 3 digits; inclusive
    quantiles (a single sample is every quantile)."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive") if len(samples) > 1 else samples * 99
    values = {
        "n": len(samples),
        **{name: cuts[index] for name, index in QUANTILES.items()},
        "max": max(samples),
        "min": min(samples),
        "mean": statistics.fmean(samples),
    }
    return {field: values[field] if field == "n" else round(values[field], 3) for field in fields}


def median(values: Iterable[float | None], digits: int = 3) -> float | None:
    """Median of the numbers among ``values`` (None when there are none)."""
    numbers = [v for v in values if isinstance(v, (int, float))]
    return round(statistics.median(numbers), digits) if numbers else None


def median_of(rounds: list[dict[str, Any]], *path: str) -> float | None:
    """Median over ``rounds`` of the number at ``path`` (nested keys) in each."""
    values = []
    for entry in rounds:
        for key in path:
            entry = entry.get(key) if isinstance(entry, dict) else None
        values.append(entry)
    return median(values)


def ratio(a: float | None, b: float | None, digits: int = 2) -> float | None:
    return round(a / b, digits) if a is not None and b else None


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def write_atomically(path: Path, text: str) -> None:
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(text)
    scratch.replace(path)


def write_results(stem: str, report: dict[str, Any], markdown: str) -> None:
    """``bench/results/<stem>.json`` and ``.md`` (each replaced whole), and the Markdown on stdout."""
    write_atomically(RESULTS / f"{stem}.json", json.dumps(report, indent=2) + "\n")
    write_atomically(RESULTS / f"{stem}.md", markdown)
    print(markdown)
