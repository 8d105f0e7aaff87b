"""The bench databases: refuse real ones, create, migrate (rebuilt when the migrations changed), seed.

Every bench database's name contains "bench": the benches truncate, fill and drop them. The migration
files' fingerprint is kept in the database comment; the project edits ``0001_initial`` in place before
its first release, which ``migrate`` cannot apply to a database that already ran it, so a database
built from other migrations is dropped and created again.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench.lib.processes import django_env, process_cpu_seconds
from bench.lib.runtime import PYTHON, ROOT, log

METRICS_TABLE = "monitoring_dataqualitymetric"
RUNS_TABLE = "monitoring_pipelinerun"
ROLLUPS_TABLE = "monitoring_hourlyrollup"
SOURCES_TABLE = "monitoring_scrapesource"
ALERTS_TABLE = "monitoring_alert"
COUNT_COLUMNS = ("geocoding_attempts", "geocoding_successes", "validation_attempts", "validation_passes")
METRIC_COLUMNS = ("timestamp", "source", "metric_type", *COUNT_COLUMNS, "ingested_at")

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

# Seed when a bench database has no recent metrics: 12 h of simulated traffic through the real
# services (5 sources), so nothing ages out of the 24 h status window while a bench runs.
SEED_COMMAND = ["simulate_pipeline", "--scenario", "normal", "--hours", "12", "--step-minutes", "30", "--seed", "7"]


def database_name(url: str) -> str:
    return conninfo_to_dict(url).get("dbname") or ""


def refuse_foreign_database(url: str, option: str = "DATABASE_URL/--database-url") -> None:
    """The benches truncate, fill and drop their database: a mistyped URL must not reach real data."""
    name = database_name(url)
    if "bench" not in name:
        raise SystemExit(
            f"refusing to use database {name!r}: the benchmark writes, truncates or drops its tables; "
            f"point {option} at a database whose name contains 'bench'"
        )


def ensure_database(url: str) -> bool:
    """Create the bench database when missing; True when it was created."""
    name = database_name(url)
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def drop_database(url: str, reason: str) -> None:
    name = database_name(url)
    refuse_foreign_database(url)  # never anything but a bench database
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


def manage(url: str, *args: str, app_root: Path = ROOT, env: dict[str, str] | None = None) -> str:
    """``manage.py args`` of the code in ``app_root`` on database ``url`` (or in ``env``); its stdout."""
    done = subprocess.run(
        [str(PYTHON), "manage.py", *args],
        cwd=app_root,
        env=env or django_env(url),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def run_django(url: str, code: str, *args: str, marker: str, env=None, app_root: Path = ROOT) -> Any:
    """Run ``code`` after ``django.setup()`` in a subprocess; it prints ``marker`` + JSON on its last line."""
    command = [str(PYTHON), "-c", "import django\ndjango.setup()\n" + code, *args]
    done = subprocess.run(command, cwd=app_root, env=env or django_env(url), capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(marker + " ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"Django subprocess ({marker}) failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return json.loads(lines[-1].removeprefix(marker + " "))


def migrations_fingerprint(app_root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for path in sorted((app_root / "monitoring" / "migrations").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


SCHEMA_CHECK_CODE = """
import json
from django.apps import apps
from django.db import connection
import monitoring
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
print("SCHEMA " + json.dumps({"app": monitoring.__file__, "problems": problems}))
"""


def schema_problems(url: str, app_root: Path = ROOT) -> list[str]:
    """Models whose table or columns the database lacks (a migration edited in place after it ran)."""
    found = run_django(url, SCHEMA_CHECK_CODE, marker="SCHEMA", app_root=app_root)
    if not Path(found["app"]).resolve().is_relative_to(app_root.resolve()):
        raise RuntimeError(f"the project imported from {found['app']}, not from {app_root}")
    return found["problems"]


def prepare_schema(url: str, *, refill: bool = False, app_root: Path = ROOT, by: str = "bench") -> dict[str, Any]:
    """Create (or drop and create) the bench database and migrate it with the code in ``app_root``.

    The database is rebuilt from scratch when ``refill`` is given, when the migration files' fingerprint
    differs from the one in the database comment (or there is none), or when a model's table or column
    is missing after ``migrate``.
    """
    name = database_name(url)
    fingerprint = migrations_fingerprint(app_root)
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
            reason = f"migrations fingerprint {built_with} in the database, {fingerprint} in the code served"
        else:
            manage(url, "migrate", "--noinput", app_root=app_root)
            if problems := schema_problems(url, app_root):
                reason = "schema does not match the models: " + ", ".join(problems[:5])
        if reason:
            drop_database(url, reason)
    if row is None or reason:
        if ensure_database(url):
            log(f"created database {name}")
        manage(url, "migrate", "--noinput", app_root=app_root)
        if problems := schema_problems(url, app_root):
            raise RuntimeError(f"models without tables or columns after a fresh migrate (no migration?): {problems}")
    with psycopg.connect(admin, autocommit=True) as conn:
        comment = json.dumps({"migrations": fingerprint, "by": by})
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(comment)))
    return {"migrations_fingerprint": fingerprint, "recreated": reason if row is not None else "created"}


def seed_recent(url: str, app_root: Path = ROOT) -> dict[str, Any]:
    """Seed when the status window would be empty or stale; report what the window holds."""
    query = f"SELECT count(*) FROM {METRICS_TABLE} WHERE timestamp > now() - %s::interval"
    with psycopg.connect(url) as conn:
        recent = conn.execute(query, ["2 hours"]).fetchone()[0]
    seeded = None
    if recent == 0:
        log("no metrics in the last 2 h: seeding 12 h of simulated traffic")
        seeded = manage(url, *SEED_COMMAND, app_root=app_root).strip()
    with psycopg.connect(url) as conn:
        window = conn.execute(query, ["24 hours"]).fetchone()[0]
    return {"seeded": seeded, "metrics_in_window": window}


def user_triggers(cursor: psycopg.Cursor, tables=(METRICS_TABLE, RUNS_TABLE)) -> list[str]:
    """The enabled user triggers (``table.name``) on ``tables``: the rollups rely on them."""
    rows = cursor.execute(
        "SELECT tgrelid::regclass::text || '.' || tgname FROM pg_trigger "
        "WHERE NOT tgisinternal AND tgenabled <> 'D' AND tgrelid = ANY(%s::regclass[]) ORDER BY 1",
        [list(tables)],
    ).fetchall()
    return [row[0] for row in rows]


def create_token(url: str, name: str, app_root: Path = ROOT) -> str:
    key = manage(url, "create_ingest_token", name, app_root=app_root).strip().splitlines()[-1].strip()
    if not key:
        raise RuntimeError("create_ingest_token printed no key")
    return key


def delete_token(url: str, name: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM monitoring_ingesttoken WHERE name = %s", [name])


def pg_settings(url: str, names: tuple[str, ...]) -> dict[str, str]:
    """``setting || unit`` of PostgreSQL settings ``names`` (e.g. server_version, shared_buffers)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name = ANY(%s)", [list(names)]
        ).fetchall()
    return dict(rows)


def backend_cpu(url: str) -> dict[int, float]:
    """CPU seconds per PostgreSQL backend connected to the bench database (other than this query's)."""
    with psycopg.connect(url) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    seconds = {}
    for pid in pids:
        try:
            seconds[pid] = process_cpu_seconds(pid)
        except OSError:
            continue  # ended, or PostgreSQL runs elsewhere
    return seconds


def database_counters(url: str) -> dict[str, int]:
    """Transactions (commits + rollbacks) and tuples read of the database so far (``pg_stat_database``)."""
    with psycopg.connect(url) as conn:
        # A fresh snapshot: the statistics are cached per transaction otherwise.
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit + xact_rollback, tup_returned + tup_fetched FROM pg_stat_database "
            "WHERE datname = current_database()"
        ).fetchone()
    return {"transactions": row[0], "tuples_read": row[1]}
