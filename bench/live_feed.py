#!/usr/bin/env python3
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
        .venv/bin/python bench/live_feed.py [--quick] [--rounds 3] [--clients 100,1000,5000] [--profile]

Writes bench/results/live_feed.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
import redis
import redis.asyncio as aioredis
from psycopg import sql
from psycopg.conninfo import make_conninfo
from status_latency import (
    _cpu_model,
    cpu_plan,
    database_name,
    django_env,
    ensure_database,
    exit_on_sigterm,
    free_port,
    log,
    write_atomically,
)
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
# Where manage.py and the project live for the servers: the working tree, or an export of --code REF.
APP_ROOT = ROOT
RESULTS = ROOT / "bench" / "results"
VENV_BIN = ROOT / ".venv" / "bin"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/conflict_monitor_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

WS_PATH = "/ws/monitoring/pipeline-status"
HEALTH_PATH = "/api/v1/monitoring/health"
INGEST_PATH = "/api/v1/monitoring/metrics"
STATUS_TYPE = "pipeline_status_update"
INGEST_BODY = {"source": "acled", "geocoding_attempts": 10, "geocoding_successes": 9}
# Seed when the bench database has no recent metrics: 12 h of simulated traffic through the real
# services (5 sources), so nothing ages out of the 24 h status window while the bench runs.
SEED_COMMAND = ["simulate_pipeline", "--scenario", "normal", "--hours", "12", "--step-minutes", "30", "--seed", "7"]
NOFILE_WANTED = 65536
# Twisted listens with a backlog of 50: more handshakes in flight only overflow the SYN queue, and a
# dropped SYN costs a 1 s retransmit that would be charged to the server.
CONNECT_CONCURRENCY = 50
# A handful of failed connects at 10,000 is reported; more means the run measured something broken.
CONNECT_FAILURES_TOLERATED = 0.01
SETTLE_SECONDS = 0.5
RECEIPT_TIMEOUT = 5.0
# Fan-out scenario. Latency and CPU per message are measured at BASE_RATE, which the project's current
# fan-out still sustains at 5,000 clients on one core; the ladder then looks for the highest rate kept up.
BASE_RATE = 1.0
LADDER = (0.5, 1.0, 2.0, 5.0, 10.0)  # 10/s: the broadcaster's shortest interval is 0.1 s
LAG_BOUND_MS = 1000.0
# Median lag of the window's last third of publishes over its first third: a server that falls behind
# piles frames up, so its lag grows through the window even while p99 is still under LAG_BOUND_MS.
# 250 ms leaves room for one full GC pause of daphne (~170 ms).
LAG_GROWTH_MS = 250.0
DRAIN_SECONDS = 2.0
# A ladder search starts at the highest rate whose CPU, extrapolated linearly from the base window,
# fits in this share of the server's core: the server's limit is usually there or one step away, so
# the search needs two steps; the steps below it are not run (the server kept up at the base rate).
LADDER_START_SHARE = 1.0
# Waiting for a backlog to drain after a failed window; what is still queued after it is charged to the next
# window, which then fails too (the server did not keep up in between either).
BACKLOG_TIMEOUT = 8.0
# The load generator is flagged as the bottleneck above this share of its core (its own process), or
# when its core is this busy in all (broadcaster, Redis and PostgreSQL run there too).
CLIENT_BOUND_SHARE = 0.8
CLIENT_CORE_BOUND_SHARE = 0.95
# A failed ladder step is charged to the machine rather than the server when other processes took more
# than this share of the server's core in it.
FOREIGN_LIMIT_SHARE = 0.3
# Targets of the performance issue, shown as pass/fail.
TARGET_CPU_RATIO = 3.0
TARGET_P99_MS_5000 = 250.0
TARGET_SUSTAINED_5000 = 5.0
TARGET_TWO_PROCESS_CLIENTS = 10000
TARGET_RSS_KB = 20.0
TARGET_INGEST_P99_MS = 100.0
TARGET_INGEST_CLIENTS = 1000

# The envelope every topic frame starts with (monitoring.events.join_topic_frame), matched on the
# received bytes without a decode or JSON parse: the load generator's CPU per frame is the limit at 10,000
# sockets.
FRAME_HEAD = re.compile(
    rb'\{"type":"([a-z_]+)","topic":(?:"[^"]*"|null),"seq":(\d+),"epoch":"([^"]*)","timestamp":"([^"]+)"'
)
COUNTED_TYPES = frozenset((STATUS_TYPE.encode(), b"reference"))


