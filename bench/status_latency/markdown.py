"""``bench/results/status_latency*.md``: steady state, cold calls, in-process timings and query plans."""

from __future__ import annotations

from typing import Any

from bench.lib.database import SOURCES
from bench.lib.reports import median

from .config import ANOMALY_CACHE_SECONDS, EXPLAIN_WINDOWS, LONG_SCENARIO, WARMUP_CALLS
from .fill import FILL_DAYS


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def render_markdown(report: dict[str, Any]) -> str:
    data, measurement = report["data"], report["measurement"]
    scenarios, cold, pin = measurement["scenarios"], measurement["cold"], measurement["pinning"]
    config = report["config"]
    status = scenarios["status_24h"]
    origin = (
        f"reused, topped up {data['topped_up_rows']:,} rows in {data['top_ups']} top-up(s)"
        if data["reused"]
        else "this run"
    )
    lines = [
        f"# Status endpoint latency ({report['date']})",
        "",
        f"{data['total_rows']:,} metric rows over {FILL_DAYS} days, {len(SOURCES)} sources, "
        f"{data['runs']:,} scrape runs, "
        f"{data['rollup_rows']:,} hourly rollups, {data['scrape_sources']} scrape sources, "
        f"{data['alerts']['active']} active alerts; fill {data['rows_per_second']:,} rows/s by COPY, "
        f"{data.get('metric_copy_statements', 0):,} COPY statements (one per UTC hour), rollups and scrape "
        f"sources kept by the database triggers ({origin}). "
        f"A fresh daphne (`python -m conflict_monitor.serve`) per round on CPU {pin['server_cpu']}, "
        f"client on CPU {pin['client_cpu']}; per round "
        f"{WARMUP_CALLS} + {WARMUP_CALLS} process warm-up calls (health, runs), then per endpoint "
        f"{WARMUP_CALLS} warm-up and {config['calls']} "
        f"timed calls ({config['long_window_calls']} for {LONG_SCENARIO}), x {config['rounds']} rounds; "
        f"keep-alive reconnects: {measurement['reconnects']}. Status documents: {status.get('bytes', 0):,} bytes "
        f"(24 h), {status.get('anomalies', 0)} anomalies, {status.get('alerts', 0)} alerts, "
        f"overall {status.get('overall_status')}.",
        "",
        "## Steady state (anomaly findings cached)",
        "",
        "| endpoint | round | p50 ms | p90 ms | p99 ms | max ms | reports aggregated |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, entry in scenarios.items():
        reports = "" if entry.get("reports") is None else f"{entry['reports']:,}"
        for number, stats in enumerate(entry["rounds"], 1):
            figures = " | ".join(f"{stats[key]:.2f}" for key in ("p50", "p90", "p99", "max"))
            lines.append(f"| {name} | {number} | {figures} | {reports} |")
        lines.append(
            f"| **{name}** | **median of rounds** | **{entry['median_of_round_p50']:.2f}** | "
            f"**{entry['median_of_round_p90']:.2f}** | **{entry['median_of_round_p99']:.2f}** | "
            f"**{entry['median_of_round_max']:.2f}** | |"
        )
    lines += ["", *(f"- p50 ratio {key}: **{value:.1f}x**" for key, value in report["ratios"].items()), ""]
    lines += [
        "## Cold: anomaly cache miss (status 24 h)",
        "",
        f"{cold['count']} cold calls: median **{cold['median_ms']:.1f} ms** (first status call of a fresh process "
        f"{cold['first_after_start_median_ms']:.1f} ms, later ones {_ms(cold['later_median_ms'])} ms), "
        f"min {cold['min_ms']:.1f}, max {cold['max_ms']:.1f}; "
        f"**+{cold['extra_over_warm_24h_p50_ms']:.1f} ms** over the warm 24 h p50. One call per "
        f"{ANOMALY_CACHE_SECONDS} s per process (and one per new UTC hour) pays this.",
        "",
        "| round | reason | ms |",
        "|---|---|---:|",
        *(f"| {c['round']} | {c['reason']} | {c['ms']:.1f} |" for c in cold["calls"]),
        "",
    ]
    timings = report["in_process"]
    lines += [
        "## In-process `pipeline_status` (Django subprocess, no HTTP)",
        "",
        "| window | cold ms (median of 3) | warm ms (median of 10) | sum of query exec ms (EXPLAIN ANALYZE) |",
        "|---|---:|---:|---:|",
    ]
    for window in EXPLAIN_WINDOWS:
        entry = timings[str(window)]
        query_ms = sum(q["execution_ms"] for q in report["plans"][f"{window}h"])
        lines.append(
            f"| {window}h | {_ms(median(entry['cold_ms']))} | {_ms(median(entry['warm_ms']))} | {query_ms:.1f} |"
        )
    lines += [
        "",
        f"`recent_anomalies()` alone: {_ms(median(timings['recent_anomalies_ms']))} ms (median of 3).",
        "",
        "## Queries",
        "",
        "| window | query | scans (index, rows read, heap fetches) | index-only | buffers | exec ms |",
        "|---|---|---|---|---:|---:|",
    ]
    for window, queries in report["plans"].items():
        for query in queries:
            scans = "; ".join(
                f"{s['node']} on {s['index'] or s['relation']} ({s['rows']:,} rows, {s['heap_fetches']} heap fetches)"
                for s in query["scans"]
            )
            jit = " (JIT)" if query["jit"] else ""
            lines.append(
                f"| {window} | {query['query']} | {scans} | {'yes' if query['index_only'] else 'no'} | "
                f"{query['shared_buffers']:,} | {query['execution_ms']:.2f}{jit} |"
            )
    lines += [
        "",
        f"Wall time {report['wall_time_seconds']:.0f} s. Plans: bench/results/{report['output_stem']}_plans.txt.",
        "",
    ]
    return "\n".join(lines)


def ratios(scenarios: dict[str, Any]) -> dict[str, float]:
    baseline = scenarios["health"]["median_of_round_p50"]
    return {
        f"{name}/health": round(scenarios[name]["median_of_round_p50"] / baseline, 2)
        for name in scenarios
        if name != "health"
    }
