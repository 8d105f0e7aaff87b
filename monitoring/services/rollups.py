"""Hourly rollups: ingest adds each batch's sums to its (source, hour) rows in the same transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import connection

from monitoring.models import DataQualityMetric, HourlyRollup
from monitoring.models.metrics import COUNT_FIELDS

_COLUMNS = (*COUNT_FIELDS, "reports")
_CHUNK = 500


def _upsert_sql(rows: int) -> str:
    table = HourlyRollup._meta.db_table
    columns = ("source", "hour", *_COLUMNS, "last_report_at")
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * rows)
    increments = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in _COLUMNS)
    # CASE rather than GREATEST/MAX: the same in both databases, and a NULL never wins.
    newest = (
        f"last_report_at = CASE WHEN {table}.last_report_at IS NULL"
        f" OR excluded.last_report_at > {table}.last_report_at"
        f" THEN excluded.last_report_at ELSE {table}.last_report_at END"
    )
    # ON CONFLICT ... DO UPDATE is the same in PostgreSQL and SQLite (>= 3.24): one statement, no race.
    # Identifiers come from the model; every value is a parameter.
    insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {placeholders} "  # noqa: S608
    return insert + f"ON CONFLICT (source, hour) DO UPDATE SET {increments}, {newest}"


def add_to_rollups(*, rows: Iterable[DataQualityMetric]) -> None:
    sums: dict[tuple[str, object], list[int]] = defaultdict(lambda: [0] * len(_COLUMNS))
    newest: dict[tuple[str, object], datetime] = {}
    for row in rows:
        # Hours are UTC hours: an offset like +05:30 would otherwise land between two buckets.
        at = row.timestamp.astimezone(UTC)
        key = (row.source, at.replace(minute=0, second=0, microsecond=0))
        bucket = sums[key]
        for i, field in enumerate(COUNT_FIELDS):
            bucket[i] += getattr(row, field)
        bucket[-1] += 1
        newest[key] = max(newest.get(key, at), at)
    # A fixed order takes row locks in the same order in every transaction: no deadlocks between batches.
    ordered = sorted(sums.items(), key=lambda item: (item[0][0], item[0][1]))
    with connection.cursor() as cursor:
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start : start + _CHUNK]
            params = [
                value
                for (source, hour), totals in chunk
                for value in (
                    source,
                    connection.ops.adapt_datetimefield_value(hour),
                    *totals,
                    connection.ops.adapt_datetimefield_value(newest[(source, hour)]),
                )
            ]
            cursor.execute(_upsert_sql(len(chunk)), params)
