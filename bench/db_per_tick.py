#!/usr/bin/env python3
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

    .venv/bin/python bench/db_per_tick.py [--clients 10,100,1000] [--interval 1] [--window 6]

The database (default ``conflict_monitor_bench_ticks``; the name must contain "bench") is created,
migrated and seeded with 12 h of simulated traffic when it has none from the last 2 hours; the bench
only reads it. Writes bench/results/db_per_tick.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import signal
import statistics
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
import redis
from common import RESULTS, VENV_BIN, Service, wait_for_health
from live_feed import cleanup_redis, code_state, prepare_data, service_env
from status_latency import (
    _cpu_model,
    cpu_plan,
    database_name,
    exit_on_sigterm,
    free_port,
    log,
    pinned_to,
    prepare_schema,
    write_atomically,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/conflict_monitor_bench_ticks"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
HEALTH_PATH = "/api/v1/monitoring/health"
PROJECT_PATH = "/ws/monitoring/pipeline-status"
NAIVE_PATH = "/ws/naive-status"
STATUS_MARK = '"type":"pipeline_status_update"'
CONNECT_CONCURRENCY = 200
SETTLE_SECONDS = 1.5
NOFILE_WANTED = 16384


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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


def refuse_foreign_database(url: str) -> None:
    name = database_name(url)
    if "bench" not in name:
        raise SystemExit(f"refusing to use database {name!r}: point --database-url at a database named *bench*")


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = NOFILE_WANTED if hard == resource.RLIM_INFINITY else min(NOFILE_WANTED, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- Counters ---------------------------------------------------------------------------------


def backend_cpu(url: str) -> dict[int, float]:
    """CPU seconds per PostgreSQL backend connected to the bench database (other than this query's)."""
    with psycopg.connect(url) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    tick = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended, or PostgreSQL runs elsewhere
        seconds[pid] = (int(fields[11]) + int(fields[12])) / tick
    return seconds


def database_counters(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        # A fresh snapshot: the statistics are cached per transaction otherwise.
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit + xact_rollback, tup_returned + tup_fetched FROM pg_stat_database "
            "WHERE datname = current_database()"
        ).fetchone()
    return {"transactions": row[0], "tuples_read": row[1]}


class Counters:
    def __init__(self, url: str, services: dict[str, Service], clients: Clients) -> None:
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


# --- Clients ----------------------------------------------------------------------------------


class Clients:
    """WebSocket clients that count what they receive; the first one also counts status frames (ticks)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sockets: list[ClientConnection] = []
        self.readers: list[asyncio.Task] = []
        self.frames = 0
        self.first_client_status_frames = 0
        self.closed_early = 0

    async def grow(self, total: int) -> float:
        started = time.perf_counter()
        semaphore = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def open_one() -> ClientConnection:
            async with semaphore:
                return await connect(self.url, compression=None, ping_interval=None, max_size=None, open_timeout=60)

        opened = await asyncio.gather(*(open_one() for _ in range(total - len(self.sockets))))
        for ws in opened:
            self.readers.append(asyncio.ensure_future(self._read(ws, first=not self.sockets)))
            self.sockets.append(ws)
        return round(time.perf_counter() - started, 2)

    async def _read(self, ws: ClientConnection, *, first: bool) -> None:
        try:
            async for text in ws:
                self.frames += 1
                if first and STATUS_MARK in text[:80]:
                    self.first_client_status_frames += 1
        except ConnectionClosed:
            self.closed_early += 1

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


# --- Designs ----------------------------------------------------------------------------------


def daphne_command(port: int, application: str, *extra: str) -> list[str]:
    return [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), *extra, application]


async def wait_for_status_frames(clients: Clients, count: int, service: Service, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while clients.first_client_status_frames < count:
        service.alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the first client got no status frame within {timeout} s:\n{service.log_tail()}")
        await asyncio.sleep(0.05)


async def statements_at_each_tick(clients: Clients, broadcaster: Service, stop: asyncio.Event) -> list[int]:
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
    server_cpus = None if server_cpu is None else {server_cpu}
    other_cpus = None if other_cpu is None else {other_cpu}
    services: dict[str, Service] = {}
    try:
        extra: tuple[str, ...] = ()
        if design == "project":
            services["broadcaster"] = Service(
                "broadcaster",
                [str(VENV_BIN / "python"), "manage.py", "run_broadcaster"],
                env=env,
                cpus=other_cpus,
                log_path=RESULTS / "db_per_tick_broadcaster.log.tmp",
                count_queries=True,
            )
            application, path = "conflict_monitor.asgi:application", PROJECT_PATH
        else:
            env = {**env, "NAIVE_FEED_INTERVAL": str(args.interval), "PYTHONPATH": str(Path(__file__).parent)}
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
        await asyncio.to_thread(wait_for_health, services["server"], port, HEALTH_PATH)
        clients = Clients(f"ws://127.0.0.1:{port}{path}")
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


def machine_info() -> dict[str, Any]:
    names = ("django", "channels", "channels_redis", "daphne", "websockets", "psycopg")
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "versions": {name: metadata.version(name) for name in names},
    }


async def measure(args: argparse.Namespace, cpus: tuple[int | None, int | None]) -> dict[str, Any]:
    project = await measure_design("project", args, cpus)
    naive = await measure_design("naive", args, cpus)
    return {"project": project, "naive": naive}


def main() -> None:
    started = time.perf_counter()
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    args = parse_args()
    url = args.database_url
    refuse_foreign_database(url)
    RESULTS.mkdir(parents=True, exist_ok=True)
    nofile = raise_nofile()
    if nofile < 2 * max(args.clients) + 200:
        raise SystemExit(f"open-file limit {nofile} is too low for {max(args.clients)} clients")
    redis.Redis.from_url(args.redis_url).ping()
    schema = prepare_schema(url, refill=False)
    data = {**prepare_data(url), **schema}
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
        "machine": machine_info(),
        "code": code_state(None),
    }
    report["wall_time_seconds"] = round(time.perf_counter() - started, 1)
    markdown = render_markdown(report)
    write_atomically(RESULTS / "db_per_tick.json", json.dumps(report, indent=2) + "\n")
    write_atomically(RESULTS / "db_per_tick.md", markdown)
    print(markdown)


if __name__ == "__main__":
    sys.exit(main())
