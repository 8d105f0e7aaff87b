#!/usr/bin/env python3
"""Latency of ``GET /api/v1/monitoring/pipeline-status`` served by daphne on a million metric rows.

Fills a dedicated PostgreSQL database (its name must contain "bench": the fill truncates tables),
serves the real ASGI app with daphne, times keep-alive requests against the trivial health
endpoint (the baseline) and the status endpoint with a 24 h and a 720 h window, and EXPLAINs
the SQL that the status selector actually issues.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/conflict_monitor_bench \\
        .venv/bin/python bench/status_latency.py [--rows N] [--refill] [--calls N] [--rounds N]

Writes bench/results/status_latency.{json,md} and status_latency_plans.txt.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
VENV_BIN = ROOT / ".venv" / "bin"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/conflict_monitor_bench"

METRICS_TABLE = "monitoring_dataqualitymetric"
RUNS_TABLE = "monitoring_pipelinerun"
# Bump when the generated data changes shape, so an old fill is not mistaken for a current one.
GENERATOR_VERSION = 1
SEED = 20250101
FILL_DAYS = 90
SCRAPE_EVERY = timedelta(hours=1)
# A reused fill drifts into the past; past the project's default data-staleness limit the 24 h
# window would hold noticeably fewer rows and the status would read "stale", so refill instead.
REUSE_FOR = timedelta(hours=2)
COPY_CHUNK_ROWS = 20_000

WARMUP_CALLS = 10
SCENARIOS = (
    ("health", "/api/v1/monitoring/health"),
    ("status_24h", "/api/v1/monitoring/pipeline-status"),
    ("status_720h", "/api/v1/monitoring/pipeline-status?window_hours=720"),
)
EXPLAIN_WINDOWS = (24, 720)

# Settings read from the environment; the developer's own values must not leak into the server.
_PROJECT_ENV_PREFIXES = (
    "DATABASE_",
    "REDIS_",
    "MONITORING_",
    "WEBSOCKET_",
    "CHANNEL_LAYER_",
    "SECURE_",
    "SESSION_",
    "CSRF_",
)
_PROJECT_ENV_NAMES = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "LOG_LEVEL",
    "SQLITE_PATH",
    "STATIC_ROOT",
    "DJANGO_SETTINGS_MODULE",
}

# (name, share of reports, geocoding success rate, validation pass rate, scrape failure rate)
SOURCES = [
    ("acled", 6, 0.93, 0.96, 0.01),
    ("reliefweb", 3, 0.90, 0.94, 0.02),
    ("liveuamap", 8, 0.88, 0.92, 0.03),
    ("gdelt", 15, 0.86, 0.91, 0.02),
    ("local-news", 2, 0.91, 0.95, 0.05),
    ("ucdp", 3, 0.95, 0.97, 0.01),
    ("crisiswatch", 2, 0.92, 0.95, 0.02),
    ("un-ocha", 4, 0.94, 0.96, 0.01),
    ("hdx", 3, 0.89, 0.93, 0.02),
    ("eventregistry", 9, 0.84, 0.90, 0.04),
    ("telegram-osint", 10, 0.72, 0.85, 0.08),
    ("twitter-osint", 7, 0.70, 0.83, 0.10),
    ("airwars", 2, 0.93, 0.95, 0.02),
    ("insecurity-insight", 2, 0.90, 0.94, 0.03),
    ("acaps", 2, 0.91, 0.95, 0.02),
    ("gtd", 3, 0.96, 0.97, 0.01),
    ("syria-tracker", 4, 0.82, 0.88, 0.06),
    ("ukraine-war-monitor", 6, 0.87, 0.91, 0.03),
    ("sahel-monitor", 3, 0.80, 0.89, 0.05),
    ("yemen-data-project", 2, 0.85, 0.90, 0.04),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="metric rows to fill (default 1,000,000)")
    parser.add_argument("--refill", action="store_true", help="refill even when a matching fill exists")
    parser.add_argument("--calls", type=int, default=100, help="measured calls per endpoint and round")
    parser.add_argument("--rounds", type=int, default=3, help="measurement rounds")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        help=f"bench database (default: $DATABASE_URL, else {DEFAULT_DATABASE_URL})",
    )
    args = parser.parse_args()
    if args.rows < 1 or args.calls < 1 or args.rounds < 1:
        parser.error("--rows, --calls and --rounds must be positive")
    return args


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- Database ---------------------------------------------------------------------------------


def database_name(url: str) -> str:
    return conninfo_to_dict(url).get("dbname") or ""


def refuse_foreign_database(url: str) -> None:
    """The fill truncates the monitoring tables, so a mistyped DATABASE_URL must not reach real data."""
    name = database_name(url)
    if "bench" not in name:
        raise SystemExit(
            f"refusing to use database {name!r}: the benchmark truncates its tables; "
            "point DATABASE_URL/--database-url at a database whose name contains 'bench'"
        )


def ensure_database(url: str) -> bool:
    """Create the bench database when missing; True when it was created."""
    name = database_name(url)
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def django_env(url: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _PROJECT_ENV_NAMES and not key.startswith(_PROJECT_ENV_PREFIXES)
    }
    env.update(
        DATABASE_URL=url,
        # Throwaway key for a throwaway local server that only serves generated data.
        SECRET_KEY="bench-only",  # noqa: S106
        ALLOWED_HOSTS="127.0.0.1",
        MONITORING_PUBLIC_READ="1",
        DJANGO_SETTINGS_MODULE="conflict_monitor.settings",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def migrate(url: str) -> None:
    command = [str(VENV_BIN / "python"), "manage.py", "migrate", "--noinput"]
    done = subprocess.run(command, cwd=ROOT, env=django_env(url), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{done.stdout}\n{done.stderr}")


# --- Fill -------------------------------------------------------------------------------------


def read_marker(conn: psycopg.Connection) -> dict[str, Any] | None:
    row = conn.execute("SELECT obj_description(%s::regclass, 'pg_class')", [METRICS_TABLE]).fetchone()
    try:
        return json.loads(row[0]) if row and row[0] else None
    except ValueError:
        return None


def reusable_fill(conn: psycopg.Connection, rows: int) -> tuple[dict[str, Any] | None, str]:
    """The marker of a fill that can be reused, or None and the reason it cannot."""
    marker = read_marker(conn)
    if not marker or marker.get("generator") != GENERATOR_VERSION or marker.get("rows") != rows:
        return None, "no fill marker for this row count"
    age = datetime.now(UTC) - datetime.fromisoformat(marker["filled_at"])
    if age > REUSE_FOR:
        return None, f"fill is {age} old (reused for at most {REUSE_FOR})"
    # A marker can survive a table that someone emptied by hand; the count is the truth.
    counted = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(METRICS_TABLE))).fetchone()[0]
    if counted != rows:
        return None, f"table holds {counted} rows, marker says {rows}"
    return marker, f"reusing fill from {marker['filled_at']}"


def _copy_statement(table: str, columns: list[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


def _stamp(moment: datetime) -> str:
    return moment.isoformat()


def metric_lines(*, rows: int, now: datetime, rng: random.Random):
    """COPY text lines in timestamp order, as the pipeline would have ingested them."""
    names = [s[0] for s in SOURCES]
    weights = [s[1] for s in SOURCES]
    quality = {s[0]: (s[2], s[3]) for s in SOURCES}
    start = now - timedelta(days=FILL_DAYS)
    step = (now - start) / rows
    picks = rng.choices(names, weights=weights, k=rows)
    for i, source in enumerate(picks):
        at = start + step * (i + rng.random())
        geo_p, val_p = quality[source]
        attempts = rng.randint(50, 2000)
        geocoded = min(attempts, round(attempts * min(1.0, rng.gauss(geo_p, 0.03))))
        validated = min(attempts, round(attempts * min(1.0, rng.gauss(val_p, 0.02))))
        kind = "hourly" if rng.random() < 0.05 else "batch"
        ingested = at + timedelta(seconds=rng.uniform(1, 90))
        yield f"{_stamp(at)}\t{source}\t{kind}\t{attempts}\t{geocoded}\t{attempts}\t{validated}\t{_stamp(ingested)}\n"


def run_lines(*, now: datetime, rng: random.Random):
    """Hourly scrape runs per source; a few sources have a run in progress right now."""
    start = now - timedelta(days=FILL_DAYS)
    for index, (source, _weight, _geo, _val, fail_p) in enumerate(SOURCES):
        began = start + timedelta(minutes=rng.uniform(0, 60))
        while True:
            duration = timedelta(seconds=rng.uniform(30, 300))
            if began + duration >= now:
                break
            failed = rng.random() < fail_p
            items_in = 0 if failed else rng.randint(50, 2000)
            status, error = ("failed", "HTTP 503 from upstream feed") if failed else ("succeeded", "")
            yield (
                f"{source}\tscrape\t{_stamp(began)}\t{_stamp(began + duration)}\t{status}\t"
                f"{items_in}\t{items_in}\t{error}\n"
            )
            began += SCRAPE_EVERY + timedelta(minutes=rng.uniform(-5, 5))
        if index % 5 == 0:
            yield f"{source}\tscrape\t{_stamp(now - timedelta(minutes=2))}\t\\N\trunning\t0\t0\t\n"


def copy_lines(cursor: psycopg.Cursor, statement: sql.Composed, lines) -> int:
    count = 0
    with cursor.copy(statement) as copy:
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= COPY_CHUNK_ROWS:
                copy.write("".join(chunk))
                count += len(chunk)
                chunk.clear()
        if chunk:
            copy.write("".join(chunk))
            count += len(chunk)
    return count


def fill(url: str, rows: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    rng = random.Random(SEED)
    metric_columns = [
        "timestamp",
        "source",
        "metric_type",
        "geocoding_attempts",
        "geocoding_successes",
        "validation_attempts",
        "validation_passes",
        "ingested_at",
    ]
    run_columns = ["source", "stage", "started_at", "finished_at", "status", "items_in", "items_out", "error"]
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        # Bulk load: a lost fill is simply redone, so do not wait for the WAL flush.
        cursor.execute("SET synchronous_commit = off")
        tables = sql.SQL(", ").join(map(sql.Identifier, (METRICS_TABLE, RUNS_TABLE)))
        cursor.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(tables))
        metrics = metric_lines(rows=rows, now=now, rng=rng)
        copied = copy_lines(cursor, _copy_statement(METRICS_TABLE, metric_columns), metrics)
        metrics_seconds = time.perf_counter() - started
        runs = copy_lines(cursor, _copy_statement(RUNS_TABLE, run_columns), run_lines(now=now, rng=rng))
        seconds = time.perf_counter() - started
        marker = {
            "generator": GENERATOR_VERSION,
            "rows": copied,
            "runs": runs,
            "filled_at": now.isoformat(),
            "metrics_copy_seconds": round(metrics_seconds, 2),
            "copy_seconds": round(seconds, 2),
            "rows_per_second": round(copied / metrics_seconds),
        }
        cursor.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(sql.Identifier(METRICS_TABLE), json.dumps(marker)))
    marker["vacuum_seconds"] = round(vacuum_analyze(url), 2)
    return marker


def vacuum_analyze(url: str) -> float:
    """Sets the visibility map (index-only scans skip the heap) and fresh planner statistics."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in (METRICS_TABLE, RUNS_TABLE):
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
    return time.perf_counter() - started


