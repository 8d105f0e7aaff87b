"""The oracle of the truth tests: what the product must show, computed with plain SQL over the raw tables.

Nothing here calls the product (no selectors, rollups, windows or services): every figure is a
``SUM / COUNT / MAX ... WHERE ... GROUP BY`` (by source, by stage: a metric's own ``stage`` column, '' when
it has none) over ``monitoring_dataqualitymetric`` or
``monitoring_pipelinerun``, written out below, plus a little Python that follows the written
definitions (docs/status.md, docs/trends.md) to put hours into buckets and periods.

Windows are half-open: a window of W hours at ``now`` holds ``now - W <= timestamp < now``; the UTC hour
``h`` holds ``h <= timestamp < h + 1 h``.

Timestamps as parameters: aware datetimes on PostgreSQL; on SQLite the text Django stores
(``YYYY-MM-DD HH:MM:SS[.ffffff]``, UTC), which compares as text.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection

METRICS = "monitoring_dataqualitymetric"
RUNS = "monitoring_pipelinerun"
COUNTS = ("geocoding_attempts", "geocoding_successes", "validation_attempts", "validation_passes")
SUMMED = (*COUNTS, "reports")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def floor_day(moment: datetime) -> datetime:
    return floor_hour(moment).replace(hour=0)


def sqlite_text(moment: datetime) -> str:
    """Django's SQLite storage format for an aware datetime: UTC, microseconds only when not zero."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{utc.microsecond:06d}" if utc.microsecond else text


def param(moment: datetime) -> Any:
    """A timestamp as a query parameter of this database."""
    if connection.vendor == "sqlite":
        return sqlite_text(moment)
    return moment.astimezone(UTC)


