"""The operations that write metrics, and their strategies: the ingest API, the ingest service, the ORM, raw
SQL from another program (``INSERT`` / ``UPDATE`` / ``DELETE``; ``COPY`` on PostgreSQL), the original design's
writer, and retention (``prune_metrics``). A metric may have a stage and a run: each writer writes them as it
can (the API and the service check the run; the others write what they are given). The admin's metric
writes are in admin_writes.py, OpenLineage's in run_writes.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import F
from django.utils import timezone
from hypothesis import strategies as st

from monitoring.models import DataQualityMetric
from monitoring.services.metrics import MetricInput, record_metrics
from monitoring.services.retention import prune_metrics
from monitoring.tests.factories import RawDataQualityMetricFactory
from monitoring.tests.truth import oracle
from monitoring.tests.truth.moments import OFFSETS, At, times, written
from monitoring.tests.truth.world import (
    SOURCES,
    STAGES,
    Op,
    Select,
    World,
    copy_rows,
    in_list,
    pick,
    sql_timestamp,
)

METRICS_URL = "/api/v1/monitoring/metrics"


@dataclass(frozen=True)
class Metric:
    source: str
    at: At
    geocoding_attempts: int
    geocoding_successes: int
    validation_attempts: int
    validation_passes: int
    offset: str = "Z"
    metric_type: str = "batch"
    stage: str | None = None
    # Picks the run the metric is linked to (by index into the runs, when there are any); None: no run.
    link: int | None = None

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in oracle.COUNTS}

    def linked(self, world: World) -> tuple[str, int | None, str | None]:
        """(source, run id, stage) as written. A linked metric is of its run's source; it keeps a stage only
        when it has one (then its run's: the API and the admin refuse another), else the writer leaves it
        out (the API and the admin then store the run's, another program stores NULL)."""
        run = world.run_link(self.link)
        if run is None:
            return self.source, None, self.stage
        run_id, source, stage = run
        return source, run_id, stage if self.stage is not None else None

    def fields(self, world: World) -> dict[str, Any]:
        source, run_id, stage = self.linked(world)
        return {
            "timestamp": written(world.at(self.at), self.offset),
            "source": source,
            "metric_type": self.metric_type,
            "run_id": run_id,
            "stage": stage,
            **self.counts(),
        }

    def __repr__(self) -> str:
        link = "" if self.link is None else f" run#{self.link}"
        return (
            f"Metric({self.source} @{self.at!r}{'' if self.offset == 'Z' else ' ' + self.offset} "
            f"g={self.geocoding_successes}/{self.geocoding_attempts} "
            f"v={self.validation_passes}/{self.validation_attempts} {self.metric_type} {self.stage}{link})"
        )


@st.composite
def metric_specs(draw) -> Metric:
    geocoding = draw(st.integers(0, 20))
    validation = draw(st.integers(0, 20))
    return Metric(
        source=draw(st.sampled_from(SOURCES)),
        at=draw(times()),
        geocoding_attempts=geocoding,
        geocoding_successes=draw(st.integers(0, geocoding)),
        validation_attempts=validation,
        validation_passes=draw(st.integers(0, validation)),
        offset=draw(st.sampled_from(list(OFFSETS))),
        metric_type=draw(st.sampled_from(["batch", "hourly"])),
        stage=draw(st.sampled_from(STAGES)),
        link=draw(st.one_of(st.none(), st.integers(0, 20))),
    )


def metric_batches(max_size: int = 5) -> st.SearchStrategy[tuple[Metric, ...]]:
    return st.lists(metric_specs(), min_size=1, max_size=max_size).map(tuple)


# Changes of existing metric rows: (kind, argument).
@dataclass(frozen=True)
class MetricChange:
    kind: str  # shift | source | add | zero_parts | time | stage
    micros: int = 0
    source: str = ""
    part: str = "geocoding"  # geocoding | validation
    attempts: int = 0
    successes: int = 0
    at: At | None = None
    stage: str | None = None

    def columns(self) -> tuple[str, str]:
        return (
            ("geocoding_attempts", "geocoding_successes")
            if self.part == "geocoding"
            else ("validation_attempts", "validation_passes")
        )


SHIFTS = [3_600_000_000, -3_600_000_000, 1, -1, 1_800_000_000, -86_400_000_000, 3_599_999_999, -720 * 3_600_000_000]


@st.composite
def metric_changes(draw) -> MetricChange:
    kind = draw(st.sampled_from(["shift", "source", "add", "zero_parts", "time", "stage"]))
    if kind == "stage":
        return MetricChange(kind, stage=draw(st.sampled_from(STAGES)))
    if kind == "shift":
        return MetricChange(kind, micros=draw(st.sampled_from(SHIFTS)))
    if kind == "source":
        return MetricChange(kind, source=draw(st.sampled_from(SOURCES)))
    if kind == "add":
        attempts = draw(st.integers(0, 9))
        return MetricChange(
            kind,
            part=draw(st.sampled_from(["geocoding", "validation"])),
            attempts=attempts,
            successes=draw(st.integers(0, attempts)),
        )
    if kind == "zero_parts":
        return MetricChange(kind, part=draw(st.sampled_from(["geocoding", "validation"])))
    return MetricChange(kind, at=draw(times()))


@dataclass(frozen=True)
class ApiMetrics(Op):
    """POST /metrics with one object, or with a list."""

    metrics: tuple[Metric, ...]

    def apply(self, world: World) -> None:
        body = [_api_body(m, world) for m in self.metrics]
        response = world.api.post(METRICS_URL, body[0] if len(body) == 1 else body, format="json")
        assert response.status_code == 201, response.content


def _api_body(m: Metric, world: World) -> dict[str, Any]:
    """What a pipeline sends: ``run_id`` and ``stage`` only when it has them (a linked metric without a
    stage takes its run's)."""
    source, run_id, stage = m.linked(world)
    links = {"run_id": run_id, "stage": stage}
    return {
        "source": source,
        "metric_type": m.metric_type,
        "timestamp": written(world.api_time(m.at), m.offset).isoformat(),
        **m.counts(),
        **{name: value for name, value in links.items() if value is not None},
    }


@dataclass(frozen=True)
class ServiceMetrics(Op):
    """``record_metrics`` called directly, as the simulator, the commands and OpenLineage do."""

    metrics: tuple[Metric, ...]

    def apply(self, world: World) -> None:
        inputs = []
        for m in self.metrics:
            source, run_id, stage = m.linked(world)
            at = written(world.api_time(m.at), m.offset)
            inputs.append(
                MetricInput(
                    source=source,
                    timestamp=at,
                    metric_type=m.metric_type,
                    run_id=run_id,
                    stage=stage,
                    **m.counts(),
                )
            )
        record_metrics(metrics=inputs)


@dataclass(frozen=True)
class OrmCreate(Op):
    """``objects.create`` (the factory's create)."""

    metric: Metric

    def apply(self, world: World) -> None:
        RawDataQualityMetricFactory(**self.metric.fields(world))


@dataclass(frozen=True)
class OrmSaveNew(Op):
    """``Model.save()`` of a new instance."""

    metric: Metric

    def apply(self, world: World) -> None:
        RawDataQualityMetricFactory.build(**self.metric.fields(world)).save()


@dataclass(frozen=True)
class OrmBulkCreate(Op):
    metrics: tuple[Metric, ...]

    def apply(self, world: World) -> None:
        DataQualityMetric.objects.bulk_create(
            [RawDataQualityMetricFactory.build(**m.fields(world)) for m in self.metrics]
        )


@dataclass(frozen=True)
class OrmSaveChanged(Op):
    """``Model.save()`` of a changed row: its time, source, counts, stage, run (with its source and stage), or
    all of them."""

    pick: int
    metric: Metric
    what: str  # time | source | counts | stage | link | all

    def apply(self, world: World) -> None:
        pk = pick(World.ids(DataQualityMetric), self.pick)
        if pk is None:
            return
        row = DataQualityMetric.objects.get(pk=pk)
        new = self.metric.fields(world)
        names = {
            "time": ["timestamp"],
            "source": ["source"],
            "counts": list(oracle.COUNTS),
            "stage": ["stage"],
            "link": ["source", "run_id", "stage"],
        }.get(self.what, list(new))
        for name in names:
            setattr(row, name, new[name])
        row.save()


def _orm_metric_update(change: MetricChange, world: World) -> dict[str, Any]:
    if change.kind == "stage":
        return {"stage": change.stage}
    if change.kind == "shift":
        return {"timestamp": F("timestamp") + timedelta(microseconds=change.micros)}
    if change.kind == "source":
        return {"source": change.source}
    attempts, part = change.columns()
    if change.kind == "add":
        return {attempts: F(attempts) + change.attempts, part: F(part) + change.successes}
    if change.kind == "zero_parts":
        return {part: 0}
    return {"timestamp": world.at(change.at)}


@dataclass(frozen=True)
class OrmUpdate(Op):
    """Queryset ``update``: move timestamps (across hours and window edges), change source or counts."""

    rows: Select
    change: MetricChange

    def apply(self, world: World) -> None:
        ids = self.rows.ids(DataQualityMetric)
        DataQualityMetric.objects.filter(pk__in=ids).update(**_orm_metric_update(self.change, world))


@dataclass(frozen=True)
class OrmDelete(Op):
    rows: Select

    def apply(self, world: World) -> None:
        DataQualityMetric.objects.filter(pk__in=self.rows.ids(DataQualityMetric)).delete()


_METRIC_COLUMNS = ('"timestamp"', "source", "metric_type", *oracle.COUNTS, "ingested_at", "run_id", "stage")


def _metric_values(m: Metric, world: World) -> list[Any]:
    at = world.at(m.at)
    source, run_id, stage = m.linked(world)
    return [
        sql_timestamp(at, m.offset),
        source,
        m.metric_type,
        *m.counts().values(),
        sql_timestamp(timezone.now(), "Z"),
        run_id,
        stage,
    ]


@dataclass(frozen=True)
class SqlInsert(Op):
    """Another program's ``INSERT`` (executemany), every column named."""

    metrics: tuple[Metric, ...]

    def apply(self, world: World) -> None:
        placeholders = ", ".join(["%s"] * len(_METRIC_COLUMNS))
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {oracle.METRICS} ({', '.join(_METRIC_COLUMNS)}) VALUES ({placeholders})",
                [_metric_values(m, world) for m in self.metrics],
            )


@dataclass(frozen=True)
class LegacyInsert(Op):
    """The original design's writer: only the counts, metric_type and source; the rest are database defaults."""

    metrics: tuple[Metric, ...]

    def apply(self, world: World) -> None:
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {oracle.METRICS} (geocoding_attempts, geocoding_successes, validation_attempts, "
                "validation_passes, metric_type, source) VALUES (%s, %s, %s, %s, %s, %s)",
                [[*m.counts().values(), m.metric_type, m.source] for m in self.metrics],
            )


@dataclass(frozen=True)
class SqlUpdate(Op):
    rows: Select
    change: MetricChange

    def apply(self, world: World) -> None:
        ids = self.rows.ids(DataQualityMetric)
        if not ids:
            return
        where = f"WHERE id IN ({in_list(ids)})"
        change = self.change
        with connection.cursor() as cursor:
            if change.kind == "shift":
                if connection.vendor == "postgresql":
                    cursor.execute(
                        f'UPDATE {oracle.METRICS} SET "timestamp" = "timestamp" + %s {where}',
                        [timedelta(microseconds=change.micros)],
                    )
                else:  # SQLite has no interval arithmetic on Django's text: the program computes the values
                    cursor.execute(f'SELECT id, "timestamp" FROM {oracle.METRICS} {where}')
                    moved = [
                        [oracle.sqlite_text(oracle.moment(at) + timedelta(microseconds=change.micros)), pk]
                        for pk, at in cursor.fetchall()
                    ]
                    cursor.executemany(f'UPDATE {oracle.METRICS} SET "timestamp" = %s WHERE id = %s', moved)
            elif change.kind == "source":
                cursor.execute(f"UPDATE {oracle.METRICS} SET source = %s {where}", [change.source])
            elif change.kind == "stage":
                cursor.execute(f"UPDATE {oracle.METRICS} SET stage = %s {where}", [change.stage])
            elif change.kind == "add":
                attempts, part = change.columns()
                cursor.execute(
                    f"UPDATE {oracle.METRICS} SET {attempts} = {attempts} + %s, {part} = {part} + %s {where}",
                    [change.attempts, change.successes],
                )
            elif change.kind == "zero_parts":
                cursor.execute(f"UPDATE {oracle.METRICS} SET {change.columns()[1]} = 0 {where}")
            else:
                cursor.execute(
                    f'UPDATE {oracle.METRICS} SET "timestamp" = %s {where}', [sql_timestamp(world.at(change.at), "Z")]
                )


@dataclass(frozen=True)
class SqlDelete(Op):
    rows: Select

    def apply(self, world: World) -> None:
        ids = self.rows.ids(DataQualityMetric)
        if ids:
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {oracle.METRICS} WHERE id IN ({in_list(ids)})")


@dataclass(frozen=True)
class CopyMetrics(Op):
    """PostgreSQL only: ``COPY`` with timestamps as text in their own offset."""

    metrics: tuple[Metric, ...]

    def apply(self, world: World) -> None:
        copy_rows(oracle.METRICS, _METRIC_COLUMNS, [_metric_values(m, world) for m in self.metrics])


@dataclass(frozen=True)
class PruneMetrics(Op):
    cutoff: At

    def apply(self, world: World) -> None:
        cutoff = world.at(self.cutoff)
        world.history.record_prune(before=cutoff)
        prune_metrics(older_than=cutoff)
        assert oracle.count_metrics_before(cutoff) == 0, "prune_metrics left metrics older than its cutoff"
