#!/usr/bin/env python3
"""Live feed (``/ws/monitoring/pipeline-status``) against real processes: latency and fan-out cost.

Runs daphne (pinned to one CPU), ``manage.py run_broadcaster``, Redis and PostgreSQL, with the load
generator (this script, asyncio + websockets) pinned to another CPU, and measures:

1. snapshot latency: handshake start -> first frame, sequential connects;
2. ingest -> receipt: N clients connected, one metric POSTed at a time; for every client the time
   until a status frame whose ``data.data_quality.reports`` exceeds the count before the POST;
3. fan-out cost: N clients, a short broadcast interval; frames delivered, daphne CPU per delivered
   frame, publish -> receipt latency from the frame ``timestamp``, daphne RSS per connection;
4. baseline: the same fan-out through ``bench/reference_server.py`` (Redis pub/sub ->
   ``websockets.broadcast``) with a frame of the real frame's size at the same rate.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/conflict_monitor_bench REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/live_feed.py [--rounds 3] [--fanout-clients 1000] [--fanout-seconds 20]

Writes bench/results/live_feed.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
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
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

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
CONNECT_CONCURRENCY = 50
FANOUT_SETTLE_SECONDS = 2.0
RECEIPT_TIMEOUT = 5.0

# The envelope every topic frame starts with (monitoring.events.join_topic_frame); read without a
# JSON parse, so 2,000 frames/s do not load the client CPU.
FRAME_HEAD = re.compile(
    r'\{"type":"(?P<type>[a-z_]+)","topic":(?:"[^"]*"|null),"seq":(?P<seq>\d+),'
    r'"epoch":"(?P<epoch>[^"]*)","timestamp":"(?P<ts>[^"]+)"'
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every scenario (default 3)")
    parser.add_argument("--snapshot-connects", type=int, default=200, help="sequential connects per round")
    parser.add_argument("--ingest-clients", type=int, default=100)
    parser.add_argument("--ingests", type=int, default=30, help="metrics POSTed per round")
    parser.add_argument("--ingest-gap", type=float, default=1.5, help="seconds between POSTs (push rate limit 2/s)")
    parser.add_argument("--ingest-interval", type=float, default=30.0, help="broadcast interval in scenario 2")
    parser.add_argument("--fanout-clients", type=int, default=1000)
    parser.add_argument("--fanout-seconds", type=float, default=20.0)
    parser.add_argument("--fanout-interval", type=float, default=0.5, help="broadcast interval in scenarios 3-4")
    parser.add_argument(
        "--profile-seconds",
        type=float,
        default=0.0,
        help="after the rounds, one more project fan-out round under py-spy for this long (needs py-spy)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        help=f"bench database (default: $DATABASE_URL, else {DEFAULT_DATABASE_URL})",
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    parser.add_argument(
        "--code",
        default=None,
        metavar="REF",
        help="serve a clean `git archive REF` export instead of the working tree (uncommitted edits left out)",
    )
    args = parser.parse_args()
    if min(args.rounds, args.snapshot_connects, args.ingest_clients, args.ingests, args.fanout_clients) < 2:
        parser.error("counts must be at least 2")
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
        # Rows that leave the 24 h window in the next 20 minutes can make the reports count drop
        # between two frames, which scenario 2 would read as a missed update.
        edge = conn.execute(
            "SELECT count(*) FROM monitoring_dataqualitymetric "
            "WHERE timestamp BETWEEN now() - interval '24 hours' AND now() - interval '23 hours 40 minutes'"
        ).fetchone()[0]
    return {"seeded": seeded, "metrics_in_window": window, "window_edge_rows": edge}


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


class ProjectStack:
    """daphne + run_broadcaster sharing one fresh channel-layer prefix."""

    def __init__(
        self,
        args: argparse.Namespace,
        *,
        label: str,
        interval: float,
        server_cpus,
        other_cpus,
        daphne_env: dict[str, str] | None = None,
    ) -> None:
        self.args = args
        self.prefix = f"bench-live-{RUN_ID}-{label}"
        self.interval = interval
        self.port = free_port()
        env = service_env(args.database_url, args.redis_url, prefix=self.prefix, interval=interval)
        daphne = [
            str(VENV_BIN / "daphne"),
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            "conflict_monitor.asgi:application",
        ]
        self.daphne = Service("daphne", daphne, env={**env, **(daphne_env or {})}, cpus=server_cpus)
        self.broadcaster = Service(
            "broadcaster", [str(VENV_BIN / "python"), "manage.py", "run_broadcaster"], env=env, cpus=other_cpus
        )

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{WS_PATH}"

    async def start(self) -> None:
        await wait_for_first_frame(self.args.redis_url, self.prefix, self.broadcaster)
        await wait_for_http(self.daphne, self.port, HEALTH_PATH)

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
        for service in (self.broadcaster, self.daphne):
            service.stop()
        cleanup_redis(self.args.redis_url, self.prefix)


# --- Clients ----------------------------------------------------------------------------------


class Tracker:
    """Counts receipts per seq; ``wait_complete`` wakes when every client has a new seq."""

    def __init__(self) -> None:
        self.expected = 0
        self.counts: Counter[int] = Counter()
        self.completed: dict[int, float] = {}
        self.event = asyncio.Event()

    def note(self, seq: int) -> None:
        self.counts[seq] += 1
        if self.expected and self.counts[seq] == self.expected:
            self.completed[seq] = time.perf_counter()
            self.event.set()

    async def wait_complete(self, timeout: float) -> int | None:
        """The next seq that every client received, or None after ``timeout``."""
        self.event.clear()
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            return None
        return max(self.completed)


class FeedClient:
    """One WebSocket; records (perf time, wall time, type, seq, epoch, timestamp) per frame."""

    def __init__(self, ws: ClientConnection, *, tracker: Tracker | None, keep_text: bool) -> None:
        self.ws = ws
        self.tracker = tracker
        self.keep_text = keep_text
        self.frames: list[tuple[float, float, str, int, str, str]] = []
        self.texts: list[str] = []
        self.sizes: Counter[int] = Counter()
        self.unparsed = 0
        self.closed: str | None = None
        self.first = asyncio.get_running_loop().create_future()
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                perf, wall = time.perf_counter(), time.time()
                match = FRAME_HEAD.match(text)
                if match is None:
                    self.unparsed += 1
                    self.frames.append((perf, wall, "unparsed", 0, "", ""))
                else:
                    seq = int(match["seq"])
                    self.frames.append((perf, wall, match["type"], seq, match["epoch"], match["ts"]))
                    if self.tracker is not None and match["type"] in (STATUS_TYPE, "reference"):
                        self.tracker.note(seq)
                if self.keep_text:
                    self.texts.append(text)
                self.sizes[len(text.encode())] += 1
                if not self.first.done():
                    self.first.set_result(perf)
        except ConnectionClosed as exc:
            self.closed = f"{exc.__class__.__name__} {exc.rcvd.code if exc.rcvd else None}"
        finally:
            if self.closed is None and self.ws.close_code not in (None, 1000):
                self.closed = f"closed {self.ws.close_code}"
            if not self.first.done():
                self.first.set_exception(RuntimeError(f"closed before the first frame: {self.closed}"))

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.ws.close(), 10)
        except (TimeoutError, OSError):
            self.ws.transport.abort()
        self.task.cancel()


async def open_client(url: str, *, tracker: Tracker | None, keep_text: bool) -> FeedClient:
    ws = await connect(url, compression=None, ping_interval=None, open_timeout=60, close_timeout=10, max_size=2**20)
    return FeedClient(ws, tracker=tracker, keep_text=keep_text)


async def open_clients(url: str, count: int, *, tracker: Tracker | None, keep_text: bool) -> list[FeedClient]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> FeedClient:
        async with gate:
            client = await open_client(url, tracker=tracker, keep_text=keep_text)
        await asyncio.wait_for(asyncio.shield(client.first), 60)
        return client

    clients = await asyncio.gather(*(one() for _ in range(count)))
    if tracker is not None:
        tracker.expected = count
    return clients


async def close_clients(clients: list[FeedClient]) -> None:
    await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)


def sequence_check(clients: list[FeedClient], *, frame_type: str) -> dict[str, Any]:
    """Each client's seq must go up by exactly 1 from its snapshot on, in one epoch."""
    gaps = missing = repeats = backwards = epoch_changes = resyncs = others = 0
    for client in clients:
        last_seq, last_epoch = None, None
        for _perf, _wall, kind, seq, epoch, _ts in client.frames:
            if kind == "resync":
                resyncs += 1
                continue
            if kind != frame_type:
                others += 1
                continue
            if last_epoch is not None and epoch != last_epoch:
                epoch_changes += 1
            elif last_seq is not None:
                if seq == last_seq:
                    repeats += 1
                elif seq < last_seq:
                    backwards += 1
                elif seq > last_seq + 1:
                    gaps += 1
                    missing += seq - last_seq - 1
            last_seq, last_epoch = max(seq, last_seq or 0), epoch
    return {
        "gaps": gaps,
        "missing_frames": missing,
        "repeats": repeats,
        "out_of_order": backwards,
        "epoch_changes": epoch_changes,
        "resyncs": resyncs,
        "other_frames": others,
        "unparsed": sum(client.unparsed for client in clients),
        "unexpected_closes": sorted(Counter(c.closed for c in clients if c.closed).items()),
    }


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


