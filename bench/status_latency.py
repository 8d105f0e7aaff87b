#!/usr/bin/env python3
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
        .venv/bin/python bench/status_latency.py [--rows N] [--refill] [--calls N] [--rounds N]

Writes bench/results/status_latency.{json,md} and status_latency_plans.txt (with ``--rows`` other than
1,000,000: status_latency_<rows>.*, e.g. status_latency_10M.md).
"""

from __future__ import annotations

import argparse
import hashlib
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
DEFAULT_ROWS = 1_000_000

METRICS_TABLE = "monitoring_dataqualitymetric"
RUNS_TABLE = "monitoring_pipelinerun"
ROLLUPS_TABLE = "monitoring_hourlyrollup"
SOURCES_TABLE = "monitoring_scrapesource"
ALERTS_TABLE = "monitoring_alert"
FILLED_TABLES = (METRICS_TABLE, RUNS_TABLE, ROLLUPS_TABLE, SOURCES_TABLE, ALERTS_TABLE)
COUNT_COLUMNS = ("geocoding_attempts", "geocoding_successes", "validation_attempts", "validation_passes")
# Bump when the generated data changes shape, so an old fill is not mistaken for a current one.
# 4: rollups and scrape state derived by the database triggers (migration 0004), not by the bench.
GENERATOR_VERSION = 4
SEED = 20250101
FILL_DAYS = 90
SCRAPE_EVERY = timedelta(hours=1)
# Sources with index % 5 == 0 have a scrape in progress, started this long before the end of the data.
RUNNING_SINCE = timedelta(minutes=2)
# A fill is reused (and topped up to the present, see ``top_up``) for this long; a refill after that
# keeps the topped-up share of the data small.
REUSE_FOR = timedelta(hours=2)
COPY_CHUNK_ROWS = 20_000
# The metrics are COPied one statement per UTC hour of data (about 4,600 rows at 10 M, like an ingest
# batch): each statement's trigger then inserts that hour's rollups once, in time order, as ingest does,
# and its transition table stays small. A statement is cut earlier at this many rows.
COPY_STATEMENT_MAX_ROWS = 1_000_000

WARMUP_CALLS = 10
HEALTH_PATH = "/api/v1/monitoring/health"
STATUS_PATH = "/api/v1/monitoring/pipeline-status"
# Process warm-up before the first status call: opens the database pool and runs the ORM and DRF
# paths without computing anomalies, so the first status call is cold in the anomaly cache only.
PROCESS_WARMUP_PATH = "/api/v1/monitoring/runs?limit=5"
SCENARIOS = (
    ("health", HEALTH_PATH),
    ("status_24h", STATUS_PATH),
    ("status_720h", f"{STATUS_PATH}?window_hours=720"),
)
LONG_SCENARIO = "status_720h"
EXPLAIN_WINDOWS = (24, 720)
# The selector caches the anomaly findings per UTC hour for MONITORING_ANOMALY_CACHE_SECONDS (locmem
# without REDIS_URL, so per daphne process). The server gets this value explicitly.
ANOMALY_CACHE_SECONDS = 60
# Margin around the cache's expiry and the hour boundary.
CACHE_SAFETY = 0.25

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


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def output_stem(rows: int) -> str:
    """status_latency for the default row count, else e.g. status_latency_10M, so runs do not overwrite."""
    if rows == DEFAULT_ROWS:
        return "status_latency"
    for size, unit in ((1_000_000, "M"), (1_000, "k")):
        if rows % size == 0:
            return f"status_latency_{rows // size}{unit}"
    return f"status_latency_{rows}"


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


def status_env(url: str) -> dict[str, str]:
    """The environment of every process that computes the status: pins the anomaly cache lifetime."""
    return {**django_env(url), "MONITORING_ANOMALY_CACHE_SECONDS": str(ANOMALY_CACHE_SECONDS)}


def run_django(url: str, code: str, *args: str, marker: str) -> Any:
    """Run ``code`` after ``django.setup()`` in a subprocess; it prints ``marker`` + JSON on its last line."""
    command = [str(VENV_BIN / "python"), "-c", "import django\ndjango.setup()\n" + code, *args]
    done = subprocess.run(command, cwd=ROOT, env=status_env(url), capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(marker + " ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"Django subprocess ({marker}) failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return json.loads(lines[-1].removeprefix(marker + " "))


def migrate(url: str) -> None:
    command = [str(VENV_BIN / "python"), "manage.py", "migrate", "--noinput"]
    done = subprocess.run(command, cwd=ROOT, env=django_env(url), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{done.stdout}\n{done.stderr}")


def migrations_fingerprint() -> str:
    """Same fingerprint as bench/live_feed.py: both keep it in the bench database's comment."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "monitoring" / "migrations").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


