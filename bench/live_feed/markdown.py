"""``bench/results/live_feed.md``: targets, fan-out medians and rounds, latency tables, the profile."""

from __future__ import annotations

from typing import Any

from bench.lib.machine import code_line
from bench.lib.reports import fmt, median_of
from bench.lib.wsclient import CONNECT_CONCURRENCY

from .config import (
    BASE_RATE,
    CLIENT_BOUND_SHARE,
    CLIENT_CORE_BOUND_SHARE,
    DRAIN_SECONDS,
    LAG_BOUND_MS,
    LAG_GROWTH_MS,
    RECEIPT_TIMEOUT,
)
from .summary import RATIO_KEYS, limit_note, stage_windows


def target_value(value: float | None, unit: str, rates: list[float]) -> str:
    if value is None:
        return "-"
    if unit == "/s":
        return f"{sustained_text(value, rates)}/s"
    return f"{value:,.1f} {unit}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**pass**" if ok else "**FAIL**")


def render_profile(profile: dict[str, Any]) -> list[str]:
    window = profile["window"]
    us = window["server_cpu_us_per_frame"]
    lines = [
        f"## Where daphne's CPU goes (separate profiled round, {cfg_clients(profile)} clients)",
        "",
        f"{window['frames_delivered']:,} frames delivered while profiled; daphne {us:.0f} µs CPU per frame, of "
        f"which the cyclic GC {window['gc_us_per_frame']:.1f} µs ({window['gc_share_of_cpu']:.0%}; "
        f"collections per generation {window['gc_collections']}, measured with gc.callbacks). py-spy: "
        f"{profile['samples']:,} busy samples; GC time appears under the frame whose allocation triggered it.",
        "",
        "| where (first match from the socket up) | % of busy samples | ≈ µs per frame |",
        "|---|---:|---:|",
        *(f"| {name} | {share:.1f} | {share * us / 100:.0f} |" for name, share in profile["buckets"]),
        "",
        "| function (self) | % of busy samples |",
        "|---|---:|",
        *(f"| `{name}` | {share} |" for name, share in profile["self_top"][:15]),
        "",
    ]
    syscalls = profile.get("syscalls_per_frame")
    if syscalls:
        counts = ", ".join(f"{name} {value:g}" for name, value in syscalls.items() if name != "frames")
        lines += [f"Syscalls per delivered frame (strace -c over {syscalls['frames']:,} frames): {counts}.", ""]
    return lines


def cfg_clients(profile: dict[str, Any]) -> str:
    return f"{profile.get('clients', '?'):,}" if isinstance(profile.get("clients"), int) else "the fan-out"


def foreign(result: dict[str, Any]) -> str:
    share, steal = result.get("server_cpu_foreign_share"), result.get("server_cpu_steal_share")
    return "-" if share is None else f"{share:.0%} / {steal:.0%}"


def sustained_text(value: float | None, rates: list[float]) -> str:
    if value is None:
        return "-"
    return f"< {min(rates):g}" if value == 0 else f"{value:g}"


def rounds_note(row: dict[str, Any], rounds: int) -> str:
    done = row["sustained_rounds"]
    return f" [{done} round{'s' if done != 1 else ''}]" if 0 < done < rounds else ""


def step_text(step: dict[str, Any]) -> str:
    client = step["client_bound"] or step.get("client_core_saturated")
    return f"{step['rate']:g}{'✓' if step['kept_up'] else '✗'}{'ᶜ' if client else ''}"


def steps_text(stage: dict[str, Any]) -> str:
    return " ".join(step_text(step) for step in stage_windows(stage))


