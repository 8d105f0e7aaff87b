"""The figures: percentiles per tick case and per kind of judgement, the time added and its ratio to the budget.

Added = with minus without detection, per percentile (p50 - p50, p90 - p90), in wall time (``_ms``), the
tick thread's CPU (``cpu_``), time in SQL (``sql_``) and statements (``statements_``). For the ticks
during a judgement, ``quiet`` is the same number of ticks at the same moment once it ended (a fresh
judgement, nothing running) and ``contention`` = during minus quiet: what sharing the interpreter with
the judging thread costs, apart from reading the judgement.
"""

from __future__ import annotations

from typing import Any

from bench.lib.reports import percentiles

SHAPE = ("n", "p50", "p90", "max", "min", "mean")
MEASURES = (("", "_ms"), ("cpu_", "_ms"), ("sql_", "_ms"), ("statements_", ""))
DIRECT = ("wall", "cpu", "sql", "statements", "read_wall", "read_cpu")


def shape(samples: list[float]) -> dict[str, float]:
    return percentiles(samples, SHAPE) if samples else {"n": 0}


def difference(a: dict[str, float], b: dict[str, float]) -> dict[str, float] | None:
    if not (a["n"] and b["n"]):
        return None
    return {key: round(a[key] - b[key], 3) for key in ("p50", "p90")}


def tick_case(samples: dict[str, list[float]], *, during: bool, budget_ms: float) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for prefix, unit in MEASURES:
        on, off = shape(samples.get(prefix + "on", [])), shape(samples.get(prefix + "off", []))
        figures |= {f"{prefix}on{unit}": on, f"{prefix}off{unit}": off, f"{prefix}added{unit}": difference(on, off)}
        if during:
            quiet = shape(samples.get(prefix + "quiet", []))
            figures |= {f"{prefix}quiet{unit}": quiet, f"{prefix}contention{unit}": difference(on, quiet)}
    added = figures["added_ms"]
    figures["budget_ratio"] = {key: round(value / budget_ms, 3) for key, value in added.items()} if added else None
    figures["within_budget"] = added["p90"] <= budget_ms if added else None
    if samples.get("paired"):
        figures["added_paired_ms"] = percentiles(samples["paired"], ("p50", "p90", "min", "max"))
    figures["samples"] = {key: [round(value, 3) for value in values] for key, values in samples.items()}
    return figures


def judging_kind(direct: list[dict[str, float]], background: list[dict[str, float]]) -> dict[str, Any]:
    """A kind of judgement called directly (alone; process CPU) and as the thread ran it beside the ticks
    (its own CPU clock)."""
    alone = {field: shape([row[field] for row in direct]) for field in DIRECT}
    # What the detectors themselves cost: the CPU outside reading the hourly sums.
    alone["detectors_cpu"] = shape([row["cpu"] - row["read_cpu"] for row in direct])
    beside = {field: shape([row[field] for row in background]) for field in ("wall", "cpu", "ticks_beside")}
    beside["ticks_inside"] = sum(row["ticks_inside"] for row in background)
    beside["judged_again"] = sum(row["judged_again"] for row in background)
    slower = alone["wall"]["n"] and beside["wall"]["n"] and alone["wall"]["p50"]
    return {
        "direct": alone,
        "background": beside,
        "background_wall_over_direct": round(beside["wall"]["p50"] / alone["wall"]["p50"], 2) if slower else None,
        "samples": {
            "direct": [{key: round(value, 3) for key, value in row.items()} for row in direct],
            "background": [{key: round(value, 3) for key, value in row.items()} for row in background],
        },
    }


def summarize(timeline: Any, *, during: set[str], budget_ms: float) -> dict[str, Any]:
    """Every tick case of ``timeline`` (those in ``during`` ran beside a judgement) and every kind of judging."""
    cases = {
        case: tick_case(samples, during=case in during, budget_ms=budget_ms)
        | {"findings": timeline.findings.get(case), "ready_sources": timeline.ready.get(case)}
        for case, samples in timeline.ticks.items()
    }
    judging = {kind: judging_kind(rows, timeline.background[kind]) for kind, rows in timeline.direct.items()}
    return {"cases": cases, "judging": judging}
