#!/usr/bin/env python3
"""Event-level precision, recall and time to detect of the anomaly detectors on a held-out world.

The world (``bench/anomaly_world``): N sources × D days of quarter-hour counts with local time zones
and DST, local weekends, holidays, news bursts, late batches, overdispersed volumes and rates, and
labelled incidents of seven kinds. Each registered detector is driven through the Protocol of
``monitoring/anomaly/contract.py`` (three partial judgements per hour, then the closed hour) on every
seed, on the mixed data set and on one data set per kind (same background, only that kind), in
parallel processes. A detector whose factory cannot be imported is skipped with a note.

    .venv/bin/python bench/anomaly_eval.py [--seeds 1,2,3,4,5] [--sources 30] [--days 45]
        [--detectors zscore,streaming[,robust_old]] [--no-per-kind] [--processes N]

Writes bench/results/anomaly_eval.{json,md} (``--output-dir`` to change) and prints the Markdown.
World, scoring and definitions: bench/anomaly_world/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.anomaly_world.evaluate import (  # noqa: E402
    DEFAULT_SEEDS,
    MIXED,
    NEW_DETECTOR,
    REGISTRY,
    available,
    cached_world,
    evaluate_detector,
    versus,
)
from bench.anomaly_world.incidents import oracle_delay  # noqa: E402
from bench.anomaly_world.labels import DEGRADATION, KINDS, OUTAGE, VOLUME_DROP  # noqa: E402
from bench.anomaly_world.world import DEFAULT_DAYS, DEFAULT_SOURCES  # noqa: E402


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _range(spread: dict[str, Any], digits: int = 2) -> str:
    if spread["median"] is None:
        return "–"
    return f"{_f(spread['median'], digits)} [{_f(spread['min'], digits)}–{_f(spread['max'], digits)}]"


# Evidence an oracle needs before its delay counts: a one-shot test at the streaming detector's default
# sensitivity. A detector testing every quarter-hour needs more; see oracle_section for where the
# oracle's delay is a lower bound and where it is not.
ORACLE_DELAY_Z = 4.5
# The delay targets (median hours from the start), shown beside the oracle's.
DELAY_TARGETS = {OUTAGE: 1.0, VOLUME_DROP: 1.0, DEGRADATION: 6.0}


def oracle_delays(world: Any) -> dict[str, list[float | None]]:
    """Per kind, each event's oracle delay at :data:`ORACLE_DELAY_Z` (None: never reached)."""
    out: dict[str, list[float | None]] = {}
    names = [p.name for p in world.profiles]
    for event in world.events:
        i = names.index(event.source)
        delay = oracle_delay(
            event=event, start=world.start, profile=world.profiles[i], bg=world.backgrounds[i], z=ORACLE_DELAY_Z
        )
        out.setdefault(event.kind, []).append(delay)
    return out


def world_summary(*, seeds: list[int], sources: int, days: int) -> dict[str, Any]:
    per_seed = {}
    for seed in seeds:
        world = cached_world(seed, sources, days)
        per_seed[seed] = {
            "events": len(world.events),
            "by_kind": dict(sorted(Counter(e.kind for e in world.events).items())),
            "zones": dict(sorted(Counter(p.tz for p in world.profiles).items())),
            "batch_sources": sum(p.batch_quarter is not None for p in world.profiles),
            "late_hours": sum(len(v) for v in world.late.values()),
            "holiday_days": sum(len(v) for v in world.holidays.values()),
            "labels": [e.as_dict() for e in world.events],
            "oracle_delay_h": oracle_delays(world),
        }
    return {"start": cached_world(seeds[0], sources, days).start.isoformat(), "per_seed": per_seed}


