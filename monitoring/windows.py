"""The one window computation: sums of data-quality metrics over a time window.

Every number derived from the metrics (the status, the alert rules' inputs, the trends and the anomaly
series) is read through :func:`window_sums`. A window is half-open, ``start <= timestamp < end``, like
the UTC hour of a report (``hour <= timestamp < hour + 1 h``), so a window made of whole hours is exactly
the sum of its hours.

Whole UTC hours come from ``HourlyRollup``, which database triggers keep equal to the raw metrics for
every writer (ingest, the ORM, raw SQL, COPY, the admin; see migrations 0004 and 0009) and which keeps the
hours that retention pruned. The rollups are per source, stage and hour, so a breakdown by stage reaches
as far back as the hourly history does. A partial hour at either end comes from the raw metrics, except
that the hour holding ``end`` is read from a source's rollups whenever their newest report lies before
``end`` (then the two are the same reports), which is the steady state. The statements are hand-written
SQL that runs on PostgreSQL and SQLite alike: building and compiling them with the ORM took longer than
running them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.db import connection
from django.utils.dateparse import parse_datetime

from monitoring.models import DataQualityMetric, HourlyRollup, PipelineRun
from monitoring.models.metrics import COUNT_FIELDS

HOUR = timedelta(hours=1)
SUMMED = (*COUNT_FIELDS, "reports")


def floor_hour(moment: datetime) -> datetime:
    """The start of the UTC hour that holds ``moment`` (the rollups' bucket)."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def db_moment(value: datetime | str | None) -> datetime | None:
    """A timestamp read with raw SQL: aware from PostgreSQL; naive UTC from SQLite (text for an aggregate)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


_METRICS = DataQualityMetric._meta.db_table
_ROLLUPS = HourlyRollup._meta.db_table
_RAW_SUMS = ", ".join(f"SUM({field}) AS {field}" for field in COUNT_FIELDS)
_ROLLUP_SUMS = ", ".join(f"SUM({field}) AS {field}" for field in SUMMED)
# The rollups' stage of the metrics reported without one; ``window_sums`` rows say ``None``.
UNSTAGED = ""
# Stages in pipeline order, then the unstaged: the order of per-stage rows.
STAGE_ORDER = {**{stage: i for i, stage in enumerate(PipelineRun.Stage.values)}, None: len(PipelineRun.Stage.values)}
# A metric's stage as its rollup keys it.
_RAW_STAGE = "COALESCE(stage, '')"
# Each part is summed per group on its own: the statement's final GROUP BY then merges a few rows per
# group instead of hashing every index entry twice. Identifiers come from the models and every value is
# a parameter. ``{bucket}`` is the hour column of a per-hour query (raw parts lie inside one hour, so
# their hour is a parameter) or a constant NULL; ``{stage}`` the stage with ``per_stage``, else NULL. The
# covering indexes carry the stage (migration 0011), so the raw parts stay index-only scans on PostgreSQL.
_RAW_PART = (
    f"SELECT source, {{raw_stage}} AS stage, {{bucket}} AS bucket, {_RAW_SUMS}, COUNT(*) AS reports, "  # noqa: S608
    f'MAX("timestamp") AS newest FROM {_METRICS} WHERE "timestamp" >= %s AND "timestamp" < %s{{source}}{{only_raw}} '
    "GROUP BY source{by_raw_stage}"
)
_ROLLUP_PART = (
    f"SELECT source, {{stage}} AS stage, {{bucket}} AS bucket, {_ROLLUP_SUMS}, MAX(last_report_at) AS newest "  # noqa: S608
    f"FROM {_ROLLUPS} WHERE hour >= %s AND hour < %s{{source}}{{only}} GROUP BY source{{by_stage}}{{by_hour}}"
)
# The hour that holds ``end``, per source: its rollups where nothing of the source in that hour lies at or
# after ``end``, else its raw metrics. Per source, not per rollup: a source's stages share the decision,
# so no report is read from both.
_AHEAD = f"SELECT source FROM {_ROLLUPS} WHERE hour = %s AND (last_report_at IS NULL OR last_report_at >= %s)"  # noqa: S608
_END_HOUR_PART = (
    f"SELECT source, {{stage}} AS stage, {{bucket}} AS bucket, {_ROLLUP_SUMS}, MAX(last_report_at) AS newest "  # noqa: S608
    f"FROM {_ROLLUPS} WHERE hour = %s AND source NOT IN ({_AHEAD}){{source}}{{only}} GROUP BY source{{by_stage}}"
    "\n    UNION ALL\n    "
    f"SELECT source, {{raw_stage}} AS stage, {{bucket}} AS bucket, {_RAW_SUMS}, COUNT(*) AS reports, "
    f'MAX("timestamp") AS newest FROM {_METRICS} WHERE "timestamp" >= %s AND "timestamp" < %s{{source}}{{only_raw}} '
    f"AND source IN ({_AHEAD}) GROUP BY source{{by_raw_stage}}"
)
_MERGED = f"""SELECT {{key}}, {{stage}}, bucket, {", ".join(f"SUM({field})" for field in SUMMED)}, MAX(newest)
FROM ({{parts}}) AS parts
GROUP BY {{group}}"""  # noqa: S608


def _part(template: str, *, source: str | None, stage: str | None, per_stage: bool, bucket: str) -> str:
    return template.format(
        bucket=bucket,
        source=" AND source = %s" if source is not None else "",
        only=" AND stage = %s" if stage is not None else "",
        only_raw=f" AND {_RAW_STAGE} = %s" if stage is not None else "",
        stage="stage" if per_stage else "NULL",
        raw_stage=_RAW_STAGE if per_stage else "NULL",
        by_stage=", stage" if per_stage else "",
        by_raw_stage=f", {_RAW_STAGE}" if per_stage else "",
        by_hour=", hour" if bucket == "hour" else "",
    )


def _parts(
    *, start: datetime, end: datetime, source: str | None, stage: str | None, per_hour: bool, per_stage: bool
) -> tuple[list[str], list[Any]]:
    """The SELECTs whose rows, added up per group (and hour), are the metrics with ``start <= t < end``."""
    only = [source] if source is not None else []
    only += [stage] if stage is not None else []
    part = partial(_part, source=source, stage=stage, per_stage=per_stage)
    start_hour, end_hour = floor_hour(start), floor_hour(end)
    if start_hour == end_hour:
        bucket = "%s" if per_hour else "NULL"
        params = ([start_hour] if per_hour else []) + [start, end, *only]
        return [part(_RAW_PART, bucket=bucket)], params
    parts: list[str] = []
    params: list[Any] = []
    first_whole = start_hour if start == start_hour else start_hour + HOUR
    if first_whole != start_hour:
        parts.append(part(_RAW_PART, bucket="%s" if per_hour else "NULL"))
        params += ([start_hour] if per_hour else []) + [start, first_whole, *only]
    if first_whole < end_hour:
        parts.append(part(_ROLLUP_PART, bucket="hour" if per_hour else "NULL"))
        params += [first_whole, end_hour, *only]
    if end != end_hour:
        bucket = "%s" if per_hour else "NULL"
        parts.append(part(_END_HOUR_PART, bucket=bucket))
        hour_param = [end_hour] if per_hour else []
        params += [*hour_param, end_hour, end_hour, end, *only, *hour_param, end_hour, end, *only, end_hour, end]
    return parts, params


def window_sums(
    *,
    start: datetime,
    end: datetime,
    source: str | None = None,
    stage: str | None = None,
    per_hour: bool = False,
    per_source: bool = True,
    per_stage: bool = False,
) -> list[dict[str, Any]]:
    """Sums of the metrics with ``start <= timestamp < end``: per source (``per_source``, else all sources
    together, ``source`` then ``None``), per stage with ``per_stage``, and per UTC hour with ``per_hour``;
    ``source`` keeps one source, ``stage`` one stage (``UNSTAGED``: the metrics reported without one).

    Each row: ``source``, ``hour`` (the UTC hour's start with ``per_hour``, else ``None``), with
    ``per_stage`` ``stage`` (``None``: unstaged), the four counts, ``reports`` and ``last_updated`` (the
    newest report summed). Only groups with reports; sorted by source, then hour, then stage (pipeline
    order, unstaged last). One statement, so the cost follows the window's length in hours, not the
    number of stored metrics.
    """
    if end <= start:
        return []
    parts, params = _parts(start=start, end=end, source=source, stage=stage, per_hour=per_hour, per_stage=per_stage)
    group = [*(["source"] if per_source else []), *(["stage"] if per_stage else []), "bucket"]
    statement = _MERGED.format(
        key="source" if per_source else "NULL",
        stage="stage" if per_stage else "NULL",
        group=", ".join(group),
        parts="\n    UNION ALL\n    ".join(parts),
    )
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(statement, [adapt(value) if isinstance(value, datetime) else value for value in params])
        rows = cursor.fetchall()
    sums = [
        {
            "source": name,
            **({"stage": stage_name or None} if per_stage else {}),
            "hour": floor_hour(db_moment(hour)) if per_hour else None,
            **dict(zip(SUMMED, map(int, totals), strict=True)),
            "last_updated": db_moment(newest),
        }
        for name, stage_name, hour, *totals, newest in rows
    ]

    # Python's order, not the database collation's: the same order on every backend.
    def order(row: dict[str, Any]) -> tuple:
        stage_rank = STAGE_ORDER[row["stage"]] if per_stage else 0
        return (row["source"] or "", row["hour"] or start, stage_rank)

    return sorted((row for row in sums if row["reports"]), key=order)


def merge(rows: list[dict[str, Any]], *, by: str) -> list[dict[str, Any]]:
    """``window_sums`` rows added up per value of ``by`` (``source`` or ``stage``), in the rows' order of
    first appearance: the counts and reports summed, the newest ``last_updated``."""
    merged: dict[Any, dict[str, Any]] = {}
    for row in rows:
        total = merged.get(row[by])
        if total is None:
            merged[row[by]] = {
                by: row[by],
                **{field: row[field] for field in SUMMED},
                "last_updated": row["last_updated"],
            }
            continue
        for field in SUMMED:
            total[field] += row[field]
        newest = row["last_updated"]
        if newest is not None and (total["last_updated"] is None or newest > total["last_updated"]):
            total["last_updated"] = newest
    return list(merged.values())


def add_up(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The counts and reports of ``rows`` added up (zeros for none)."""
    return {field: sum(row[field] for row in rows) for field in SUMMED}


# The hour holding ``now`` from its raw rows; every earlier hour from the newest rollup before it, whose
# newest report is the newest of all those hours (a report of hour h lies in [h, h + 1 h)) and which
# keeps the hours retention pruned.
_NEWEST = f"""SELECT MAX(newest) FROM (
    SELECT MAX("timestamp") AS newest FROM {_METRICS} WHERE "timestamp" >= %s AND "timestamp" < %s
    UNION ALL
    SELECT MAX(last_report_at) FROM {_ROLLUPS} WHERE hour = (SELECT MAX(hour) FROM {_ROLLUPS} WHERE hour < %s)
) AS newest"""  # noqa: S608


def newest_report(*, now: datetime) -> datetime | None:
    """The newest metric timestamp before ``now``, at any age (pruned reports included)."""
    hour = floor_hour(now)
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(_NEWEST, [adapt(hour), adapt(now), adapt(hour)])
        (newest,) = cursor.fetchone()
    return db_moment(newest)