_TS_CACHE: dict[str, float] = {}


def epoch_seconds(stamp: str) -> float:
    value = _TS_CACHE.get(stamp)
    if value is None:
        value = _TS_CACHE[stamp] = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return value


# --- Scenario 1: snapshot latency -------------------------------------------------------------


async def snapshot_latency(url: str, connects: int) -> dict[str, Any]:
    first_frame, handshake, sizes = [], [], Counter()
    for _ in range(connects):
        started = time.perf_counter()
        async with connect(url, compression=None, ping_interval=None, open_timeout=30, close_timeout=10) as ws:
            opened = time.perf_counter()
            text = await asyncio.wait_for(ws.recv(), 30)
            received = time.perf_counter()
        match = FRAME_HEAD.match(text)
        if match is None or match["type"] != STATUS_TYPE:
            raise RuntimeError(f"first frame is not a status frame: {text[:200]!r}")
        first_frame.append((received - started) * 1000)
        handshake.append((opened - started) * 1000)
        sizes[len(text.encode())] += 1
    return {"first_frame_ms": summarize(first_frame), "handshake_ms": summarize(handshake), "frame_bytes": dict(sizes)}


# --- Scenario 2: ingest -> receipt ------------------------------------------------------------


def frame_reports(text: str) -> int:
    return json.loads(text)["data"]["data_quality"]["reports"]


