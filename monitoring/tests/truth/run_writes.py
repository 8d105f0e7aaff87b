"""The operations that write pipeline runs, and their strategies: the ingest API (new runs, finishing
running ones), OpenLineage run events (a run, and the metric of its counts facet, linked to it), the ORM,
raw SQL from another program (``COPY`` on PostgreSQL) and retention (``prune_runs``). Deleting a run
through Django unlinks its metrics (an ``UPDATE`` of the metrics); another program's ``DELETE`` leaves their
``run_id``. The admin's run writes are in admin_writes.py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Case, F, Value, When
from django.db.models.functions import Greatest
from hypothesis import strategies as st

from monitoring.models import PipelineRun
from monitoring.services.retention import prune_runs
from monitoring.tests.factories import RawPipelineRunFactory
from monitoring.tests.openlineage.spec_examples import pipeline_counts, run_event
from monitoring.tests.truth import oracle
from monitoring.tests.truth.moments import OLD, At
from monitoring.tests.truth.world import SOURCES, Op, Select, World, copy_rows, in_list, pick, sql_timestamp

RUNS_URL = "/api/v1/monitoring/runs"
OPENLINEAGE_URL = "/api/v1/monitoring/openlineage"


@dataclass(frozen=True)
class Run:
    source: str
    stage: str
    status: str
    t1: At
    t2: At
    error: str = ""
    items_in: int = 0
    items_out: int = 0

    def fields(self, world: World) -> dict[str, Any]:
        started, finished = sorted([world.run_time(self.t1), world.run_time(self.t2)])
        return {
            "source": self.source,
            "stage": self.stage,
            "status": self.status,
            "started_at": started,
            "finished_at": None if self.status == "running" else finished,
            "items_in": self.items_in,
            "items_out": self.items_out,
            "error": self.error,
        }

    def __repr__(self) -> str:
        error = f" {self.error!r}" if self.error else ""
        return f"Run({self.source}/{self.stage} {self.status} {self.t1!r}..{self.t2!r}{error})"


ERRORS = ["", "HTTP 503", "timeout", "parse error"]


# Run times: the edges of the status windows, of the run timeout (6 h) and of retirement (7 days, never
# exactly on it), and old ones for retention.
RUN_ANCHORS = [
    "now",
    "now-6h",
    "now-1h",
    "now-2h",
    "now-24h",
    "now-25h",
    "now-167h",
    "now-169h",
    "now-720h",
    "hour+0",
    "hour-1",
    "day-1",
    *OLD,
]


def run_times() -> st.SearchStrategy[At]:
    return st.one_of(
        st.builds(At, st.sampled_from(RUN_ANCHORS), st.sampled_from([0, 1, -1])),
        st.builds(At, st.sampled_from(RUN_ANCHORS[:6]), st.sampled_from([-1_800_000_000, -1_000_000])),
    )


@st.composite
def run_specs(draw) -> Run:
    status = draw(st.sampled_from(["succeeded", "failed", "running"]))
    items_in = draw(st.integers(0, 5))
    return Run(
        source=draw(st.sampled_from(SOURCES)),
        stage=draw(st.sampled_from(["scrape", "scrape", "scrape", "validate", "geocode"])),
        status=status,
        t1=draw(run_times()),
        t2=draw(run_times()),
        error=draw(st.sampled_from(ERRORS)) if status == "failed" else "",
        items_in=items_in,
        items_out=draw(st.integers(0, items_in)),
    )


@dataclass(frozen=True)
class RunChange:
    kind: str  # finish | reopen | error | source | stage | shift_back | flip
    status: str = "succeeded"
    at: At | None = None
    text: str = ""
    micros: int = 0


@st.composite
def run_changes(draw) -> RunChange:
    kind = draw(st.sampled_from(["finish", "reopen", "error", "source", "stage", "shift_back", "flip"]))
    if kind == "finish":
        return RunChange(
            kind,
            status=draw(st.sampled_from(["succeeded", "failed"])),
            at=draw(run_times()),
            text=draw(st.sampled_from(ERRORS)),
        )
    if kind == "error":
        return RunChange(kind, text=draw(st.sampled_from(ERRORS)))
    if kind == "source":
        return RunChange(kind, text=draw(st.sampled_from(SOURCES)))
    if kind == "stage":
        return RunChange(kind, text=draw(st.sampled_from(["scrape", "validate", "geocode"])))
    if kind == "shift_back":
        return RunChange(kind, micros=draw(st.sampled_from([1, 3_600_000_000, 6 * 3_600_000_000, 24 * 3_600_000_000])))
    return RunChange(kind)


def _running(ids: list[int]) -> list[int]:
    return list(PipelineRun.objects.filter(pk__in=ids, status="running").order_by("pk").values_list("pk", flat=True))


def _finished(ids: list[int]) -> list[int]:
    return list(
        PipelineRun.objects.filter(pk__in=ids).exclude(status="running").order_by("pk").values_list("pk", flat=True)
    )


@dataclass(frozen=True)
class ApiRun(Op):
    run: Run

    def apply(self, world: World) -> None:
        fields = self.run.fields(world)
        body = {key: value for key, value in fields.items() if value is not None}
        for key in ("started_at", "finished_at"):
            if key in body:
                body[key] = body[key].isoformat()
        response = world.api.post(RUNS_URL, body, format="json")
        assert response.status_code == 201, response.content


@dataclass(frozen=True)
class ApiFinish(Op):
    pick: int
    status: str
    at: At
    error: str

    def apply(self, world: World) -> None:
        pk = pick(_running(World.ids(PipelineRun)), self.pick)
        if pk is None:
            return
        started = PipelineRun.objects.get(pk=pk).started_at
        finished = max(started, world.run_time(self.at))
        body = {"status": self.status, "finished_at": finished.isoformat(), "error": self.error}
        response = world.api.post(f"{RUNS_URL}/{pk}/finish", body, format="json")
        assert response.status_code == 200, response.content


@dataclass(frozen=True)
class OrmRunCreate(Op):
    run: Run
    how: str  # create | save

    def apply(self, world: World) -> None:
        if self.how == "create":
            RawPipelineRunFactory(**self.run.fields(world))
        else:
            RawPipelineRunFactory.build(**self.run.fields(world)).save()


@dataclass(frozen=True)
class OrmRunBulkCreate(Op):
    runs: tuple[Run, ...]

    def apply(self, world: World) -> None:
        PipelineRun.objects.bulk_create([RawPipelineRunFactory.build(**r.fields(world)) for r in self.runs])


@dataclass(frozen=True)
class OrmRunSaveChanged(Op):
    """``Model.save()`` of a changed run (every field from the spec)."""

    pick: int
    run: Run

    def apply(self, world: World) -> None:
        pk = pick(World.ids(PipelineRun), self.pick)
        if pk is None:
            return
        row = PipelineRun.objects.get(pk=pk)
        for name, value in self.run.fields(world).items():
            setattr(row, name, value)
        row.save()


def _run_rows_for(change: RunChange, ids: list[int]) -> list[int]:
    if change.kind == "finish":
        return _running(ids)
    if change.kind in ("reopen", "flip"):
        return _finished(ids)
    return ids


@dataclass(frozen=True)
class OrmRunUpdate(Op):
    rows: Select
    change: RunChange

    def apply(self, world: World) -> None:
        change = self.change
        ids = _run_rows_for(change, self.rows.ids(PipelineRun))
        queryset = PipelineRun.objects.filter(pk__in=ids)
        if change.kind == "finish":
            queryset.update(
                status=change.status,
                finished_at=Greatest(F("started_at"), Value(world.run_time(change.at))),
                error=change.text,
            )
        elif change.kind == "reopen":
            queryset.update(status="running", finished_at=None)
        elif change.kind == "error":
            queryset.update(error=change.text)
        elif change.kind == "source":
            queryset.update(source=change.text)
        elif change.kind == "stage":
            queryset.update(stage=change.text)
        elif change.kind == "shift_back":
            back = timedelta(microseconds=change.micros)
            queryset.update(started_at=F("started_at") - back, finished_at=F("finished_at") - back)
        else:
            queryset.update(
                status=Case(When(status="failed", then=Value("succeeded")), default=Value("failed")),
            )


@dataclass(frozen=True)
class OrmRunDelete(Op):
    rows: Select

    def apply(self, world: World) -> None:
        PipelineRun.objects.filter(pk__in=self.rows.ids(PipelineRun)).delete()


_RUN_COLUMNS = ("source", "stage", "status", "started_at", "finished_at", "items_in", "items_out", "error")


def _run_values(run: Run, world: World, offset: str = "Z") -> list[Any]:
    fields = run.fields(world)
    return [
        sql_timestamp(value, offset) if isinstance(value, datetime) else value
        for value in (fields[column] for column in _RUN_COLUMNS)
    ]


@dataclass(frozen=True)
class SqlRunInsert(Op):
    runs: tuple[Run, ...]
    offset: str

    def apply(self, world: World) -> None:
        placeholders = ", ".join(["%s"] * len(_RUN_COLUMNS))
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {oracle.RUNS} ({', '.join(_RUN_COLUMNS)}) VALUES ({placeholders})",
                [_run_values(r, world, self.offset) for r in self.runs],
            )


@dataclass(frozen=True)
class SqlRunUpdate(Op):
    rows: Select
    change: RunChange

    def apply(self, world: World) -> None:
        change = self.change
        ids = _run_rows_for(change, self.rows.ids(PipelineRun))
        if not ids:
            return
        where = f"WHERE id IN ({in_list(ids)})"
        table = oracle.RUNS
        with connection.cursor() as cursor:
            if change.kind == "finish":
                at = sql_timestamp(world.run_time(change.at), "Z")
                cursor.execute(
                    f"UPDATE {table} SET status = %s, error = %s, "
                    f"finished_at = CASE WHEN started_at > %s THEN started_at ELSE %s END {where}",
                    [change.status, change.text, at, at],
                )
            elif change.kind == "reopen":
                cursor.execute(f"UPDATE {table} SET status = 'running', finished_at = NULL {where}")
            elif change.kind in ("error", "source", "stage"):
                cursor.execute(f"UPDATE {table} SET {change.kind} = %s {where}", [change.text])
            elif change.kind == "shift_back":
                back = timedelta(microseconds=change.micros)
                cursor.execute(f"SELECT id, started_at, finished_at FROM {table} {where}")
                moved = [
                    [
                        sql_timestamp(oracle.moment(started) - back, "Z"),
                        None if finished is None else sql_timestamp(oracle.moment(finished) - back, "Z"),
                        pk,
                    ]
                    for pk, started, finished in cursor.fetchall()
                ]
                cursor.executemany(f"UPDATE {table} SET started_at = %s, finished_at = %s WHERE id = %s", moved)
            else:
                cursor.execute(
                    f"UPDATE {table} SET status = CASE WHEN status = 'failed' THEN 'succeeded' ELSE 'failed' END "
                    + where
                )


@dataclass(frozen=True)
class SqlRunDelete(Op):
    rows: Select

    def apply(self, world: World) -> None:
        ids = self.rows.ids(PipelineRun)
        if ids:
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {oracle.RUNS} WHERE id IN ({in_list(ids)})")


@dataclass(frozen=True)
class CopyRuns(Op):
    """PostgreSQL only."""

    runs: tuple[Run, ...]
    offset: str

    def apply(self, world: World) -> None:
        copy_rows(oracle.RUNS, _RUN_COLUMNS, [_run_values(r, world, self.offset) for r in self.runs])


@dataclass(frozen=True)
class PruneRuns(Op):
    cutoff: At

    def apply(self, world: World) -> None:
        cutoff = world.at(self.cutoff)
        prune_runs(older_than=cutoff)
        assert not PipelineRun.objects.filter(finished_at__lt=cutoff).exists(), "prune_runs left old finished runs"


@dataclass(frozen=True)
class OpenLineageRun(Op):
    """POST openlineage: a START and its end event (COMPLETE or FAIL) with the counts facet, for the job
    ``<source>.<stage>`` (the default mapping). The end records one metric of the run's counts, linked to the
    run and of its stage. Equal ``number``s are the same OpenLineage run: a repeat changes nothing."""

    run: Run
    number: int
    counts: tuple[int, int, int, int]

    def apply(self, world: World) -> None:
        started, ended = sorted(min(world.run_time(at), world.api_time(at)) for at in (self.run.t1, self.run.t2))
        run_id = str(uuid.UUID(int=self.number + 1))
        job = f"{self.run.source}.{self.run.stage}"
        facet = pipeline_counts(**dict(zip(oracle.COUNTS, self.counts, strict=True)))
        end = "FAIL" if self.run.status == "failed" else "COMPLETE"
        events = [
            run_event("START", run_id=run_id, at=started, name=job),
            run_event(end, run_id=run_id, at=ended, name=job, run_facets=facet),
        ]
        response = world.api.post(OPENLINEAGE_URL, events, format="json")
        assert response.status_code == 200, response.content


@st.composite
def openlineage_runs(draw) -> OpenLineageRun:
    geocoding, validation = draw(st.integers(0, 20)), draw(st.integers(0, 20))
    counts = (geocoding, draw(st.integers(0, geocoding)), validation, draw(st.integers(0, validation)))
    return OpenLineageRun(run=draw(run_specs()), number=draw(st.integers(0, 3)), counts=counts)
