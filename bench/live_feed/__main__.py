"""Live feed (``/ws/monitoring/pipeline-status``) against real processes: latency, fan-out cost and capacity.

Runs daphne (pinned to one CPU), ``manage.py run_broadcaster``, Redis and PostgreSQL, with the load
generator (this script: asyncio and a minimal WebSocket client) pinned to the other CPU, and measures:

1. snapshot latency: handshake start -> first frame, sequential connects;
2. ingest -> receipt: 1,000 clients connected, one metric POSTed at a time; for every client the time
   until a status frame whose ``data.data_quality.reports`` exceeds the count before the POST;
3. fan-out at N = 100 / 1,000 / 5,000 clients on one server process and 10,000 over two: connects/s,
   RSS per connection, publish -> receipt latency at 1 broadcast/s, server CPU per delivered message,
   and the sustained broadcasts/s (the highest rate of a 0.5/1/2/5/10 per second ladder at which every
   client gets every frame, p99 lag <= 1 s and the lag does not grow);
4. baseline: the same rounds through ``bench/reference_server.py`` (Redis pub/sub ->
   ``websockets.broadcast``) with a frame of the real frame's size, one and two processes alike.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/conflict_monitor_bench REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m bench.live_feed [--quick] [--rounds 3] [--clients 100,1000,5000] [--profile]

Writes bench/results/live_feed.{json,md}. The scenarios live in this package's modules: ``stacks`` (the
servers), ``latency`` (1, 2), ``fanout`` (3, 4), ``profile``, ``summary`` (medians, targets), ``markdown``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis

from bench.lib.database import (
    create_token,
    database_name,
    prepare_schema,
    refuse_foreign_database,
    seed_recent,
)
from bench.lib.machine import code_state, export_code, machine_info
from bench.lib.processes import cpu_plan, launcher
from bench.lib.reports import write_results
from bench.lib.runtime import DEFAULT_REDIS_URL, ROOT, arg_parser, begin, log, raise_nofile
from bench.lib.wsclient import CONNECT_CONCURRENCY, open_client

from .config import BASE_RATE, DEFAULT_DATABASE_URL, DRAIN_SECONDS, LADDER, LAG_BOUND_MS, NOFILE_WANTED
from .fanout import Cpus, fanout_round
from .latency import ingest_scenario, snapshot_latency
from .markdown import render_markdown
from .profile import profile_round
from .stacks import RUN_ID, ProjectStack, ReferenceStack, reference_template
from .summary import evaluate_targets, fanout_ratios, per_round_cpu_ratios, summarize_fanout

PACKAGES = ("django", "channels", "channels_redis", "daphne", "twisted", "autobahn", "websockets", "redis", "psycopg")


def int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def float_list(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def parse_args() -> argparse.Namespace:
    parser = arg_parser("live_feed", __doc__)
    parser.add_argument("--quick", action="store_true", help="one short round at small N, for development")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of every scenario (default 3)")
    parser.add_argument("--snapshot-connects", type=int, default=None, help="sequential connects per round (50)")
    parser.add_argument("--ingest-clients", type=int, default=None, help="clients in scenario 2 (1000)")
    parser.add_argument("--ingests", type=int, default=None, help="metrics POSTed per round (5)")
    parser.add_argument("--ingest-gap", type=float, default=1.0, help="seconds between POSTs (push rate limit 2/s)")
    parser.add_argument("--ingest-interval", type=float, default=30.0, help="broadcast interval in scenario 2")
    parser.add_argument("--clients", type=int_list, default=None, help="single-process N, ascending (100,1000,5000)")
    parser.add_argument(
        "--two-process-clients", type=int, default=None, help="clients over two server processes (10000; 0: skip)"
    )
    parser.add_argument("--window-seconds", type=float, default=None, help="each fan-out measuring window (4)")
    parser.add_argument("--rates", type=float_list, default=list(LADDER), help="broadcasts/s ladder")
    parser.add_argument(
        "--ladder-rounds",
        type=int,
        default=1,
        help="rounds that run the ladder at every N; the others run it at the largest single-process N only (1)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the rounds, one more project fan-out round under py-spy, then strace -c (needs py-spy)",
    )
    parser.add_argument("--profile-clients", type=int, default=1000)
    parser.add_argument("--profile-seconds", type=float, default=15.0)
    parser.add_argument("--profile-rate", type=float, default=2.0, help="broadcasts/s in the profiled round")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        help=f"bench database (default: $DATABASE_URL, else {DEFAULT_DATABASE_URL})",
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    parser.add_argument(
        "--code",
        default="HEAD",
        metavar="REF",
        help="serve a clean `git archive REF` export (default HEAD: uncommitted edits left out); "
        "'worktree' serves the working tree as it is",
    )
    args = parser.parse_args()
    quick = {
        "rounds": 1,
        "snapshot_connects": 20,
        "ingest_clients": 200,
        "ingests": 4,
        "clients": [100, 1000],
        "two_process_clients": 2000,
        "window_seconds": 3.0,
    }
    full = {
        "rounds": 3,
        "snapshot_connects": 50,
        "ingest_clients": 1000,
        "ingests": 5,
        "clients": [100, 1000, 5000],
        "two_process_clients": 10000,
        "window_seconds": 4.0,
    }
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.code == "worktree":
        args.code = None
    # Where manage.py and the project live for the servers: the working tree, or an export of --code REF.
    args.app_root = ROOT
    if min(args.rounds, args.snapshot_connects, args.ingests) < 1 or min(args.ingest_clients, *args.clients) < 2:
        parser.error("counts must be positive (clients at least 2)")
    if args.clients != sorted(args.clients):
        parser.error("--clients must be ascending")
    if args.two_process_clients and args.two_process_clients <= args.clients[-1]:
        parser.error("--two-process-clients must exceed the largest --clients")
    args.rates = sorted(set(args.rates) | {BASE_RATE})
    return args


async def measure(args: argparse.Namespace, key: str, metric_ids: list[int], cpus: Cpus) -> dict[str, Any]:
    if cpus.client is not None:
        os.sched_setaffinity(0, cpus.client)
    report: dict[str, Any] = {}
    stack = ProjectStack(
        args,
        label="latency",
        processes=1,
        interval=args.ingest_interval,
        server_cpus=cpus.server,
        other_cpus=cpus.client,
    )
    try:
        await stack.start()
        snapshots = []
        for number in range(1, args.rounds + 1):
            result = await snapshot_latency(stack.ws_url(), args.snapshot_connects)
            snapshots.append(result)
            stats = result["first_frame_ms"]
            log(f"snapshot round {number}: p50 {stats['p50']:.2f} ms, p99 {stats['p99']:.2f} ms")
        report["snapshot"] = {"rounds": snapshots}
        probe = await open_client(stack.ports[0], tracker=None, keep_text=True)
        await probe.first
        real_frame = probe.texts[0]
        await probe.close()
        report["frame_bytes"] = len(real_frame.encode())
        report["ingest"] = {"rounds": await ingest_scenario(args, stack, key, metric_ids)}
    finally:
        stack.stop()

    template = reference_template(real_frame)
    processes = 2 if args.two_process_clients else 1
    fan: dict[str, list] = {"project": [], "reference": []}
    for number in range(1, args.rounds + 1):
        for kind in ("project", "reference"):
            log(f"fan-out round {number}: {kind}")
            if kind == "project":
                stack = ProjectStack(
                    args,
                    label=f"fanout{number}",
                    processes=processes,
                    server_cpus=cpus.server,
                    other_cpus=cpus.client,
                )
            else:
                stack = ReferenceStack(
                    args, label=f"reference{number}", processes=processes, server_cpus=cpus.server, template=template
                )
            fan[kind].append(await fanout_round(stack, args, cpus, full_ladder=number <= args.ladder_rounds))
    report["fanout"] = fan
    summary = {server: summarize_fanout(fan[server]) for server in ("project", "reference")}
    summary["ratios"] = fanout_ratios(summary["project"], summary["reference"])
    summary["per_round_cpu_ratios"] = per_round_cpu_ratios(report)
    report["summary"] = summary
    if args.profile:
        report["profile"] = await profile_round(args, cpus.server, cpus.client)
    return report


def main() -> None:
    started = begin()
    args = parse_args()
    url = args.database_url
    refuse_foreign_database(url)
    nofile = raise_nofile(NOFILE_WANTED)
    most = max(args.two_process_clients, args.clients[-1], args.ingest_clients, args.profile_clients)
    if nofile < most + 500:
        raise SystemExit(f"open-file limit {nofile} is too low for {most} clients")
    redis.Redis.from_url(args.redis_url).ping()
    exported = None
    if args.code:
        exported = args.app_root = export_code(args.code, prefix="live_feed_code_")
        log(f"serving a clean export of {args.code} from {exported}")
    try:
        run(args, url, started, nofile)
    finally:
        if exported is not None:
            shutil.rmtree(exported, ignore_errors=True)


def cleanup_database(url: str, *, token_name: str, metric_ids: list[int]) -> None:
    """Remove what the bench wrote, so other benches see the table they filled."""
    with psycopg.connect(url) as conn:
        if metric_ids:
            conn.execute("DELETE FROM monitoring_dataqualitymetric WHERE id = ANY(%s)", [metric_ids])
        conn.execute("DELETE FROM monitoring_ingesttoken WHERE name = %s", [token_name])


def run(args: argparse.Namespace, url: str, started: float, nofile: int) -> None:
    schema = prepare_schema(url, app_root=args.app_root, by="bench/live_feed")
    data = {**seed_recent(url, args.app_root), **schema}
    token_name = f"bench-live-feed-{RUN_ID}"
    key = create_token(url, token_name, args.app_root)
    server_cpu, client_cpu = cpu_plan()
    # The broadcaster shares the load generator's CPU (the reference's publisher runs in the load generator
    # too), so the server's CPU runs only the server, plus whatever Redis and PostgreSQL schedule there.
    cpus = Cpus(server_cpu, client_cpu)
    all_cpus = os.sched_getaffinity(0)
    metric_ids: list[int] = []
    try:
        report = asyncio.run(measure(args, key, metric_ids, cpus))
    finally:
        os.sched_setaffinity(0, all_cpus)
        cleanup_database(url, token_name=token_name, metric_ids=metric_ids)
    report = {
        "benchmark": "live_feed",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            **{k: v for k, v in vars(args).items() if k not in ("database_url", "redis_url", "app_root")},
            "database": database_name(url),
            "pinning": {"server_cpu": server_cpu, "client_cpu": client_cpu},
            "connect_concurrency": CONNECT_CONCURRENCY,
            "server_launcher": " ".join(Path(part).name for part in launcher(args.app_root)),
            "open_files": nofile,
            "base_rate": BASE_RATE,
            "lag_bound_ms": LAG_BOUND_MS,
            "drain_seconds": DRAIN_SECONDS,
        },
        "data": data,
        **report,
        "machine": machine_info(packages=PACKAGES, system=True),
        "code": code_state(args.code),
    }
    report["targets"] = evaluate_targets(report)
    report["wall_time_seconds"] = round(time.perf_counter() - started, 1)
    write_results("live_feed", report, render_markdown(report))


if __name__ == "__main__":
    main()
