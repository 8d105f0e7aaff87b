"""Every number derived from the metrics and the runs equals plain SQL over the raw rows, whoever wrote them.

Hypothesis generates a list of writes and applies them in order: the ingest API (metrics, runs, finishing
runs), the ingest service, OpenLineage run events (a run and the metric of its counts facet), the ORM
(``save`` of new and changed rows, ``objects.create``, ``bulk_create``, queryset ``update`` and
``delete``), raw SQL from another program (``INSERT`` / ``UPDATE`` / ``DELETE``; ``COPY`` on PostgreSQL),
the original design's writer (an ``INSERT`` naming only the counts, ``metric_type`` and ``source``:
everything else is a database default, the timestamp the current time), the Django admin (add, change,
delete) and retention (``prune_metrics`` / ``prune_runs``, which delete raw rows but keep their hours in
the history). Times sit on and around the window edges (``now - W``), UTC hour and day edges (exactly,
±1 µs), the partial first and last hours, ``now`` and just before it, and 700-800 h back (for retention);
some are written with a +05:30 / -03:00 offset. Three sources, so groups collide. A metric may have a
stage (or none) and a run; updates move metrics between stages, and deleting or pruning a run unlinks its
metrics.

After ``Check`` operations and at the end of every example, the product's figures are compared with the
oracle (``truth/oracle.py``: SQL aggregates over the raw tables, plus what retention removed):

1. ``pipeline_status``: ``data_quality`` totals, ``by_source`` and ``by_stage`` for W in 1, 2, 24, 25, 720 h;
2. the alert rules' inputs (``gather_inputs``): metric sums and finished / failed run counts of the
   current and previous 1 h and 24 h windows;
3. ``trends``: every bucket (hour, day) and the current / previous periods, all sources and one, every
   stage and one;
4. the anomaly detector's hourly series (the ``HourCounts`` per source and hour);
5. ``scraping_health`` per source against the runs table.

Windows are half-open, ``now - W <= t < now``; an hour ``h`` holds ``h <= t < h + 1 h``.

The times, writers, checks and oracle live in the ``truth`` package next to this file; here are the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, Phase, example, given
from hypothesis import settings as hypothesis_settings

from monitoring.models import DataQualityMetric, PipelineRun
from monitoring.services.retention import RetentionTooShort, prune_metrics, prune_runs
from monitoring.tests.factories import RawDataQualityMetricFactory, RawPipelineRunFactory
from monitoring.tests.truth.admin_writes import AdminMetricAdd, AdminRunAdd
from monitoring.tests.truth.checks import FinalCheck, final_checks
from monitoring.tests.truth.metric_writes import (
    ApiMetrics,
    CopyMetrics,
    LegacyInsert,
    Metric,
    MetricChange,
    OrmCreate,
    OrmUpdate,
    PruneMetrics,
    ServiceMetrics,
    SqlInsert,
)
from monitoring.tests.truth.moments import At, Now, nows
from monitoring.tests.truth.run_writes import (
    ApiRun,
    CopyRuns,
    OpenLineageRun,
    OrmRunCreate,
    OrmRunDelete,
    PruneRuns,
    Run,
    SqlRunInsert,
)
from monitoring.tests.truth.sequences import operations
from monitoring.tests.truth.world import Op, Select, World, note

pytestmark = pytest.mark.django_db


HYPOTHESIS = {
    "deadline": None,
    "database": None,  # pytest.ini runs with -p no:cacheprovider: no example database either
    # No explain phase: it replays a failure for minutes and adds little to the operations noted below.
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
}


@pytest.fixture
def admin_browser(django_user_model) -> tuple[Client, Any]:
    user = django_user_model.objects.create_superuser("truth-admin", password="pw")
    browser = Client()
    browser.force_login(user)
    return browser, user


def _run_example(ingest_client, admin_browser, now_spec: Now, ops: list[Op], final: FinalCheck) -> None:
    cache.clear()
    now = now_spec.resolve(timezone.now())
    # The falsifying example, written out here: with the schemathesis plugin loaded, pytest shows
    # Hypothesis's own "Failing test case" arguments empty.
    note(f"now_spec = {now_spec!r}: now = {now.isoformat()}")
    for i, op in enumerate(ops):
        note(f"ops[{i}] = {op!r}")
    note(f"final = {final!r}")
    browser, user = admin_browser
    # Each example in a savepoint of the test's transaction, rolled back: examples never see each other's rows.
    with transaction.atomic():
        try:
            world = World(now=now, api=ingest_client, admin_client=browser, superuser=user)
            for op in ops:
                op.apply(world)
            final.apply(world)
        finally:
            transaction.set_rollback(True)


# Pinned cases: one row written by each kind of writer well inside the 1 h window (not on its edge), and
# runs written around the ingest service.
_INSIDE = At("now", -1_800_000_000)


PINNED = [
    [OrmCreate(Metric("acled", _INSIDE, 10, 9, 10, 8))],
    [SqlInsert((Metric("gdelt", _INSIDE, 7, 7, 3, 1, "+05:30"),))],
    [LegacyInsert((Metric("ucdp", _INSIDE, 4, 2, 4, 4),))],
    [
        ApiMetrics((Metric("acled", _INSIDE, 5, 5, 5, 5),)),
        OrmUpdate(Select((0,)), MetricChange("shift", micros=-3_600_000_000)),
    ],
    [
        OrmRunCreate(Run("acled", "scrape", "failed", At("now-1h", 1), _INSIDE, "HTTP 503"), "create"),
        SqlRunInsert((Run("gdelt", "scrape", "running", At("now", -7 * 3_600_000_000), At("now")),), "Z"),
        AdminRunAdd(Run("ucdp", "scrape", "succeeded", At("now-2h"), _INSIDE)),
    ],
    # Metrics linked to runs (their stage taken from the run, or given), one of the counts facet of an
    # OpenLineage run, one of a stage without a run; then a run is deleted (its metrics are unlinked).
    [
        ApiRun(Run("acled", "geocode", "running", At("now-2h"), _INSIDE)),
        ApiMetrics(
            (
                Metric("acled", _INSIDE, 5, 4, 5, 5, link=0),
                Metric("gdelt", _INSIDE, 3, 3, 0, 0, "Z", "batch", "validate"),
            )
        ),
        OpenLineageRun(Run("gdelt", "validate", "succeeded", At("now-2h"), _INSIDE), 0, (9, 8, 7, 6)),
        ServiceMetrics((Metric("ucdp", _INSIDE, 2, 1, 2, 2, stage="geocode", link=1),)),
        AdminMetricAdd(Metric("acled", _INSIDE, 4, 4, 4, 4, link=0)),
        OrmRunDelete(Select((0,))),
    ],
    # Linked metrics 750 h back: pruned, then their run pruned; their stage stays in the hourly history.
    [
        ApiRun(Run("acled", "scrape", "succeeded", At("now-750h"), At("now-750h", 1))),
        ApiMetrics((Metric("acled", At("now-750h"), 6, 5, 0, 0, link=0),)),
        PruneMetrics(At("now-722h")),
        PruneRuns(At("now-722h")),
    ],
]


def _pinned(test):
    for ops in PINNED:
        test = example(now_spec=Now("live", micros=120_000_000), ops=ops, final=FinalCheck("acled", At("hour+0")))(test)
    return test


# A failure's shrinking may take Hypothesis's own 5-minute limit; the timeout leaves room for it.
@pytest.mark.timeout(600)
@hypothesis_settings(max_examples=150, **HYPOTHESIS)
@given(now_spec=nows(), ops=operations(postgres=False), final=final_checks())
@_pinned
def test_status_rollups_trends_and_scraping_equal_raw_sql_whoever_wrote_the_rows(
    ingest_client, admin_browser, now_spec, ops, final
):
    _run_example(ingest_client, admin_browser, now_spec, ops, final)


@pytest.mark.postgres
@pytest.mark.timeout(600)
@hypothesis_settings(max_examples=80, **HYPOTHESIS)
@given(now_spec=nows(), ops=operations(postgres=True), final=final_checks())
@example(
    now_spec=Now("live", micros=120_000_000),
    ops=[
        CopyMetrics(
            (
                Metric("gdelt", _INSIDE, 7, 6, 5, 5, "+05:30", stage="geocode"),
                Metric("acled", At("now-24h"), 2, 1, 2, 2),
            )
        ),
        CopyRuns((Run("acled", "scrape", "failed", At("now-2h"), _INSIDE, "timeout"),), "-03:00"),
    ],
    final=FinalCheck("gdelt", At("hour+0")),
)
def test_rows_copied_in_by_another_program_count_like_every_other_write_on_postgresql(
    ingest_client, admin_browser, now_spec, ops, final
):
    _run_example(ingest_client, admin_browser, now_spec, ops, final)


def test_retention_keeps_the_hourly_history_and_the_newest_report_when_it_prunes_every_raw_row(
    ingest_client, admin_browser
):
    """docs/status.md: ``last_updated`` is null only when there has never been a report; docs/trends.md:
    pruned hours stay in the trends (and in the anomaly series)."""
    ops = [
        ApiMetrics((Metric("gdelt", At("now-750h", -1), 5, 4, 5, 5), Metric("acled", At("now-800h"), 3, 3, 0, 0))),
        PruneMetrics(At("now-722h")),
    ]
    _run_example(ingest_client, admin_browser, Now("past", 2, 1_800_000_000), ops, FinalCheck("gdelt", At("hour+0")))


def _rows_on_each_side_of(cutoff: datetime) -> None:
    """A metric and a finished run 1 µs older than the cutoff, and one of each exactly on it."""
    for at in (cutoff - timedelta(microseconds=1), cutoff):
        RawDataQualityMetricFactory(timestamp=at)
        RawPipelineRunFactory(started_at=at, finished_at=at)


def _prune_at(prune: Callable[..., int], *, now: datetime, hours_back: float) -> int:
    """Prune with the clock stopped at ``now``, so that a cutoff exactly on the window's edge stays on it."""
    with mock.patch("django.utils.timezone.now", return_value=now):
        return prune(older_than=now - timedelta(hours=hours_back))