SCHEMA_CHECK_CODE = """
import json
from django.apps import apps
from django.db import connection
tables = set(connection.introspection.table_names())
problems = []
with connection.cursor() as cursor:
    for model in apps.get_models():
        table = model._meta.db_table
        if table not in tables:
            problems.append(f"table {table} missing")
            continue
        columns = {column.name for column in connection.introspection.get_table_description(cursor, table)}
        fields = model._meta.concrete_fields
        problems += [f"column {table}.{f.column} missing" for f in fields if f.column not in columns]
print("SCHEMA " + json.dumps(problems))
"""


def schema_problems(url: str) -> list[str]:
    """Models whose table or columns the database lacks (a migration edited in place after it ran)."""
    return run_django(url, SCHEMA_CHECK_CODE, marker="SCHEMA")


def drop_database(url: str, reason: str) -> None:
    name = database_name(url)
    refuse_foreign_database(url)  # never anything but the bench database
    log(f"dropping and recreating {name}: {reason}")
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.ObjectInUse:
            others = conn.execute(
                "SELECT pid, application_name FROM pg_stat_activity WHERE datname = %s", [name]
            ).fetchall()
            raise SystemExit(
                f"cannot drop {name}: other sessions use it ({others}); is another benchmark running?"
            ) from None


def prepare_schema(url: str, refill: bool) -> dict[str, Any]:
    """Create (or drop and create) the bench database and migrate it.

    The project regenerates ``0001_initial`` before its first release, which ``migrate`` cannot apply
    to a database that already ran it. The database is rebuilt from scratch when ``--refill`` is given,
    when the migration files' fingerprint differs from the one in the database comment (or there is
    none), or when a model's table or column is missing after ``migrate``.
    """
    name = database_name(url)
    fingerprint = migrations_fingerprint()
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
    reason = None
    if row is not None:
        try:
            built_with = json.loads(row[0]).get("migrations") if row[0] else None
        except ValueError:
            built_with = None
        if refill:
            reason = "--refill given"
        elif built_with != fingerprint:
            reason = f"migrations fingerprint {built_with} in the database, {fingerprint} in the working tree"
        else:
            migrate(url)
            if problems := schema_problems(url):
                reason = "schema does not match the models: " + ", ".join(problems[:5])
        if reason:
            drop_database(url, reason)
    if row is None or reason:
        if ensure_database(url):
            log(f"created database {name}")
        migrate(url)
        if problems := schema_problems(url):
            raise RuntimeError(f"models without tables or columns after a fresh migrate (no migration?): {problems}")
    with psycopg.connect(admin, autocommit=True) as conn:
        comment = json.dumps({"migrations": fingerprint, "by": "bench/status_latency.py"})
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(comment)))
    return {"migrations_fingerprint": fingerprint, "recreated": reason if row is not None else "created"}


# --- Fill -------------------------------------------------------------------------------------


def read_marker(conn: psycopg.Connection) -> dict[str, Any] | None:
    row = conn.execute("SELECT obj_description(%s::regclass, 'pg_class')", [METRICS_TABLE]).fetchone()
    try:
        return json.loads(row[0]) if row and row[0] else None
    except ValueError:
        return None


