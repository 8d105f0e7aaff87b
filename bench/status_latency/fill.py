"""The status bench's data: 90 days of metrics and hourly scrape runs by COPY (the database triggers derive
the rollups and scrape state), alerts evaluated once, VACUUM ANALYZE; a recent fill is reused and topped up."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from bench.lib.database import (
    COUNT_COLUMNS,
    METRIC_COLUMNS,
    METRICS_TABLE,
    ROLLUPS_TABLE,
    RUNS_TABLE,
    SOURCES,
    SOURCES_TABLE,
    run_django,
    user_triggers,
)
from bench.lib.runtime import log

from .config import FILLED_TABLES, status_env

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
    return run_django(url, ALERTS_CODE, marker="ALERTS", env=status_env(url))


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