async def ingest_receipt(
    url: str, port: int, key: str, args: argparse.Namespace, metric_ids: list[int]
) -> dict[str, Any]:
    """``metric_ids`` collects the ids of the rows written, for the cleanup (also when this fails)."""
    clients = await open_clients(url, args.ingest_clients, tracker=None, keep_text=True)
    probe = clients[0]
    conn = await asyncio.open_connection("127.0.0.1", port)
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
    body = json.dumps(INGEST_BODY).encode()
    ingests: list[dict[str, Any]] = []
    try:
        await asyncio.sleep(0.5)
        for _ in range(args.ingests):
            before = frame_reports(probe.texts[-1])
            started = time.perf_counter()
            status, answer = await http_request(port, "POST", INGEST_PATH, body=body, headers=headers, conn=conn)
            committed = time.perf_counter()
            if status != 201:
                raise RuntimeError(f"ingest answered {status}: {answer[:300]!r}")
            metric_ids.extend(json.loads(answer)["ids"])
            ingests.append({"started": started, "committed": committed, "reports_before": before})
            # The next POST needs the probe to have seen this one, or it would take a stale "before".
            deadline = started + RECEIPT_TIMEOUT
            while frame_reports(probe.texts[-1]) <= before and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
            await asyncio.sleep(max(0.0, started + args.ingest_gap - time.perf_counter()))
        await asyncio.sleep(0.5)
    finally:
        conn[1].close()
        await close_clients(clients)

    from_commit, from_request, missed, early = [], [], 0, 0
    frames_per_client = []
    for client in clients:
        parsed = [(frame[0], frame_reports(text)) for frame, text in zip(client.frames, client.texts, strict=True)]
        frames_per_client.append(len(parsed))
        for ingest in ingests:
            hit = next(
                (perf for perf, reports in parsed if perf > ingest["started"] and reports > ingest["reports_before"]),
                None,
            )
            if hit is None or hit - ingest["started"] > RECEIPT_TIMEOUT:
                missed += 1
                continue
            early += hit < ingest["committed"]
            from_commit.append((hit - ingest["committed"]) * 1000)
            from_request.append((hit - ingest["started"]) * 1000)
    post_ms = [(i["committed"] - i["started"]) * 1000 for i in ingests]
    return {
        "clients": len(clients),
        "ingests": len(ingests),
        "pairs": len(clients) * len(ingests),
        "missed_pairs": missed,
        "received_before_response": early,
        "from_commit_ms": summarize(from_commit),
        "from_request_ms": summarize(from_request),
        "post_ms": summarize(post_ms),
        "frames_per_client": summarize(frames_per_client),
        "sequence": sequence_check(clients, frame_type=STATUS_TYPE),
    }