def write_marker(url: str, marker: dict[str, Any]) -> None:
    """Written last, after everything it describes is committed: an interrupted fill is not reused."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(sql.Identifier(METRICS_TABLE), json.dumps(marker)))


def reusable_fill(conn: psycopg.Connection, rows: int) -> tuple[dict[str, Any] | None, str]:
    """The marker of a fill that can be reused, or None and the reason it cannot."""
    marker = read_marker(conn)
    if not marker or marker.get("generator") != GENERATOR_VERSION or marker.get("rows") != rows:
        return None, f"no fill marker for generator {GENERATOR_VERSION} and {rows:,} rows"
    age = datetime.now(UTC) - datetime.fromisoformat(marker["filled_at"])
    if age > REUSE_FOR:
        return None, f"fill is {age} old (reused for at most {REUSE_FOR})"
    # A marker can survive a table that someone emptied or ingested into by hand; the counts are the truth.
    counted = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(METRICS_TABLE))).fetchone()[0]
    if counted != marker["total_rows"]:
        return None, f"table holds {counted:,} rows, the fill wrote {marker['total_rows']:,}"
    rolled = conn.execute(
        sql.SQL("SELECT coalesce(sum(reports), 0) FROM {}").format(sql.Identifier(ROLLUPS_TABLE))
    ).fetchone()[0]
    if rolled != counted:
        return None, f"rollups count {rolled:,} reports, the metrics table {counted:,}"
    return marker, f"reusing fill from {marker['filled_at']} (data until {marker['data_until']})"


def _copy_statement(table: str, columns: list[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


METRIC_COLUMNS = ["timestamp", "source", "metric_type", *COUNT_COLUMNS, "ingested_at"]
RUN_COLUMNS = ["source", "stage", "started_at", "finished_at", "status", "items_in", "items_out", "error"]


def _stamp(moment: datetime) -> str:
    return moment.isoformat()


def metric_lines(*, rows: int, start: datetime, end: datetime, rng: random.Random):
    """COPY text lines in timestamp order, spread evenly over (start, end], as the pipeline reports them."""
    names = [s[0] for s in SOURCES]
    weights = [s[1] for s in SOURCES]
    quality = {s[0]: (s[2], s[3]) for s in SOURCES}
    step = (end - start) / rows
    picks = rng.choices(names, weights=weights, k=rows)
    for i, source in enumerate(picks):
        at = start + step * (i + rng.random())
        geo_p, val_p = quality[source]
        attempts = rng.randint(50, 2000)
        geocoded = min(attempts, round(attempts * min(1.0, rng.gauss(geo_p, 0.03))))
        validated = min(attempts, round(attempts * min(1.0, rng.gauss(val_p, 0.02))))
        kind = "hourly" if rng.random() < 0.05 else "batch"
        ingested = min(at + timedelta(seconds=rng.uniform(1, 90)), max(at, end))
        yield f"{_stamp(at)}\t{source}\t{kind}\t{attempts}\t{geocoded}\t{attempts}\t{validated}\t{_stamp(ingested)}\n"


def run_lines(*, starts: dict[str, datetime], end: datetime, rng: random.Random):
    """Hourly scrape runs per source from ``starts`` until ``end``; a few sources have one in progress."""
    for index, (source, _weight, _geo, _val, fail_p) in enumerate(SOURCES):
        began = starts[source]
        while True:
            duration = timedelta(seconds=rng.uniform(30, 300))
            if began + duration >= end:
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
            yield f"{source}\tscrape\t{_stamp(end - RUNNING_SINCE)}\t\\N\trunning\t0\t0\t\n"


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


def copy_metrics(cursor: psycopg.Cursor, lines) -> tuple[int, int]:
    """COPY metric ``lines`` (in timestamp order), one COPY statement per UTC hour of data (at most
    ``COPY_STATEMENT_MAX_ROWS`` rows each). Each statement fires the rollup trigger once. Returns (rows,
    statements)."""
    statement = _copy_statement(METRICS_TABLE, METRIC_COLUMNS)
    count = statements = 0
    hour: list[str] = []
    current = None
    for line in lines:
        key = line[:13]  # "YYYY-MM-DDTHH" of the UTC timestamp
        if key != current or len(hour) >= COPY_STATEMENT_MAX_ROWS:
            if hour:
                count += copy_lines(cursor, statement, hour)
                statements += 1
                hour = []
            current = key
        hour.append(line)
    if hour:
        count += copy_lines(cursor, statement, hour)
        statements += 1
    return count, statements


def user_triggers(cursor: psycopg.Cursor) -> list[str]:
    """The enabled user triggers on the metrics and runs tables (the fill relies on them)."""
    rows = cursor.execute(
        "SELECT tgrelid::regclass::text || '.' || tgname FROM pg_trigger "
        "WHERE NOT tgisinternal AND tgenabled <> 'D' AND tgrelid = ANY(%s::regclass[]) ORDER BY 1",
        [[METRICS_TABLE, RUNS_TABLE]],
    ).fetchall()
    return [row[0] for row in rows]


def check_derived(cursor: psycopg.Cursor) -> dict[str, int]:
    """The rollups must add up to the metrics exactly, and every scraped source must have its row."""
    sums = ", ".join(f"coalesce(sum({c}), 0)" for c in COUNT_COLUMNS)
    metrics = cursor.execute(f"SELECT count(*), {sums} FROM {METRICS_TABLE}").fetchone()
    rollups = cursor.execute(f"SELECT coalesce(sum(reports), 0), {sums}, count(*) FROM {ROLLUPS_TABLE}").fetchone()
    if tuple(metrics) != tuple(rollups[:-1]):
        raise RuntimeError(f"rollups {rollups[:-1]} do not add up to the metrics {metrics}")
    sources = cursor.execute(f"SELECT count(*) FROM {SOURCES_TABLE}").fetchone()[0]
    scraped = cursor.execute(f"SELECT count(DISTINCT source) FROM {RUNS_TABLE} WHERE stage = 'scrape'").fetchone()[0]
    if sources != scraped:
        raise RuntimeError(f"{sources} scrape sources for {scraped} scraped sources")
    runs = cursor.execute(f"SELECT count(*) FROM {RUNS_TABLE}").fetchone()[0]
    return {"rollup_rows": rollups[-1], "scrape_sources": sources, "runs": runs}


ALERTS_CODE = """
import json
from collections import Counter
from monitoring.models import Alert
from monitoring.selectors import pipeline_status
from monitoring.services.alerts import evaluate_alerts
changes = evaluate_alerts(document=pipeline_status())
active = Alert.objects.filter(state__in=["firing", "acknowledged"])
print("ALERTS " + json.dumps({
    "changes": dict(Counter(change.kind for change in changes)),
    "active": active.count(),
    "active_by_rule": dict(Counter(active.values_list("rule_name", flat=True))),
}))
"""


def evaluate_alerts(url: str) -> dict[str, Any]:
    """One evaluation of the alert rules against the filled data, as the broadcaster runs it every tick."""
    return run_django(url, ALERTS_CODE, marker="ALERTS")


def vacuum_analyze(url: str) -> float:
    """Sets the visibility map (index-only scans skip the heap) and fresh planner statistics, then
    writes the load's dirty pages out, so that no checkpoint runs into the first measured round."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in FILLED_TABLES:
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        try:
            conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            log("CHECKPOINT not allowed for this role; the first round may overlap a checkpoint")
    return time.perf_counter() - started


