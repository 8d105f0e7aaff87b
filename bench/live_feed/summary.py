"""The live-feed figures: medians of the rounds per N, project / reference ratios, the issue's targets."""

from __future__ import annotations

from typing import Any

from bench.lib.reports import median, median_of, ratio

from .config import (
    BASE_RATE,
    TARGET_CPU_RATIO,
    TARGET_INGEST_CLIENTS,
    TARGET_INGEST_P99_MS,
    TARGET_P99_MS_5000,
    TARGET_RSS_KB,
    TARGET_SUSTAINED_5000,
    TARGET_TWO_PROCESS_CLIENTS,
)


def stage_windows(stage: dict[str, Any]) -> list[dict[str, Any]]:
    return stage["ladder"]["steps"] if "ladder" in stage else [stage["base"]]


def stage_faults(stage: dict[str, Any]) -> tuple[int, int]:
    """(frames lost, sequence faults) over every window of a stage. Lost: missing in a seq gap, so
    never delivered; a frame only late (a ladder step beyond the server's rate) is not lost."""
    windows = stage_windows(stage)
    lost = sum(w["sequence"]["missing_frames"] for w in windows)
    keys = ("gaps", "repeats", "out_of_order", "epoch_changes", "resyncs", "unparsed")
    faults = sum(w["sequence"][key] for w in windows for key in keys)
    return lost, faults


