"""Database work and CPU per broadcast tick: the project's broadcaster versus naive per-connection loops.

Two designs, each with N = 10, 100 and 1000 connected WebSocket clients:

- project: daphne (``conflict_monitor.asgi:application``) and ``manage.py run_broadcaster`` on the
  Redis channel layer; the broadcaster computes the status once per tick and publishes it;
- naive: daphne serving ``bench/naive_feed.py``, where every connection queries
  ``pipeline_status()`` and sends it on its own loop.

Both tick every ``--interval`` seconds (default 1 s instead of the product's 5 s, so a window holds
enough ticks in a short run). Counted per tick over a window: SQL statements of the server and the
broadcaster (a Django execute wrapper, ``bench/query_probe``), PostgreSQL's own transaction and
tuple counters for the database, and CPU seconds of the server, the broadcaster and the PostgreSQL
backends serving the database.

    .venv/bin/python -m bench.db_per_tick [--clients 10,100,1000] [--interval 1] [--window 6]

The database (default ``conflict_monitor_bench_ticks``; the name must contain "bench") is created,
migrated and seeded with 12 h of simulated traffic when it has none from the last 2 hours; the bench
only reads it. Writes bench/results/db_per_tick.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import redis

from bench.lib.database import (
    backend_cpu,
    database_counters,
    database_name,
    prepare_schema,
    refuse_foreign_database,
    seed_recent,
)
from bench.lib.machine import code_state, machine_info
from bench.lib.processes import (
    BROADCASTER_COMMAND,
    Service,
    as_set,
    cleanup_redis,
    cpu_plan,
    daphne_command,
    free_port,
    pinned_to,
    service_env,
    wait_for_health,
)
from bench.lib.reports import write_results
from bench.lib.runtime import DEFAULT_REDIS_URL, RESULTS, ROOT, arg_parser, begin, log, raise_nofile
from bench.lib.wsclient import CountingClients

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/conflict_monitor_bench_ticks"
PROJECT_PATH = "/ws/monitoring/pipeline-status"
NAIVE_PATH = "/ws/naive-status"
CONNECT_CONCURRENCY = 200
SETTLE_SECONDS = 1.5
NOFILE_WANTED = 16384


def parse_args() -> argparse.Namespace:
    parser = arg_parser("db_per_tick", __doc__)
    parser.add_argument(
        "--clients",
        type=lambda text: sorted({int(part) for part in text.split(",")}),
        default=[10, 100, 1000],
        help="client counts, comma-separated (default 10,100,1000)",
    )
    parser.add_argument("--interval", type=float, default=1.0, help="tick interval of both designs (default 1 s)")
    parser.add_argument("--window", type=float, default=6.0, help="seconds measured per design and N (default 6)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    args = parser.parse_args()
    if min(args.clients) < 1 or args.interval <= 0 or args.window < 2 * args.interval:
        parser.error("client counts must be positive and the window at least two intervals")
    return args


# --- Counters ---------------------------------------------------------------------------------


class Counters:
    def __init__(self, url: str, services: dict[str, Service], clients: CountingClients) -> None:
        self.url = url
        self.services = services
        self.clients = clients

    def read(self) -> dict[str, Any]:
        return {
            "at": time.perf_counter(),
            "cpu": {name: service.cpu_seconds() for name, service in self.services.items()},
            "statements": {name: service.queries() for name, service in self.services.items()},
            "database": database_counters(self.url),
            "backends": backend_cpu(self.url),
            "frames": self.clients.frames,
            "status_frames_first_client": self.clients.first_client_status_frames,
        }


def window_result(before: dict[str, Any], after: dict[str, Any], *, ticks: float) -> dict[str, Any]:
    statements = {name: after["statements"][name] - before["statements"][name] for name in after["statements"]}
    cpu = {name: after["cpu"][name] - before["cpu"][name] for name in after["cpu"]}
    # A backend that connected during the window counts from zero; one that left is lost (rare: pools).
    cpu["postgres"] = sum(seconds - before["backends"].get(pid, 0.0) for pid, seconds in after["backends"].items())
    database = {key: after["database"][key] - before["database"][key] for key in after["database"]}
    return {
        "seconds": round(after["at"] - before["at"], 3),
        "ticks": ticks,
        "statements": statements,
        "cpu_seconds": {name: round(value, 3) for name, value in cpu.items()},
        "database": database,
        "frames": after["frames"] - before["frames"],
        "per_tick": {
            "statements": round(sum(statements.values()) / ticks, 2),
            **{f"statements_{name}": round(value / ticks, 2) for name, value in statements.items()},
            "pg_transactions": round(database["transactions"] / ticks, 2),
            "pg_tuples_read": round(database["tuples_read"] / ticks, 1),
            "cpu_ms": round(sum(cpu.values()) * 1000 / ticks, 2),
            **{f"cpu_ms_{name}": round(value * 1000 / ticks, 2) for name, value in cpu.items()},
        },
    }


# --- CountingClients ----------------------------------------------------------------------------------


# --- Designs ----------------------------------------------------------------------------------


async def wait_for_status_frames(clients: CountingClients, count: int, service: Service, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while clients.first_client_status_frames < count:
        service.alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the first client got no status frame within {timeout} s:\n{service.log_tail()}")
        await asyncio.sleep(0.05)


async def statements_at_each_tick(clients: CountingClients, broadcaster: Service, stop: asyncio.Event) -> list[int]:
    """The broadcaster's statement count each time the first client receives a tick's status frame."""
    readings = []
    seen = clients.first_client_status_frames
    while not stop.is_set():
        if clients.first_client_status_frames > seen:
            seen = clients.first_client_status_frames
            readings.append(await asyncio.to_thread(broadcaster.queries))
        await asyncio.sleep(0.01)
    return readings


async def measure_design(design: str, args: argparse.Namespace, cpus: tuple[int | None, int | None]) -> list:
    server_cpu, other_cpu = cpus
    prefix = f"bench-ticks-{secrets.token_hex(4)}-{design}"
    env = service_env(args.database_url, args.redis_url, prefix=prefix, interval=args.interval)
    port = free_port()
    server_cpus, other_cpus = as_set(server_cpu), as_set(other_cpu)
    services: dict[str, Service] = {}
    try:
        extra: tuple[str, ...] = ()
        if design == "project":
            services["broadcaster"] = Service(
                "broadcaster",
                BROADCASTER_COMMAND,
                env=env,
                cpus=other_cpus,
                log_path=RESULTS / "db_per_tick_broadcaster.log.tmp",
                count_queries=True,
            )
            application, path = "conflict_monitor.asgi:application", PROJECT_PATH
        else:
            env = {**env, "NAIVE_FEED_INTERVAL": str(args.interval), "PYTHONPATH": str(ROOT / "bench")}
            application, path = "naive_feed:application", NAIVE_PATH
            # A saturated naive server takes longer than daphne's 5 s to accept a socket; dropping the
            # handshake would hide the load instead of measuring it.
            extra = ("--websocket_connect_timeout", "300")
        services["server"] = Service(
            "server",
            daphne_command(port, application, *extra),
            env=env,
            cpus=server_cpus,
            log_path=RESULTS / f"db_per_tick_{design}_daphne.log.tmp",
            count_queries=True,
        )
        await asyncio.to_thread(wait_for_health, services["server"], port)
        clients = CountingClients(f"ws://127.0.0.1:{port}{path}", concurrency=CONNECT_CONCURRENCY)
        counters = Counters(args.database_url, services, clients)
        results = []
        try:
            for count in args.clients:
                connect_seconds = await clients.grow(count)
                await wait_for_status_frames(clients, 1, services["server"])
                await asyncio.sleep(SETTLE_SECONDS)
                stop = asyncio.Event()
                sampler = (
                    asyncio.ensure_future(statements_at_each_tick(clients, services["broadcaster"], stop))
                    if design == "project"
                    else None
                )
                before = await asyncio.to_thread(counters.read)
                await asyncio.sleep(args.window)
                after = await asyncio.to_thread(counters.read)
                stop.set()
                readings = await sampler if sampler is not None else []
                if design == "project":
                    # The broadcaster's ticks, as the first client saw them (one status frame per tick).
                    ticks = after["status_frames_first_client"] - before["status_frames_first_client"]
                else:
                    ticks = round((after["at"] - before["at"]) / args.interval, 2)
                if ticks <= 0:
                    raise RuntimeError(f"{design}: no tick in the {args.window} s window at N={count}")
                result = window_result(before, after, ticks=ticks)
                # 1.0 when every client got one status frame per tick.
                result["frames_per_client_per_tick"] = round(result["frames"] / count / ticks, 3)
                if design == "naive" and result["frames"]:
                    # What one send costs; N times it per tick is the naive design's demand, which a
                    # saturated server cannot meet (its measured per-tick figures are then capped).
                    result["statements_per_send"] = round(sum(result["statements"].values()) / result["frames"], 2)
                    result["demand_statements_per_tick"] = round(result["statements_per_send"] * count, 1)
                if len(readings) > 1:
                    # Tick by tick, so one tick that also refreshed the anomaly cache or opened an alert
                    # (work that does not depend on the clients) does not blur the comparison.
                    each = [later - earlier for earlier, later in zip(readings, readings[1:], strict=False)]
                    result["broadcaster_statements_each_tick"] = each
                    result["per_tick"]["broadcaster_statements_median"] = statistics.median(each)
                result.update(design=design, clients=count, connect_seconds=connect_seconds)
                results.append(result)
                per_tick = result["per_tick"]
                log(
                    f"{design:>7} N={count:>5}: {per_tick['statements']:>8} statements/tick, "
                    f"{per_tick['cpu_ms']:>8} ms CPU/tick, {result['frames_per_client_per_tick']} frames/client/tick"
                )
            if clients.closed_early:
                raise RuntimeError(f"{design}: {clients.closed_early} clients were closed by the server")
        finally:
            await clients.close()
        return results
    finally:
        for service in reversed(list(services.values())):
            service.stop()
        cleanup_redis(args.redis_url, prefix)


# --- Report -----------------------------------------------------------------------------------


def render_markdown(report: dict[str, Any]) -> str:
    config = report["config"]
    rows = report["project"] + report["naive"]
    lines = [
        "# Database work per tick: broadcaster versus naive per-connection loops",
        "",
        f"{report['date']} · interval {config['interval']} s for both designs (the product's default is 5 s), "
        f"{config['window']} s window per design and N after {SETTLE_SECONDS} s of settling; server daphne on "
        f"{_cpu_text(config['pinning']['server_cpu'])}, broadcaster and clients on "
        f"{_cpu_text(config['pinning']['other_cpu'])}, PostgreSQL and Redis not pinned. "
        f"Status window: {report['data']['metrics_in_window']} metrics.",
        "",
        "- **project**: `manage.py run_broadcaster` computes the status once per tick and publishes it through "
        "Redis; daphne forwards it. Ticks = status frames the first client received in the window.",
        "- **naive**: `bench/naive_feed.py`; every connection calls `pipeline_status()` and sends it every "
        "interval. Ticks = window / interval.",
        "",
        "Per tick (statements: Django execute wrapper in each process; PG: `pg_stat_database` deltas, "
        "flushed by PostgreSQL about once a second, so approximate):",
        "",
        "| design | N | ticks | statements | server | broadcaster | broadcaster, median tick | PG xacts "
        "| PG tuples read | CPU ms total | server | broadcaster | PostgreSQL | frames/client/tick |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        tick = row["per_tick"]
        lines.append(
            f"| {row['design']} | {row['clients']} | {row['ticks']:g} | **{tick['statements']:g}** | "
            f"{tick['statements_server']:g} | {_or_dash(tick.get('statements_broadcaster'))} | "
            f"{_or_dash(tick.get('broadcaster_statements_median'))} | {tick['pg_transactions']:g} | "
            f"{tick['pg_tuples_read']:,.0f} | **{tick['cpu_ms']:.1f}** | "
            f"{tick['cpu_ms_server']:.1f} | {_or_dash(tick.get('cpu_ms_broadcaster'), '.1f')} | "
            f"{tick['cpu_ms_postgres']:.1f} | {row['frames_per_client_per_tick']:.2f} |"
        )
    lines += [
        "",
        "Naive / project, per tick:",
        "",
        "| N | statements | CPU (all processes) | PostgreSQL CPU |",
        "|---:|---:|---:|---:|",
    ]
    for ratio in report["ratios"]:
        lines.append(
            f"| {ratio['clients']} | {_ratio(ratio['statements'])} | {_ratio(ratio['cpu'])} | "
            f"{_ratio(ratio['postgres_cpu'])} |"
        )
    spread = report["project_statements_spread"]
    same = spread["median_tick_min"] == spread["median_tick_max"]
    lines += [
        "",
        f"Project statements per tick across N: window averages {spread['min']:g}–{spread['max']:g}, median tick "
        f"{spread['median_tick_min']:g}–{spread['median_tick_max']:g} "
        f"({'independent of the number of clients' if same else 'NOT the same at every N'}; the broadcaster's "
        "occasional extra statements, an anomaly-cache refresh or an alert change, do not depend on the clients; "
        "every tick's count is in the JSON).",
        "A naive row with frames/client/tick below 1 is saturated: the server could not compute a status for "
        "every client every interval, so its per-tick figures are capped by what it managed.",
        f"Wall time {report['wall_time_seconds']} s.",
        "",
    ]
    return "\n".join(lines)


def _cpu_text(cpu: int | None) -> str:
    return "no pinned CPU" if cpu is None else f"CPU {cpu}"


def _or_dash(value: float | None, spec: str = "g") -> str:
    return "–" if value is None else format(value, spec)


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}×"


def ratios(project: list[dict[str, Any]], naive: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def divide(a: float, b: float) -> float | None:
        return round(a / b, 2) if b else None

    out = []
    for p, n in zip(project, naive, strict=True):
        out.append(
            {
                "clients": p["clients"],
                "statements": divide(n["per_tick"]["statements"], p["per_tick"]["statements"]),
                "cpu": divide(n["per_tick"]["cpu_ms"], p["per_tick"]["cpu_ms"]),
                "postgres_cpu": divide(n["per_tick"]["cpu_ms_postgres"], p["per_tick"]["cpu_ms_postgres"]),
            }
        )
    return out


async def measure(args: argparse.Namespace, cpus: tuple[int | None, int | None]) -> dict[str, Any]:
    project = await measure_design("project", args, cpus)
    naive = await measure_design("naive", args, cpus)
    return {"project": project, "naive": naive}


def main() -> None:
    started = begin()
    args = parse_args()
    url = args.database_url
    refuse_foreign_database(url, "--database-url")
    nofile = raise_nofile(NOFILE_WANTED)
    if nofile < 2 * max(args.clients) + 200:
        raise SystemExit(f"open-file limit {nofile} is too low for {max(args.clients)} clients")
    redis.Redis.from_url(args.redis_url).ping()
    schema = prepare_schema(url, by="bench/db_per_tick")
    data = {**seed_recent(url), **schema}
    server_cpu, other_cpu = cpu_plan()
    with pinned_to(other_cpu):
        measured = asyncio.run(measure(args, (server_cpu, other_cpu)))
    counts = [row["per_tick"]["statements"] for row in measured["project"]]
    medians = [row["per_tick"].get("broadcaster_statements_median", float("nan")) for row in measured["project"]]
    report = {
        "benchmark": "db_per_tick",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "clients": args.clients,
            "interval": args.interval,
            "window": args.window,
            "settle_seconds": SETTLE_SECONDS,
            "database": database_name(url),
            "pinning": {"server_cpu": server_cpu, "other_cpu": other_cpu},
            "open_files": nofile,
        },
        "data": data,
        **measured,
        "ratios": ratios(measured["project"], measured["naive"]),
        "project_statements_spread": {
            "min": min(counts),
            "max": max(counts),
            "median_tick_min": min(medians),
            "median_tick_max": max(medians),
        },
        "machine": machine_info(packages=("django", "channels", "channels_redis", "daphne", "websockets", "psycopg")),
        "code": code_state(None),
    }
    report["wall_time_seconds"] = round(time.perf_counter() - started, 1)
    write_results("db_per_tick", report, render_markdown(report))


if __name__ == "__main__":
    main()