def finish_fill(url: str, marker: dict[str, Any]) -> dict[str, Any]:
    """After the data is committed: alerts, VACUUM ANALYZE, then the marker."""
    started = time.perf_counter()
    marker["alerts"] = evaluate_alerts(url)
    marker["alerts_seconds"] = round(time.perf_counter() - started, 2)
    marker["vacuum_seconds"] = round(vacuum_analyze(url), 2)
    write_marker(url, marker)
    return marker


def fill(url: str, rows: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    start = now - timedelta(days=FILL_DAYS)
    rng = random.Random(SEED)
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        # Bulk load: a lost fill is simply redone, so do not wait for the WAL flush.
        cursor.execute("SET synchronous_commit = off")
        tables = sql.SQL(", ").join(map(sql.Identifier, FILLED_TABLES))
        # CASCADE: alert events and notification deliveries reference the alerts.
        # (TRUNCATE fires the truncate triggers, which empty the rollups and the scrape sources too.)
        cursor.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(tables))
        triggers = user_triggers(cursor)
        if len(triggers) < 8:
            raise RuntimeError(f"the derived-table triggers are not all installed (migration 0004?): {triggers}")
        metrics = metric_lines(rows=rows, start=start, end=now, rng=rng)
        copied, statements = copy_metrics(cursor, metrics)
        metrics_seconds = time.perf_counter() - started
        starts = {name: start + timedelta(minutes=rng.uniform(0, 60)) for name, *_ in SOURCES}
        copy_lines(cursor, _copy_statement(RUNS_TABLE, RUN_COLUMNS), run_lines(starts=starts, end=now, rng=rng))
        copy_seconds = time.perf_counter() - started
        derived = check_derived(cursor)
        check_seconds = time.perf_counter() - started - copy_seconds
    marker = {
        "generator": GENERATOR_VERSION,
        "derived_by": "database triggers (migration 0004), one COPY statement per UTC hour",
        "triggers": triggers,
        "metric_copy_statements": statements,
        "rows": copied,
        "total_rows": copied,
        "filled_at": now.isoformat(),
        "data_until": now.isoformat(),
        "top_ups": 0,
        "topped_up_rows": 0,
        "metrics_copy_seconds": round(metrics_seconds, 2),
        "copy_seconds": round(copy_seconds, 2),
        "rows_per_second": round(copied / metrics_seconds),
        "check_derived_seconds": round(check_seconds, 2),
        **derived,
    }
    return finish_fill(url, marker)


def top_up(url: str, marker: dict[str, Any]) -> dict[str, Any]:
    """Bring a reused fill up to the present the way the pipeline would have: metrics since the end of
    the data at the fill's rate, the hourly scrape schedule continued, the runs in progress finished,
    and rollups and scrape state updated. Keeps the last hours as dense as the rest, so the 24 h window
    and the last complete hour (which the anomaly detector judges) hold a full share of data."""
    now = datetime.now(UTC)
    until = datetime.fromisoformat(marker["data_until"])
    rows = round(marker["rows"] * ((now - until) / timedelta(days=FILL_DAYS)))
    rng = random.Random(f"{SEED}:{until.isoformat()}")
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        copied = 0
        if rows:
            copied, _statements = copy_metrics(cursor, metric_lines(rows=rows, start=until, end=now, rng=rng))
        last_finished = dict(
            cursor.execute(
                f"SELECT source, max(started_at) FROM {RUNS_TABLE} "
                "WHERE stage = 'scrape' AND status <> 'running' GROUP BY source"
            ).fetchall()
        )
        # The runs that were in progress at the end of the data have finished since (``finish_run``).
        cursor.execute(
            f"UPDATE {RUNS_TABLE} SET status = 'succeeded', finished_at = started_at + interval '90 seconds', "
            "items_in = 500, items_out = 500 WHERE stage = 'scrape' AND status = 'running'"
        )
        starts = {
            name: last_finished[name] + SCRAPE_EVERY + timedelta(minutes=rng.uniform(-5, 5)) for name, *_ in SOURCES
        }
        runs = copy_lines(cursor, _copy_statement(RUNS_TABLE, RUN_COLUMNS), run_lines(starts=starts, end=now, rng=rng))
        # The triggers kept the rollups and scrape sources up to date with both COPYs and the UPDATE.
        derived = check_derived(cursor)
    marker = {
        **marker,
        **derived,
        "total_rows": marker["total_rows"] + copied,
        "data_until": now.isoformat(),
        "top_ups": marker["top_ups"] + 1,
        "topped_up_rows": marker["topped_up_rows"] + copied,
        "last_top_up": {"rows": copied, "runs": runs, "seconds": round(time.perf_counter() - started, 2)},
    }
    return finish_fill(url, marker)


