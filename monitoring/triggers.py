"""Database triggers that keep the derived tables equal to the raw ones, whoever writes the raw rows.

- ``HourlyRollup`` = per (source, stage, UTC hour) sums, report count and newest timestamp of the metrics
  in that hour, plus what retention pruned from it (the hourly history outlives the raw rows). A metric
  without a stage counts under the stage ``''`` (unstaged). Until migration 0009 the key was (source, UTC
  hour): :func:`install` takes the key, so each migration installs the triggers of its own schema.
- ``ScrapeSource`` = per source, the newest start, success and failure of its scrape runs and the error
  of the newest failed one (greatest ``finished_at``, then greatest id).

Every writer is covered: the ingest API, the ORM (``save``, ``create``, ``bulk_create``, queryset
``update`` and ``delete``), the admin, and another program's ``INSERT``, ``UPDATE``, ``DELETE`` or
``COPY``. On PostgreSQL the triggers are per statement with transition tables, so a 5,000-row insert
costs one aggregate; a ``TRUNCATE`` of the metrics empties the rollups. On SQLite they are per row.

Retention deletes raw metrics inside a transaction that holds a ``PruneMarker`` row; the delete
triggers then leave the rollups alone. Runs are not kept across retention: scraping health is defined
over the runs that remain.

Concurrency (PostgreSQL, READ COMMITTED): sums move by increments under the rollup row's lock, so
concurrent writers add up. Values recomputed from the raw table (newest timestamp after a delete or
update, the scrape state) are computed by a statement that starts after the rows concerned are locked,
so it sees every transaction that committed before it.

On SQLite, a migration that alters ``monitoring_dataqualitymetric`` or ``monitoring_pipelinerun``
rebuilds the table and drops its triggers: such a migration must call :func:`install` again (passing
the rollup key of its time).
"""

from __future__ import annotations

from dataclasses import dataclass

# Names and columns are the models' (written out: migrations must not import models).
METRICS = "monitoring_dataqualitymetric"
ROLLUPS = "monitoring_hourlyrollup"
RUNS = "monitoring_pipelinerun"
SOURCES = "monitoring_scrapesource"
MARKER = "monitoring_prunemarker"
COUNTS = ("geocoding_attempts", "geocoding_successes", "validation_attempts", "validation_passes")

_PG_HOUR = "date_trunc('hour', \"timestamp\", 'UTC')"


@dataclass(frozen=True)
class RollupKey:
    """What a rollup groups by besides the hour: its key columns, and the same values computed from a metric
    row (``{row}`` is the row's qualifier: ``NEW.``, ``m.`` or nothing)."""

    columns: tuple[str, ...]
    values: tuple[str, ...]

    def of(self, row: str = "") -> list[str]:
        return [value.format(row=row) for value in self.values]

    def selected(self, row: str = "") -> str:
        """The key as a SELECT list over metric rows, named as the rollup's columns."""
        return ", ".join(f"{value} AS {column}" for value, column in zip(self.of(row), self.columns, strict=True))

    def matches(self, left: str, right: str) -> str:
        """Two rollup-shaped rows (``left``, ``right``: their aliases) of the same group and hour."""
        return " AND ".join(f"{left}.{column} = {right}.{column}" for column in (*self.columns, "hour"))

    def groups(self) -> str:
        """GROUP BY positions of the key and the hour that lead a SELECT list."""
        return ", ".join(str(i) for i in range(1, len(self.columns) + 2))


# Migrations 0004-0008: per source and hour.
BY_SOURCE = RollupKey(columns=("source",), values=("{row}source",))
# From migration 0009: per source, stage and hour; a metric without a stage counts under the stage ''.
BY_SOURCE_AND_STAGE = RollupKey(columns=("source", "stage"), values=("{row}source", "COALESCE({row}stage, '')"))


def _pg_newest_in_hour(key: RollupKey) -> str:
    same_group = " AND ".join(f"{value} = r.{column}" for value, column in zip(key.of("m."), key.columns, strict=True))
    return (
        f'(SELECT MAX(m."timestamp") FROM {METRICS} AS m WHERE {same_group}'
        ' AND m."timestamp" >= r.hour AND m."timestamp" < r.hour + interval \'1 hour\')'
    )