def prepare_data(url: str, rows: int, refill: bool) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        marker, reason = (None, "--refill given") if refill else reusable_fill(conn, rows)
    log(reason)
    if marker is not None:
        return {**marker, "reused": True}
    log(f"filling {rows:,} metric rows with COPY")
    marker = fill(url, rows)
    log(
        f"filled {marker['rows']:,} metrics in {marker['metrics_copy_seconds']} s "
        f"({marker['rows_per_second']:,} rows/s), {marker['runs']:,} runs; VACUUM ANALYZE {marker['vacuum_seconds']} s"
    )
    return {**marker, "reused": False}


# --- Server -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_plan() -> tuple[int | None, int | None]:
    """(server CPU, client CPU) when both can be pinned apart, else (None, None)."""
    cpus = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") is None or len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


def start_daphne(url: str, port: int, cpu: int | None, log_path: Path) -> subprocess.Popen:
    command = [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "conflict_monitor.asgi:application"]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    with log_path.open("wb") as log_file:
        return subprocess.Popen(command, cwd=ROOT, env=django_env(url), stdout=log_file, stderr=subprocess.STDOUT)


def wait_until_healthy(process: subprocess.Popen, port: int, log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", SCENARIOS[0][1])
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"daphne did not answer within {timeout} s:\n{log_path.read_text()[-4000:]}")