def render_markdown(report: dict[str, Any]) -> str:
    cfg, pin = report["config"], report["config"]["pinning"]
    snap, ingest, summary = report["snapshot"], report["ingest"], report["summary"]
    rounds = cfg["rounds"]
    lines = [
        f"# Live feed ({report['date']})",
        "",
        f"Servers on CPU {pin['server_cpu']} (both processes of the two-process rows too), load generator and "
        f"broadcaster on CPU {pin['client_cpu']} (Redis, PostgreSQL unpinned); status frame "
        f"{fmt(report['frame_bytes'])} bytes, {fmt(report['data']['metrics_in_window'])} metric rows in the window; "
        f"{rounds} round(s), figures are medians of the rounds. Code: {code_line(report['code'])}, served by "
        f"`{cfg['server_launcher']}`.",
        "",
        "## Targets",
        "",
        "| target | project | reference | project / reference | result | note |",
        "|---|---:|---:|---:|---|---|",
    ]
    for target in report["targets"]:
        share = target["ratio"]
        lines.append(
            f"| {target['target']} | **{target_value(target['project'], target['unit'], cfg['rates'])}** | "
            f"{target_value(target['reference'], target['unit'], cfg['rates'])} | "
            f"{'-' if share is None else f'{share:.2f}x'} | "
            f"{verdict(target['passed'])} | {target['note']} |"
        )
    lines += [
        "",
        f"## Fan-out (medians of {rounds} round(s))",
        "",
        f"Latency (p50 / p99 / max) and server CPU per delivered message: the base window, "
        f"{BASE_RATE:g} broadcast/s. Sustained: highest broadcasts/s of the ladder "
        f"{'/'.join(f'{r:g}' for r in cfg['rates'])} whose window kept up (every frame to every client within "
        f"{DRAIN_SECONDS:g} s of the window, no sequence fault, p99 lag ≤ {LAG_BOUND_MS:.0f} ms, lag growth ≤ "
        f"{LAG_GROWTH_MS:.0f} ms, publisher ≥ 90 % of the rate); in parentheses what stopped it when not the "
        "server; [n rounds] when fewer rounds ran the ladder at that N. Connects/s with the publisher paused, "
        f"{CONNECT_CONCURRENCY} handshakes in flight. Ratios below: project / reference at the same N.",
        "",
        "| server | N | procs | connects/s | RSS KB / conn | p50 ms | p99 ms | max ms | µs CPU / msg | "
        "sustained /s | frames lost / seq faults | client CPU max | client-bound / client core saturated windows |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for server in ("project", "reference"):
        for row in summary[server]:
            sustained = row["sustained_per_second"]
            lines.append(
                f"| {server} | {row['clients']:,} | {row['processes']} | {fmt(row['connects_per_second'], 0)} | "
                f"{fmt(row['rss_per_connection_kb'])} | {fmt(row['latency_p50_ms'])} | "
                f"**{fmt(row['latency_p99_ms'])}** | {fmt(row['latency_max_ms'])} | "
                f"**{fmt(row['server_cpu_us_per_frame'])}** | "
                f"**{sustained_text(sustained, cfg['rates'])}**{limit_note(row)}{rounds_note(row, rounds)} | "
                f"{row['frames_lost']:,} / {row['sequence_faults']:,} | {row['client_cpu_max']:.0%} | "
                f"{row['client_bound_windows']} / {row['client_core_saturated_windows']} of {row['windows']} |"
            )
    lines += [
        "",
        "| N | procs | CPU / msg | p99 | sustained | RSS / conn | connects/s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary["ratios"]:
        lines.append(
            f"| {row['clients']:,} | {row['processes']} | "
            + " | ".join("-" if row[key] is None else f"{row[key]:.2f}x" for key in RATIO_KEYS)
            + " |"
        )
    per_round = summary["per_round_cpu_ratios"]
    if per_round:
        lines += [
            "",
            "Per-round CPU ratios (project / reference, rounds interleaved): "
            + "; ".join(f"{n:,}: {', '.join(f'{v:.1f}x' for v in values)}" for n, values in sorted(per_round.items()))
            + ".",
        ]
    lines += [
        "",
        "## Fan-out per round",
        "",
        "Ladder: rate/s and ✓ kept up, ✗ did not, ᶜ client-bound or load generator's core saturated. "
        "KB / conn: RSS growth of the server processes over the connections.",
        "",
        "| server | N | procs | round | connect s | connects/s | RSS MB | KB / conn | p50 ms | p99 ms | max ms | "
        "µs CPU / msg (base) | CPU share (base) | ladder | client CPU (base) | other load / steal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for server in ("project", "reference"):
        for number, stages in enumerate(report["fanout"][server], 1):
            for stage in stages:
                base = stage["base"]
                lat = base["latency_ms"]
                lines.append(
                    f"| {server} | {stage['clients']:,} | {stage['processes']} | {number} | "
                    f"{fmt(stage['connect']['seconds'], 2)} | {fmt(stage['connect']['per_second'], 0)} | "
                    f"{' + '.join(f'{v:.0f}' for v in stage['rss_mb'][: stage['processes']])} | "
                    f"{fmt(stage['rss_per_connection_kb'])} | {fmt(lat.get('p50'))} | {fmt(lat.get('p99'))} | "
                    f"{fmt(lat.get('max'))} | {fmt(base['server_cpu_us_per_frame'])} | "
                    f"{base['server_cpu_share']:.0%} | {steps_text(stage)} | {base['client_cpu_share']:.0%} | "
                    f"{foreign(base)} |"
                )
    busiest = max((row["foreign_max"] for server in ("project", "reference") for row in summary[server]), default=0)
    if busiest > 0.1:
        lines += [
            "",
            f"Warning: other processes used up to {busiest:.0%} of the server's CPU during a window; "
            "the machine was not quiet and the figures are pessimistic.",
        ]
    bound = sum(row["client_bound_windows"] for server in ("project", "reference") for row in summary[server])
    saturated = sum(
        row["client_core_saturated_windows"] for server in ("project", "reference") for row in summary[server]
    )
    if bound or saturated:
        lines += [
            "",
            f"Warning: {bound} window(s) client-bound (the load generator used ≥ {CLIENT_BOUND_SHARE:.0%} of its "
            f"core) and {saturated} with the load generator's core ≥ {CLIENT_CORE_BOUND_SHARE:.0%} busy (with the "
            "broadcaster, Redis, PostgreSQL and anything else running there): their latency includes queueing in "
            "the load generator, and a ladder step that failed so does not show the server's limit.",
        ]
    lines += [
        "",
        "## Latency: snapshot and ingest -> receipt",
        "",
        "| measurement | round | n | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    ingest_clients = ingest["rounds"][0]["clients"] if ingest["rounds"] else 0
    rows = [
        ("snapshot: handshake start -> first frame", snap["rounds"], "first_frame_ms"),
        ("snapshot: handshake only", snap["rounds"], "handshake_ms"),
        (f"ingest -> receipt, from 201 response ({ingest_clients:,} clients)", ingest["rounds"], "from_commit_ms"),
        ("ingest -> receipt, from request start", ingest["rounds"], "from_request_ms"),
        ("of which: 201 -> frame built (per POST)", ingest["rounds"], "commit_to_frame_stamp_ms"),
        ("of which: frame built -> receipt", ingest["rounds"], "frame_stamp_to_receipt_ms"),
        ("ingest POST round trip", ingest["rounds"], "post_ms"),
    ]
    for name, entries, key in rows:
        for number, entry in enumerate(entries, 1):
            stats = entry[key]
            lines.append(
                f"| {name} | {number} | {fmt(stats.get('n'))} | {fmt(stats.get('p50'), 2)} | "
                f"{fmt(stats.get('p90'), 2)} | {fmt(stats.get('p99'), 2)} | {fmt(stats.get('max'), 2)} |"
            )
        lines.append(
            f"| **{name}** | **median** | | **{fmt(median_of(entries, key, 'p50'), 2)}** | "
            f"**{fmt(median_of(entries, key, 'p90'), 2)}** | **{fmt(median_of(entries, key, 'p99'), 2)}** | "
            f"**{fmt(median_of(entries, key, 'max'), 2)}** |"
        )
    missed = sum(r["missed_pairs"] for r in ingest["rounds"])
    early = sum(r["received_before_response"] for r in ingest["rounds"])
    faults = sum(r["sequence"][key] for r in ingest["rounds"] for key in ("gaps", "repeats", "out_of_order", "resyncs"))
    client_cpu = max((r["client_cpu_share"] for r in ingest["rounds"]), default=0.0)
    lines += [
        "",
        f"Ingest pairs (client x POST) without a matching frame within {RECEIPT_TIMEOUT:g} s: {missed}; "
        f"frames that arrived before the 201 response: {early}; sequence faults: {faults}; load generator CPU "
        f"up to {client_cpu:.0%}.",
        "",
    ]
    profile = report.get("profile")
    if profile:
        lines += render_profile(profile)
    lines += [f"Wall time {report['wall_time_seconds']:.0f} s.", ""]
    return "\n".join(lines)