def _pg_add(key: RollupKey, delta: str) -> str:
    columns = ", ".join(key.columns)
    increments = ", ".join(f"{c} = r.{c} + excluded.{c}" for c in (*COUNTS, "reports"))
    return f"""
    INSERT INTO {ROLLUPS} AS r ({columns}, hour, {", ".join(COUNTS)}, reports, last_report_at)
    SELECT {columns}, hour, {", ".join(COUNTS)}, reports, newest FROM ({delta}) AS d ORDER BY {columns}, hour
    ON CONFLICT ({columns}, hour) DO UPDATE SET {increments},
        last_report_at = GREATEST(r.last_report_at, excluded.last_report_at)"""


def _pg_new_sums(key: RollupKey) -> str:
    sums = ", ".join(f"SUM({c}) AS {c}" for c in COUNTS)
    return (
        f'SELECT {key.selected()}, {_PG_HOUR} AS hour, {sums}, COUNT(*) AS reports, MAX("timestamp") AS newest '
        f"FROM new_rows GROUP BY {key.groups()}"
    )


# The net change per group of a statement, new rows added and old rows taken away, with the newest of each:
# the transition tables are read once.
def _pg_net(key: RollupKey, *, with_new_rows: bool) -> str:
    taken = ", ".join(f"-{c} AS {c}" for c in COUNTS)
    new = (
        f'SELECT {key.selected()}, {_PG_HOUR} AS hour, {", ".join(COUNTS)}, 1 AS n, "timestamp" AS at FROM new_rows'
        "\n            UNION ALL\n            "
        if with_new_rows
        else ""
    )
    return f"""SELECT {", ".join(key.columns)}, hour, {", ".join(f"SUM({c}) AS {c}" for c in COUNTS)},
        SUM(n) AS reports, MAX(at) FILTER (WHERE n > 0) AS newest, MAX(at) FILTER (WHERE n < 0) AS old_newest FROM (
            {new}SELECT {key.selected()}, {_PG_HOUR} AS hour, {taken}, -1 AS n, "timestamp" AS at FROM old_rows
        ) AS changes GROUP BY {key.groups()}"""


# 1. Lock the groups' rollups in a fixed order (no deadlock between writers) and apply the net change. A
#    rollup whose newest report was among the rows taken away is marked (NULL) for step 2; the others keep
#    theirs or take the newest added one. The range of the hours touched goes to ``lo`` / ``hi``.
# 2. A new statement, so it sees every write committed before the locks were granted: the marked rollups
#    get their newest report back from the raw rows.
# 3. Rollups left without a report are dropped: a range scan of the hours touched, whose plan does not
#    depend on the transition table's size (which the planner cannot know).
def _pg_apply(key: RollupKey, *, with_new_rows: bool) -> str:
    order = ", ".join(f"r.{c}" for c in (*key.columns, "hour"))
    # An update's new groups (positive changes only: a group of old rows always has its rollup). A CHECK
    # applies to an INSERT's row before ON CONFLICT is considered, so the existing rollups, whose change
    # may be negative, are never proposed for insertion.
    insert_new = (
        ",\n    inserted AS ("
        + _pg_add(key, f"SELECT * FROM d WHERE NOT EXISTS (SELECT 1 FROM locked AS l WHERE {key.matches('l', 'd')})")
        + " RETURNING 1)"
        if with_new_rows
        else ""
    )
    return f"""
    WITH d AS ({_pg_net(key, with_new_rows=with_new_rows)}),
    locked AS (
        SELECT r.id, d.* FROM {ROLLUPS} AS r JOIN d ON {key.matches("d", "r")}
        ORDER BY {order} FOR UPDATE OF r
    ),
    changed AS (
        UPDATE {ROLLUPS} AS r SET {", ".join(f"{c} = r.{c} + l.{c}" for c in (*COUNTS, "reports"))},
            last_report_at = CASE WHEN l.old_newest >= r.last_report_at THEN NULL
                ELSE GREATEST(r.last_report_at, l.newest) END
        FROM locked AS l WHERE r.id = l.id RETURNING r.hour
    ){insert_new}
    SELECT MIN(hour), MAX(hour) INTO lo, hi FROM changed;
    UPDATE {ROLLUPS} AS r SET last_report_at = {_pg_newest_in_hour(key)}
    WHERE r.hour >= lo AND r.hour <= hi AND r.last_report_at IS NULL AND r.reports > 0;
    DELETE FROM {ROLLUPS} WHERE hour >= lo AND hour <= hi AND reports = 0;"""