PRUNES = pytest.mark.parametrize(
    ("prune", "model"), [(prune_metrics, DataQualityMetric), (prune_runs, PipelineRun)], ids=["metrics", "runs"]
)


# The longest status window is 720 h (monitoring.selectors.MAX_WINDOW_HOURS): a row older than that is in
# no status window, so retention may delete it; a newer one would be missing from a window that counts it.
@PRUNES
@pytest.mark.parametrize("hours_back", [1, 719.5])
def test_retention_refuses_a_cutoff_inside_the_longest_status_window(prune, model, hours_back: float):
    now = timezone.now()
    _rows_on_each_side_of(now - timedelta(hours=hours_back))
    with pytest.raises(RetentionTooShort):
        _prune_at(prune, now=now, hours_back=hours_back)
    assert DataQualityMetric.objects.count() == 2
    assert PipelineRun.objects.count() == 2


@PRUNES
@pytest.mark.parametrize("hours_back", [720, 720.5])
def test_retention_accepts_a_cutoff_at_or_beyond_the_longest_status_window_and_deletes_only_older_rows(
    prune, model, hours_back: float
):
    now = timezone.now()
    cutoff = now - timedelta(hours=hours_back)
    _rows_on_each_side_of(cutoff)
    assert _prune_at(prune, now=now, hours_back=hours_back) == 1
    time_field = "timestamp" if model is DataQualityMetric else "finished_at"
    assert list(model.objects.values_list(time_field, flat=True)) == [cutoff]
    other = PipelineRun if model is DataQualityMetric else DataQualityMetric
    assert other.objects.count() == 2, "retention of one table deleted rows of the other"