def summarize_fanout(rounds: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per N: medians over the rounds of every headline figure, and the worst of the checks."""
    rows = []
    for index, first in enumerate(rounds[0]):
        stages = [stages[index] for stages in rounds if len(stages) > index]
        faults = [stage_faults(stage) for stage in stages]
        windows = [w for stage in stages for w in stage_windows(stage)]

        rows.append(
            {
                "clients": first["clients"],
                "processes": first["processes"],
                "rounds": len(stages),
                "connects_per_second": median([s["connect"]["per_second"] for s in stages]),
                "connect_failures": sum(s["connect"]["failures"] for s in stages),
                "rss_per_connection_kb": median([s["rss_per_connection_kb"] for s in stages]),
                "latency_p50_ms": median([s["base"]["latency_ms"].get("p50") for s in stages]),
                "latency_p99_ms": median([s["base"]["latency_ms"].get("p99") for s in stages]),
                "latency_max_ms": median([s["base"]["latency_ms"].get("max") for s in stages]),
                "base_kept_up": sum(s["base"]["kept_up"] for s in stages),
                "server_cpu_us_per_frame": median([s["server_cpu_us_per_frame"] for s in stages]),
                "sustained_per_second": median([s["ladder"]["sustained_per_second"] for s in stages if "ladder" in s]),
                "limited_by": sorted({s["ladder"]["limited_by"] for s in stages if "ladder" in s}),
                "sustained_rounds": sum("ladder" in s for s in stages),
                "frames_lost": sum(lost for lost, _ in faults),
                "sequence_faults": sum(fault for _, fault in faults),
                "client_cpu_max": max(w["client_cpu_share"] for w in windows),
                "client_bound_windows": sum(w["client_bound"] for w in windows),
                "client_core_saturated_windows": sum(w.get("client_core_saturated", False) for w in windows),
                "windows": len(windows),
                "foreign_max": max((w.get("server_cpu_foreign_share") or 0.0) for w in windows),
            }
        )
    return rows


RATIO_KEYS = (
    "server_cpu_us_per_frame",
    "latency_p99_ms",
    "sustained_per_second",
    "rss_per_connection_kb",
    "connects_per_second",
)


def fanout_ratios(project: list[dict[str, Any]], reference: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_n = {(row["clients"], row["processes"]): row for row in reference}
    ratios = []
    for row in project:
        base = by_n.get((row["clients"], row["processes"]))
        ratios.append(
            {
                "clients": row["clients"],
                "processes": row["processes"],
                **{key: ratio(row[key], base[key]) if base else None for key in RATIO_KEYS},
            }
        )
    return ratios


def per_round_cpu_ratios(report: dict[str, Any]) -> dict[int, list[float]]:
    """Project / reference CPU per frame per round (rounds interleave, so slow drifts of the machine cancel)."""
    out: dict[int, list[float]] = {}
    for project, reference in zip(report["fanout"]["project"], report["fanout"]["reference"], strict=False):
        for p, r in zip(project, reference, strict=False):
            value = ratio(p.get("server_cpu_us_per_frame"), r.get("server_cpu_us_per_frame"))
            if value is not None and p["processes"] == 1:
                out.setdefault(p["clients"], []).append(value)
    return out


def evaluate_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets on the medians of the rounds, each with the reference's figure at the same N
    and the ratio (the ingest path has no counterpart in the reference)."""
    summary = report["summary"]
    project = {(row["clients"], row["processes"]): row for row in summary["project"]}
    reference = {(row["clients"], row["processes"]): row for row in summary["reference"]}
    targets = []

    def add(name: str, key: str | None, row, base, unit: str, ok: bool | None, note: str = "") -> None:
        value = row.get(key) if key and row else None
        base_value = base.get(key) if key and base else None
        targets.append(
            {
                "target": name,
                "project": value,
                "reference": base_value,
                "ratio": ratio(value, base_value),
                "unit": unit,
                "passed": ok,
                "note": note,
            }
        )

    for (count, processes), row in sorted(project.items()):
        if processes != 1:
            continue
        base = reference.get((count, processes))
        cpu_ratio = ratio(row["server_cpu_us_per_frame"], base and base["server_cpu_us_per_frame"])
        add(
            f"server CPU per delivered message ≤ {TARGET_CPU_RATIO:g}x the reference ({count:,} clients)",
            "server_cpu_us_per_frame",
            row,
            base,
            "µs",
            None if cpu_ratio is None else cpu_ratio <= TARGET_CPU_RATIO,
        )
    row, base = project.get((5000, 1)), reference.get((5000, 1))
    if row:
        p99 = row["latency_p99_ms"]
        kept = f"base window kept up in {row['base_kept_up']} of {row['rounds']} rounds"
        add(
            f"5,000 clients, one process: p99 publish -> receipt ≤ {TARGET_P99_MS_5000:g} ms (at {BASE_RATE:g}/s)",
            "latency_p99_ms",
            row,
            base,
            "ms",
            p99 is not None and p99 <= TARGET_P99_MS_5000 and row["base_kept_up"] == row["rounds"],
            kept,
        )
        sustained = row["sustained_per_second"]
        add(
            f"5,000 clients, one process: ≥ {TARGET_SUSTAINED_5000:g} sustained broadcasts/s",
            "sustained_per_second",
            row,
            base,
            "/s",
            sustained is not None and sustained >= TARGET_SUSTAINED_5000,
            limit_note(row).strip(" ()"),
        )
    two = [row for (count, processes), row in project.items() if processes == 2]
    if two:
        row = two[0]
        base = reference.get((row["clients"], 2))
        connected = row["clients"] >= TARGET_TWO_PROCESS_CLIENTS and row["connect_failures"] == 0
        rss = row["rss_per_connection_kb"]
        add(
            f"≥ {TARGET_TWO_PROCESS_CLIENTS:,} connections over two processes, ≤ {TARGET_RSS_KB:g} KB RSS each",
            "rss_per_connection_kb",
            row,
            base,
            "KB",
            connected and rss is not None and rss <= TARGET_RSS_KB,
            f"{row['clients']:,} connected, {row['connect_failures']} connects failed",
        )
    ingest = report["ingest"]["rounds"]
    clients = ingest[0]["clients"] if ingest else 0
    figures = {"p99": median_of(ingest, "from_commit_ms", "p99")}
    add(
        f"ingest commit -> receipt p99 ≤ {TARGET_INGEST_P99_MS:g} ms at {TARGET_INGEST_CLIENTS:,} clients",
        "p99",
        figures,
        None,
        "ms",
        None if clients < TARGET_INGEST_CLIENTS or figures["p99"] is None else figures["p99"] <= TARGET_INGEST_P99_MS,
        f"{clients:,} clients; no reference counterpart",
    )
    return targets


def limit_note(row: dict[str, Any]) -> str:
    limits = [limit for limit in row["limited_by"] if limit != "server"]
    return f" ({', '.join(limits)})" if limits else ""