_PG_SCRAPE_REFRESH = f"""
CREATE OR REPLACE FUNCTION monitoring_scrape_sources_refresh(names text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF names IS NULL OR cardinality(names) = 0 THEN RETURN; END IF;
    INSERT INTO {SOURCES} (name, last_error) SELECT n, '' FROM unnest(names) AS n ORDER BY n
        ON CONFLICT (name) DO NOTHING;
    PERFORM 1 FROM {SOURCES} WHERE name = ANY(names) ORDER BY name FOR UPDATE;
    UPDATE {SOURCES} AS s SET
        last_run_at = (SELECT MAX(started_at) FROM {RUNS} WHERE stage = 'scrape' AND source = s.name),
        last_success_at = (SELECT MAX(finished_at) FROM {RUNS}
            WHERE stage = 'scrape' AND source = s.name AND status = 'succeeded'),
        last_failure_at = (SELECT MAX(finished_at) FROM {RUNS}
            WHERE stage = 'scrape' AND source = s.name AND status = 'failed'),
        last_error = COALESCE((SELECT error FROM {RUNS}
            WHERE stage = 'scrape' AND source = s.name AND status = 'failed'
            ORDER BY finished_at DESC, id DESC LIMIT 1), '')
    WHERE s.name = ANY(names);
    DELETE FROM {SOURCES} WHERE name = ANY(names) AND last_run_at IS NULL;
END $$;"""


# Every statement that changed what the status reads tells listeners (the broadcaster) once its
# transaction commits; PostgreSQL folds identical notifications of one transaction into one.
NOTIFY_CHANNEL = "monitoring_data_changed"
_PG_NOTIFY = f"\n    PERFORM pg_notify('{NOTIFY_CHANNEL}', '');"


def _pg_function(name: str, body: str, *, declare: str = "") -> str:
    variables = f"\nDECLARE {declare}" if declare else ""
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $${variables}
BEGIN{body}{_PG_NOTIFY}
    RETURN NULL;
END $$;"""


def _pg_trigger(name: str, *, table: str, event: str, transition: str, function: str) -> str:
    return f"""
