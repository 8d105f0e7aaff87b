#!/usr/bin/env python3
"""Backtest of the forecaster (monitoring/forecast) on the held-out world of bench/anomaly_world.

For every source and every hour after the forecaster's warm-up: projections at 1, 6 and 24 h with
their 80 % band against what those hours delivered, next to naive baselines measured on the same
target hours (last value, same local hour yesterday, same local hour a week before); and the
"will cross within 24 h" warnings against the app's rate thresholds (precision, recall over
crossings, lead time), per warning policy. Sources run in parallel processes.

    .venv/bin/python bench/forecast_eval.py [--seeds 1,2,3,4,5] [--sources 30] [--days 45] [--processes N]

Seeds 1-5 are the held-out seeds (the final figures); develop on 101-110 (``--seeds 101,102``).
Writes bench/results/forecast_eval.{json,md} (``--output-dir`` to change) and prints the Markdown.
Definitions: bench/forecast_world/scoring.py and docs/forecasting.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.anomaly_world.world import DEFAULT_DAYS, DEFAULT_SOURCES  # noqa: E402
from bench.forecast_world.drive import HORIZONS, MATURE_FROM, METRICS, POLICIES, THRESHOLDS, run_source  # noqa: E402
from bench.forecast_world.scoring import (  # noqa: E402
    MIN_RATE_SAMPLE,
    SMOOTH_HOURS,
    ErrorTally,
    merge_warning_scores,
    summarise_warnings,
)

HELD_OUT_SEEDS = (1, 2, 3, 4, 5)
CHOSEN_POLICY = "central"
SOURCES_PER_TICK = 100


def _task(args: tuple[int, int, int, int]) -> dict:
    seed, sources, days, source = args
    return run_source(seed=seed, sources=sources, days=days, source=source)


def run(*, seeds: list[int], sources: int, days: int, processes: int) -> list[dict]:
    tasks = [(seed, sources, days, s) for seed in seeds for s in range(sources)]
    if processes <= 1:
        return [_task(t) for t in tasks]
    # Sources of one seed in a row: each worker builds a seed's world once (lru_cache) and reuses it.
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return pool.map(_task, tasks, chunksize=max(1, sources // (2 * processes)))


def summarise(results: list[dict], *, seeds: list[int]) -> dict[str, Any]:
    tallies: dict[str, ErrorTally] = {}
    for r in results:
        for key, tally in r["errors"].items():
            tallies.setdefault(key, ErrorTally()).merge(tally)
    errors = {key: tallies[key].summary(volume=key.startswith("volume|")) for key in sorted(tallies)}
    source_weeks = sum(max(r["hours"] - MATURE_FROM, 0) for r in results) / 168.0
    warnings = {}
    for key in results[0]["warnings"]:
        warnings[key] = summarise_warnings(
            merge_warning_scores(r["warnings"][key] for r in results), source_weeks=source_weeks
        )
    per_seed = {}
    for seed in seeds:
        mine = [r for r in results if r["seed"] == seed]
        seed_tallies: dict[str, ErrorTally] = {}
        for r in mine:
            for key, tally in r["errors"].items():
                if key.endswith("|mature|all") and "|6|" in key:
                    seed_tallies.setdefault(key, ErrorTally()).merge(tally)
        weeks = sum(max(r["hours"] - MATURE_FROM, 0) for r in mine) / 168.0
        per_seed[seed] = {
            "errors_6h": {k.split("|")[0]: t.summary(volume=k.startswith("volume|")) for k, t in seed_tallies.items()},
            "warnings_warn": {
                m: summarise_warnings(
                    merge_warning_scores(r["warnings"][f"{m}|warn|{CHOSEN_POLICY}"] for r in mine), source_weeks=weeks
                )
                for m in THRESHOLDS
            },
        }
    timing = {k: sum(r["timing"][k] for r in results) for k in results[0]["timing"]}
    observe_us = 1e6 * timing["observe_s"] / max(timing["observes"], 1)
    forecast_us = 1e6 * timing["forecasts_s"] / max(timing["forecasts"], 1)
    rule_us = 1e6 * timing["rules_s"] / max(timing["rule_calls"], 1)
    rules_per_source = 2 * len(THRESHOLDS)  # the chosen policy: warn and critical, two rates
    speed = {
        "observe_us": round(observe_us, 1),
        "forecasts_us": round(forecast_us, 1),
        "rule_update_us": round(rule_us, 1),
        "hour_turn_ms_at_100_sources": round(
            SOURCES_PER_TICK * (observe_us + forecast_us + rules_per_source * rule_us) / 1000, 1
        ),
        "note": "observe = feeding one closed hour; forecasts = the three metrics' 24-hour projections with "
        "bands (cached until the next hour closes, so a tick within the hour reuses them); rule update = one "
        "warning rule judged with that hour's forecast",
    }
    return {"errors": errors, "warnings": warnings, "per_seed": per_seed, "speed": speed}


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _error_table(errors: dict, *, horizon: int, period: str, subset: str) -> list[str]:
    lines = [
        "| metric | target hours | forecast | last value | same hour yesterday | same hour last week "
        "| ratio to last / yesterday / last week | 80 % band coverage | median band width |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in METRICS:
        e = errors.get(f"{m}|{horizon}|{period}|{subset}")
        if not e or not e.get("n"):
            continue
        if m == "volume":
            cell = {
                k: f"WAPE {_f(e[k]['wape_pct'], 1)} % (MdAPE {_f(e[k]['median_ape_pct'], 1)} %)"
                for k in e
                if isinstance(e[k], dict)
            }
            width = f"{_f(e['band_width_median'], 0)} % of the value"
        else:
            cell = {
                k: f"MAE {_f(e[k]['mae_points'])} (median {_f(e[k]['median_ae_points'])})"
                for k in e
                if isinstance(e[k], dict)
            }
            width = f"{_f(e['band_width_median'], 1)} points"
        ratios = " / ".join(_f(e.get(f"ratio_to_{b}"), 2) for b in ("last", "yesterday", "last_week"))
        lines.append(
            f"| {m} | {e['n']} | {cell['forecast']} | {cell['last']} | {cell['yesterday']} | {cell['last_week']} "
            f"| {ratios} | {_f(e['coverage'], 3)} | {width} |"
        )
    return lines


def markdown(report: dict[str, Any]) -> str:
    p, s = report["parameters"], report["summary"]
    lines = [
        "# Forecasts: backtest on the held-out world",
        "",
        f"Generated {report['generated_at']} by `bench/forecast_eval.py` in {report['total_seconds']} s "
        f"({report['machine']['python']}, {report['machine']['cpus']} CPUs). Seeds {', '.join(map(str, p['seeds']))}"
        f" of `bench/anomaly_world`; {p['sources']} sources × {p['days']} days, every incident included. "
        "Method and definitions: [docs/forecasting.md](../../docs/forecasting.md).",
        "",
        f"Forecasts issued after every closed hour from day 8 (the forecaster is ready from hour 72; days 4-7 "
        f"are the `young` rows). Rates on target hours with ≥ {MIN_RATE_SAMPLE} attempts, in points; volume as "
        "WAPE (Σ|error| / Σ actual) and median absolute % error on hours of ≥ 10 records. Ratios < 1: the "
        "forecast beats that baseline (rates: MAE ratio; volume: WAPE ratio).",
    ]
    for horizon in (6, 24, 1):
        lines += ["", f"## {horizon} h ahead, all hours", ""]
        lines += _error_table(s["errors"], horizon=horizon, period="mature", subset="all")
    lines += ["", "## 6 h ahead, outside labelled incidents (± their margin)", ""]
    lines += _error_table(s["errors"], horizon=6, period="mature", subset="background")
    lines += ["", "## 6 h ahead, young forecaster (issued on days 4-7; last week = yesterday)", ""]
    lines += _error_table(s["errors"], horizon=6, period="young", subset="all")
    lines += [
        "",
        "## Will it cross within 24 h? (policy: central projection)",
        "",
        f"Truth: the rate pooled over the last {SMOOTH_HOURS} hours (≥ {MIN_RATE_SAMPLE} attempts) below the "
        "threshold. A warning episode is right when that happens within 24 h of its last hour; a crossing "
        "(after ≥ 24 h clear) is warned when a warning was on in the 24 h before it; lead = crossing hour − "
        "that warning's first hour.",
        "",
        "Base rate: the share of hours on the good side that see the threshold crossed within 24 h anyway "
        "(what a warning at random would score as its hour precision).",
        "",
        "| metric | threshold | episodes | precision (episodes) | precision (hours) | base rate | false episodes "
        "/ source-week | crossings | warned | recall | lead median h | lead p90 h |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m, levels in THRESHOLDS.items():
        for level, thr in levels.items():
            w = s["warnings"][f"{m}|{level}|{CHOSEN_POLICY}"]
            lines.append(
                f"| {m} | {level} < {thr:g} | {w['episodes']} | {_f(w['precision_episodes'], 3)} "
                f"| {_f(w['precision_hours'], 3)} | {_f(w['base_rate'], 3)} "
                f"| {_f(w['false_episodes_per_source_week'], 3)} | {w['crossings']} "
                f"| {w['warned']} | {_f(w['recall'], 3)} | {_f(w['lead_median_h'])} | {_f(w['lead_p90_h'])} |"
            )
    lines += [
        "",
        "### Crossings by cause (central policy)",
        "",
        "The labelled incident whose hours (from 1 h before its start to 2 h after its end) hold the crossing; "
        "`background`: none (noise, drift, glitches of a source near its threshold). Sudden drops and steps "
        "cannot be foreseen: a warning before them is a coincidence.",
        "",
        "| metric | threshold | cause | crossings | warned | recall | lead median h | lead p90 h |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m, levels in THRESHOLDS.items():
        for level in levels:
            for cause, c in s["warnings"][f"{m}|{level}|{CHOSEN_POLICY}"]["per_cause"].items():
                lines.append(
                    f"| {m} | {level} | {cause} | {c['crossings']} | {c['warned']} | {_f(c['recall'], 3)} "
                    f"| {_f(c['lead_median_h'])} | {_f(c['lead_p90_h'])} |"
                )
    lines += [
        "",
        "False episodes by where they started (an incident on the metric, else background): "
        + "; ".join(
            f"{m} {level}: "
            + ", ".join(
                f"{k} {v}" for k, v in s["warnings"][f"{m}|{level}|{CHOSEN_POLICY}"]["false_episodes_by_cause"].items()
            )
            for m, levels in THRESHOLDS.items()
            for level in levels
        )
        + ".",
        "",
        "### Warning policies compared (same forecasts)",
        "",
        "`central` (the engine's default): the central projection crosses within 24 h; `central_trend`: the "
        "same, only when the trend is significant (not by the daily cycle or reversion alone); `earliest`: the "
        "projection at the adverse end of the trend's interval does; `band`: the 80 % band's lower edge of an "
        "hourly value does.",
        "",
        "| metric | threshold | policy | episodes | precision (episodes) | false episodes / source-week "
        "| recall | lead median h |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m, levels in THRESHOLDS.items():
        for level in levels:
            for policy in POLICIES:
                w = s["warnings"][f"{m}|{level}|{policy}"]
                lines.append(
                    f"| {m} | {level} | {policy} | {w['episodes']} | {_f(w['precision_episodes'], 3)} "
                    f"| {_f(w['false_episodes_per_source_week'], 3)} | {_f(w['recall'], 3)} "
                    f"| {_f(w['lead_median_h'])} |"
                )
    lines += ["", "## Per seed (6 h, all hours; warn thresholds, central policy)", ""]
    lines += [
        "| seed | volume WAPE ratio to last / yesterday | geocoding MAE ratio to last | validation MAE ratio to last "
        "| geocoding P / R | validation P / R |",
        "|---|---|---|---|---|---|",
    ]
    for seed, ps in s["per_seed"].items():
        e, w = ps["errors_6h"], ps["warnings_warn"]
        vol = e.get("volume", {})
        lines.append(
            f"| {seed} | {_f(vol.get('ratio_to_last'))} / {_f(vol.get('ratio_to_yesterday'))} "
            + " ".join(f"| {_f(e.get(m, {}).get('ratio_to_last'))}" for m in THRESHOLDS)
            + " "
            + " ".join(f"| {_f(w[m]['precision_episodes'], 3)} / {_f(w[m]['recall'], 3)}" for m in THRESHOLDS)
            + " |"
        )
    sp = s["speed"]
    lines += [
        "",
        "## Speed",
        "",
        f"Measured inside this run (parallel processes on a shared machine): {_f(sp['observe_us'], 0)} µs to feed "
        f"one closed hour, {_f(sp['forecasts_us'], 0)} µs for the three metrics' 24-hour forecasts, "
        f"{_f(sp['rule_update_us'], 0)} µs per warning rule update. At {SOURCES_PER_TICK} sources the hour turn "
        f"costs about {_f(sp['hour_turn_ms_at_100_sources'], 1)} ms (feed, forecast, four rules each); every "
        "other tick of the hour reuses the cached forecasts (no work).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default=",".join(map(str, HELD_OUT_SEEDS)), help="comma-separated")
    parser.add_argument("--sources", type=int, default=DEFAULT_SOURCES)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    parser.add_argument("--processes", type=int, default=os.cpu_count())
    parser.add_argument("--output-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--quiet", action="store_true", help="do not print the Markdown")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]

    started = time.perf_counter()
    results = run(seeds=seeds, sources=args.sources, days=args.days, processes=args.processes)
    report: dict[str, Any] = {
        "parameters": {
            "seeds": seeds,
            "sources": args.sources,
            "days": args.days,
            "horizons": list(HORIZONS),
            "thresholds": THRESHOLDS,
            "smooth_hours": SMOOTH_HOURS,
            "min_rate_sample": MIN_RATE_SAMPLE,
            "mature_from_hour": MATURE_FROM,
            "chosen_policy": CHOSEN_POLICY,
        },
        "summary": summarise(results, seeds=seeds),
    }
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    report["generated_at"] = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    report["machine"] = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "forecast_eval.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    text = markdown(report)
    (args.output_dir / "forecast_eval.md").write_text(text)
    if not args.quiet:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
