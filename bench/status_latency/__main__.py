"""Latency of ``GET /api/v1/monitoring/pipeline-status`` served by daphne on a million metric rows.

Fills a dedicated PostgreSQL database (its name must contain "bench": the fill truncates tables, and
the database is dropped and created again when the migrations changed) with metrics and scrape runs by
COPY, one COPY statement per UTC hour of data; the database triggers of migration 0004 derive the hourly
rollups and the per-source scrape state from them (nothing is derived by the bench; ``check_derived``
verifies the rollups add up to the metrics exactly); then alerts are evaluated once. It
serves the real ASGI app with daphne, times keep-alive requests against the trivial health endpoint
(the baseline) and the status endpoint with a 24 h and a 720 h window, separates the calls that
recompute the anomaly findings (cache miss) from the steady state, and EXPLAINs every query that the
status selector issues.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/conflict_monitor_bench \\
        .venv/bin/python -m bench.status_latency [--rows N] [--refill] [--calls N] [--rounds N]

Writes bench/results/status_latency.{json,md} and status_latency_plans.txt (with ``--rows`` other than
1,000,000: status_latency_<rows>.*, e.g. status_latency_10M.md). Modules: ``fill`` (the data), ``measure``
(the rounds), ``plans`` (captured SQL, EXPLAIN), ``markdown``.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench.lib.database import database_name, prepare_schema, refuse_foreign_database
from bench.lib.machine import machine_info, versions
from bench.lib.reports import write_atomically, write_results
from bench.lib.runtime import RESULTS, arg_parser, begin, log

from .config import (
    ANOMALY_CACHE_SECONDS,
    DEFAULT_DATABASE_URL,
    DEFAULT_ROWS,
    FILLED_TABLES,
    LONG_SCENARIO,
    WARMUP_CALLS,
)
from .fill import prepare_data
from .markdown import ratios, render_markdown
from .measure import measure
from .plans import explain_status


def parse_args() -> argparse.Namespace:
    parser = arg_parser("status_latency", __doc__)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="metric rows to fill (default 1,000,000)")
    parser.add_argument(
        "--refill", action="store_true", help="drop and create the bench database and fill it, even when a fill exists"
    )
    parser.add_argument("--calls", type=int, default=100, help="measured calls per endpoint and round")
    parser.add_argument(
        "--long-window-calls",
        type=int,
        default=None,
        help=f"measured calls of {LONG_SCENARIO} per round (default: --calls); it is the slow one at 10 M rows",
    )
    parser.add_argument("--rounds", type=int, default=3, help="measurement rounds (a fresh daphne each)")
    parser.add_argument(
        "--expiry-cold-calls",
        type=int,
        default=1,
        help=(
            "cold calls at the end of the last round, each after the previous anomaly cache entry expired "
            f"(up to {ANOMALY_CACHE_SECONDS} s each, polling the status meanwhile): the recompute in a busy process"
        ),
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        help=f"bench database (default: $DATABASE_URL, else {DEFAULT_DATABASE_URL})",
    )
    args = parser.parse_args()
    if args.long_window_calls is None:
        args.long_window_calls = args.calls
    if min(args.rows, args.calls, args.rounds, args.long_window_calls) < 1 or args.expiry_cold_calls < 0:
        parser.error("--rows, --calls, --long-window-calls and --rounds must be positive")
    return args


def output_stem(rows: int) -> str:
    """status_latency for the default row count, else e.g. status_latency_10M, so runs do not overwrite."""
    if rows == DEFAULT_ROWS:
        return "status_latency"
    for size, unit in ((1_000_000, "M"), (1_000, "k")):
        if rows % size == 0:
            return f"status_latency_{rows // size}{unit}"
    return f"status_latency_{rows}"


def status_machine_info(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
                "('server_version', 'shared_buffers', 'work_mem', 'jit', 'max_parallel_workers_per_gather')"
            ).fetchall()
        )
        sizes = dict(
            conn.execute(
                "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname = ANY(%s)",
                [list(FILLED_TABLES)],
            ).fetchall()
        )
    return machine_info(
        system=True,
        postgres=settings.pop("server_version"),
        postgres_settings=settings,
        table_bytes_with_indexes=sizes,
        **versions("django", "daphne", "psycopg"),
    )


def main() -> None:
    started = begin()
    args = parse_args()
    url = args.database_url
    refuse_foreign_database(url)
    stem = output_stem(args.rows)
    schema = prepare_schema(url, refill=args.refill, by="bench/status_latency")
    data = prepare_data(url, args.rows)
    log("measuring")
    measurement = measure(
        url,
        calls=args.calls,
        long_calls=args.long_window_calls,
        rounds=args.rounds,
        expiry_cold_calls=args.expiry_cold_calls,
        log_path=RESULTS / f"{stem}_daphne.log.tmp",
    )
    log("capturing and explaining the status SQL")
    plans_text, plans, in_process = explain_status(url)
    write_atomically(RESULTS / f"{stem}_plans.txt", plans_text)
    report = {
        "benchmark": "status_latency",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "output_stem": stem,
        "config": {
            "rows": args.rows,
            "calls": args.calls,
            "long_window_calls": args.long_window_calls,
            "rounds": args.rounds,
            "warmup_calls": WARMUP_CALLS,
            "anomaly_cache_seconds": ANOMALY_CACHE_SECONDS,
            "expiry_cold_calls": args.expiry_cold_calls,
            "database": database_name(url),
        },
        "schema": schema,
        "data": data,
        "fill_rows_per_second": data["rows_per_second"],
        "measurement": measurement,
        "ratios": ratios(measurement["scenarios"]),
        "in_process": in_process,
        "plans": plans,
        "machine": status_machine_info(url),
    }
    report["wall_time_seconds"] = round(time.perf_counter() - started, 1)
    write_results(stem, report, render_markdown(report))


if __name__ == "__main__":
    main()