DROP TRIGGER IF EXISTS {name} ON {table};
CREATE TRIGGER {name} AFTER {event} ON {table} {transition}
FOR EACH STATEMENT EXECUTE FUNCTION {function}();"""


def _pg_scrape_names(*tables: str) -> str:
    union = " UNION ".join(f"SELECT source FROM {table} WHERE stage = 'scrape'" for table in tables)
    names = f"ARRAY(SELECT DISTINCT source FROM ({union}) AS t)"
    return f"\n    PERFORM monitoring_scrape_sources_refresh({names});"


_PG_EVENTS = (
    ("insert", "REFERENCING NEW TABLE AS new_rows"),
    ("update", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ("delete", "REFERENCING OLD TABLE AS old_rows"),
    ("truncate", ""),
)


def _postgresql(key: RollupKey) -> list[str]:
    bounds = "lo timestamptz; hi timestamptz;"
    return [
        _pg_function("monitoring_rollups_after_insert", _pg_add(key, _pg_new_sums(key)) + ";"),
        _pg_function(
            "monitoring_rollups_after_delete",
            f"\n    IF EXISTS (SELECT 1 FROM {MARKER}) THEN RETURN NULL; END IF;" + _pg_apply(key, with_new_rows=False),
            declare=bounds,
        ),
        _pg_function("monitoring_rollups_after_update", _pg_apply(key, with_new_rows=True), declare=bounds),
        _pg_function("monitoring_rollups_after_truncate", f"\n    DELETE FROM {ROLLUPS};"),
        _PG_SCRAPE_REFRESH,
        _pg_function("monitoring_scrape_after_insert", _pg_scrape_names("new_rows")),
        _pg_function("monitoring_scrape_after_update", _pg_scrape_names("old_rows", "new_rows")),
        _pg_function("monitoring_scrape_after_delete", _pg_scrape_names("old_rows")),
        _pg_function("monitoring_scrape_after_truncate", f"\n    DELETE FROM {SOURCES};"),
        *(
            _pg_trigger(
                f"monitoring_{kind}_{event}",
                table=table,
                event=event.upper(),
                transition=transition,
                function=f"monitoring_{kind}_after_{event}",
            )
            for kind, table in (("rollups", METRICS), ("scrape", RUNS))
            for event, transition in _PG_EVENTS
        ),
    ]


# SQLite: timestamps are UTC text in Django's format, so the hour is the text's first 13 characters
# normalised by strftime (which also reads a 'T' separator or an offset).
_LITE_HOUR = "strftime('%Y-%m-%d %H:00:00', {row}.\"timestamp\")"


def _lite_add(key: RollupKey, row: str) -> str:
    hour = _LITE_HOUR.format(row=row)
    columns = ", ".join(key.columns)
    values = ", ".join(f"{row}.{c}" for c in COUNTS)
    increments = ", ".join(f"{c} = {ROLLUPS}.{c} + excluded.{c}" for c in (*COUNTS, "reports"))
    return f"""
    INSERT INTO {ROLLUPS} ({columns}, hour, {", ".join(COUNTS)}, reports, last_report_at)
    VALUES ({", ".join(key.of(f"{row}."))}, {hour}, {values}, 1, {row}."timestamp")
    ON CONFLICT ({columns}, hour) DO UPDATE SET {increments},
        last_report_at = CASE WHEN {ROLLUPS}.last_report_at IS NULL
            OR excluded.last_report_at > {ROLLUPS}.last_report_at
            THEN excluded.last_report_at ELSE {ROLLUPS}.last_report_at END;"""


def _lite_remove(key: RollupKey, row: str) -> str:
    hour = _LITE_HOUR.format(row=row)
    decrements = ", ".join(f"{c} = {c} - {row}.{c}" for c in COUNTS)
    pairs = list(zip(key.columns, key.of(f"{row}."), key.of("m."), strict=True))
    group = " AND ".join(f"{column} = {value}" for column, value, _ in pairs)
    same_group = " AND ".join(f"{raw} = {value}" for _, value, raw in pairs)
    return f"""
    UPDATE {ROLLUPS} SET {decrements}, reports = reports - 1,
        last_report_at = (SELECT MAX(m."timestamp") FROM {METRICS} AS m WHERE {same_group}
            AND m."timestamp" >= {ROLLUPS}.hour
            AND m."timestamp" < strftime('%Y-%m-%d %H:00:00', {ROLLUPS}.hour, '+1 hour'))
    WHERE {group} AND hour = {hour};
    DELETE FROM {ROLLUPS} WHERE {group} AND hour = {hour} AND reports = 0;"""


def _lite_scrape_refresh(row: str) -> str:
    runs = f"FROM {RUNS} WHERE stage = 'scrape' AND source = {row}.source"
    return f"""
    INSERT INTO {SOURCES} (name, last_error) VALUES ({row}.source, '') ON CONFLICT (name) DO NOTHING;
    UPDATE {SOURCES} SET
        last_run_at = (SELECT MAX(started_at) {runs}),
        last_success_at = (SELECT MAX(finished_at) {runs} AND status = 'succeeded'),
        last_failure_at = (SELECT MAX(finished_at) {runs} AND status = 'failed'),
        last_error = COALESCE((SELECT error {runs} AND status = 'failed'
            ORDER BY finished_at DESC, id DESC LIMIT 1), '')
    WHERE name = {row}.source;
    DELETE FROM {SOURCES} WHERE name = {row}.source AND last_run_at IS NULL;"""


def _lite_trigger(name: str, *, event: str, table: str, when: str, body: str) -> str:
    condition = f" WHEN {when}" if when else ""
    return (
        f"DROP TRIGGER IF EXISTS {name};\nCREATE TRIGGER {name} AFTER {event} ON {table}{condition}\nBEGIN{body}\nEND;"
    )


_NOT_PRUNING = f"NOT EXISTS (SELECT 1 FROM {MARKER})"


def _sqlite(key: RollupKey) -> list[str]:
    return [
        _lite_trigger("monitoring_rollups_insert", event="INSERT", table=METRICS, when="", body=_lite_add(key, "NEW")),
        _lite_trigger(
            "monitoring_rollups_delete", event="DELETE", table=METRICS, when=_NOT_PRUNING, body=_lite_remove(key, "OLD")
        ),
        _lite_trigger(
            "monitoring_rollups_update",
            event="UPDATE",
            table=METRICS,
            when="",
            body=_lite_remove(key, "OLD") + _lite_add(key, "NEW"),
        ),
        _lite_trigger(
            "monitoring_scrape_insert",
            event="INSERT",
            table=RUNS,
            when="NEW.stage = 'scrape'",
            body=_lite_scrape_refresh("NEW"),
        ),
        _lite_trigger(
            "monitoring_scrape_update",
            event="UPDATE",
            table=RUNS,
            when="OLD.stage = 'scrape' OR NEW.stage = 'scrape'",
            body=_lite_scrape_refresh("OLD") + _lite_scrape_refresh("NEW"),
        ),
        _lite_trigger(
            "monitoring_scrape_delete",
            event="DELETE",
            table=RUNS,
            when="OLD.stage = 'scrape'",
            body=_lite_scrape_refresh("OLD"),
        ),
    ]


# Rebuilds that make the derived tables exact once, when the triggers are installed: the hours from the
# oldest raw metric's next hour on are recomputed from the raw rows (older hours are pruned history and
# stay); every scrape source is recomputed from its runs.
_OLDEST_WHOLE_HOUR = {
    "postgresql": f"(SELECT date_trunc('hour', MIN(\"timestamp\"), 'UTC') + interval '1 hour' FROM {METRICS})",
    "sqlite": f"(SELECT strftime('%Y-%m-%d %H:00:00', MIN(\"timestamp\"), '+1 hour') FROM {METRICS})",
}
_HOUR_OF = {"postgresql": _PG_HOUR, "sqlite": _LITE_HOUR.format(row=METRICS)}


def _rebuild(vendor: str, key: RollupKey) -> list[str]:
    oldest = _OLDEST_WHOLE_HOUR[vendor]
    hour = _HOUR_OF[vendor]
    return [
        f"DELETE FROM {ROLLUPS} WHERE hour >= {oldest}",
        f"""INSERT INTO {ROLLUPS} ({", ".join(key.columns)}, hour, {", ".join(COUNTS)}, reports, last_report_at)
        SELECT {", ".join(key.of())}, {hour}, {", ".join(f"SUM({c})" for c in COUNTS)}, COUNT(*), MAX("timestamp")
        FROM {METRICS} WHERE "timestamp" >= {oldest} GROUP BY {key.groups()}""",
        f"DELETE FROM {SOURCES}",
        f"""INSERT INTO {SOURCES} (name, last_run_at, last_success_at, last_failure_at, last_error)
        SELECT source, MAX(started_at),
            MAX(CASE WHEN status = 'succeeded' THEN finished_at END),
            MAX(CASE WHEN status = 'failed' THEN finished_at END),
            COALESCE((SELECT error FROM {RUNS} AS f WHERE f.stage = 'scrape' AND f.source = r.source
                AND f.status = 'failed' ORDER BY f.finished_at DESC, f.id DESC LIMIT 1), '')
        FROM {RUNS} AS r WHERE stage = 'scrape' GROUP BY source""",
    ]


def install(schema_editor, *, key: RollupKey = BY_SOURCE_AND_STAGE, rebuild: bool = True) -> None:
    """Create (or replace) the triggers for the connection's database, then make the tables exact once.

    ``key``: the rollups' key as the migration that calls this leaves the tables (a migration runs
    against the schema of its time, not the models'). ``rebuild=False`` skips making the tables exact,
    for a migration that leaves them exact (its rows were copied, not written, while no trigger ran)."""
    vendor = schema_editor.connection.vendor
    if vendor not in _HOUR_OF:
        raise RuntimeError(f"no derived-table triggers for the {vendor} backend")
    statements = _postgresql(key) if vendor == "postgresql" else _sqlite(key)
    with schema_editor.connection.cursor() as cursor:
        for statement in statements:
            if vendor == "sqlite":
                _sqlite_script(cursor, statement)
            else:
                cursor.execute(statement)
        for statement in _rebuild(vendor, key) if rebuild else []:
            cursor.execute(statement)


def _sqlite_script(cursor, script: str) -> None:
    """DROP and CREATE TRIGGER one at a time: Django's SQLite cursor runs one statement per call."""
    drop, create = script.split("\n", 1)
    cursor.execute(drop)
    cursor.execute(create)


def uninstall(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            for event in ("insert", "update", "delete", "truncate"):
                cursor.execute(f"DROP TRIGGER IF EXISTS monitoring_rollups_{event} ON {METRICS}")
                cursor.execute(f"DROP TRIGGER IF EXISTS monitoring_scrape_{event} ON {RUNS}")
        elif vendor == "sqlite":
            for event in ("insert", "update", "delete"):
                cursor.execute(f"DROP TRIGGER IF EXISTS monitoring_rollups_{event}")
                cursor.execute(f"DROP TRIGGER IF EXISTS monitoring_scrape_{event}")