def stop_daphne(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def daphne_server(url: str, cpu: int | None):
    port = free_port()
    log_path = RESULTS / "status_latency_daphne.log.tmp"
    process = start_daphne(url, port, cpu, log_path)
    try:
        wait_until_healthy(process, port, log_path)
        yield port
    finally:
        stop_daphne(process)


@contextmanager
def pinned_to(cpu: int | None):
    if cpu is None:
        yield
        return
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


# --- Measurement ------------------------------------------------------------------------------


class Client:
    """One keep-alive connection; counts reconnects so a server that drops keep-alive shows up."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.requests = 0
        self.reconnects = 0

    def get(self, path: str) -> tuple[float, int, bytes]:
        if self.requests and self.conn.sock is None:
            self.reconnects += 1
        started = time.perf_counter()
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.requests += 1
        return elapsed_ms, response.status, body

    def close(self) -> None:
        self.conn.close()


def check_response(name: str, path: str, status: int, body: bytes) -> int | None:
    """Reports aggregated by a status response (None for health); raises on anything unexpected."""
    if status != 200:
        raise RuntimeError(f"{path} answered {status}: {body[:500]!r}")
    document = json.loads(body)
    if name == "health":
        if document != {"status": "ok"}:
            raise RuntimeError(f"unexpected health body {document!r}")
        return None
    reports = document["data_quality"]["reports"]
    if not reports > 0:
        raise RuntimeError(f"{path} aggregated no reports; the fill is not in the window")
    return reports


def summarize(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 3),
        "p90": round(cuts[89], 3),
        "p99": round(cuts[98], 3),
        "max": round(max(samples), 3),
        "mean": round(statistics.fmean(samples), 3),
    }


def measure_scenario(client: Client, name: str, path: str, calls: int) -> tuple[dict[str, float], int | None]:
    reports = None
    for _ in range(WARMUP_CALLS):
        _elapsed, status, body = client.get(path)
        check_response(name, path, status, body)
    samples = []
    for _ in range(calls):
        elapsed, status, body = client.get(path)
        # Checked after the clock stopped: parsing is the client's cost, not the server's.
        reports = check_response(name, path, status, body)
        samples.append(elapsed)
    return summarize(samples), reports


def measure(port: int, calls: int, rounds: int) -> dict[str, Any]:
    scenarios: dict[str, Any] = {name: {"path": path, "rounds": []} for name, path in SCENARIOS}
    client = Client(port)
    try:
        for round_number in range(1, rounds + 1):
            for name, path in SCENARIOS:
                stats, reports = measure_scenario(client, name, path, calls)
                scenarios[name]["rounds"].append(stats)
                scenarios[name]["reports"] = reports
                log(f"round {round_number} {name}: p50 {stats['p50']:.2f} ms, p99 {stats['p99']:.2f} ms")
    finally:
        client.close()
    for entry in scenarios.values():
        entry["median_of_round_p50"] = round(statistics.median(r["p50"] for r in entry["rounds"]), 3)
        entry["median_of_round_p90"] = round(statistics.median(r["p90"] for r in entry["rounds"]), 3)
        entry["median_of_round_p99"] = round(statistics.median(r["p99"] for r in entry["rounds"]), 3)
    return {"scenarios": scenarios, "requests": client.requests, "reconnects": client.reconnects}


# --- Query plans ------------------------------------------------------------------------------

CAPTURE_CODE = """
import json, sys
import django
django.setup()
from django.db import connection
from django.test.utils import CaptureQueriesContext
from monitoring.selectors import pipeline_status
captured = {}
for window in map(int, sys.argv[1:]):
    with CaptureQueriesContext(connection) as context:
        pipeline_status(window_hours=window)
    captured[window] = [query["sql"] for query in context.captured_queries]
print("CAPTURED " + json.dumps(captured))
"""


def capture_status_sql(url: str) -> dict[int, list[str]]:
    """The SQL the selector really issues, bound client-side the way Django's psycopg backend does."""
    command = [str(VENV_BIN / "python"), "-c", CAPTURE_CODE, *map(str, EXPLAIN_WINDOWS)]
    done = subprocess.run(command, cwd=ROOT, env=django_env(url), capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("CAPTURED ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"capturing the status SQL failed:\n{done.stdout}\n{done.stderr}")
    captured = json.loads(lines[-1].removeprefix("CAPTURED "))
    return {
        int(window): [q for q in queries if q.lstrip().upper().startswith("SELECT")]
        for window, queries in captured.items()
    }


def scan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = []
    if "Scan" in plan["Node Type"]:
        nodes.append(
            {
                "node": plan["Node Type"],
                "relation": plan.get("Relation Name"),
                "index": plan.get("Index Name"),
                "index_cond": plan.get("Index Cond"),
                "filter": plan.get("Filter"),
                "rows": plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1),
                "rows_removed_by_filter": plan.get("Rows Removed by Filter", 0),
                "heap_fetches": plan.get("Heap Fetches"),
                "shared_buffers": plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0),
            }
        )
    for child in plan.get("Plans", []):
        nodes.extend(scan_nodes(child))
    return nodes


def explain_query(conn: psycopg.Connection, query: str) -> tuple[str, dict[str, Any]]:
    # First run only warms the cache the same way the benchmark calls did.
    conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query)
    text = "\n".join(row[0] for row in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query))
    document = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query).fetchone()[0][0]
    scans = scan_nodes(document["Plan"])
    summary = {
        "execution_ms": round(document["Execution Time"], 3),
        "planning_ms": round(document["Planning Time"], 3),
        "jit": "JIT" in document,
        "scans": scans,
        "index_only": bool(scans) and all(s["node"] == "Index Only Scan" for s in scans),
    }
    return text, summary


