"""What the rollup triggers cost another program's bulk writes, and that they keep the rollups exact.

The hourly rollups are kept by statement-level triggers with transition tables (migration 0004,
``monitoring/triggers.py``), so a program that writes ``monitoring_dataqualitymetric`` with plain SQL
pays for the maintenance inside its own statement. On a freshly migrated database this bench times,
in the same run and alternating round by round:

- ``insert_select``: ``INSERT INTO monitoring_dataqualitymetric (...) SELECT ... FROM generate_series(1,
  1000000)``, 1 M rows over 30 days and 20 sources, into the emptied table;
- ``copy``: ``COPY monitoring_dataqualitymetric (...) FROM STDIN`` of the same 1 M rows, one statement;
- ``update``: ``UPDATE ... SET geocoding_successes = geocoding_successes / 2`` of 1 M of 2 M rows
  (``id % 2 = 0``: every (source, hour) group changes and keeps rows, the costly case);
- ``delete``: ``DELETE`` of the same 1 M of 2 M rows;
- ``delete_old_half``: ``DELETE`` of the older 1 M of 2 M rows (``id <= 1000000``: the first 15 days'
  groups lose all their rows, so their rollups are deleted; how a program would drop old data);

each with the triggers enabled ("maintained") and with ``ALTER TABLE monitoring_dataqualitymetric
DISABLE TRIGGER USER`` (the baseline: no maintenance, the rollups go stale). Time = the statement plus
its COMMIT, measured by the client. The table is truncated (and, for the updates and deletes, refilled with
the triggers on, then VACUUM ANALYZEd) before every measurement. After every maintained statement an
independent query compares the rollups with the raw rows per (source, UTC hour): the four sums, the
report count and the newest timestamp must all be equal, and no group may be missing on either side.

    .venv/bin/python -m bench.foreign_writes [--rows 1000000] [--rounds 3] [--database-url URL]

The database (default ``conflict_monitor_bench_foreign``, name must contain "bench") is dropped and
migrated afresh on every run. Writes bench/results/foreign_writes.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench.lib.database import (
    COUNT_COLUMNS,
    METRIC_COLUMNS,
    METRICS_TABLE,
    ROLLUPS_TABLE,
    database_name,
    pg_settings,
    prepare_schema,
    refuse_foreign_database,
    user_triggers,
)
from bench.lib.machine import machine_info, versions
from bench.lib.reports import write_results
from bench.lib.runtime import arg_parser, begin, log

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/conflict_monitor_bench_foreign"
TARGET_RATIO = 3.0
DAYS = 30
SOURCE_COUNT = 20
OPERATIONS = ("insert_select", "copy", "update", "delete", "delete_old_half")
MODES = ("maintained", "baseline")


def generated_rows(rows: int, *, first: int = 1) -> str:
    """A SELECT of ``rows`` metrics numbered from ``first``: evenly over the last ``DAYS`` days (ending at
    the start of the current hour), sources round-robin, deterministic counts within the CHECKs."""
    attempts = "(50 + (i * 7919) % 1951)"
    return f"""SELECT date_trunc('hour', now()) - interval '{DAYS} days' + (i - 1) * interval '{DAYS} days' / {rows},
        'source-' || lpad((i % {SOURCE_COUNT})::text, 2, '0'), 'batch',
        {attempts}, {attempts} * (70 + i % 29) / 100, {attempts}, {attempts} * (85 + i % 13) / 100, now()
    FROM generate_series({first}::bigint, {first + rows - 1}) AS i"""


def insert_statement(rows: int, *, first: int = 1) -> str:
    return f"INSERT INTO {METRICS_TABLE} ({', '.join(METRIC_COLUMNS)}) {generated_rows(rows, first=first)}"


COPY_IN = f"COPY {METRICS_TABLE} ({', '.join(METRIC_COLUMNS)}) FROM STDIN"
UPDATE = f"UPDATE {METRICS_TABLE} SET geocoding_successes = geocoding_successes / 2 WHERE id % 2 = 0"
DELETE = f"DELETE FROM {METRICS_TABLE} WHERE id % 2 = 0"


def delete_old_half(rows: int) -> str:
    return f"DELETE FROM {METRICS_TABLE} WHERE id <= {rows}"


# Independent of the triggers' SQL: the hour by AT TIME ZONE (not date_trunc's time zone argument),
# every group of either side, every summed column and the newest report.
MISMATCHES = f"""
SELECT count(*), coalesce(sum(raw.reports), 0), coalesce(sum(r.reports), 0) FROM (
    SELECT source, date_trunc('hour', "timestamp" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
        {", ".join(f"sum({c}) AS {c}" for c in COUNT_COLUMNS)}, count(*) AS reports, max("timestamp") AS newest
    FROM {METRICS_TABLE} GROUP BY 1, 2
) AS raw FULL JOIN {ROLLUPS_TABLE} AS r ON r.source = raw.source AND r.hour = raw.hour
WHERE raw.source IS NULL OR r.source IS NULL
    OR {" OR ".join(f"r.{c} <> raw.{c}" for c in (*COUNT_COLUMNS, "reports"))}
    OR r.last_report_at IS DISTINCT FROM raw.newest"""


def parse_args() -> argparse.Namespace:
    parser = arg_parser("foreign_writes", __doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per measured statement (default 1 M)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per operation and mode (default 3)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="dropped and migrated afresh")
    args = parser.parse_args()
    if args.rounds < 3 or args.rows < 1000:
        parser.error("--rounds must be at least 3 (medians) and --rows at least 1000")
    return args


def set_triggers(conn: psycopg.Connection, enabled: bool) -> None:
    conn.execute(f"ALTER TABLE {METRICS_TABLE} {'ENABLE' if enabled else 'DISABLE'} TRIGGER USER")
    conn.commit()


def reset(conn: psycopg.Connection, *, rows: int) -> None:
    """Empty tables (TRUNCATE fires the truncate trigger: the rollups empty too); with ``rows``, fill
    2 x ``rows`` metrics with the triggers on (exact rollups), then VACUUM ANALYZE both tables, so the
    maintained and the baseline statement meet the same clean table."""
    set_triggers(conn, True)
    conn.execute(f"TRUNCATE {METRICS_TABLE}, {ROLLUPS_TABLE} RESTART IDENTITY")
    conn.commit()
    if rows:
        conn.execute(insert_statement(2 * rows))
        conn.commit()
    conn.autocommit = True
    try:
        conn.execute(f"VACUUM (ANALYZE) {METRICS_TABLE}, {ROLLUPS_TABLE}")
        conn.execute("CHECKPOINT")
    finally:
        conn.autocommit = False


def copy_payload(conn: psycopg.Connection, rows: int) -> bytes:
    """The insert_select rows as COPY text, made by the database itself (``COPY (SELECT ...) TO STDOUT``)."""
    chunks = []
    with conn.cursor() as cursor, cursor.copy(f"COPY ({generated_rows(rows)}) TO STDOUT") as copy:
        for chunk in copy:
            chunks.append(bytes(chunk))
    conn.commit()
    return b"".join(chunks)


def timed(conn: psycopg.Connection, operation: str, *, rows: int, payload: bytes) -> tuple[float, int]:
    """Seconds of the statement and its COMMIT, and the rows it wrote."""
    started = time.perf_counter()
    with conn.cursor() as cursor:
        if operation == "copy":
            with cursor.copy(COPY_IN) as copy:
                view = memoryview(payload)
                for offset in range(0, len(view), 1 << 20):
                    copy.write(view[offset : offset + (1 << 20)])
        else:
            statement = {
                "insert_select": insert_statement(rows),
                "update": UPDATE,
                "delete": DELETE,
                "delete_old_half": delete_old_half(rows),
            }[operation]
            cursor.execute(statement)
        written = cursor.rowcount
    conn.commit()
    return time.perf_counter() - started, written


def mismatches(conn: psycopg.Connection) -> dict[str, int]:
    count, raw_reports, rollup_reports = conn.execute(MISMATCHES).fetchone()
    total = conn.execute(f"SELECT count(*) FROM {METRICS_TABLE}").fetchone()[0]
    groups = conn.execute(f"SELECT count(*) FROM {ROLLUPS_TABLE}").fetchone()[0]
    conn.commit()
    return {
        "mismatched_groups": count,
        "raw_rows": total,
        "rollup_groups": groups,
        "reports_in_mismatched_groups": int(raw_reports) + int(rollup_reports),
    }


def measure(url: str, rows: int, rounds: int) -> dict[str, Any]:
    results: dict[str, dict[str, list[dict[str, Any]]]] = {op: {mode: [] for mode in MODES} for op in OPERATIONS}
    with psycopg.connect(url) as conn:
        payload = copy_payload(conn, rows)
        for round_number in range(1, rounds + 1):
            for operation in OPERATIONS:
                # Alternate which mode goes first, so a drift in the machine does not favour one.
                order = MODES if round_number % 2 else tuple(reversed(MODES))
                for mode in order:
                    reset(conn, rows=0 if operation in ("insert_select", "copy") else rows)
                    set_triggers(conn, mode == "maintained")
                    seconds, written = timed(conn, operation, rows=rows, payload=payload)
                    set_triggers(conn, True)
                    entry = {"seconds": round(seconds, 3), "rows": written, "rows_per_second": round(written / seconds)}
                    if written != rows:
                        raise RuntimeError(f"{operation} wrote {written:,} rows, expected {rows:,}")
                    if mode == "maintained":
                        entry["check"] = mismatches(conn)
                        if entry["check"]["mismatched_groups"]:
                            raise RuntimeError(f"{operation}: rollups differ from the raw rows: {entry['check']}")
                    results[operation][mode].append(entry)
                    log(f"round {round_number} {operation:>13} {mode:>10}: {seconds:.2f} s ({written:,} rows)")
        reset(conn, rows=0)
    summary = {}
    for operation, modes in results.items():
        medians = {mode: statistics.median(e["seconds"] for e in entries) for mode, entries in modes.items()}
        per_round = [
            round(m["seconds"] / b["seconds"], 2) for m, b in zip(modes["maintained"], modes["baseline"], strict=True)
        ]
        summary[operation] = {
            "maintained_seconds": round(medians["maintained"], 3),
            "baseline_seconds": round(medians["baseline"], 3),
            "ratio": round(medians["maintained"] / medians["baseline"], 2),
            "ratio_per_round": per_round,
            "extra_seconds": round(medians["maintained"] - medians["baseline"], 3),
            "maintained_rows_per_second": round(rows / medians["maintained"]),
            "baseline_rows_per_second": round(rows / medians["baseline"]),
            "rounds": modes,
        }
    return summary


LABELS = {
    "insert_select": "`INSERT ... SELECT FROM generate_series` (empty table)",
    "copy": "`COPY ... FROM STDIN`, one statement (empty table)",
    "update": "`UPDATE ... SET geocoding_successes = geocoding_successes / 2 WHERE id % 2 = 0` (of 2 x the rows)",
    "delete": "`DELETE ... WHERE id % 2 = 0` (of 2 x the rows; every group keeps rows)",
    "delete_old_half": "`DELETE ... WHERE id <= rows` (older half of 2 x the rows; half the groups emptied)",
}


def render_markdown(report: dict[str, Any]) -> str:
    config, operations = report["config"], report["operations"]
    rows = config["rows"]
    lines = [
        "# Foreign bulk writes: cost of the rollup triggers",
        "",
        f"{report['date']} · PostgreSQL {report['machine']['postgres']}, {report['machine']['nproc']} CPUs · "
        f"freshly migrated database `{config['database']}` (migration 0004: statement-level triggers with "
        f"transition tables). Each statement writes {rows:,} rows of `{METRICS_TABLE}` "
        f"({DAYS} days, {SOURCE_COUNT} sources, "
        f"{report['groups']:,} (source, hour) groups); time = statement + COMMIT from the client. "
        "**maintained**: triggers enabled (the rollups are kept); **baseline**: "
        f"`ALTER TABLE {METRICS_TABLE} DISABLE TRIGGER USER` (no maintenance) in the same run; "
        f"median of {config['rounds']} rounds each, the mode that goes first alternating by round; table "
        "truncated (updates and deletes: refilled with 2 x the rows, triggers on, then VACUUM ANALYZE and "
        f"CHECKPOINT) before every measurement. Goal: maintained within {TARGET_RATIO:.0f}x the baseline.",
        "",
        "| statement | maintained s | baseline s | ratio | ratio per round | maintained rows/s | baseline rows/s |"
        " goal |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for operation, entry in operations.items():
        met = "met" if entry["ratio"] <= TARGET_RATIO else "**NOT met**"
        lines.append(
            f"| {LABELS[operation]} | **{entry['maintained_seconds']:.2f}** | {entry['baseline_seconds']:.2f} | "
            f"**{entry['ratio']:.2f}x** | {', '.join(f'{r:.2f}' for r in entry['ratio_per_round'])} | "
            f"{entry['maintained_rows_per_second']:,} | {entry['baseline_rows_per_second']:,} | {met} |"
        )
    checks = [e["check"] for entry in operations.values() for e in entry["rounds"]["maintained"]]
    lines += [
        "",
        f"Exactness: after each of the {len(checks)} maintained statements, an independent query (hour by "
        "`AT TIME ZONE 'UTC'`, a FULL JOIN of the raw aggregate per (source, hour) with the rollups) found "
        f"**{sum(c['mismatched_groups'] for c in checks)} mismatched groups** (four sums, report count and "
        "newest timestamp compared; a group missing on either side counts).",
        "",
        f"Triggers on `{METRICS_TABLE}` and `monitoring_pipelinerun`: {', '.join(report['triggers'])}.",
        f"Wall time {report['wall_time_seconds']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    started = begin()
    args = parse_args()
    url = args.database_url
    refuse_foreign_database(url)
    schema = prepare_schema(url, refill=True, by="bench/foreign_writes")
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        triggers = user_triggers(cursor)
    settings = pg_settings(url, ("server_version", "shared_buffers", "work_mem", "synchronous_commit", "max_wal_size"))
    if not any(name.endswith(".monitoring_rollups_insert") for name in triggers):
        raise SystemExit(f"the rollup triggers are not installed (migration 0004 missing?): {triggers}")
    log(f"measuring {', '.join(OPERATIONS)} of {args.rows:,} rows, {args.rounds} rounds, maintained and baseline")
    operations = measure(url, args.rows, args.rounds)
    groups = operations["insert_select"]["rounds"]["maintained"][0]["check"]["rollup_groups"]
    report = {
        "benchmark": "foreign_writes",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {"rows": args.rows, "rounds": args.rounds, "database": database_name(url), "days": DAYS},
        "schema": schema,
        "triggers": triggers,
        "groups": groups,
        "target_ratio": TARGET_RATIO,
        "statements": {
            "insert_select": insert_statement(args.rows),
            "copy": COPY_IN,
            "update": UPDATE,
            "delete": DELETE,
            "delete_old_half": delete_old_half(args.rows),
            "exactness_check": MISMATCHES,
        },
        "operations": operations,
        "machine": machine_info(
            postgres=settings.pop("server_version"), postgres_settings=settings, **versions("psycopg")
        ),
    }
    report["wall_time_seconds"] = round(time.perf_counter() - started, 1)
    write_results("foreign_writes", report, render_markdown(report))


if __name__ == "__main__":
    main()