# --- Scenarios 3 and 4: fan-out ---------------------------------------------------------------


async def fanout(
    url: str, server: Service, count: int, seconds: float, *, others: list[Service], server_cpu: int | None
) -> dict[str, Any]:
    """Connect ``count`` clients, then measure between two moments at which every client has the same seq."""
    await asyncio.sleep(0.5)
    warm = await open_client(url, tracker=None, keep_text=False)
    await asyncio.wait_for(asyncio.shield(warm.first), 30)
    await warm.close()
    await asyncio.sleep(0.5)
    rss_before = server.rss_bytes()
    tracker = Tracker()
    connect_started = time.perf_counter()
    clients = await open_clients(url, count, tracker=tracker, keep_text=False)
    connect_seconds = time.perf_counter() - connect_started
    try:
        await asyncio.sleep(FANOUT_SETTLE_SECONDS)
        rss_after = server.rss_bytes()
        aligned_start = await tracker.wait_complete(timeout=10)
        cpu_start, other_start = server.cpu_times(), [s.cpu_seconds() for s in others]
        busy_start, load_start = cpu_busy_seconds(server_cpu), os.getloadavg()[0]
        own_start, wall_start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        await asyncio.sleep(seconds)
        aligned_end = await tracker.wait_complete(timeout=10)
        cpu_end, other_end = server.cpu_times(), [s.cpu_seconds() for s in others]
        busy_end, load_end = cpu_busy_seconds(server_cpu), os.getloadavg()[0]
        own_end, wall_end = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        server.alive()
    finally:
        await close_clients(clients)

    delivered, latency_ms = 0, []
    by_seq: dict[int, list[float]] = {}
    for client in clients:
        for perf, wall, _kind, seq, _epoch, stamp in client.frames:
            if wall_start < perf <= wall_end:
                delivered += 1
                latency_ms.append((wall - epoch_seconds(stamp)) * 1000)
                by_seq.setdefault(seq, []).append(wall - epoch_seconds(stamp))
    spread = [(max(times) - min(times)) * 1000 for times in by_seq.values() if len(times) == count]
    first = [min(times) * 1000 for times in by_seq.values() if len(times) == count]
    wall = wall_end - wall_start
    user, system = cpu_end[0] - cpu_start[0], cpu_end[1] - cpu_start[1]
    cpu = user + system
    own_cpu = (own_end.ru_utime + own_end.ru_stime) - (own_start.ru_utime + own_start.ru_stime)
    sizes = Counter()
    for client in clients:
        sizes.update(client.sizes)
    return {
        "clients": count,
        "connect_seconds": round(connect_seconds, 2),
        "window_seconds": round(wall, 3),
        "aligned": aligned_start is not None and aligned_end is not None,
        "seq_span": [aligned_start, aligned_end],
        "frames_delivered": delivered,
        "frames_per_second": round(delivered / wall, 1),
        "complete_seqs": len(spread),
        "server_cpu_seconds": round(cpu, 3),
        "server_cpu_share": round(cpu / wall, 3),
        "server_cpu_us_per_frame": round(cpu / delivered * 1e6, 2) if delivered else None,
        "server_user_us_per_frame": round(user / delivered * 1e6, 2) if delivered else None,
        "server_system_us_per_frame": round(system / delivered * 1e6, 2) if delivered else None,
        "other_cpu_seconds": {
            s.name: round(end - start, 3) for s, start, end in zip(others, other_start, other_end, strict=True)
        },
        "client_cpu_share": round(own_cpu / wall, 3),
        # Everything else that ran on the server's CPU in the window (other processes, interrupts):
        # when this is high the machine was busy and the figures are pessimistic.
        "server_cpu_foreign_share": None
        if busy_start is None
        else round((busy_end[0] - busy_start[0] - cpu) / wall, 3),
        "server_cpu_steal_share": None if busy_start is None else round((busy_end[1] - busy_start[1]) / wall, 3),
        "load_average": [round(load_start, 2), round(load_end, 2)],
        "publish_to_receipt_ms": summarize(latency_ms),
        "publish_to_first_receipt_ms": summarize(first),
        "fanout_spread_ms": summarize(spread),
        "rss_before_mb": round(rss_before / 2**20, 1),
        "rss_after_mb": round(rss_after / 2**20, 1),
        "rss_per_connection_kb": round((rss_after - rss_before) / count / 1024, 1),
        "frame_bytes": sizes.most_common(1)[0][0] if sizes else None,
        "sequence": sequence_check(clients, frame_type=STATUS_TYPE if "reference" not in server.name else "reference"),
    }