def moment(value: Any) -> datetime | None:
    """A timestamp read back with raw SQL (datetime on PostgreSQL, text on SQLite) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _query(sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


def _hour_expression() -> str:
    """The start of the UTC hour of ``timestamp``, as SQL of this database."""
    if connection.vendor == "postgresql":
        return "date_trunc('hour', \"timestamp\" AT TIME ZONE 'UTC')"
    return "strftime('%%Y-%%m-%%d %%H:00:00', \"timestamp\")"


# --------------------------------------------------------------------------------------------- metrics

_SUMS = ", ".join(f"SUM({c})" for c in COUNTS)


def metric_window_by_source(*, start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
    """Per source: the four sums, reports and newest timestamp of the metrics with ``start <= t < end``."""
    rows = _query(
        f'SELECT source, {_SUMS}, COUNT(*), MAX("timestamp") FROM {METRICS} '
        'WHERE "timestamp" >= %s AND "timestamp" < %s GROUP BY source',
        [param(start), param(end)],
    )
    return {
        source: {**dict(zip(SUMMED, map(int, sums), strict=True)), "newest": moment(newest)}
        for source, *sums, newest in rows
    }


# A metric's stage as the product reports it: its own, or '' for one reported without (null in the status).
_STAGE = "COALESCE(stage, '')"


def metric_window_by_stage(*, start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
    """Per stage ('' for none): the four sums, reports and newest timestamp of the metrics with
    ``start <= t < end``."""
    rows = _query(
        f'SELECT {_STAGE}, {_SUMS}, COUNT(*), MAX("timestamp") FROM {METRICS} '
        f'WHERE "timestamp" >= %s AND "timestamp" < %s GROUP BY {_STAGE}',
        [param(start), param(end)],
    )
    return {
        stage: {**dict(zip(SUMMED, map(int, sums), strict=True)), "newest": moment(newest)}
        for stage, *sums, newest in rows
    }


def newest_metric_before(end: datetime) -> datetime | None:
    ((newest,),) = _query(f'SELECT MAX("timestamp") FROM {METRICS} WHERE "timestamp" < %s', [param(end)])
    return moment(newest)


Hours = dict[tuple[str, str, datetime], tuple[int, ...]]


def metric_hours(*, before: datetime | None = None) -> Hours:
    """(source, stage ('' for none), UTC hour) -> (four sums, reports) of the raw metrics, optionally only
    ``timestamp < before``."""
    where, params = ("", []) if before is None else ('WHERE "timestamp" < %s', [param(before)])
    hour = _hour_expression()
    rows = _query(
        f"SELECT source, {_STAGE}, {hour}, {_SUMS}, COUNT(*) FROM {METRICS} {where} GROUP BY source, {_STAGE}, {hour}",
        params,
    )
    return {(source, stage, moment(at)): tuple(int(v) for v in sums) for source, stage, at, *sums in rows}


def count_metrics_before(end: datetime) -> int:
    ((count,),) = _query(f'SELECT COUNT(*) FROM {METRICS} WHERE "timestamp" < %s', [param(end)])
    return int(count)


@dataclass
class History:
    """What retention removed: per (source, stage, hour) sums, and the newest pruned timestamp."""

    pruned: Counter = field(default_factory=Counter)  # (source, stage, hour, column index) -> sum
    newest_pruned: datetime | None = None

    def record_prune(self, *, before: datetime) -> None:
        """Called just before ``prune_metrics(older_than=before)``: remember what it is about to delete."""
        for key, sums in metric_hours(before=before).items():
            for i, value in enumerate(sums):
                self.pruned[(*key, i)] += value
        newest = newest_metric_before(before)
        if newest is not None and (self.newest_pruned is None or newest > self.newest_pruned):
            self.newest_pruned = newest

    def hours(self) -> Hours:
        """Raw metrics plus pruned ones, per (source, stage, UTC hour): the hourly history that must be kept."""
        merged: dict[tuple[str, str, datetime], list[int]] = defaultdict(lambda: [0] * len(SUMMED))
        for key, sums in metric_hours().items():
            for i, value in enumerate(sums):
                merged[key][i] += value
        for (source, stage, hour, i), value in self.pruned.items():
            merged[(source, stage, hour)][i] += value
        return {key: tuple(sums) for key, sums in merged.items()}


def sum_hours(
    hours: Hours, *, start: datetime, end: datetime, source: str | None, stage: str | None = None
) -> dict[str, int]:
    """Sums of the hours ``start <= hour < end`` (all sources, or one; every stage, or one: '' for none)."""
    totals = [0] * len(SUMMED)
    for (row_source, row_stage, hour), sums in hours.items():
        if start <= hour < end and source in (None, row_source) and stage in (None, row_stage):
            for i, value in enumerate(sums):
                totals[i] += value
    return dict(zip(SUMMED, totals, strict=True))


# ------------------------------------------------------------------------------------------------ runs

_SCRAPE = "'scrape'"


def scraping_by_source(*, now: datetime, window_hours: int, retire: timedelta, timeout: timedelta) -> dict:
    """Per known source, the scraping-health figures. Known: a scrape run started less than ``retire`` before
    ``now`` (docs/status.md: a source with no run for that long leaves the list)."""
    known = [
        source
        for (source,) in _query(
            f"SELECT DISTINCT source FROM {RUNS} WHERE stage = {_SCRAPE} AND started_at > %s",
            [param(now - retire)],
        )
    ]
    last_run = dict(_query(f"SELECT source, MAX(started_at) FROM {RUNS} WHERE stage = {_SCRAPE} GROUP BY source"))
    last_success = dict(
        _query(
            f"SELECT source, MAX(finished_at) FROM {RUNS} "
            f"WHERE stage = {_SCRAPE} AND status = 'succeeded' GROUP BY source"
        )
    )
    last_failure: dict[str, tuple[Any, str]] = {}
    for source, finished_at, error in _query(
        f"SELECT source, finished_at, error FROM {RUNS} WHERE stage = {_SCRAPE} AND status = 'failed' "
        "ORDER BY source, finished_at DESC, id DESC"
    ):
        last_failure.setdefault(source, (finished_at, error))
    in_window = {
        source: (int(finished), int(failed))
        for source, finished, failed in _query(
            f"SELECT source, COUNT(*), SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) FROM {RUNS} "
            f"WHERE stage = {_SCRAPE} AND status IN ('succeeded', 'failed') "
            "AND finished_at >= %s AND finished_at < %s GROUP BY source",
            [param(now - timedelta(hours=window_hours)), param(now)],
        )
    }
    running = {
        source: (int(count), int(stuck))
        for source, count, stuck in _query(
            f"SELECT source, COUNT(*), SUM(CASE WHEN started_at <= %s THEN 1 ELSE 0 END) FROM {RUNS} "
            f"WHERE stage = {_SCRAPE} AND status = 'running' GROUP BY source",
            [param(now - timeout)],
        )
    }
    result = {}
    for source in sorted(known):
        failure_at, error = last_failure.get(source, (None, ""))
        finished, failed = in_window.get(source, (0, 0))
        count, stuck = running.get(source, (0, 0))
        result[source] = {
            "last_run": moment(last_run[source]),
            "last_success": moment(last_success.get(source)),
            "last_failure": moment(failure_at),
            "last_error": error,
            "finished_runs": finished,
            "failed_runs": failed,
            "running_runs": count,
            "stuck_runs": stuck,
        }
    return result


def finished_runs_by_stage(*, start: datetime, end: datetime) -> dict[str, dict[str, tuple[int, int]]]:
    """stage -> source -> (finished, failed) of the runs with ``start <= finished_at < end``."""
    result: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for stage, source, finished, failed in _query(
        f"SELECT stage, source, COUNT(*), SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) FROM {RUNS} "
        "WHERE status IN ('succeeded', 'failed') AND finished_at >= %s AND finished_at < %s "
        "GROUP BY stage, source",
        [param(start), param(end)],
    ):
        result[stage][source] = (int(finished), int(failed))
    return result
