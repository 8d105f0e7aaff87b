"""The anomaly-tick bench's results: the JSON report and its Markdown tables."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from typing import Any

from bench.lib.machine import code_line, code_state, machine_info
from bench.lib.reports import fmt

STEM = "anomaly_tick"
TITLES = {
    "fresh": "(a) within the hour, fresh judgement",
    "refresh_notice": "(a') within the hour, the tick that finds it older than the cache period",
    "during_refresh": "(c) ticks during that judgement",
    "hour_turn_notice": "(b) the tick that notices the hour turned",
    "during_hour_turn": "(c) ticks during the hour-turn feed",
    "first_tick": "(d) first tick of a process",
    "during_rebuild": "(c) ticks during the rebuild after a start",
}
DURING = ("during_refresh", "during_hour_turn", "during_rebuild")
JUDGING_TITLES = {
    "within_hour": "within the hour (detectors fed)",
    "hour_turn": "hour turn (each detector fed one hour)",
    "rebuild": "rebuild (every detector from the history)",
}
# Above this load average per CPU the timings carry other jobs' work.
BUSY_LOAD_PER_CPU = 0.7


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def machine_facts(*, uptime_start: str) -> dict[str, Any]:
    return machine_info(
        system=True, packages=("django", "psycopg", "redis"), uptime_start=uptime_start, uptime_end=uptime()
    )


def steady_state(cases: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """The mean added per tick within the hour: one tick per cache period finds the judgement stale. From
    the paired differences' p50s: on a busy machine the difference of two medians can come out negative."""
    interval, keep = context["broadcast_interval_seconds"], context["anomaly_cache_seconds"]
    per_period = max(1, round(keep / interval))
    fresh, notice = cases["fresh"].get("added_paired_ms"), cases["refresh_notice"].get("added_paired_ms")
    if not (fresh and notice):
        return {"ticks_per_refresh": per_period, "mean_added_ms": None}
    mean = (fresh["p50"] * (per_period - 1) + notice["p50"]) / per_period
    return {"ticks_per_refresh": per_period, "mean_added_ms": round(mean, 3)}


def build_report(measured: dict[str, Any], *, machine: dict[str, Any], started: datetime) -> dict[str, Any]:
    load = measured["context"]["loadavg_before"] + measured["context"]["loadavg_after"]
    cpus = machine.get("nproc") or os.cpu_count() or 1
    return {
        "benchmark": STEM,
        "date": started.isoformat(timespec="seconds"),
        **measured,
        "steady_state": steady_state(measured["cases"], measured["context"]),
        "busy_machine": max(load) > BUSY_LOAD_PER_CPU * cpus,
        "machine": machine,
        "code": code_state(),
        "wall_time_seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
    }


def _pair(figures: dict[str, float] | None, digits: int = 2) -> str:
    if not figures or figures.get("n") == 0:
        return "-"
    return f"{fmt(figures['p50'], digits)} / {fmt(figures['p90'], digits)}"


def _p50(figures: dict[str, float] | None, digits: int = 2) -> str:
    return fmt(figures["p50"], digits) if figures and figures.get("n", 1) else "-"