def reference_template(real_frame: str) -> tuple[str, str, str]:
    """(before seq, between seq and timestamp, after timestamp) of a frame shaped like the real one."""
    data = json.dumps(json.loads(real_frame)["data"], separators=(",", ":"), ensure_ascii=False)
    epoch = secrets.token_hex(8)
    return '{"type":"reference","topic":"status","seq":', f',"epoch":"{epoch}","timestamp":"', '","data":' + data + "}"


async def reference_publisher(redis_url: str, channel: str, template: tuple[str, str, str], interval: float) -> None:
    client = aioredis.from_url(redis_url)
    loop = asyncio.get_running_loop()
    head, middle, tail = template
    seq, due = 0, loop.time()
    try:
        while True:
            seq += 1
            stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            await client.publish(channel, f"{head}{seq}{middle}{stamp}{tail}")
            due += interval
            await asyncio.sleep(max(0.0, due - loop.time()))
    finally:
        await client.aclose()


async def project_fanout_round(args, label: str, server_cpus, other_cpus) -> dict[str, Any]:
    stack = ProjectStack(
        args, label=label, interval=args.fanout_interval, server_cpus=server_cpus, other_cpus=other_cpus
    )
    try:
        await stack.start()
        result = await fanout(
            stack.ws_url,
            stack.daphne,
            args.fanout_clients,
            args.fanout_seconds,
            others=[stack.broadcaster],
            server_cpu=min(server_cpus) if server_cpus else None,
        )
        result["slots_released_seconds"] = await stack.slots_released()
        return result
    finally:
        stack.stop()