def markdown(report: dict[str, Any]) -> str:
    p = report["parameters"]
    lines = [
        "# Anomaly detection: held-out world, event-level scores",
        "",
        f"Generated {report['generated_at']} by `bench/anomaly_eval.py` in {report['total_seconds']} s "
        f"({report['machine']['python']}, {report['machine']['cpus']} CPUs). World and definitions: "
        "[bench/anomaly_world/README.md](../anomaly_world/README.md).",
        "",
        f"Seeds {', '.join(map(str, p['seeds']))}; {p['sources']} sources × {p['days']} days from "
        f"{report['world']['start'][:10]} (DST ends inside the range for Kyiv, Beirut, Jerusalem, Gaza, "
        f"Cairo); events per seed: "
        + ", ".join(str(w["events"]) for w in report["world"]["per_seed"].values())
        + ". Figures: pooled over seeds, then median [min–max] of the per-seed values.",
        "",
    ]
    for name, note in report["skipped"].items():
        lines.append(f"- **{name} skipped**: {note}")
    if report["skipped"]:
        lines.append("")
    lines += [
        "## Mixed data set (all incidents)",
        "",
        "| detector | events found | false-alarm runs | precision | recall | TTD median h | TTD p90 h "
        "| false-alarm runs / source-week | hour precision | hour recall | wall s | µs / call |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for d in report["detectors"].values():
        m = d["summary"][MIXED]
        rt = d["runtime"]
        lines.append(
            f"| {d['name']} | {m['found']}/{m['events']} | {m['false_alarm_runs']} "
            f"| {_f(m['precision'], 3)} ({_range(m['precision_spread'])}) "
            f"| {_f(m['recall'], 3)} ({_range(m['recall_spread'])}) "
            f"| {_range(m['ttd_median_h_spread'])} | {_range(m['ttd_p90_h_spread'])} "
            f"| {_range(m['false_alarm_runs_per_source_week_spread'], 3)} "
            f"| {_range(m['hour_precision_spread'])} | {_range(m['hour_recall_spread'])} "
            f"| {rt['wall_seconds']} | {_f(rt['microseconds_per_call'], 1)} |"
        )
    verdict = report.get("new_versus_zscore")
    if verdict:
        lines += [
            "",
            f"## Does {NEW_DETECTOR} beat the z-score on every shape?",
            "",
            "F1 of the shape's precision (own set; the mixed set's without per-kind sets) and its recall "
            "in the mixed set, pooled over seeds.",
            "",
            f"| shape | {NEW_DETECTOR} P / R / F1 | zscore P / R / F1 | beats |",
            "|---|---|---|---|",
        ]
        for kind, v in verdict.items():
            n, b = v["new"], v["baseline"]
            lines.append(
                f"| {kind} | {_f(n['precision'], 3)} / {_f(n['recall'], 3)} / {_f(n['f1'], 3)} "
                f"| {_f(b['precision'], 3)} / {_f(b['recall'], 3)} / {_f(b['f1'], 3)} "
                f"| {'yes' if v['beats'] else 'NO'} |"
            )
    lines += oracle_section(report)
    for d in report["detectors"].values():
        kinds = d["summary"]["kinds"]
        lines += [
            "",
            f"## Per shape: {d['name']} ({d['title']})",
            "",
            "Recall and time to detect (TTD, hours from the incident's start) inside the mixed set; "
            "precision and false-alarm runs on the kind's own set (same background, only that kind).",
            "",
            "| shape | events | recall (mixed) | TTD median h | TTD p90 h | precision (own set) "
            "| recall (own set) | false-alarm runs / source-week (own set) | hour P / R (own set) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for kind in KINDS:
            k = kinds[kind]
            own = k.get("own_set")
            own_cells = (
                f"{_f(own['precision'], 3)} ({_range(own['precision_spread'])}) "
                f"| {_f(own['recall'], 3)} ({_range(own['recall_spread'])}) "
                f"| {_range(own['false_alarm_runs_per_source_week_spread'], 3)} "
                f"| {_range(own['hour_precision_spread'])} / {_range(own['hour_recall_spread'])}"
                if own
                else "– | – | – | –"
            )
            lines.append(
                f"| {kind} | {k['events']} | {_f(k['recall_in_mixed'], 3)} ({_range(k['recall_in_mixed_spread'])}) "
                f"| {_range(k['ttd_median_h_spread'])} | {_range(k['ttd_p90_h_spread'])} | {own_cells} |"
            )
    lines.append("")
    return "\n".join(lines)


def _median_delay(values: list[float | None]) -> float | None:
    # An event the oracle never reaches counts as infinitely late (it sorts last).
    if not values:
        return None
    ordered = sorted(values, key=lambda v: (v is None, v or 0.0))
    middle = ordered[(len(ordered) - 1) // 2 : len(ordered) // 2 + 1]
    if any(v is None for v in middle):
        return None
    return sum(middle) / len(middle)


def oracle_section(report: dict[str, Any]) -> list[str]:
    """How fast could any detector be? The oracle's median delay per shape beside the detectors'."""
    per_seed = report["world"]["per_seed"]
    names = list(report["detectors"])
    lines = [
        "",
        "## How early could anything know? (oracle delay)",
        "",
        f"Per event, the hours from its start until an oracle that knows the true expectation, the noise and "
        f"the start has evidence z ≥ {ORACLE_DELAY_Z} from the incident's hours so far, counted as the "
        "labelling rule counts it (`oracle_delay` in `bench/anomaly_world/incidents.py`: the shift over the "
        "source's own noise, in a normal approximation, at quarter-hour steps). For rate shapes and slow "
        "slides that approximation is fair and the oracle, which tests once and knows the start, is a lower "
        "bound on the delay of any detector asking that much evidence. For deep volume drops and outages it "
        "is not: it understates the evidence of a count far below a skewed negative binomial (nothing where "
        "1,000 were due is near impossible, not 2.4 spreads), so a detector can be faster there. Median "
        "over the events pooled over seeds, [min–max] of the per-seed medians; detectors: median TTD of "
        "found events, median [min–max] over seeds. The z-score flags at 3 spreads, so it can be earlier "
        "than this oracle, at the cost of its precision.",
        "",
        "| shape | target median h | oracle median h | " + " | ".join(f"{n} TTD median h" for n in names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for kind in KINDS:
        pooled = [v for w in per_seed.values() for v in w["oracle_delay_h"].get(kind, [])]
        seeds = [_median_delay(w["oracle_delay_h"].get(kind, [])) for w in per_seed.values()]
        known = [v for v in seeds if v is not None]
        spread = f" [{min(known):.2f}–{max(known):.2f}]" if known else ""
        target = DELAY_TARGETS.get(kind)
        cells = [_range(report["detectors"][n]["summary"]["kinds"][kind]["ttd_median_h_spread"]) for n in names]
        lines.append(
            f"| {kind} | {'≤ ' + _f(target) if target is not None else '–'} | {_f(_median_delay(pooled))}{spread} | "
            + " | ".join(cells)
            + " |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default=",".join(map(str, DEFAULT_SEEDS)), help="comma-separated")
    parser.add_argument("--sources", type=int, default=DEFAULT_SOURCES)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    parser.add_argument("--detectors", default=",".join(e.name for e in REGISTRY if e.default), help="comma-separated")
    parser.add_argument("--no-per-kind", action="store_true", help="mixed data set only (no per-kind precision)")
    parser.add_argument(
        "--per-kind-all", action="store_true", help="per-kind sets for every detector (the old robust one too: slow)"
    )
    parser.add_argument("--sensitivity", type=float, default=None, help="passed to every factory")
    parser.add_argument("--processes", type=int, default=os.cpu_count())
    parser.add_argument("--output-dir", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    wanted = [e for e in REGISTRY if e.name in args.detectors.split(",")]

    started = time.perf_counter()
    report: dict[str, Any] = {
        "parameters": {
            "seeds": seeds,
            "sources": args.sources,
            "days": args.days,
            "per_kind": not args.no_per_kind,
            "sensitivity": args.sensitivity,
            "grace_hours": 2,
        },
        "world": world_summary(seeds=seeds, sources=args.sources, days=args.days),
        "detectors": {},
        "skipped": {},
    }
    for entry in wanted:
        note = available(entry)
        if note is not None:
            print(f"note: {entry.name} skipped ({entry.factory} not importable: {note})", file=sys.stderr)
            report["skipped"][entry.name] = f"`{entry.factory}` not importable ({note})"
            continue
        print(f"evaluating {entry.name} ...", file=sys.stderr, flush=True)
        result = evaluate_detector(
            entry=entry,
            seeds=seeds,
            sources=args.sources,
            days=args.days,
            per_kind=not args.no_per_kind and (entry.per_kind or args.per_kind_all),
            sensitivity=args.sensitivity,
            processes=args.processes,
        )
        print(f"  {entry.name}: {result['runtime']}", file=sys.stderr, flush=True)
        report["detectors"][entry.name] = result
    if NEW_DETECTOR in report["detectors"] and "zscore" in report["detectors"]:
        report["new_versus_zscore"] = versus(
            new=report["detectors"][NEW_DETECTOR], baseline=report["detectors"]["zscore"]
        )
    report["total_seconds"] = round(time.perf_counter() - started, 2)
    report["generated_at"] = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    report["machine"] = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}

    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "anomaly_eval.json").write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    text = markdown(report)
    (args.output_dir / "anomaly_eval.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