def _ticks_table(cases: dict[str, Any]) -> list[str]:
    lines = [
        "| case | ticks | with p50 / p90 | without p50 / p90 | added p50 | added p90 | added p50 / budget "
        "| added p90 / budget | p90 within budget | paired differences p50 / p90 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for case, title in TITLES.items():
        figures = cases[case]
        added, ratio = figures["added_ms"] or {}, figures["budget_ratio"] or {}
        within = {True: "yes", False: "no", None: "-"}[figures["within_budget"]]
        lines.append(
            f"| {title} | {figures['on_ms']['n']} | {_pair(figures['on_ms'])} | {_pair(figures['off_ms'])} "
            f"| {fmt(added.get('p50'), 2)} | {fmt(added.get('p90'), 2)} "
            f"| {fmt(ratio.get('p50'), 2)} | {fmt(ratio.get('p90'), 2)} | {within} "
            f"| {_pair(figures.get('added_paired_ms'))} |"
        )
    return lines


def _beside_table(cases: dict[str, Any], judging: dict[str, Any]) -> list[str]:
    lines = [
        "| ticks during | judgements | ticks (wholly inside) | during p50 / p90 | same ticks, nothing running "
        "| contention p50 / p90 | tick CPU during / nothing running (p50) | judged again |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case, kind in zip(DURING, ("within_hour", "hour_turn", "rebuild"), strict=True):
        figures, beside = cases[case], judging[kind]["background"]
        contention = figures["contention_ms"]
        lines.append(
            f"| {TITLES[case][4:]} | {beside['wall']['n']} | {figures['on_ms']['n']} ({beside['ticks_inside']}) "
            f"| {_pair(figures['on_ms'])} | {_pair(figures['quiet_ms'])} | {_pair(contention)} "
            f"| {_p50(figures['cpu_on_ms'])} / {_p50(figures['cpu_quiet_ms'])} | {beside['judged_again']} |"
        )
    return lines + [
        "",
        "Judged again: a tick read the stale judgement just before the thread stored the new one, then found "
        "the thread gone and started another judgement of the same moment (the selector allows this race; "
        "back-to-back ticks make it likelier than a 5 s interval does).",
    ]


def _judging_tables(judging: dict[str, Any], plan: dict[str, Any], context: dict[str, Any]) -> list[str]:
    lines = [
        "| judgement | n | wall p50 / p90 | CPU p50 / p90 | SQL statements, ms (p50) "
        "| reading the sums wall / CPU (p50) | detectors' CPU p50 | per source |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, title in JUDGING_TITLES.items():
        alone = judging[kind]["direct"]
        per_source = alone["detectors_cpu"]["p50"] / plan["sources"] if alone["wall"]["n"] else None
        lines.append(
            f"| {title} | {alone['wall']['n']} | {_pair(alone['wall'], 1)} | {_pair(alone['cpu'], 1)} "
            f"| {_p50(alone['statements'], 0)}, {_p50(alone['sql'], 1)} "
            f"| {_p50(alone['read_wall'], 1)} / {_p50(alone['read_cpu'], 1)} | {_p50(alone['detectors_cpu'], 1)} "
            f"| {fmt(per_source, 3)} |"
        )
    lines += [
        "",
        "The same judgements as the `anomaly-judge` thread ran them, beside back-to-back ticks (wall, and the "
        "thread's own CPU clock):",
        "",
        "| judgement | n | wall p50 / p90 | thread CPU p50 / p90 | wall / direct wall (p50) | ticks beside (p50) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, title in JUDGING_TITLES.items():
        beside = judging[kind]["background"]
        lines.append(
            f"| {title} | {beside['wall']['n']} | {_pair(beside['wall'], 1)} | {_pair(beside['cpu'], 1)} "
            f"| {fmt(judging[kind]['background_wall_over_direct'], 2)} | {_p50(beside['ticks_beside'], 0)} |"
        )
    rebuild = judging["rebuild"]["direct"]
    if rebuild["wall"]["n"]:
        observes = plan["sources"] * context["rebuild_hours_per_source"]
        per_observe = rebuild["detectors_cpu"]["p50"] * 1000 / observes
        lines += [
            "",
            f"A rebuild feeds {context['rebuild_hours_per_source']} hours to each of {plan['sources']} detectors "
            f"({observes:,} `observe` calls): {fmt(per_observe, 1)} µs of CPU per hour fed, building included.",
        ]
    return lines


def _profile_lines(profile: dict[str, Any]) -> list[str]:
    if not profile:
        return []
    modules = ", ".join(f"`{row['module']}` {fmt(row['share'] * 100, 0)} %" for row in profile["modules"])
    return [
        "",
        f"Where a rebuild's CPU goes (one more rebuild under cProfile, {fmt(profile['profiled_ms'], 0)} ms "
        f"profiled; own time by file): {modules}. The functions with the most own time:",
        "",
        "| function | calls | share of own time |",
        "|---|---:|---:|",
        *(
            f"| `{row['function']}` | {row['calls']:,} | {fmt(row['share'] * 100, 1)} % |"
            for row in profile["functions"]
        ),
    ]


def render_markdown(report: dict[str, Any]) -> str:
    plan, data, context, cases = report["plan"], report["data"], report["context"], report["cases"]
    machine = report["machine"]
    lines = [
        f"# Anomaly detection in a broadcaster tick at {plan['sources']} sources",
        "",
        f"Budget (issue 18): detection adds at most {fmt(context['budget_ms'], 0)} ms to a broadcaster tick at "
        "100 sources.",
        "",
        f"{report['date']}, {code_line(report['code'])}. {plan['sources']} sources x {plan['days']} days: "
        f"{data['metric_rows']:,} metric rows, {data['rollup_rows']:,} hourly rollups (derived by the triggers), "
        f"then {data['written_while_ticking']['metrics']:,} more rows as the simulated clock moved. "
        f"`MONITORING_ANOMALY_BACKGROUND` {'on' if context['background'] else 'off'}; cache "
        f"`{context['cache_backend'].rsplit('.', 1)[-1]}`, a judgement fresh for {context['anomaly_cache_seconds']} s; "
        f"broadcast interval {fmt(context['broadcast_interval_seconds'])} s; training {context['training_days']} days.",
        "",
        f"Machine: {machine.get('nproc')} CPUs ({machine.get('cpu_model')}), Python {machine.get('python')}; load "
        f"average (1/5/15 min) {context['loadavg_before']} before the ticks, {context['loadavg_after']} after. "
        f"Start: `{machine.get('uptime_start')}`; end: `{machine.get('uptime_end')}`.",
        "",
    ]
    if report["busy_machine"]:
        lines += [
            "**The machine was busy (load above 0.7 per CPU): other jobs' work is in these timings; rerun on a "
            "quiet machine before comparing them with the budget.**",
            "",
        ]
    steady = report["steady_state"]
    lines += [
        "## What a tick pays",
        "",
        "Wall time of `pipeline_status()` (ms), the status the broadcaster builds every tick, with the anomaly "
        "part (judging in the background, the production default) and with `current_anomalies` replaced by an "
        "empty result (no thread either). Added = with minus without, per percentile; single ticks are pairs at "
        "the same simulated moment; (c) are ticks run back to back while the `anomaly-judge` thread was alive, "
        'their "without" the same number of ticks at the same moment once it ended. Paired differences: '
        "with minus without within each pair, the steadier figure on a busy machine.",
        "",
        *_ticks_table(cases),
        "",
        f"Within the hour one tick in {steady['ticks_per_refresh']} finds the judgement stale and starts a thread: "
        f"detection adds {fmt(steady['mean_added_ms'], 2)} ms per tick on average (paired p50s). At a 5 s "
        "interval a broadcaster tick meets a running judgement only when the judgement outlasts the interval "
        "(the rebuild); the back-to-back ticks of (c) stand for that tick and for the REST status requests a "
        "server process answers while its own thread judges.",
        "",
        "Ticks beside a judgement against the same ticks with nothing running (a fresh judgement read, no "
        "thread): contention = during minus nothing running, what sharing the interpreter lock with the "
        "judging thread costs. Tick CPU is the tick thread's own clock.",
        "",
        *_beside_table(cases, report["judging"]),
        "",
        "Where a tick's time goes (p50s): the tick thread's CPU and the SQL, statements and time executing them:",
        "",
        "| case | CPU with / without (ms) | CPU added (ms) | SQL statements with / without | SQL ms with / without |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {title} | {_p50(cases[case]['cpu_on_ms'])} / {_p50(cases[case]['cpu_off_ms'])} "
            f"| {_p50(cases[case]['cpu_added_ms'])} "
            f"| {_p50(cases[case]['statements_on'], 0)} / {_p50(cases[case]['statements_off'], 0)} "
            f"| {_p50(cases[case]['sql_on_ms'])} / {_p50(cases[case]['sql_off_ms'])} |"
            for case, title in TITLES.items()
        ),
        "",
        "## What judging costs",
        "",
        "`live_anomalies` called directly in the bench's thread with nothing else running (what the caller paid "
        "when it judged itself): wall, process CPU, its SQL, the part spent in `window_sums` (query and rows), "
        "and the rest, the detectors' own CPU (ms):",
        "",
        *_judging_tables(report["judging"], plan, context),
        *_profile_lines(report.get("rebuild_profile") or {}),
        "",
        "Findings in the last tick of each case: "
        + ", ".join(f"{case} {cases[case]['findings']}" for case in TITLES)
        + f"; detectors ready: {cases['fresh']['ready_sources']} of {plan['sources']}. Reproduce: "
        "`make anomaly-tick-bench`; the method is in bench/README.md.",
        "",
    ]
    return "\n".join(lines)