async def reference_fanout_round(args, label: str, server_cpus, template) -> dict[str, Any]:
    port = free_port()
    channel = f"bench-live-{RUN_ID}-{label}"
    command = [
        str(VENV_BIN / "python"),
        str(ROOT / "bench" / "reference_server.py"),
        "--port",
        str(port),
        "--redis-url",
        args.redis_url,
        "--channel",
        channel,
    ]
    server = Service("reference", command, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"), cpus=server_cpus)
    publisher = None
    try:
        await wait_for_port(server, port)
        await asyncio.sleep(0.5)  # subscribed before listening, but give the relay a moment
        publisher = asyncio.ensure_future(reference_publisher(args.redis_url, channel, template, args.fanout_interval))
        await asyncio.sleep(args.fanout_interval * 2)
        return await fanout(
            f"ws://127.0.0.1:{port}/",
            server,
            args.fanout_clients,
            args.fanout_seconds,
            others=[],
            server_cpu=min(server_cpus) if server_cpus else None,
        )
    finally:
        if publisher is not None:
            publisher.cancel()
        server.stop()


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
        ("PipelineStatusConsumer.dispatch", "feed_frame", "_deliver", "_send_frame"),
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
    return sum(len(client.frames) for client in clients)


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
        interval=args.fanout_interval,
        server_cpus=server_cpus,
        other_cpus=other_cpus,
        daphne_env=probe_env,
    )
    output = RESULTS / "live_feed_profile.collapsed.tmp"
    result: dict[str, Any] = {}
    try:
        await stack.start()
        clients = await open_clients(stack.ws_url, args.fanout_clients, tracker=Tracker(), keep_text=False)
        try:
            await asyncio.sleep(FANOUT_SETTLE_SECONDS)
            gc_start, cpu_start, frames_start = (
                await gc_totals(stack.daphne, gc_path),
                stack.daphne.cpu_seconds(),
                frames_received(clients),
            )
            command = [str(spy), "record", "--pid", str(stack.daphne.pid), "--duration", str(int(args.profile_seconds))]
            command += ["--rate", "500", "--format", "raw", "--output", str(output), "--nonblocking"]
            process = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            spy_log, _ = await process.communicate()
            gc_end, cpu_end, frames_end = (
                await gc_totals(stack.daphne, gc_path),
                stack.daphne.cpu_seconds(),
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
            result["syscalls_per_frame"] = await strace_counts(stack.daphne, clients)
        finally:
            await close_clients(clients)
    finally:
        stack.stop()
    result.update(summarize_profile(busy_stacks(output.read_text())))
    result["clients"] = args.fanout_clients
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


def render_markdown(report: dict[str, Any]) -> str:
    cfg, pin = report["config"], report["config"]["pinning"]
    snap, ingest, fan = report["snapshot"], report["ingest"], report["fanout"]
    lines = [
        f"# Live feed ({report['date']})",
        "",
        f"daphne on CPU {pin['server_cpu']}, load generator and broadcaster on CPU {pin['client_cpu']} "
        f"(Redis, PostgreSQL unpinned); status frame {fmt(report['frame_bytes'])} bytes, "
        f"{fmt(report['data']['metrics_in_window'])} metric rows in the window; {cfg['rounds']} rounds. "
        f"Code: {code_line(report['code'])}.",
        "",
        "## Latency",
        "",
        "| measurement | round | n | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    rows = [
        ("snapshot: handshake start -> first frame", snap["rounds"], "first_frame_ms"),
        ("snapshot: handshake only", snap["rounds"], "handshake_ms"),
        (f"ingest -> receipt, from 201 response ({cfg['ingest_clients']} clients)", ingest["rounds"], "from_commit_ms"),
        ("ingest -> receipt, from request start", ingest["rounds"], "from_request_ms"),
        ("ingest POST round trip", ingest["rounds"], "post_ms"),
    ]
    for name, rounds, key in rows:
        for number, entry in enumerate(rounds, 1):
            stats = entry[key]
            lines.append(
                f"| {name} | {number} | {fmt(stats.get('n'))} | {fmt(stats.get('p50'), 2)} | "
                f"{fmt(stats.get('p90'), 2)} | {fmt(stats.get('p99'), 2)} | {fmt(stats.get('max'), 2)} |"
            )
        lines.append(
            f"| **{name}** | **median** | | **{fmt(median_of(rounds, key, 'p50'), 2)}** | "
            f"**{fmt(median_of(rounds, key, 'p90'), 2)}** | **{fmt(median_of(rounds, key, 'p99'), 2)}** | "
            f"**{fmt(median_of(rounds, key, 'max'), 2)}** |"
        )
    missed = sum(r["missed_pairs"] for r in ingest["rounds"])
    early = sum(r["received_before_response"] for r in ingest["rounds"])
    lines += [
        "",
        f"Ingest pairs (client x POST) without a matching frame within {RECEIPT_TIMEOUT:g} s: {missed}; "
        f"frames that arrived before the 201 response: {early}.",
        "",
        f"## Fan-out, {cfg['fanout_clients']} clients, one frame every {cfg['fanout_interval']:g} s",
        "",
        "| server | round | frames delivered | frames/s | server CPU s | CPU share | **µs CPU / frame** | "
        "publish->receipt p50 ms | p99 ms | fan-out spread p50 ms | RSS before -> after MB | KB / conn | "
        "seq gaps | client CPU | server CPU: other load / steal |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for server in ("project", "reference"):
        rounds = fan[server]
        for number, r in enumerate(rounds, 1):
            lines.append(
                f"| {server} | {number} | {fmt(r['frames_delivered'])} | {fmt(r['frames_per_second'])} | "
                f"{fmt(r['server_cpu_seconds'], 2)} | {r['server_cpu_share']:.0%} | "
                f"{fmt(r['server_cpu_us_per_frame'])} | "
                f"{fmt(r['publish_to_receipt_ms'].get('p50'))} | {fmt(r['publish_to_receipt_ms'].get('p99'))} | "
                f"{fmt(r['fanout_spread_ms'].get('p50'))} | {r['rss_before_mb']:.0f} -> {r['rss_after_mb']:.0f} | "
                f"{fmt(r['rss_per_connection_kb'])} | {r['sequence']['gaps']} | {r['client_cpu_share']:.0%} | "
                f"{foreign(r)} |"
            )
        lines.append(
            f"| **{server}** | **median** | | | | | **{fmt(median_of(rounds, 'server_cpu_us_per_frame'))}** | "
            f"**{fmt(median_of(rounds, 'publish_to_receipt_ms', 'p50'))}** | "
            f"**{fmt(median_of(rounds, 'publish_to_receipt_ms', 'p99'))}** | "
            f"**{fmt(median_of(rounds, 'fanout_spread_ms', 'p50'))}** | | "
            f"**{fmt(median_of(rounds, 'rss_per_connection_kb'))}** | | | |"
        )
    busiest = max((r.get("server_cpu_foreign_share") or 0.0 for rounds in fan.values() for r in rounds), default=0.0)
    if busiest > 0.1:
        lines += [
            "",
            f"Warning: other processes used up to {busiest:.0%} of the server's CPU during a window; "
            "the machine was not quiet and the figures are pessimistic.",
        ]
    per_round = report["ratio"]["per_round"]
    lines += [
        "",
        f"**CPU per delivered frame, project / reference: {report['ratio']['median']:.1f}x** (ratio of the medians; "
        f"rounds run interleaved, per-round ratios {', '.join(f'{v:.1f}x' for v in per_round)}, "
        f"median {statistics.median(per_round):.1f}x). "
        "User / system µs per frame (medians): "
        + "; ".join(
            f"{server} {fmt(median_of(fan[server], 'server_user_us_per_frame'))} / "
            f"{fmt(median_of(fan[server], 'server_system_us_per_frame'))}"
            for server in ("project", "reference")
        )
        + ".",
        "",
    ]
    profile = report.get("profile")
    if profile:
        lines += render_profile(profile)
    lines += [f"Wall time {report['wall_time_seconds']:.0f} s.", ""]
    return "\n".join(lines)


# --- Main -------------------------------------------------------------------------------------

RUN_ID = f"{int(time.time())}{secrets.token_hex(2)}"


async def measure(
    args: argparse.Namespace, key: str, metric_ids: list[int], server_cpus, client_cpus, other_cpus
) -> dict[str, Any]:
    if client_cpus is not None:
        os.sched_setaffinity(0, client_cpus)
    report: dict[str, Any] = {}
    stack = ProjectStack(
        args, label="latency", interval=args.ingest_interval, server_cpus=server_cpus, other_cpus=other_cpus
    )
    try:
        await stack.start()
        snapshots = []
        for number in range(1, args.rounds + 1):
            result = await snapshot_latency(stack.ws_url, args.snapshot_connects)
            snapshots.append(result)
            stats = result["first_frame_ms"]
            log(f"snapshot round {number}: p50 {stats['p50']:.2f} ms, p99 {stats['p99']:.2f} ms")
        report["snapshot"] = {"rounds": snapshots}
        probe = await open_client(stack.ws_url, tracker=None, keep_text=True)
        await probe.first
        real_frame = probe.texts[0]
        await probe.close()
        report["frame_bytes"] = len(real_frame.encode())
        ingests = []
        for number in range(1, args.rounds + 1):
            result = await ingest_receipt(stack.ws_url, stack.port, key, args, metric_ids)
            ingests.append(result)
            log(
                f"ingest round {number}: from commit p50 {result['from_commit_ms'].get('p50')} ms, "
                f"p99 {result['from_commit_ms'].get('p99')} ms, missed {result['missed_pairs']}"
            )
        report["ingest"] = {"rounds": ingests}
    finally:
        stack.stop()

    template = reference_template(real_frame)
    project, reference = [], []
    for number in range(1, args.rounds + 1):
        result = await project_fanout_round(args, f"fanout{number}", server_cpus, other_cpus)
        project.append(result)
        log(
            f"fan-out project round {number}: {result['frames_delivered']} frames, "
            f"{result['server_cpu_us_per_frame']} µs CPU/frame, CPU share {result['server_cpu_share']:.0%}"
        )
        result = await reference_fanout_round(args, f"reference{number}", server_cpus, template)
        reference.append(result)
        log(
            f"fan-out reference round {number}: {result['frames_delivered']} frames, "
            f"{result['server_cpu_us_per_frame']} µs CPU/frame, CPU share {result['server_cpu_share']:.0%}"
        )
    report["fanout"] = {"project": project, "reference": reference}
    per_round = [
        p["server_cpu_us_per_frame"] / r["server_cpu_us_per_frame"]
        for p, r in zip(project, reference, strict=True)
        if p["server_cpu_us_per_frame"] and r["server_cpu_us_per_frame"]
    ]
    project_median = median_of(project, "server_cpu_us_per_frame")
    reference_median = median_of(reference, "server_cpu_us_per_frame")
    report["ratio"] = {
        "median": project_median / reference_median if project_median and reference_median else float("nan"),
        "per_round": [round(value, 2) for value in per_round],
        "project_us_per_frame": project_median,
        "reference_us_per_frame": reference_median,
    }
    if args.profile_seconds > 0:
        report["profile"] = await profile_round(args, server_cpus, other_cpus)
    return report


def main() -> None:
    started = time.perf_counter()
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    args = parse_args()
    url = args.database_url
    refuse_foreign_database(url)
    RESULTS.mkdir(parents=True, exist_ok=True)
    nofile = raise_nofile()
    if nofile < 2 * args.fanout_clients + 200:
        raise SystemExit(f"open-file limit {nofile} is too low for {args.fanout_clients} clients")
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
    if data["window_edge_rows"]:
        log(f"warning: {data['window_edge_rows']} metric rows leave the status window soon; reports may drop")
    token_name = f"bench-live-feed-{RUN_ID}"
    key = create_token(url, token_name)
    server_cpu, client_cpu = cpu_plan()
    all_cpus = os.sched_getaffinity(0)
    server_cpus = None if server_cpu is None else {server_cpu}
    client_cpus = None if client_cpu is None else {client_cpu}
    # The broadcaster shares the load generator's CPU (the reference's publisher runs in the load generator
    # too), so the server's CPU runs only the server, plus whatever Redis and PostgreSQL schedule there.
    other_cpus = client_cpus
    metric_ids: list[int] = []
    try:
        report = asyncio.run(measure(args, key, metric_ids, server_cpus, client_cpus, other_cpus))
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
            "open_files": nofile,
        },
        "data": data,
        **report,
        "machine": machine_info(),
        "code": code_state(args.code),
    }
    report["wall_time_seconds"] = round(time.perf_counter() - started, 1)
    markdown = render_markdown(report)
    write_atomically(RESULTS / "live_feed.json", json.dumps(report, indent=2) + "\n")
    write_atomically(RESULTS / "live_feed.md", markdown)
    print(markdown)


if __name__ == "__main__":
    sys.exit(main())