def int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def float_list(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    if min(args.rounds, args.snapshot_connects, args.ingests) < 1 or min(args.ingest_clients, *args.clients) < 2:
        parser.error("counts must be positive (clients at least 2)")
    if args.clients != sorted(args.clients):
        parser.error("--clients must be ascending")
    if args.two_process_clients and args.two_process_clients <= args.clients[-1]:
        parser.error("--two-process-clients must exceed the largest --clients")
    args.rates = sorted(set(args.rates) | {BASE_RATE})
    return args


# --- Environment ------------------------------------------------------------------------------


def refuse_foreign_database(url: str) -> None:
    """The bench writes metrics and tokens; it must never reach a real database."""
    name = database_name(url)
    if "bench" not in name:
        raise SystemExit(f"refusing to use database {name!r}: point DATABASE_URL at a database named *bench*")


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = NOFILE_WANTED if hard == resource.RLIM_INFINITY else min(NOFILE_WANTED, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def service_env(db_url: str, redis_url: str, *, prefix: str, interval: float) -> dict[str, str]:
    env = django_env(db_url)
    env.update(
        REDIS_URL=redis_url,
        CHANNEL_LAYER_PREFIX=prefix,
        WEBSOCKET_BROADCAST_INTERVAL=str(interval),
        WEBSOCKET_MAX_CONNECTIONS="20000",
        WEBSOCKET_MAX_CONNECTIONS_PER_IP="20000",
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    return env


def manage(url: str, *args: str) -> str:
    done = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", *args],
        cwd=APP_ROOT,
        env=django_env(url),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def export_code(ref: str) -> Path:
    """A clean copy of ``ref`` (no uncommitted edits) to serve from; removed by the caller."""
    target = Path(tempfile.mkdtemp(prefix="live_feed_code_"))
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def migrations_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted((APP_ROOT / "monitoring" / "migrations").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


MISSING_TABLES_CODE = """
from django.apps import apps
from django.db import connection
tables = set(connection.introspection.table_names())
import monitoring
print("APP", monitoring.__file__)
print("MISSING", " ".join(m._meta.db_table for m in apps.get_models() if m._meta.db_table not in tables))
"""


def missing_tables(url: str) -> list[str]:
    out = manage(url, "shell", "-c", MISSING_TABLES_CODE)
    app = next(line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("APP "))
    if not Path(app).resolve().is_relative_to(APP_ROOT.resolve()):
        raise RuntimeError(f"the project imported from {app}, not from {APP_ROOT}")
    return next(line.split()[1:] for line in out.splitlines() if line.startswith("MISSING"))


def prepare_schema(url: str) -> dict[str, Any]:
    """Create the bench database if missing and migrate it. The project edits 0001_initial in place
    before its first release, which ``migrate`` cannot apply to a database that already ran it: when
    the migrations changed since the last run (fingerprint in the database comment) or a model's table
    is missing, the bench database is dropped and created again (the status bench refills it)."""
    name = database_name(url)
    fingerprint = migrations_fingerprint()
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
    recreated = None
    if row is not None:
        marker = row[0]
        if marker and json.loads(marker).get("migrations") != fingerprint:
            recreated = "migrations changed since the last run"
        else:
            manage(url, "migrate", "--noinput")
            if missing := missing_tables(url):
                recreated = f"tables missing after migrate: {', '.join(missing)}"
        if recreated:
            log(f"dropping and recreating {name}: {recreated}")
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
    if ensure_database(url):
        log(f"created database {name}")
    manage(url, "migrate", "--noinput")
    if missing := missing_tables(url):
        raise RuntimeError(f"models without tables after a fresh migrate (missing migration?): {missing}")
    with psycopg.connect(admin, autocommit=True) as conn:
        comment = json.dumps({"migrations": fingerprint, "by": "bench/live_feed.py"})
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(comment)))
    return {"migrations_fingerprint": fingerprint, "recreated": recreated}


def prepare_data(url: str) -> dict[str, Any]:
    """Seed when the status window would be empty or stale; report what the window holds."""
    query = "SELECT count(*) FROM monitoring_dataqualitymetric WHERE timestamp > now() - %s::interval"
    with psycopg.connect(url) as conn:
        recent = conn.execute(query, ["2 hours"]).fetchone()[0]
    seeded = None
    if recent == 0:
        log("no metrics in the last 2 h: seeding 12 h of simulated traffic")
        seeded = manage(url, *SEED_COMMAND).strip()
    with psycopg.connect(url) as conn:
        window = conn.execute(query, ["24 hours"]).fetchone()[0]
    return {"seeded": seeded, "metrics_in_window": window}


def create_token(url: str, name: str) -> str:
    key = manage(url, "create_ingest_token", name).strip().splitlines()[-1].strip()
    if not key:
        raise RuntimeError("create_ingest_token printed no key")
    return key


def cleanup_database(url: str, *, token_name: str, metric_ids: list[int]) -> None:
    """Remove what the bench wrote, so other benches see the table they filled."""
    with psycopg.connect(url) as conn:
        if metric_ids:
            conn.execute("DELETE FROM monitoring_dataqualitymetric WHERE id = ANY(%s)", [metric_ids])
        conn.execute("DELETE FROM monitoring_ingesttoken WHERE name = %s", [token_name])


def cleanup_redis(redis_url: str, prefix: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


# --- Processes --------------------------------------------------------------------------------


class Service:
    """A child process with a log file; CPU and RSS read from /proc."""

    def __init__(self, name: str, command: list[str], *, env: dict[str, str], cpus: set[int] | None) -> None:
        self.name = name
        self.log_path = RESULTS / f"live_feed_{name}.log.tmp"
        if cpus is not None:
            command = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *command]
        with self.log_path.open("ab") as log_file:
            log_file.write(f"\n--- {datetime.now(UTC).isoformat()} {' '.join(command)}\n".encode())
            log_file.flush()
            self.process = subprocess.Popen(command, cwd=APP_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        self.pid = self.process.pid  # taskset execs the command: same pid

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def cpu_times(self) -> tuple[float, float]:
        """(utime, stime) of the whole process (all threads) in seconds, from /proc/<pid>/stat."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    def cpu_seconds(self) -> float:
        """CPU time of the whole process (all threads) with ns resolution: the process's CPU clock
        (clock_getcpuclockid), so a window of a few seconds at 100 clients is not counted in 10 ms ticks."""
        try:
            return time.clock_gettime(((~self.pid) << 3) | 2)  # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
        except OSError:
            return sum(self.cpu_times())

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for {self.name}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.name} ignored SIGTERM for {timeout} s; killing it")
            self.process.kill()
            self.process.wait()


def cpu_busy_seconds(cpu: int | None) -> tuple[float, float] | None:
    """(busy, steal) seconds of one CPU from /proc/stat: how much else ran on it, and how long the
    hypervisor kept it from running (a VM's noisy neighbours)."""
    if cpu is None:
        return None
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            values = [int(v) for v in line.split()[1:9]]  # user nice system idle iowait irq softirq steal
            tick = os.sysconf("SC_CLK_TCK")
            return (sum(values[:7]) - values[3] - values[4]) / tick, values[7] / tick
    return None


async def wait_for_http(service: Service, port: int, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.alive()
        try:
            status, _body = await http_request(port, "GET", path)
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{service.name} did not answer {path} within {timeout} s:\n{service.log_tail()}")


async def wait_for_port(service: Service, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.alive()
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{service.name} did not listen on {port} within {timeout} s:\n{service.log_tail()}")


async def wait_for_first_frame(redis_url: str, prefix: str, service: Service, timeout: float = 30.0) -> None:
    """The broadcaster's first publish (it publishes at once when it takes the lease)."""
    client = aioredis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            service.alive()
            if await client.exists(f"{prefix}:feed:status:state"):
                return
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()
    raise RuntimeError(f"no status frame published within {timeout} s:\n{service.log_tail()}")


def server_launcher() -> list[str]:
    """How the served code runs its ASGI server: ``conflict_monitor.serve`` (daphne's arguments, on the
    project's own reactor) where the code has one, else plain daphne."""
    if (APP_ROOT / "conflict_monitor" / "serve.py").exists():
        return [str(VENV_BIN / "python"), "-m", "conflict_monitor.serve"]
    return [str(VENV_BIN / "daphne")]


class ProjectStack:
    """daphne (one or two processes) + run_broadcaster sharing one fresh channel-layer prefix.

    The publish rate is the broadcaster's interval, so a new rate is a new broadcaster (the old one
    releases its lease on SIGTERM and the new one publishes as soon as it holds it). ``pause`` stops the
    broadcaster with SIGSTOP, so connects are measured on a quiet feed; after SIGCONT it takes its lapsed
    lease back and publishes at once."""

    kind = "project"

    def __init__(
        self,
        args: argparse.Namespace,
        *,
        label: str,
        processes: int,
        server_cpus,
        other_cpus,
        interval: float | None = None,
        daphne_env: dict[str, str] | None = None,
    ) -> None:
        self.args = args
        self.prefix = f"bench-live-{RUN_ID}-{label}"
        self.other_cpus = other_cpus
        self.fixed_interval = interval
        self.ports = [free_port() for _ in range(processes)]
        self.env = service_env(
            args.database_url, args.redis_url, prefix=self.prefix, interval=interval or 1.0 / BASE_RATE
        )
        self.servers = []
        for number, port in enumerate(self.ports):
            command = [*server_launcher(), "-b", "127.0.0.1", "-p", str(port), "conflict_monitor.asgi:application"]
            name = "daphne" if number == 0 else f"daphne{number + 1}"
            self.servers.append(Service(name, command, env={**self.env, **(daphne_env or {})}, cpus=server_cpus))
        self.broadcaster: Service | None = None
        self.rate: float | None = None
        self.paused = False

    @property
    def others(self) -> list[Service]:
        return [self.broadcaster] if self.broadcaster is not None else []

    def ws_url(self, number: int = 0) -> str:
        return f"ws://127.0.0.1:{self.ports[number]}{WS_PATH}"

    def _start_broadcaster(self, interval: float) -> None:
        env = {**self.env, "WEBSOCKET_BROADCAST_INTERVAL": f"{interval:g}"}
        command = [str(VENV_BIN / "python"), "manage.py", "run_broadcaster"]
        self.broadcaster = Service("broadcaster", command, env=env, cpus=self.other_cpus)

    async def start(self, rate: float | None = None) -> None:
        self.rate = rate or BASE_RATE
        self._start_broadcaster(self.fixed_interval or 1.0 / self.rate)
        await wait_for_first_frame(self.args.redis_url, self.prefix, self.broadcaster)
        for server, port in zip(self.servers, self.ports, strict=True):
            await wait_for_http(server, port, HEALTH_PATH)

    async def set_rate(self, rate: float) -> None:
        if rate == self.rate and self.broadcaster is not None:
            self.resume()
            return
        self._stop_broadcaster()
        self.rate = rate
        self._start_broadcaster(1.0 / rate)

    def pause(self) -> None:
        if self.broadcaster is not None and not self.paused:
            os.kill(self.broadcaster.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.broadcaster is not None and self.paused:
            os.kill(self.broadcaster.pid, signal.SIGCONT)
            self.paused = False

    def _stop_broadcaster(self) -> None:
        if self.broadcaster is not None:
            self.resume()
            self.broadcaster.stop()
            self.broadcaster = None

    async def slots_released(self, timeout: float = 20.0) -> float | None:
        """Seconds until the connection registry counts no connection again (disconnects processed)."""
        client = aioredis.from_url(self.args.redis_url)
        started = time.perf_counter()
        try:
            while time.perf_counter() - started < timeout:
                counts = await client.hgetall(f"{self.prefix}:ws:connections")
                if sum(int(value) for value in counts.values()) == 0:
                    return round(time.perf_counter() - started, 2)
                await asyncio.sleep(0.1)
        finally:
            await client.aclose()
        return None

    def stop(self) -> None:
        self._stop_broadcaster()
        for service in self.servers:
            service.stop()
        cleanup_redis(self.args.redis_url, self.prefix)


class ReferenceStack:
    """``bench/reference_server.py`` processes on one Redis channel; this script publishes to it."""

    kind = "reference"

    def __init__(self, args: argparse.Namespace, *, label: str, processes: int, server_cpus, template) -> None:
        self.args = args
        self.channel = f"bench-live-{RUN_ID}-{label}"
        self.template = template
        self.ports = [free_port() for _ in range(processes)]
        self.servers = []
        for port in self.ports:
            command = [str(VENV_BIN / "python"), str(ROOT / "bench" / "reference_server.py"), "--port", str(port)]
            command += ["--redis-url", args.redis_url, "--channel", self.channel]
            env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
            self.servers.append(Service("reference", command, env=env, cpus=server_cpus))
        self.others: list[Service] = []
        self.rate: float | None = None
        self.seq = 0
        self.publisher: asyncio.Future | None = None
        self.stopping: asyncio.Future | None = None
        self.stop_event = asyncio.Event()

    def ws_url(self, number: int = 0) -> str:
        return f"ws://127.0.0.1:{self.ports[number]}/"

    async def start(self, rate: float | None = None) -> None:
        for server, port in zip(self.servers, self.ports, strict=True):
            await wait_for_port(server, port)
        await asyncio.sleep(0.5)  # subscribed before listening, but give the relay a moment
        await self.set_rate(rate or BASE_RATE)

    async def set_rate(self, rate: float) -> None:
        self.pause()
        self.rate = rate
        self.resume()

    def pause(self) -> None:
        """Ask the publisher to stop after the publish in flight. Not a cancel: redis-py shields a
        command from cancellation, so a cancelled publisher could still deliver its last seq after its
        successor's first one (out of order for every client)."""
        if self.publisher is not None:
            self.stop_event.set()
            self.stopping = self.publisher
            self.publisher = None

    def resume(self) -> None:
        if self.publisher is None and self.rate is not None:
            self.stop_event = asyncio.Event()
            self.publisher = asyncio.ensure_future(self._publish(1.0 / self.rate, self.stopping, self.stop_event))

    async def _publish(self, interval: float, previous: asyncio.Future | None, stop: asyncio.Event) -> None:
        if previous is not None:
            await previous  # one publisher at a time, so seqs reach Redis in order
        client = aioredis.from_url(self.args.redis_url)
        loop = asyncio.get_running_loop()
        head, middle, tail = self.template
        due = loop.time()
        try:
            while not stop.is_set():
                self.seq += 1
                stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
                await client.publish(self.channel, f"{head}{self.seq}{middle}{stamp}{tail}")
                # A late publisher does not catch up in a burst: it shows as publishing below its rate.
                due = max(due + interval, loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), due - loop.time())
        finally:
            await client.aclose()

    async def slots_released(self, timeout: float) -> None:
        return None

    def stop(self) -> None:
        self.pause()
        if self.stopping is not None:
            self.stopping.cancel()  # the servers go away now; a last publish does not matter any more
        for service in self.servers:
            service.stop()


def reference_template(real_frame: str) -> tuple[str, str, str]:
    """(before seq, between seq and timestamp, after timestamp) of a frame shaped like the real one."""
    data = json.dumps(json.loads(real_frame)["data"], separators=(",", ":"), ensure_ascii=False)
    epoch = secrets.token_hex(8)
    return '{"type":"reference","topic":"status","seq":', f',"epoch":"{epoch}","timestamp":"', '","data":' + data + "}"


# --- Clients ----------------------------------------------------------------------------------


class Tracker:
    """Receipts per seq over all clients: when each seq reached every client, and its publish stamp."""

    def __init__(self) -> None:
        self.expected = 0
        self.counts: dict[int, int] = {}
        self.stamps: dict[int, bytes] = {}
        self.completed: dict[int, float] = {}
        self.event = asyncio.Event()

    def note(self, seq: int, stamp: bytes) -> None:
        count = self.counts.get(seq, 0) + 1
        self.counts[seq] = count
        if count == 1:
            self.stamps[seq] = stamp
        if count == self.expected:
            self.completed[seq] = time.perf_counter()
            self.event.set()

    def latest_complete(self) -> int:
        return max(self.completed, default=-1)

    async def wait_new_complete(self, timeout: float, *, published_after: float | None = None) -> int | None:
        """The next seq that every client received, or None after ``timeout``. With ``published_after``
        (wall clock) only a frame published since counts: frames of a backlog still completing must
        not start a window before a new publisher has even started."""
        baseline = self.latest_complete()
        deadline = time.perf_counter() + timeout

        def waiting() -> bool:
            latest = self.latest_complete()
            if latest <= baseline:
                return True
            return published_after is not None and stamp_seconds(self.stamps[latest]) < published_after

        while waiting():
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return None
            self.event.clear()
            try:
                await asyncio.wait_for(self.event.wait(), remaining)
            except TimeoutError:
                return None
        return self.latest_complete()

    def backlog(self) -> bool:
        """Some client still lacks the newest seq that any client has."""
        newest = max(self.counts, default=None)
        return newest is not None and self.counts[newest] < self.expected


CHECK_KEYS = (
    "gaps",
    "missing_frames",
    "repeats",
    "out_of_order",
    "epoch_changes",
    "resyncs",
    "other_frames",
    "unparsed",
)


class FeedClient(asyncio.Protocol):
    """One WebSocket as a bare asyncio protocol (RFC 6455: unmasked server frames, no extensions).

    The websockets library spends ~30 µs of the load generator's CPU per received frame; this reads a
    frame's envelope straight from the receive buffer, so one core can follow 10,000 sockets. Every
    status frame is checked on arrival: its seq must be the previous one + 1 within one epoch."""

    def __init__(self, port: int, path: str, *, tracker: Tracker | None, keep_text: bool) -> None:
        loop = asyncio.get_running_loop()
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.tracker = tracker
        self.keep_text = keep_text
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.opened = loop.create_future()
        self.first = loop.create_future()
        self.lost = loop.create_future()
        # (receipt perf_counter, receipt wall clock, seq, publish stamp) per counted frame.
        self.frames: list[tuple[float, float, int, bytes]] = []
        self.texts: list[str] = []
        self.received = 0
        self.last_seq: int | None = None
        self.last_epoch: bytes | None = None
        self.check = dict.fromkeys(CHECK_KEYS, 0)
        self.closing = False
        self.closed: str | None = None
        self.fragments: bytearray | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        if not self.closing and self.closed is None:
            self.closed = f"dropped ({exc.__class__.__name__ if exc else 'EOF'})"
        for future in (self.opened, self.first):
            if not future.done():
                future.set_exception(ConnectionError(f"closed before the first frame: {self.closed}"))
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            del buf[: end + 4]
            if not status.startswith(b"HTTP/1.1 101"):
                self.closed = f"handshake refused: {status.decode(errors='replace')}"
                self.opened.set_exception(ConnectionError(self.closed))
                self.transport.close()
                return
            self.upgraded = True
            self.opened.set_result(None)
        perf, wall = time.perf_counter(), time.time()
        pos, size = 0, len(buf)
        while size - pos >= 2:
            first, length = buf[pos], buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            start, end = pos + head, pos + head + length
            if end > size:
                break
            opcode = first & 0x0F
            if opcode == 1 and first & 0x80:
                self._text(buf, start, end, perf, wall)
            elif opcode in (0, 1):
                self.fragments = (self.fragments or bytearray()) + buf[start:end]
                if first & 0x80:
                    whole, self.fragments = self.fragments, None
                    self._text(whole, 0, len(whole), perf, wall)
            elif opcode == 9:
                self._send(0xA, bytes(buf[start:end]))
            elif opcode == 8:
                if not self.closing:
                    code = int.from_bytes(buf[start : start + 2], "big") if length >= 2 else None
                    self.closed = f"closed by the server ({code})"
                    self._send(0x8, bytes(buf[start : start + 2]))
                self.transport.close()
            pos = end
        if pos:
            del buf[:pos]

    def _text(self, buf, start: int, end: int, perf: float, wall: float) -> None:
        self.received += 1
        match = FRAME_HEAD.match(buf, start, end)
        if match is None:
            self.check["unparsed"] += 1
        else:
            kind = match[1]
            if kind in COUNTED_TYPES:
                seq, epoch = int(match[2]), match[3]
                last = self.last_seq
                if self.last_epoch is not None and epoch != self.last_epoch:
                    self.check["epoch_changes"] += 1
                elif last is not None and seq != last + 1:
                    if seq == last:
                        self.check["repeats"] += 1
                    elif seq < last:
                        self.check["out_of_order"] += 1
                    else:
                        self.check["gaps"] += 1
                        self.check["missing_frames"] += seq - last - 1
                if last is None or seq > last:
                    self.last_seq = seq
                self.last_epoch = epoch
                stamp = match[4]
                self.frames.append((perf, wall, seq, stamp))
                if self.keep_text:
                    self.texts.append(bytes(buf[start:end]).decode())
                if self.tracker is not None:
                    self.tracker.note(seq, stamp)
            elif kind == b"resync":
                self.check["resyncs"] += 1
            else:
                self.check["other_frames"] += 1
        if not self.first.done():
            self.first.set_result(perf)

    def _send(self, opcode: int, payload: bytes) -> None:
        """A client frame: masked, as RFC 6455 requires (control frames only here, < 126 bytes)."""
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        self.transport.write(bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked)

    async def close(self) -> None:
        if self.transport is None or self.lost.done():
            return
        self.closing = True
        self._send(0x8, (1000).to_bytes(2, "big"))
        try:
            await asyncio.wait_for(asyncio.shield(self.lost), 10)
        except TimeoutError:
            self.transport.abort()


async def open_client(port: int, path: str = WS_PATH, *, tracker: Tracker | None, keep_text: bool) -> FeedClient:
    loop = asyncio.get_running_loop()
    _transport, client = await loop.create_connection(
        lambda: FeedClient(port, path, tracker=tracker, keep_text=keep_text), "127.0.0.1", port
    )
    await asyncio.wait_for(asyncio.shield(client.opened), 60)
    return client


async def open_clients(
    port: int, path: str, count: int, *, tracker: Tracker | None, keep_text: bool
) -> tuple[list[FeedClient], int]:
    """``count`` clients that each received their first frame, and how many connects failed."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> FeedClient:
        async with gate:
            client = await open_client(port, path, tracker=tracker, keep_text=keep_text)
        await asyncio.wait_for(asyncio.shield(client.first), 60)
        return client

    outcomes = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    clients = [outcome for outcome in outcomes if isinstance(outcome, FeedClient)]
    failures = [outcome for outcome in outcomes if not isinstance(outcome, FeedClient)]
    if len(failures) > CONNECT_FAILURES_TOLERATED * count:
        await close_clients(clients)
        reasons = Counter(f"{type(error).__name__}: {error}"[:120] for error in failures)
        raise RuntimeError(f"{len(failures)} of {count} connects failed: {reasons.most_common(3)}")
    return clients, len(failures)


async def close_clients(clients: list[FeedClient]) -> None:
    gate = asyncio.Semaphore(500)

    async def one(client: FeedClient) -> None:
        async with gate:
            await client.close()

    await asyncio.gather(*(one(client) for client in clients), return_exceptions=True)


def sequence_check(clients: list[FeedClient]) -> dict[str, Any]:
    totals = dict.fromkeys(CHECK_KEYS, 0)
    for client in clients:
        for key, value in client.check.items():
            totals[key] += value
    totals["unexpected_closes"] = sorted(Counter(c.closed for c in clients if c.closed).items())
    return totals


# --- HTTP -------------------------------------------------------------------------------------


async def http_request(
    port: int, method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None, conn=None
) -> tuple[int, bytes]:
    """Minimal HTTP/1.1 on asyncio streams (``conn`` = (reader, writer) for keep-alive)."""
    own = conn is None
    reader, writer = conn if conn is not None else await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        response_headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            response_headers[name.strip().lower()] = value.strip()
        if response_headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await reader.readline()).strip(), 16):
                chunks.append(await reader.readexactly(size))
                await reader.readline()
            await reader.readline()
            return status, b"".join(chunks)
        return status, await reader.readexactly(int(response_headers.get("content-length", 0)))
    finally:
        if own:
            writer.close()


# --- Statistics -------------------------------------------------------------------------------


def summarize(samples: list[float]) -> dict[str, float]:
    if len(samples) < 2:
        return {"n": len(samples)}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "n": len(samples),
        "p50": round(cuts[49], 3),
        "p90": round(cuts[89], 3),
        "p99": round(cuts[98], 3),
        "max": round(max(samples), 3),
        "min": round(min(samples), 3),
    }


def median_of(rounds: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for entry in rounds:
        for key in path:
            entry = entry.get(key) if isinstance(entry, dict) else None
        if isinstance(entry, (int, float)):
            values.append(entry)
    return round(statistics.median(values), 3) if values else None


# --- Scenario 1: snapshot latency -------------------------------------------------------------


async def snapshot_latency(url: str, connects: int) -> dict[str, Any]:
    first_frame, handshake, sizes = [], [], Counter()
    for _ in range(connects):
        started = time.perf_counter()
        async with connect(url, compression=None, ping_interval=None, open_timeout=30, close_timeout=10) as ws:
            opened = time.perf_counter()
            text = await asyncio.wait_for(ws.recv(), 30)
            received = time.perf_counter()
        match = FRAME_HEAD.match(text.encode())
        if match is None or match[1] != STATUS_TYPE.encode():
            raise RuntimeError(f"first frame is not a status frame: {text[:200]!r}")
        first_frame.append((received - started) * 1000)
        handshake.append((opened - started) * 1000)
        sizes[len(text.encode())] += 1
    return {"first_frame_ms": summarize(first_frame), "handshake_ms": summarize(handshake), "frame_bytes": dict(sizes)}


# --- Scenario 2: ingest -> receipt ------------------------------------------------------------


def frame_newest(text: str) -> datetime:
    """The newest report a status frame counts. Each POST's metric is newer than any before it,
    whereas the reports count can stand still while old rows leave the window."""
    return datetime.fromisoformat(json.loads(text)["data"]["data_quality"]["last_updated"].replace("Z", "+00:00"))


async def ingest_receipt(
    clients: list[FeedClient], port: int, key: str, args: argparse.Namespace, metric_ids: list[int]
) -> dict[str, Any]:
    """``metric_ids`` collects the ids of the rows written, for the cleanup (also when this fails)."""
    probe = clients[0]
    # Frames from before this round stay: the probe's latest one is the count before the first POST.
    offsets = [len(client.frames) for client in clients]
    checks_before = sequence_check(clients)
    conn = await asyncio.open_connection("127.0.0.1", port)
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
    body = json.dumps(INGEST_BODY).encode()
    ingests: list[dict[str, Any]] = []
    last_newest = probe_newest = None
    try:
        own_start, wall_start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for _ in range(args.ingests):
            before = probe_newest if probe_newest is not None else await latest_newest(probe)
            started = time.perf_counter()
            status, answer = await http_request(port, "POST", INGEST_PATH, body=body, headers=headers, conn=conn)
            committed, committed_wall = time.perf_counter(), time.time()
            if status != 201:
                raise RuntimeError(f"ingest answered {status}: {answer[:300]!r}")
            metric_ids.extend(json.loads(answer)["ids"])
            ingests.append(
                {"started": started, "committed": committed, "committed_wall": committed_wall, "newest_before": before}
            )
            # The next POST needs the probe to have seen this one, or it would take a stale "before".
            deadline = started + RECEIPT_TIMEOUT
            while time.perf_counter() < deadline:
                if probe.texts and (last_newest := frame_newest(probe.texts[-1])) > before:
                    break
                await asyncio.sleep(0.01)
            probe_newest = last_newest
            await asyncio.sleep(max(0.0, started + args.ingest_gap - time.perf_counter()))
        await asyncio.sleep(0.5)
        own_end, wall_end = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    finally:
        conn[1].close()

    from_commit, from_request, missed, early = [], [], 0, 0
    # The frame's own timestamp (taken when the broadcaster built it) splits the wait in two: until the
    # status went out, and the fan-out to this client (same clock: one machine).
    to_stamp: dict[int, float] = {}
    from_stamp = []
    for client, offset in zip(clients, offsets, strict=True):
        frames, texts = client.frames[offset:], client.texts[offset:]
        parsed = [(frame[0], frame_newest(text), text) for frame, text in zip(frames, texts, strict=True)]
        for number, ingest in enumerate(ingests):
            hit = next(
                (
                    (perf, text)
                    for perf, newest, text in parsed
                    if perf > ingest["started"] and newest > ingest["newest_before"]
                ),
                None,
            )
            if hit is None or hit[0] - ingest["started"] > RECEIPT_TIMEOUT:
                missed += 1
                continue
            perf, text = hit
            early += perf < ingest["committed"]
            from_commit.append((perf - ingest["committed"]) * 1000)
            from_request.append((perf - ingest["started"]) * 1000)
            stamped = stamp_seconds(FRAME_HEAD.match(text.encode())[4])
            to_stamp[number] = (stamped - ingest["committed_wall"]) * 1000
            from_stamp.append((ingest["committed_wall"] + (perf - ingest["committed"]) - stamped) * 1000)
    post_ms = [(i["committed"] - i["started"]) * 1000 for i in ingests]
    checks = sequence_check(clients)
    own_cpu = (own_end.ru_utime + own_end.ru_stime) - (own_start.ru_utime + own_start.ru_stime)
    return {
        "clients": len(clients),
        "ingests": len(ingests),
        "pairs": len(clients) * len(ingests),
        "missed_pairs": missed,
        "received_before_response": early,
        "from_commit_ms": summarize(from_commit),
        "from_request_ms": summarize(from_request),
        "commit_to_frame_stamp_ms": summarize(list(to_stamp.values())),
        "frame_stamp_to_receipt_ms": summarize(from_stamp),
        "post_ms": summarize(post_ms),
        "client_cpu_share": round(own_cpu / (wall_end - wall_start), 3),
        "sequence": {key: checks[key] - checks_before[key] for key in CHECK_KEYS},
    }


async def latest_newest(probe: FeedClient) -> datetime:
    """The newest report of the status the probe holds."""
    await asyncio.wait_for(asyncio.shield(probe.first), 10)
    if probe.texts:
        return frame_newest(probe.texts[-1])
    raise RuntimeError("the ingest probe has no status frame")


async def ingest_scenario(args, stack: ProjectStack, key: str, metric_ids: list[int]) -> list[dict[str, Any]]:
    clients, failures = await open_clients(stack.ports[0], WS_PATH, args.ingest_clients, tracker=None, keep_text=True)
    try:
        await asyncio.sleep(SETTLE_SECONDS)
        rounds = []
        for number in range(1, args.rounds + 1):
            result = await ingest_receipt(clients, stack.ports[0], key, args, metric_ids)
            result["connect_failures"] = failures
            rounds.append(result)
            log(
                f"ingest round {number} ({len(clients)} clients): from commit p50 "
                f"{result['from_commit_ms'].get('p50')} ms, p99 {result['from_commit_ms'].get('p99')} ms, "
                f"missed {result['missed_pairs']}, client CPU {result['client_cpu_share']:.0%}"
            )
        return rounds
    finally:
        await close_clients(clients)


# --- Scenarios 3 and 4: fan-out ---------------------------------------------------------------


_TS_CACHE: dict[bytes, float] = {}


def stamp_seconds(stamp: bytes) -> float:
    value = _TS_CACHE.get(stamp)
    if value is None:
        value = _TS_CACHE[stamp] = datetime.fromisoformat(stamp.decode().replace("Z", "+00:00")).timestamp()
    return value


class Cpus:
    """The CPU plan: where the servers run, where the load generator runs."""

    def __init__(self, server_cpu: int | None, client_cpu: int | None) -> None:
        self.server_cpu, self.client_cpu = server_cpu, client_cpu
        self.server = None if server_cpu is None else {server_cpu}
        self.client = None if client_cpu is None else {client_cpu}


async def measure_window(
    stack,
    clients: list[FeedClient],
    tracker: Tracker,
    *,
    rate: float,
    seconds: float,
    cpus: Cpus,
    published_after: float,
) -> dict[str, Any]:
    """One window at ``rate``: starts right after a fan-out, published since ``published_after`` (the
    publisher's start), that every client received; frames published in the window must reach every
    client within DRAIN_SECONDS after it."""
    count = len(clients)
    # A new broadcaster boots Django first: a few seconds when the machine is busy.
    aligned = await tracker.wait_new_complete(timeout=max(15.0, 3.0 / rate), published_after=published_after)
    for client in clients:
        client.frames.clear()
    checks_before = sequence_check(clients)
    wall_start, perf_start = time.time(), time.perf_counter()
    cpu_start = [server.cpu_times() for server in stack.servers]
    exact_start = [server.cpu_seconds() for server in stack.servers]
    others_start = [other.cpu_seconds() for other in stack.others]
    server_core_start, client_core_start = cpu_busy_seconds(cpus.server_cpu), cpu_busy_seconds(cpus.client_cpu)
    own_start = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.sleep(seconds)
    wall_end, perf_end = time.time(), time.perf_counter()
    cpu_end = [server.cpu_times() for server in stack.servers]
    exact_end = [server.cpu_seconds() for server in stack.servers]
    others_end = [other.cpu_seconds() for other in stack.others]
    server_core_end, client_core_end = cpu_busy_seconds(cpus.server_cpu), cpu_busy_seconds(cpus.client_cpu)
    own_end = resource.getrusage(resource.RUSAGE_SELF)
    for server in stack.servers:
        server.alive()

    def window_seqs() -> list[int]:
        return sorted(s for s, stamp in tracker.stamps.items() if wall_start <= stamp_seconds(stamp) <= wall_end)

    drain_deadline = perf_end + DRAIN_SECONDS
    while any(tracker.counts.get(seq, 0) < count for seq in window_seqs()) and time.perf_counter() < drain_deadline:
        await asyncio.sleep(0.05)
    drained = time.perf_counter() - perf_end
    seen = window_seqs()
    # Seqs of the status topic are consecutive: one that no client got at all is still in the range.
    seqs = list(range(seen[0], seen[-1] + 1)) if seen else []
    wanted = set(seqs)
    third = max(1, len(seqs) // 3)
    early_seqs, late_seqs = set(seqs[:third]), set(seqs[-third:])
    delivered, lags, early, late = 0, [], [], []
    for client in clients:
        for perf, wall, seq, stamp in client.frames:
            if perf_start < perf <= perf_end:
                delivered += 1
            if seq in wanted:
                lag = (wall - stamp_seconds(stamp)) * 1000
                lags.append(lag)
                if seq in early_seqs:
                    early.append(lag)
                if seq in late_seqs:
                    late.append(lag)
    growth = statistics.median(late) - statistics.median(early) if early and late else 0.0
    checks = sequence_check(clients)
    wall = wall_end - wall_start
    user = sum(end[0] - start[0] for start, end in zip(cpu_start, cpu_end, strict=True))
    system = sum(end[1] - start[1] for start, end in zip(cpu_start, cpu_end, strict=True))
    cpu = sum(end - start for start, end in zip(exact_start, exact_end, strict=True))
    own_cpu = (own_end.ru_utime + own_end.ru_stime) - (own_start.ru_utime + own_start.ru_stime)
    span = stamp_seconds(tracker.stamps[seen[-1]]) - stamp_seconds(tracker.stamps[seen[0]]) if seen else 0.0
    achieved = (seen[-1] - seen[0]) / span if span > 0 else 0.0
    latency = summarize(lags)
    result = {
        "rate": rate,
        "rate_achieved": round(achieved, 2),
        "publishes": len(seqs),
        "clients": count,
        "aligned": aligned is not None,
        "window_seconds": round(wall, 3),
        "frames_delivered": delivered,
        "frames_per_second": round(delivered / wall, 1),
        "lost_pairs": len(seqs) * count - len(lags),
        "drain_seconds": round(drained, 2),
        "latency_ms": latency,
        "lag_growth_ms": round(growth, 1),
        "server_cpu_seconds": round(cpu, 3),
        "server_cpu_share": round(cpu / wall, 3),
        "server_cpu_us_per_frame": round(cpu / delivered * 1e6, 2) if delivered else None,
        "server_user_us_per_frame": round(user / delivered * 1e6, 2) if delivered else None,
        "server_system_us_per_frame": round(system / delivered * 1e6, 2) if delivered else None,
        "other_cpu_seconds": {
            s.name: round(end - start, 3) for s, start, end in zip(stack.others, others_start, others_end, strict=True)
        },
        "client_cpu_share": round(own_cpu / wall, 3),
        "client_core_busy_share": None
        if client_core_start is None
        else round((client_core_end[0] - client_core_start[0]) / wall, 3),
        # Everything else that ran on the server's CPU in the window (other processes, interrupts):
        # when this is high the machine was busy and the figures are pessimistic.
        "server_cpu_foreign_share": None
        if server_core_start is None
        else round((server_core_end[0] - server_core_start[0] - cpu) / wall, 3),
        "server_cpu_steal_share": None
        if server_core_start is None
        else round((server_core_end[1] - server_core_start[1]) / wall, 3),
        "sequence": {key: checks[key] - checks_before[key] for key in CHECK_KEYS},
    }
    result["client_bound"] = result["client_cpu_share"] >= CLIENT_BOUND_SHARE
    result["client_core_saturated"] = (result["client_core_busy_share"] or 0.0) >= CLIENT_CORE_BOUND_SHARE
    result["publisher_bound"] = len(seqs) >= 2 and achieved < 0.9 * rate
    broken = sum(result["sequence"][key] for key in ("gaps", "repeats", "out_of_order", "epoch_changes", "resyncs"))
    reasons = []
    if len(seqs) < 2:
        reasons.append(f"fewer than 2 of the window's publishes reached any client within {DRAIN_SECONDS:g} s")
    if result["lost_pairs"]:
        reasons.append(f"{result['lost_pairs']} (client, frame) pairs not delivered within {DRAIN_SECONDS:g} s")
    if broken:
        reasons.append(f"{broken} sequence faults")
    if latency.get("p99", 0.0) > LAG_BOUND_MS:
        reasons.append(f"p99 lag {latency.get('p99', float('nan')):.0f} ms > {LAG_BOUND_MS:.0f} ms")
    if growth > LAG_GROWTH_MS:
        reasons.append(f"lag grew by {growth:.0f} ms over the window")
    if result["publisher_bound"]:
        reasons.append(f"publisher reached {achieved:.2f}/s of {rate:g}/s")
    result["kept_up"] = not reasons
    result["failed_because"] = reasons
    return result


async def wait_backlog(tracker: Tracker, timeout: float = BACKLOG_TIMEOUT) -> float | None:
    """With the publisher paused: seconds until every client holds the newest frame (None: timeout)."""
    started = time.perf_counter()
    while tracker.backlog():
        if time.perf_counter() - started > timeout:
            return None
        await asyncio.sleep(0.1)
    return round(time.perf_counter() - started, 2)


async def ladder(stack, clients, tracker, *, args, cpus: Cpus, base: dict[str, Any]) -> dict[str, Any]:
    """Sustained broadcasts/s at this N: the highest ladder rate whose window keeps up (every frame to
    every client, no sequence fault, p99 lag <= LAG_BOUND_MS) while the next rate up does not, or is
    the ladder's top. The base window is the step at BASE_RATE. The first step tried is the highest
    rate whose CPU, extrapolated from the base window, stays under LADDER_START_SHARE of a core; from
    there the ladder goes up while steps keep up, or down until one does."""
    rates = args.rates
    steps: dict[float, dict[str, Any]] = {BASE_RATE: base}
    rate = BASE_RATE
    if base["kept_up"]:
        us = base["server_cpu_us_per_frame"] or 0.0
        rate = max((r for r in rates if r * len(clients) * us / 1e6 <= LADDER_START_SHARE), default=BASE_RATE)
    while True:
        if rate not in steps:
            since = time.time()
            await stack.set_rate(rate)
            # At least 3 publishes per window, or the lag-growth check has nothing to compare.
            seconds = max(args.window_seconds, 3.0 / rate)
            steps[rate] = await measure_window(
                stack, clients, tracker, rate=rate, seconds=seconds, cpus=cpus, published_after=since
            )
            step = steps[rate]
            log(
                f"  {stack.kind} N={len(clients)} {rate:g}/s: "
                f"{'kept up' if step['kept_up'] else 'failed: ' + '; '.join(step['failed_because'])}, "
                f"p99 {step['latency_ms'].get('p99')} ms, CPU {step['server_cpu_share']:.0%}, "
                f"client CPU {step['client_cpu_share']:.0%}"
            )
            if not step["kept_up"]:
                stack.pause()
                await wait_backlog(tracker)
        index = rates.index(rate)
        if steps[rate]["kept_up"]:
            if index + 1 == len(rates) or rates[index + 1] in steps:
                break
            rate = rates[index + 1]
        else:
            if index == 0 or rates[index - 1] in steps:
                break
            rate = rates[index - 1]
    passing = [r for r, step in steps.items() if step["kept_up"]]
    best = max(passing, default=0.0)
    above = [r for r in rates if r > best]
    failed_above = steps.get(above[0]) if above else None
    if not above:
        limit = "ladder top"
    elif failed_above is None:
        limit = "not measured"
    elif failed_above["publisher_bound"]:
        limit = "publisher"
    elif failed_above["client_bound"]:
        limit = "client-bound"
    elif failed_above["client_core_saturated"]:
        limit = "load generator's core saturated"
    elif (failed_above["server_cpu_foreign_share"] or 0.0) > FOREIGN_LIMIT_SHARE:
        limit = "other load on the server's core"
    else:
        limit = "server"
    stack.pause()
    return {
        "sustained_per_second": best,
        "limited_by": limit,
        "steps": [steps[r] for r in sorted(steps)],
    }


async def grow(stack, clients: list[FeedClient], tracker: Tracker, *, server: int, count: int) -> dict[str, Any]:
    """Connect up to ``count`` clients on server ``server`` with the publisher paused."""
    new = count - len(clients)
    started = time.perf_counter()
    path = WS_PATH if stack.kind == "project" else "/"
    added, failures = await open_clients(stack.ports[server], path, new, tracker=tracker, keep_text=False)
    seconds = time.perf_counter() - started
    clients.extend(added)
    return {
        "new": new,
        "failures": failures,
        "seconds": round(seconds, 2),
        "per_second": round(len(added) / seconds, 1) if seconds else None,
    }


def combined_cpu(windows: list[dict[str, Any]]) -> float | None:
    """µs of server CPU per delivered frame over several windows (short windows alone are coarse)."""
    kept = [w for w in windows if w["frames_delivered"]]
    frames = sum(w["frames_delivered"] for w in kept)
    return round(sum(w["server_cpu_seconds"] for w in kept) / frames * 1e6, 2) if frames else None


async def fanout_round(stack, args, cpus: Cpus, *, full_ladder: bool) -> list[dict[str, Any]]:
    """One round on one server kind: N grows over args.clients (one process), then to
    args.two_process_clients over two; then the ladder runs at the largest single-process N and, with
    ``full_ladder``, at every smaller one too, largest first."""
    tracker = Tracker()
    clients: list[FeedClient] = []
    second: list[FeedClient] = []
    stages: list[dict[str, Any]] = []
    await stack.start(BASE_RATE)
    try:
        for number in range(len(stack.servers)):
            path = WS_PATH if stack.kind == "project" else "/"
            warm = await open_client(stack.ports[number], path, tracker=None, keep_text=False)
            await asyncio.wait_for(asyncio.shield(warm.first), 30)
            await warm.close()
        stack.pause()
        await asyncio.sleep(0.5)
        rss_base = [server.rss_bytes() for server in stack.servers]
        plan = [(n, 0) for n in args.clients]
        if args.two_process_clients:
            plan.append((args.two_process_clients, 1))
        for count, server in plan:
            stack.pause()
            if server == 0:
                connect = await grow(stack, clients, tracker, server=0, count=count)
            else:
                connect = await grow(stack, second, tracker, server=1, count=count - len(clients))
            everyone = clients + second
            tracker.expected = len(everyone)
            await asyncio.sleep(SETTLE_SECONDS)
            rss = [server.rss_bytes() for server in stack.servers]
            since = time.time()
            stack.resume()
            window = await measure_window(
                stack,
                everyone,
                tracker,
                rate=BASE_RATE,
                seconds=args.window_seconds,
                cpus=cpus,
                published_after=since,
            )
            stack.pause()
            backlog = await wait_backlog(tracker) if not window["kept_up"] else 0.0
            used = [0] if server == 0 else [0, 1]
            rss_delta = sum(rss[i] - rss_base[i] for i in used)
            stage = {
                "clients": len(everyone),
                "processes": len(used),
                "connect": connect,
                "rss_mb": [round(value / 2**20, 1) for value in rss],
                "rss_base_mb": [round(value / 2**20, 1) for value in rss_base],
                "rss_per_connection_kb": round(rss_delta / len(everyone) / 1024, 1),
                "base": window,
                "backlog_drained_seconds": backlog,
            }
            stages.append(stage)
            log(
                f"{stack.kind} N={len(everyone)} ({len(used)} proc): {connect['per_second']} connects/s, "
                f"{stage['rss_per_connection_kb']} KB/conn, p99 {window['latency_ms'].get('p99')} ms at "
                f"{BASE_RATE:g}/s, {window['server_cpu_us_per_frame']} µs CPU/frame, "
                f"{'kept up' if window['kept_up'] else 'failed: ' + '; '.join(window['failed_because'])}, "
                f"client CPU {window['client_cpu_share']:.0%}"
            )
        if second:
            await close_clients(second)
            second.clear()
            tracker.expected = len(clients)
            await wait_backlog(tracker)
        single = [s for s in stages if s["processes"] == 1]
        for stage in reversed(single if full_ladder else single[-1:]):
            count = stage["clients"]
            if len(clients) > count:
                await close_clients(clients[count:])
                del clients[count:]
                tracker.expected = len(clients)
            stage["ladder"] = await ladder(stack, clients, tracker, args=args, cpus=cpus, base=stage["base"])
            stage["server_cpu_us_per_frame_all_windows"] = combined_cpu(stage["ladder"]["steps"])
            log(
                f"{stack.kind} N={count}: sustained {stage['ladder']['sustained_per_second']:g}/s "
                f"({stage['ladder']['limited_by']}), {stage['server_cpu_us_per_frame_all_windows']} µs CPU/frame "
                "over all windows"
            )
        for stage in stages:
            # One rate for every round and N, so the figure and its ratio compare like with like.
            stage["server_cpu_us_per_frame"] = stage["base"]["server_cpu_us_per_frame"]
        await close_clients(clients)
        released = await stack.slots_released(timeout=5.0)
        stages[-1]["slots_released_seconds"] = released
        return stages
    finally:
        await close_clients(clients + second)
        stack.stop()


# --- Profile ----------------------------------------------------------------------------------


# Where daphne's samples go. A sample belongs to the first bucket (in this order: from the socket
# up to the consumer) with a frame in its stack. Markers name functions rather than files where a
# file also holds callers of everything (the middleware stack, the consumer's __call__).
PROFILE_BUCKETS = (
    (
        "Twisted write path on asyncio (add_writer/remove_writer = epoll_ctl, doWrite -> send)",
        (
            "FileDescriptor.",
            "AsyncioSelectorReactor.addWriter",
            "AsyncioSelectorReactor.removeWriter",
            "AsyncioSelectorReactor._readOrWrite",
            "writeSomeData",
            "ConnectionMixin.write",
            "untilConcludes",
            "callWithLogger",
            "_ContinuousPolling",
        ),
    ),
    ("autobahn framing", ("autobahn/",)),
    ("daphne reply handling", ("Server.handle_reply", "daphne/ws_protocol.py")),
    ("channels session wrapper on every send", ("InstanceSessionWrapper.send", "django/contrib/sessions")),
    ("channels_redis pub/sub receive, per-channel queues, msgpack", ("channels_redis/", "msgpack")),
    (
        "project consumer (dispatch, feed_frame, _deliver, _send_frame)",
        ("PipelineStatusConsumer.dispatch", "feed_frame", "_deliver", "_send_frame", "monitoring/feed/fanout.py"),
    ),
    (
        "channels consumer loop (await_many_dispatch: asyncio.wait + Queue per message)",
        (
            "await_many_dispatch",
            "AsyncConsumer.send",
            "AsyncWebsocketConsumer.send",
            "asyncio/queues.py",
            "asyncio/tasks.py",
        ),
    ),
    ("redis-py", ("redis/",)),
)


def _frame_name(frame: str) -> str:
    """``func (path/file.py:12)`` -> ``func (path/file.py)``: one entry per function, not per line."""
    return re.sub(r":\d+\)$", ")", frame)


def _bucket(frames: list[str]) -> str:
    for name, markers in PROFILE_BUCKETS:
        if any(marker in frame for frame in frames for marker in markers):
            return name
    return "event loop and the rest (select, Handle._run, call_soon, futures)"


def summarize_profile(collapsed: str, top: int = 25) -> dict[str, Any]:
    """Buckets, self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame_name(frame) for frame in stack.split(";")]
        own[frames[-1]] += count
        buckets[_bucket(frames)] += count
        for frame in set(frames):
            inclusive[frame] += count

    def share(count: int) -> float:
        return round(100 * count / total, 1) if total else 0.0

    return {
        "samples": total,
        "buckets": [(name, share(n)) for name, n in buckets.most_common()],
        "self_top": [(name, share(n)) for name, n in own.most_common(top)],
        "inclusive_top": [(name, share(n)) for name, n in inclusive.most_common(top * 2)],
    }


def is_idle_sample(frames: list[str]) -> bool:
    """Waiting, not working: the thread pool's idle workers and the loop's epoll_wait."""
    python = [frame for frame in frames if ".py" in frame]
    return bool(python) and (
        python[-1].startswith("_worker (concurrent/futures/thread.py")
        or python[-1].startswith(("EpollSelector.select", "select (selectors.py"))
    )


def busy_stacks(collapsed: str) -> str:
    kept = []
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit() and not is_idle_sample(stack.split(";")):
            kept.append(line)
    return "\n".join(kept)


async def gc_totals(service: Service, path: Path, timeout: float = 5.0) -> dict[str, Any]:
    """Ask the GC probe in ``service`` for its totals (SIGUSR1) and read them."""
    previous = path.stat().st_mtime_ns if path.exists() else 0
    os.kill(service.pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_mtime_ns != previous:
            return json.loads(path.read_text())
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the GC probe in {service.name} did not answer")


def parse_strace_summary(text: str) -> dict[str, int]:
    calls = {}
    for line in text.splitlines():
        parts = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total" and parts[3].isdigit():
            calls[parts[-1]] = int(parts[3])
    return calls


def frames_received(clients: list[FeedClient]) -> int:
    return sum(client.received for client in clients)


async def profile_round(args, server_cpus, other_cpus) -> dict[str, Any] | None:
    """A separate, unmeasured fan-out round: py-spy (samples), a GC probe (exact GC time) and strace -c
    (syscalls per delivered frame) on daphne. Not part of the figures above: the probes perturb it."""
    spy = VENV_BIN / "py-spy"
    if not spy.exists():
        log("py-spy is not installed in .venv; skipping the profile")
        return None
    gc_path = RESULTS / "live_feed_gc_probe.json.tmp"
    gc_path.unlink(missing_ok=True)
    probe_env = {"PYTHONPATH": str(ROOT / "bench" / "gc_probe"), "LIVE_FEED_GC_PROBE": str(gc_path)}
    stack = ProjectStack(
        args,
        label="profile",
        processes=1,
        interval=1.0 / args.profile_rate,
        server_cpus=server_cpus,
        other_cpus=other_cpus,
        daphne_env=probe_env,
    )
    output = RESULTS / "live_feed_profile.collapsed.tmp"
    result: dict[str, Any] = {}
    try:
        await stack.start()
        clients, _failures = await open_clients(
            stack.ports[0], WS_PATH, args.profile_clients, tracker=None, keep_text=False
        )
        try:
            await asyncio.sleep(SETTLE_SECONDS)
            gc_start, cpu_start, frames_start = (
                await gc_totals(stack.servers[0], gc_path),
                stack.servers[0].cpu_seconds(),
                frames_received(clients),
            )
            command = [str(spy), "record", "--pid", str(stack.servers[0].pid)]
            command += ["--duration", str(int(args.profile_seconds))]
            command += ["--rate", "500", "--format", "raw", "--output", str(output), "--nonblocking"]
            process = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            spy_log, _ = await process.communicate()
            gc_end, cpu_end, frames_end = (
                await gc_totals(stack.servers[0], gc_path),
                stack.servers[0].cpu_seconds(),
                frames_received(clients),
            )
            if process.returncode != 0:
                log(f"py-spy failed: {spy_log.decode(errors='replace')[-2000:]}")
                return None
            frames = frames_end - frames_start
            cpu = cpu_end - cpu_start
            gc_seconds = [end - start for start, end in zip(gc_start["seconds"], gc_end["seconds"], strict=True)]
            result["window"] = {
                "frames_delivered": frames,
                "server_cpu_us_per_frame": round(cpu / frames * 1e6, 1),
                "gc_us_per_frame": round(sum(gc_seconds) / frames * 1e6, 1),
                "gc_share_of_cpu": round(sum(gc_seconds) / cpu, 3),
                "gc_collections": [
                    end - start for start, end in zip(gc_start["collections"], gc_end["collections"], strict=True)
                ],
                "gc_seconds_by_generation": [round(value, 3) for value in gc_seconds],
            }
            result["syscalls_per_frame"] = await strace_counts(stack.servers[0], clients)
        finally:
            await close_clients(clients)
    finally:
        stack.stop()
    result.update(summarize_profile(busy_stacks(output.read_text())))
    result["clients"] = args.profile_clients
    result["rate"] = args.profile_rate
    return result


async def strace_counts(service: Service, clients: list[FeedClient], seconds: float = 10.0) -> dict[str, float] | None:
    """Syscalls per delivered frame (strace slows daphne down a lot; the counts per frame still hold)."""
    if shutil.which("strace") is None:
        return None
    path = RESULTS / "live_feed_strace.txt.tmp"
    start = frames_received(clients)
    process = await asyncio.create_subprocess_exec(
        "strace",
        "-c",
        "-f",
        "-o",
        str(path),
        "-p",
        str(service.pid),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(seconds)
    process.send_signal(signal.SIGINT)
    await process.wait()
    frames = frames_received(clients) - start
    if not path.exists() or frames == 0:
        return None
    calls = parse_strace_summary(path.read_text())
    per_frame = {name: round(count / frames, 2) for name, count in sorted(calls.items(), key=lambda kv: -kv[1])}
    return {"frames": frames, **{name: value for name, value in per_frame.items() if value >= 0.01}}


# --- Report -----------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    versions = {name: metadata.version(name) for name in ("django", "channels", "channels_redis", "daphne", "twisted")}
    versions.update({name: metadata.version(name) for name in ("autobahn", "websockets", "redis", "psycopg")})
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def code_state(ref: str | None) -> dict[str, Any]:
    """The commit measured; for the working tree also its uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    if ref:
        return {"served": f"git archive {ref}", "commit": git("rev-parse", ref)}
    return {
        "served": "working tree",
        "commit": git("rev-parse", "HEAD"),
        "uncommitted": git("status", "--porcelain").splitlines(),
    }


def code_line(code: dict[str, Any]) -> str:
    line = f"{code['served']} at {code['commit'][:10]}"
    if code.get("uncommitted"):
        line += f" with {len(code['uncommitted'])} uncommitted paths"
    return line


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


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

        def med(values: list[Any]) -> float | None:
            values = [v for v in values if isinstance(v, (int, float))]
            return round(statistics.median(values), 3) if values else None

        rows.append(
            {
                "clients": first["clients"],
                "processes": first["processes"],
                "rounds": len(stages),
                "connects_per_second": med([s["connect"]["per_second"] for s in stages]),
                "connect_failures": sum(s["connect"]["failures"] for s in stages),
                "rss_per_connection_kb": med([s["rss_per_connection_kb"] for s in stages]),
                "latency_p50_ms": med([s["base"]["latency_ms"].get("p50") for s in stages]),
                "latency_p99_ms": med([s["base"]["latency_ms"].get("p99") for s in stages]),
                "latency_max_ms": med([s["base"]["latency_ms"].get("max") for s in stages]),
                "base_kept_up": sum(s["base"]["kept_up"] for s in stages),
                "server_cpu_us_per_frame": med([s["server_cpu_us_per_frame"] for s in stages]),
                "sustained_per_second": med([s["ladder"]["sustained_per_second"] for s in stages if "ladder" in s]),
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


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


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


def target_value(value: float | None, unit: str, rates: list[float]) -> str:
    if value is None:
        return "-"
    if unit == "/s":
        return f"{sustained_text(value, rates)}/s"
    return f"{value:,.1f} {unit}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**pass**" if ok else "**FAIL**")


def sustained_text(value: float | None, rates: list[float]) -> str:
    if value is None:
        return "-"
    return f"< {min(rates):g}" if value == 0 else f"{value:g}"


def rounds_note(row: dict[str, Any], rounds: int) -> str:
    done = row["sustained_rounds"]
    return f" [{done} round{'s' if done != 1 else ''}]" if 0 < done < rounds else ""


def limit_note(row: dict[str, Any]) -> str:
    limits = [limit for limit in row["limited_by"] if limit != "server"]
    return f" ({', '.join(limits)})" if limits else ""


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


# --- Main -------------------------------------------------------------------------------------

RUN_ID = f"{int(time.time())}{secrets.token_hex(2)}"


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
    started = time.perf_counter()
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    args = parse_args()
    url = args.database_url
    refuse_foreign_database(url)
    RESULTS.mkdir(parents=True, exist_ok=True)
    nofile = raise_nofile()
    most = max(args.two_process_clients, args.clients[-1], args.ingest_clients, args.profile_clients)
    if nofile < most + 500:
        raise SystemExit(f"open-file limit {nofile} is too low for {most} clients")
    redis.Redis.from_url(args.redis_url).ping()
    global APP_ROOT
    exported = None
    if args.code:
        exported = APP_ROOT = export_code(args.code)
        log(f"serving a clean export of {args.code} from {exported}")
    try:
        run(args, url, started, nofile)
    finally:
        if exported is not None:
            shutil.rmtree(exported, ignore_errors=True)


def run(args: argparse.Namespace, url: str, started: float, nofile: int) -> None:
    schema = prepare_schema(url)
    data = {**prepare_data(url), **schema}
    token_name = f"bench-live-feed-{RUN_ID}"
    key = create_token(url, token_name)
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
            **{k: v for k, v in vars(args).items() if k not in ("database_url", "redis_url")},
            "database": database_name(url),
            "pinning": {"server_cpu": server_cpu, "client_cpu": client_cpu},
            "connect_concurrency": CONNECT_CONCURRENCY,
            "server_launcher": " ".join(Path(part).name for part in server_launcher()),
            "open_files": nofile,
            "base_rate": BASE_RATE,
            "lag_bound_ms": LAG_BOUND_MS,
            "drain_seconds": DRAIN_SECONDS,
        },
        "data": data,
        **report,
        "machine": machine_info(),
        "code": code_state(args.code),
    }
    report["targets"] = evaluate_targets(report)
    report["wall_time_seconds"] = round(time.perf_counter() - started, 1)
    markdown = render_markdown(report)
    write_atomically(RESULTS / "live_feed.json", json.dumps(report, indent=2) + "\n")
    write_atomically(RESULTS / "live_feed.md", markdown)
    print(markdown)


if __name__ == "__main__":
    sys.exit(main())