def prepare_data(url: str, rows: int) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        marker, reason = reusable_fill(conn, rows)
    log(reason)
    if marker is not None:
        marker = top_up(url, marker)
        added = marker["last_top_up"]
        log(
            f"topped up {added['rows']:,} metrics and {added['runs']} runs in {added['seconds']} s; "
            f"VACUUM ANALYZE {marker['vacuum_seconds']} s"
        )
        return {**marker, "reused": True}
    log(f"filling {rows:,} metric rows with COPY")
    marker = fill(url, rows)
    log(
        f"filled {marker['rows']:,} metrics in {marker['metrics_copy_seconds']} s "
        f"({marker['rows_per_second']:,} rows/s, {marker['metric_copy_statements']:,} COPY statements, "
        f"rollups by the triggers), {marker['runs']:,} runs; check_derived {marker['check_derived_seconds']} s; "
        f"{marker['alerts']['active']} active alerts; "
        f"VACUUM ANALYZE {marker['vacuum_seconds']} s"
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
    # As production starts it (Dockerfile): daphne through the project's launcher.
    command = [str(VENV_BIN / "python"), "-m", "conflict_monitor.serve", "-b", "127.0.0.1", "-p", str(port)]
    command.append("conflict_monitor.asgi:application")
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    with log_path.open("ab") as log_file:
        return subprocess.Popen(command, cwd=ROOT, env=status_env(url), stdout=log_file, stderr=subprocess.STDOUT)


def wait_until_healthy(process: subprocess.Popen, port: int, log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", HEALTH_PATH)
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
def daphne_server(url: str, cpu: int | None, log_path: Path):
    port = free_port()
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
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
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


def check_response(name: str, path: str, status: int, body: bytes) -> dict[str, Any] | None:
    """Shape of a status response (None for the others); raises on anything unexpected."""
    if status != 200:
        raise RuntimeError(f"{path} answered {status}: {body[:500]!r}")
    document = json.loads(body)
    if name == "health":
        if document != {"status": "ok"}:
            raise RuntimeError(f"unexpected health body {document!r}")
        return None
    if not name.startswith("status"):
        return None
    reports = document["data_quality"]["reports"]
    if not reports > 0:
        raise RuntimeError(f"{path} aggregated no reports; the fill is not in the window")
    return {
        "reports": reports,
        "bytes": len(body),
        "anomalies": len(document["anomalies"]),
        "alerts": len(document["alerts"]),
        "scrape_sources": len(document["scraping_health"]["sources"]),
        "overall_status": document["overall_status"],
    }


def summarize(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive") if len(samples) > 1 else samples * 99
    return {
        "p50": round(cuts[49], 3),
        "p90": round(cuts[89], 3),
        "p99": round(cuts[98], 3),
        "max": round(max(samples), 3),
        "mean": round(statistics.fmean(samples), 3),
    }


def _hour_of(epoch: float) -> float:
    return epoch - epoch % 3600


class AnomalyCache:
    """The client's model of the server's anomaly cache, so that no warm call straddles a recompute.

    The server keys the findings by the UTC hour of the request and keeps them ANOMALY_CACHE_SECONDS
    from the moment it stored them, i.e. from some instant inside the call that computed them. A call
    is warm when it ends before the earliest possible expiry and in the same UTC hour; otherwise the
    client waits until the entry has certainly expired (or the hour has certainly turned) and makes a
    cold call on purpose, which is timed on its own.
    """

    def __init__(self) -> None:
        self.filled: tuple[float, float] | None = None  # wall clock start and end of the filling call

    def cold_call_due(self, guard: float) -> tuple[str, float] | None:
        """(reason, seconds to wait first) when the next call, lasting up to ``guard`` s, would not be warm."""
        now = time.time()
        if self.filled is None:
            return "first status call after start", 0.0
        start, end = self.filled
        if _hour_of(start) != _hour_of(end):
            return "new UTC hour", max(0.0, _hour_of(end) + CACHE_SAFETY - now)
        if now + guard >= start + ANOMALY_CACHE_SECONDS:
            return "cache entry expired", max(0.0, end + ANOMALY_CACHE_SECONDS + CACHE_SAFETY - now)
        if _hour_of(now + guard) != _hour_of(end):
            return "new UTC hour", max(0.0, _hour_of(now + guard) + CACHE_SAFETY - now)
        return None


class Round:
    """One daphne process: warm it up, then health, status 24 h and 720 h, each warm-up + timed calls."""

    def __init__(self, client: Client, number: int) -> None:
        self.client = client
        self.number = number
        self.cache = AnomalyCache()
        self.cold: list[dict[str, Any]] = []
        self.recent: dict[str, list[float]] = {}

    def _guard(self, path: str) -> float:
        recent = self.recent.get(path)
        return max(0.5, 2 * max(recent[-10:]) / 1000) if recent else 5.0

    def call(self, name: str, path: str) -> tuple[float, dict[str, Any] | None]:
        if name.startswith("status"):
            due = self.cache.cold_call_due(self._guard(path))
            if due is not None:
                self.cold_call(*due)
        elapsed, status, body = self.client.get(path)
        self.recent.setdefault(path, []).append(elapsed)
        return elapsed, check_response(name, path, status, body)

    def cold_call(self, reason: str, wait: float) -> None:
        """A status call (24 h window) that recomputes the anomaly findings; timed separately."""
        if wait:
            log(f"round {self.number}: waiting {wait:.1f} s for a cold anomaly cache ({reason})")
            time.sleep(wait)
        started = time.time()
        elapsed, status, body = self.client.get(STATUS_PATH)
        self.cache.filled = (started, time.time())
        shape = check_response("status_24h", STATUS_PATH, status, body)
        self.cold.append({"round": self.number, "reason": reason, "ms": round(elapsed, 3), **(shape or {})})
        log(f"round {self.number}: cold status_24h call ({reason}) {elapsed:.1f} ms")

    def steady_until_cold(self, pace: float = 0.25) -> None:
        """Warm status calls every ``pace`` s (a few dashboards polling) until the cache entry expires,
        then the cold call: the recompute in a busy process, as in production, not after idling."""
        log(f"round {self.number}: polling status every {pace} s until the anomaly cache entry expires")
        while (due := self.cache.cold_call_due(self._guard(STATUS_PATH) + pace)) is None:
            self.call("status_24h", STATUS_PATH)
            time.sleep(pace)
        self.cold_call(*due)

    def scenario(self, name: str, path: str, calls: int) -> tuple[dict[str, float], dict[str, Any] | None]:
        for _ in range(min(WARMUP_CALLS, calls)):
            self.call(name, path)
        samples, shape = [], None
        for _ in range(calls):
            # The response is checked after the clock stopped: parsing is the client's cost.
            elapsed, shape = self.call(name, path)
            samples.append(elapsed)
        return summarize(samples), shape


def warm_process(client: Client) -> None:
    """Import paths, DRF, the ORM and the database pool, without touching the anomaly cache."""
    for path in (HEALTH_PATH, PROCESS_WARMUP_PATH):
        for _ in range(WARMUP_CALLS):
            _elapsed, status, body = client.get(path)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}: {body[:500]!r}")


def measure(
    url: str, *, calls: int, long_calls: int, rounds: int, expiry_cold_calls: int, log_path: Path
) -> dict[str, Any]:
    server_cpu, client_cpu = cpu_plan()
    scenarios: dict[str, Any] = {name: {"path": path, "rounds": []} for name, path in SCENARIOS}
    cold: list[dict[str, Any]] = []
    requests = reconnects = 0
    log_path.write_bytes(b"")
    for number in range(1, rounds + 1):
        with daphne_server(url, server_cpu, log_path) as port, pinned_to(client_cpu):
            client = Client(port)
            try:
                warm_process(client)
                current = Round(client, number)
                for name, path in SCENARIOS:
                    stats, shape = current.scenario(name, path, long_calls if name == LONG_SCENARIO else calls)
                    scenarios[name]["rounds"].append(stats)
                    if shape:
                        scenarios[name].update(shape)
                    log(f"round {number} {name}: p50 {stats['p50']:.2f} ms, p99 {stats['p99']:.2f} ms (warm)")
                for _ in range(expiry_cold_calls if number == rounds else 0):
                    current.steady_until_cold()
                cold += current.cold
            finally:
                client.close()
                requests += client.requests
                reconnects += client.reconnects
    for entry in scenarios.values():
        for key in ("p50", "p90", "p99", "max"):
            entry[f"median_of_round_{key}"] = round(statistics.median(r[key] for r in entry["rounds"]), 3)
    cold_ms = [c["ms"] for c in cold]
    warm_24h = scenarios["status_24h"]["median_of_round_p50"]
    return {
        "scenarios": scenarios,
        "cold": {
            "calls": cold,
            "count": len(cold),
            "median_ms": round(statistics.median(cold_ms), 3),
            "min_ms": round(min(cold_ms), 3),
            "max_ms": round(max(cold_ms), 3),
            "first_after_start_median_ms": round(
                statistics.median(c["ms"] for c in cold if c["reason"].startswith("first")), 3
            ),
            "later_median_ms": _median([c["ms"] for c in cold if not c["reason"].startswith("first")]),
            "extra_over_warm_24h_p50_ms": round(statistics.median(cold_ms) - warm_24h, 3),
        },
        "requests": requests,
        "reconnects": reconnects,
        "pinning": {"server_cpu": server_cpu, "client_cpu": client_cpu},
    }


# --- Query plans ------------------------------------------------------------------------------

CAPTURE_CODE = """
import json, sys, time
from functools import partial
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from monitoring.anomaly.series import recent_anomalies
from monitoring.selectors import pipeline_status

def timed(function, repeat, *, clear=False):
    samples = []
    for _ in range(repeat):
        if clear:
            cache.clear()
        started = time.perf_counter()
        function()
        samples.append(round((time.perf_counter() - started) * 1000, 3))
    return samples

result = {"queries": {}, "timings": {}}
for window in map(int, sys.argv[1:]):
    status = partial(pipeline_status, window_hours=window)
    status()  # the connection and the imports
    cache.clear()  # so that the anomaly query is issued and captured too
    with CaptureQueriesContext(connection) as context:
        status()
    result["queries"][window] = [query["sql"] for query in context.captured_queries]
    result["timings"][window] = {"cold_ms": timed(status, 3, clear=True), "warm_ms": timed(status, 10)}
result["timings"]["recent_anomalies_ms"] = timed(lambda: recent_anomalies(now=timezone.now()), 3)
print("CAPTURED " + json.dumps(result))
"""


def capture_status_sql(url: str) -> tuple[dict[int, list[str]], dict[str, Any]]:
    """The SQL the selector really issues (bound client-side the way Django's psycopg backend does it),
    with an empty anomaly cache, and in-process timings of ``pipeline_status`` without HTTP."""
    captured = run_django(url, CAPTURE_CODE, *map(str, EXPLAIN_WINDOWS), marker="CAPTURED")
    queries = {
        int(window): [q for q in queries if q.lstrip(" (").upper().startswith("SELECT")]
        for window, queries in captured["queries"].items()
    }
    return queries, captured["timings"]


def scan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = []
    # Table and index scans only: a Subquery Scan reads its child's rows, not a relation.
    if "Scan" in plan["Node Type"] and plan["Node Type"] != "Subquery Scan":
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
        "top_node": document["Plan"]["Node Type"],
        "shared_buffers": document["Plan"].get("Shared Hit Blocks", 0) + document["Plan"].get("Shared Read Blocks", 0),
        "scans": scans,
        "index_only": bool(scans) and all(s["node"] == "Index Only Scan" for s in scans),
    }
    return text, summary


def label(query: str) -> str:
    if SOURCES_TABLE in query:
        return "scraping: sources with finished / failed / running / stuck runs"
    if METRICS_TABLE in query and ROLLUPS_TABLE in query:
        return "data_quality: window sums (rollups, edge metrics)"
    if ROLLUPS_TABLE in query:
        return "anomalies: rollups (cache miss only)"
    if ALERTS_TABLE in query:
        return "alerts: active"
    if METRICS_TABLE in query:
        if "GROUP BY" in query.upper():
            return "data_quality: window sums (edge metrics only)"
        return "data_quality newest"
    if RUNS_TABLE in query:
        return "scraping: runs"
    return "other"


def explain_status(url: str) -> tuple[str, dict[str, list[dict[str, Any]]], dict[str, Any]]:
    captured, timings = capture_status_sql(url)
    sections, summaries = [], {}
    with psycopg.connect(url, autocommit=True) as conn:
        for window, queries in captured.items():
            summaries[f"{window}h"] = []
            for query in queries:
                text, summary = explain_query(conn, query)
                summaries[f"{window}h"].append({"query": label(query), "sql": query, **summary})
                sections.append(f"-- window {window} h: {label(query)}\n{query}\n\n{text}\n")
    return "\n".join(sections), summaries, timings


# --- Report -----------------------------------------------------------------------------------


def machine_info(url: str) -> dict[str, Any]:
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
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgres": settings.pop("server_version"),
        "postgres_settings": settings,
        "table_bytes_with_indexes": sizes,
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


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def render_markdown(report: dict[str, Any]) -> str:
    data, measurement = report["data"], report["measurement"]
    scenarios, cold, pin = measurement["scenarios"], measurement["cold"], measurement["pinning"]
    config = report["config"]
    status = scenarios["status_24h"]
    origin = (
        f"reused, topped up {data['topped_up_rows']:,} rows in {data['top_ups']} top-up(s)"
        if data["reused"]
        else "this run"
    )
    lines = [
        f"# Status endpoint latency ({report['date']})",
        "",
        f"{data['total_rows']:,} metric rows over {FILL_DAYS} days, {len(SOURCES)} sources, "
        f"{data['runs']:,} scrape runs, "
        f"{data['rollup_rows']:,} hourly rollups, {data['scrape_sources']} scrape sources, "
        f"{data['alerts']['active']} active alerts; fill {data['rows_per_second']:,} rows/s by COPY, "
        f"{data.get('metric_copy_statements', 0):,} COPY statements (one per UTC hour), rollups and scrape "
        f"sources kept by the database triggers ({origin}). "
        f"A fresh daphne (`python -m conflict_monitor.serve`) per round on CPU {pin['server_cpu']}, "
        f"client on CPU {pin['client_cpu']}; per round "
        f"{WARMUP_CALLS} + {WARMUP_CALLS} process warm-up calls (health, runs), then per endpoint "
        f"{WARMUP_CALLS} warm-up and {config['calls']} "
        f"timed calls ({config['long_window_calls']} for {LONG_SCENARIO}), x {config['rounds']} rounds; "
        f"keep-alive reconnects: {measurement['reconnects']}. Status documents: {status.get('bytes', 0):,} bytes "
        f"(24 h), {status.get('anomalies', 0)} anomalies, {status.get('alerts', 0)} alerts, "
        f"overall {status.get('overall_status')}.",
        "",
        "## Steady state (anomaly findings cached)",
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
            f"**{entry['median_of_round_p90']:.2f}** | **{entry['median_of_round_p99']:.2f}** | "
            f"**{entry['median_of_round_max']:.2f}** | |"
        )
    lines += ["", *(f"- p50 ratio {key}: **{value:.1f}x**" for key, value in report["ratios"].items()), ""]
    lines += [
        "## Cold: anomaly cache miss (status 24 h)",
        "",
        f"{cold['count']} cold calls: median **{cold['median_ms']:.1f} ms** (first status call of a fresh process "
        f"{cold['first_after_start_median_ms']:.1f} ms, later ones {_ms(cold['later_median_ms'])} ms), "
        f"min {cold['min_ms']:.1f}, max {cold['max_ms']:.1f}; "
        f"**+{cold['extra_over_warm_24h_p50_ms']:.1f} ms** over the warm 24 h p50. One call per "
        f"{ANOMALY_CACHE_SECONDS} s per process (and one per new UTC hour) pays this.",
        "",
        "| round | reason | ms |",
        "|---|---|---:|",
        *(f"| {c['round']} | {c['reason']} | {c['ms']:.1f} |" for c in cold["calls"]),
        "",
    ]
    timings = report["in_process"]
    lines += [
        "## In-process `pipeline_status` (Django subprocess, no HTTP)",
        "",
        "| window | cold ms (median of 3) | warm ms (median of 10) | sum of query exec ms (EXPLAIN ANALYZE) |",
        "|---|---:|---:|---:|",
    ]
    for window in EXPLAIN_WINDOWS:
        entry = timings[str(window)]
        query_ms = sum(q["execution_ms"] for q in report["plans"][f"{window}h"])
        lines.append(
            f"| {window}h | {_ms(_median(entry['cold_ms']))} | {_ms(_median(entry['warm_ms']))} | {query_ms:.1f} |"
        )
    lines += [
        "",
        f"`recent_anomalies()` alone: {_ms(_median(timings['recent_anomalies_ms']))} ms (median of 3).",
        "",
        "## Queries",
        "",
        "| window | query | scans (index, rows read, heap fetches) | index-only | buffers | exec ms |",
        "|---|---|---|---|---:|---:|",
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
                f"{query['shared_buffers']:,} | {query['execution_ms']:.2f}{jit} |"
            )
    lines += [
        "",
        f"Wall time {report['wall_time_seconds']:.0f} s. Plans: bench/results/{report['output_stem']}_plans.txt.",
        "",
    ]
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
    stem = output_stem(args.rows)
    schema = prepare_schema(url, args.refill)
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
        "machine": machine_info(url),
    }
    report["wall_time_seconds"] = round(time.perf_counter() - started, 1)
    markdown = render_markdown(report)
    write_atomically(RESULTS / f"{stem}.json", json.dumps(report, indent=2) + "\n")
    write_atomically(RESULTS / f"{stem}.md", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