def label(query: str) -> str:
    if RUNS_TABLE in query:
        return "scraping_health (per source runs)"
    if "GROUP BY" in query.upper():
        return "data_quality by_source"
    return "data_quality totals"


def explain_status(url: str) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    captured = capture_status_sql(url)
    sections, summaries = [], {}
    with psycopg.connect(url, autocommit=True) as conn:
        for window, queries in captured.items():
            summaries[f"{window}h"] = []
            for query in queries:
                text, summary = explain_query(conn, query)
                summaries[f"{window}h"].append({"query": label(query), "sql": query, **summary})
                sections.append(f"-- window {window} h: {label(query)}\n{query}\n\n{text}\n")
    return "\n".join(sections), summaries


# --- Report -----------------------------------------------------------------------------------


def machine_info(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
                "('server_version', 'shared_buffers', 'work_mem', 'jit', 'max_parallel_workers_per_gather')"
            ).fetchall()
        )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgres": settings.pop("server_version"),
        "postgres_settings": settings,
        "django": metadata.version("django"),
        "daphne": metadata.version("daphne"),
        "psycopg": metadata.version("psycopg"),
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def render_markdown(report: dict[str, Any]) -> str:
    data, scenarios = report["data"], report["measurement"]["scenarios"]
    pin = report["config"]["pinning"]
    lines = [
        f"# Status endpoint latency ({report['date']})",
        "",
        f"{data['rows']:,} metric rows over {FILL_DAYS} days, {len(SOURCES)} sources, {data['runs']:,} scrape runs; "
        f"fill {data['rows_per_second']:,} rows/s ({'reused' if data['reused'] else 'this run'}). "
        f"daphne on CPU {pin['server_cpu']}, client on CPU {pin['client_cpu']}; "
        f"{report['config']['calls']} calls x {report['config']['rounds']} rounds after {WARMUP_CALLS} warm-up calls; "
        f"keep-alive reconnects: {report['measurement']['reconnects']}.",
        "",
        "| endpoint | round | p50 ms | p90 ms | p99 ms | max ms | reports aggregated |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, entry in scenarios.items():
        reports = "" if entry.get("reports") is None else f"{entry['reports']:,}"
        for number, stats in enumerate(entry["rounds"], 1):
            figures = " | ".join(f"{stats[key]:.2f}" for key in ("p50", "p90", "p99", "max"))
            lines.append(f"| {name} | {number} | {figures} | {reports} |")
        lines.append(
            f"| **{name}** | **median of rounds** | **{entry['median_of_round_p50']:.2f}** | "
            f"**{entry['median_of_round_p90']:.2f}** | **{entry['median_of_round_p99']:.2f}** | | |"
        )
    lines += ["", *(f"- p50 ratio {key}: **{value:.1f}x**" for key, value in report["ratios"].items()), ""]
    lines += [
        "| window | query | scans (index, rows read, heap fetches) | index-only | exec ms |",
        "|---|---|---|---|---:|",
    ]
    for window, queries in report["plans"].items():
        for query in queries:
            scans = "; ".join(
                f"{s['node']} on {s['index'] or s['relation']} ({s['rows']:,} rows, {s['heap_fetches']} heap fetches)"
                for s in query["scans"]
            )
            jit = " (JIT)" if query["jit"] else ""
            lines.append(
                f"| {window} | {query['query']} | {scans} | {'yes' if query['index_only'] else 'no'} | "
                f"{query['execution_ms']:.2f}{jit} |"
            )
    lines += ["", f"Wall time {report['wall_time_seconds']:.0f} s. Plans: bench/results/status_latency_plans.txt.", ""]
    return "\n".join(lines)


def write_atomically(path: Path, text: str) -> None:
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(text)
    scratch.replace(path)


def ratios(scenarios: dict[str, Any]) -> dict[str, float]:
    baseline = scenarios["health"]["median_of_round_p50"]
    return {
        f"{name}/health": round(scenarios[name]["median_of_round_p50"] / baseline, 2)
        for name in scenarios
        if name != "health"
    }


def exit_on_sigterm(signum: int, _frame: Any) -> None:
    # The default SIGTERM action skips ``finally`` and would leave daphne running.
    raise SystemExit(128 + signum)


def main() -> None:
    started = time.perf_counter()
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    args = parse_args()
    url = args.database_url
    refuse_foreign_database(url)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if ensure_database(url):
        log(f"created database {database_name(url)}")
    migrate(url)
    data = prepare_data(url, args.rows, args.refill)
    server_cpu, client_cpu = cpu_plan()
    with daphne_server(url, server_cpu) as port, pinned_to(client_cpu):
        log(f"daphne on port {port}; measuring")
        measurement = measure(port, args.calls, args.rounds)
    log("capturing and explaining the status SQL")
    plans_text, plans = explain_status(url)
    write_atomically(RESULTS / "status_latency_plans.txt", plans_text)
    report = {
        "benchmark": "status_latency",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "rows": args.rows,
            "calls": args.calls,
            "rounds": args.rounds,
            "warmup_calls": WARMUP_CALLS,
            "database": database_name(url),
            "pinning": {"server_cpu": server_cpu, "client_cpu": client_cpu},
        },
        "data": data,
        "fill_rows_per_second": data["rows_per_second"],
        "measurement": measurement,
        "ratios": ratios(measurement["scenarios"]),
        "plans": plans,
        "machine": machine_info(url),
    }
    report["wall_time_seconds"] = round(time.perf_counter() - started, 1)
    markdown = render_markdown(report)
    write_atomically(RESULTS / "status_latency.json", json.dumps(report, indent=2) + "\n")
    write_atomically(RESULTS / "status_latency.md", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
