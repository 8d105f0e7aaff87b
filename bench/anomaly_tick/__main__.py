"""What live anomaly detection adds to a broadcaster tick at 100 sources (issue 18: at most 20 ms).

Fills a dedicated PostgreSQL database (its name must contain "bench"; its monitoring tables are
truncated) with 100 sources x 15 days of hourly metric reports and scrape runs, then times the status
the broadcaster builds each tick (``pipeline_status()``, in this process, as the broadcaster's worker
thread runs it) with the anomaly part and without it, judging in the background as in production:
within the hour (fresh judgement; the tick that finds it stale), at the hour turn, on a process's first
tick, and the ticks that run while the ``anomaly-judge`` thread judges. Then what the judging itself
costs (``live_anomalies`` called directly): within the hour, at the hour turn, the rebuild. The cache is
the production one: Redis, under a key prefix of this run's own (deleted afterwards).

    .venv/bin/python -m bench.anomaly_tick [--sources 100] [--days 15] [--ticks 30] [--turns 10] \\
        [--firsts 5] [--lived-hours 26] [--database-url URL] [--redis-url URL]

Writes bench/results/anomaly_tick.{json,md}. Modules: ``fill`` (the data), ``ticks`` (the simulated
clock, the timed tick, the judgements counted), ``measure`` (the timeline, its cases and their checks),
``summary`` (percentiles, added time) and ``report`` (JSON and Markdown).
"""

from __future__ import annotations

import argparse
import os
import secrets
from datetime import UTC, datetime

from bench.lib.database import prepare_schema, refuse_foreign_database
from bench.lib.processes import cleanup_redis, django_env
from bench.lib.reports import write_results
from bench.lib.runtime import DEFAULT_REDIS_URL, arg_parser, begin, log

from .report import STEM, build_report, machine_facts, render_markdown, uptime

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/conflict_monitor_bench_anomaly_tick"
BUDGET_MS = 20.0


def parse_args() -> argparse.Namespace:
    parser = arg_parser("anomaly_tick", __doc__)
    parser.add_argument("--sources", type=int, default=100, help="sources (default 100, the issue's figure)")
    parser.add_argument("--days", type=int, default=15, help="days of history filled (default 15)")
    parser.add_argument(
        "--ticks",
        type=int,
        default=30,
        help="within the hour: pairs with a fresh judgement, and refreshes (default 30 each)",
    )
    parser.add_argument(
        "--turns",
        type=int,
        default=10,
        help="hour turns judged in the background, and as many judged directly (default 10 each)",
    )
    parser.add_argument(
        "--firsts", type=int, default=5, help="first ticks, each rebuild in the background then directly (default 5)"
    )
    parser.add_argument(
        "--lived-hours",
        type=int,
        default=26,
        help="hours the process lives untimed before the within-hour ticks, so the detectors learn their "
        "arrival curves (24 hours of partial views trust a curve; default 26)",
    )
    parser.add_argument("--seed", type=int, default=20260518)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL,
        help="the anomaly cache's Redis (empty: the embedded default's per-process locmem cache)",
    )
    args = parser.parse_args()
    if min(args.sources, args.days, args.ticks, args.turns, args.firsts, args.lived_hours) < 1:
        parser.error("every count must be positive")
    return args


def use_django(url: str, redis_url: str, prefix: str) -> None:
    """This process becomes a broadcaster's: production settings on the bench database and Redis."""
    env = django_env(url)
    for name in set(os.environ) - set(env):
        del os.environ[name]  # the developer's project settings must not reach the measurement
    os.environ.update(env, CHANNEL_LAYER_PREFIX=prefix)
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    import django

    django.setup()


def main() -> None:
    begin()
    started = datetime.now(UTC)
    args = parse_args()
    uptime_start = uptime()
    refuse_foreign_database(args.database_url)
    schema = prepare_schema(args.database_url, by="bench/anomaly_tick")
    prefix = f"bench_anomaly_tick_{secrets.token_hex(4)}"
    use_django(args.database_url, args.redis_url, prefix)
    # Imported after django.setup(): it imports the project's models.
    from .measure import Plan, run

    plan = Plan(
        sources=args.sources,
        days=args.days,
        ticks=args.ticks,
        turns=args.turns,
        firsts=args.firsts,
        lived_hours=args.lived_hours,
        seed=args.seed,
    )
    try:
        measured = run(plan, budget_ms=BUDGET_MS)
    finally:
        if args.redis_url:
            cleanup_redis(args.redis_url, prefix)
    measured["context"]["schema"] = schema
    report = build_report(measured, machine=machine_facts(uptime_start=uptime_start), started=started)
    write_results(STEM, report, render_markdown(report))
    log(f"done in {report['wall_time_seconds']} s")


if __name__ == "__main__":
    main()
