#!/usr/bin/env python3
"""Precision and recall of the anomaly detectors on a labelled synthetic data set.

Generates hourly counts for six sources with daily and weekly cycles and noise, injects labelled
drops, spikes, outages, rate collapses and slow drifts, runs the robust seasonal detector, its
daily-only ablation and the plain z-score baseline walk-forward over every hour after the first
training window, and scores them per (source, metric, hour). Pure Python: no database, no Django.

    .venv/bin/python bench/anomaly_eval.py [--seed 7] [--days 42] [--per-kind 3] [--sensitivity 4]

Writes bench/results/anomaly_eval.{json,md} (``--output-dir`` to change) and prints the tables.
Method and definitions: docs/anomaly-detection.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitoring.anomaly.detector import DetectorConfig  # noqa: E402
from monitoring.anomaly.evaluation import CLEAN, MIXED, ROBUST, ROBUST_DAILY, ZSCORE, evaluate  # noqa: E402
from monitoring.anomaly.synthetic import KINDS  # noqa: E402

DETECTOR_TITLES = {
    ROBUST: "robust (hour-of-day + weekday, median/MAD)",
    ROBUST_DAILY: "robust, hour-of-day only (ablation)",
    ZSCORE: "plain z-score (mean/std, threshold 3)",
}


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown(report: dict[str, Any]) -> str:
    p = report["parameters"]
    results = report["results"]
    datasets = [d for d in (CLEAN, *KINDS, MIXED) if d in results[ROBUST]]
    sources = next(iter(report["datasets"].values()))["sources"]
    lines = [
        "# Anomaly detection: walk-forward evaluation on labelled synthetic data",
        "",
        f"Generated {report['generated_at']} by `bench/anomaly_eval.py` in {report['total_seconds']} s "
        f"({report['machine']['python']}, {report['machine']['cpus']} CPUs). Method and definitions: "
        "[docs/anomaly-detection.md](../../docs/anomaly-detection.md).",
        "",
        f"Seed {p['seed']}, {p['days']} days × {len(sources)} sources, "
        f"{p['per_kind']} events per kind and source (placed over the whole series), training window "
        f"{p['training_days']} days, judged hours: every hour after the first window "
        f"({p['days'] - p['training_days']} days). Robust sensitivity {p['sensitivity']}, z-score threshold "
        f"{p['zscore_threshold']}, minimum attempts for a rate {p['min_attempts']}.",
    ]
    if MIXED in datasets:
        lines += [
            "",
            "## Mixed data set (every kind at once)",
            "",
            "| detector | precision | recall | F1 | TP | FP | FN | events detected "
            "| false alarms / 1000 normal points |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
    for detector, title in DETECTOR_TITLES.items():
        r = results[detector].get(MIXED)
        if r is None:
            continue
        lines.append(
            f"| {title} | {_fmt(r['precision'])} | {_fmt(r['recall'])} | {_fmt(r['f1'])} | {r['tp']} | {r['fp']} "
            f"| {r['fn']} | {r['events_detected']}/{r['events']} | {_fmt(r['false_alarms_per_1000_normal_points'])} |"
        )
    lines += [
        "",
        "## Per kind (a data set with only that kind, same background and seed)",
        "",
        "Precision includes the background's false alarms (row `clean`: no injection at all).",
        "",
        "| data set | " + " | ".join(f"{d} P / R / F1" for d in DETECTOR_TITLES) + " |",
        "|---|" + "---|" * len(DETECTOR_TITLES),
    ]
    for name in datasets:
        cells = []
        for detector in DETECTOR_TITLES:
            r = results[detector][name]
            if name == CLEAN:
                cells.append(f"{r['fp']} false alarms ({_fmt(r['false_alarms_per_1000_normal_points'])} / 1000)")
            else:
                cells.append(f"{_fmt(r['precision'])} / {_fmt(r['recall'])} / {_fmt(r['f1'])}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if MIXED not in datasets:
        lines += ["", f"Scoring time (all detectors, all data sets): {report['scoring_seconds']} s.", ""]
        return "\n".join(lines)
    lines += [
        "",
        "## Recall by kind inside the mixed data set; events detected",
        "",
        "| kind | " + " | ".join(DETECTOR_TITLES) + " |",
        "|---|" + "---|" * len(DETECTOR_TITLES),
    ]
    for kind in KINDS:
        cells = []
        for detector in DETECTOR_TITLES:
            r = results[detector][MIXED]
            single = results[detector].get(kind)
            events = f" ({single['events_detected']}/{single['events']} events)" if single else ""
            cells.append(_fmt(r["recall_by_kind"].get(kind)) + events)
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    drift = results[ROBUST].get("drift")
    if drift and drift["drift_first_flag_hours"]:
        lines += [
            "",
            "Robust detector, first flag of each detected drift, hours after it began: "
            f"{drift['drift_first_flag_hours']}.",
        ]
    sweep = results[ROBUST][MIXED].get("sweep")
    if sweep:
        lines += [
            "",
            "## Threshold sweep on the mixed data set (precision / recall / F1, false positives)",
            "",
            "| threshold | " + " | ".join(DETECTOR_TITLES) + " |",
            "|---|" + "---|" * len(DETECTOR_TITLES),
        ]
        for threshold in sweep:
            cells = []
            for detector in DETECTOR_TITLES:
                s = results[detector][MIXED]["sweep"][threshold]
                cells.append(f"{_fmt(s['precision'])} / {_fmt(s['recall'])} / {_fmt(s['f1'])}, FP {s['fp']}")
            lines.append(f"| {threshold} | " + " | ".join(cells) + " |")
    lines += ["", f"Scoring time (all detectors, all data sets): {report['scoring_seconds']} s.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=42, help="length of the data set (default 42)")
    parser.add_argument("--per-kind", type=int, default=3, help="events per kind and source")
    parser.add_argument("--training-days", type=int, default=14)
    parser.add_argument("--sensitivity", type=float, default=DetectorConfig().sensitivity)
    parser.add_argument("--datasets", default=",".join((CLEAN, *KINDS, MIXED)), help="comma-separated")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    if args.days <= args.training_days:
        parser.error("--days must exceed --training-days")

    started = time.perf_counter()
    report = evaluate(
        seed=args.seed,
        days=args.days,
        per_kind=args.per_kind,
        training_days=args.training_days,
        config=replace(DetectorConfig(), sensitivity=args.sensitivity),
        datasets=[d for d in args.datasets.split(",") if d],
    )
    report["total_seconds"] = round(time.perf_counter() - started, 2)
    report["generated_at"] = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    report["machine"] = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}

    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "anomaly_eval.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    text = markdown(report)
    (args.output_dir / "anomaly_eval.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
