"""Whole sequences of operations: a few large writes, then a mix of every writer and some checks.

Runs are written among the metrics, so that metrics link to runs that are later changed, deleted (which
unlinks them) or pruned."""

from __future__ import annotations

from hypothesis import strategies as st

from monitoring.tests.truth.admin_writes import (
    AdminMetricAdd,
    AdminMetricChange,
    AdminMetricDelete,
    AdminRunAdd,
    AdminRunChange,
    AdminRunDelete,
)
from monitoring.tests.truth.checks import STATUS_WINDOWS, Check, trend_queries
from monitoring.tests.truth.metric_writes import (
    ApiMetrics,
    CopyMetrics,
    LegacyInsert,
    OrmBulkCreate,
    OrmCreate,
    OrmDelete,
    OrmSaveChanged,
    OrmSaveNew,
    OrmUpdate,
    PruneMetrics,
    ServiceMetrics,
    SqlDelete,
    SqlInsert,
    SqlUpdate,
    metric_batches,
    metric_changes,
    metric_specs,
)
from monitoring.tests.truth.moments import OFFSETS, cutoffs
from monitoring.tests.truth.run_writes import (
    ERRORS,
    ApiFinish,
    ApiRun,
    CopyRuns,
    OrmRunBulkCreate,
    OrmRunCreate,
    OrmRunDelete,
    OrmRunSaveChanged,
    OrmRunUpdate,
    PruneRuns,
    SqlRunDelete,
    SqlRunInsert,
    SqlRunUpdate,
    openlineage_runs,
    run_changes,
    run_specs,
    run_times,
)
from monitoring.tests.truth.world import Op, selections


def operations(*, postgres: bool) -> st.SearchStrategy[list[Op]]:
    picks = st.integers(0, 50)
    kinds: list[st.SearchStrategy[Op]] = [
        st.builds(ApiMetrics, metric_batches()),
        st.builds(ServiceMetrics, metric_batches()),
        openlineage_runs(),
        st.builds(OrmCreate, metric_specs()),
        st.builds(OrmSaveNew, metric_specs()),
        st.builds(OrmBulkCreate, metric_batches()),
        st.builds(SqlInsert, metric_batches()),
        st.builds(LegacyInsert, metric_batches(3)),
        st.builds(
            OrmSaveChanged, picks, metric_specs(), st.sampled_from(["time", "source", "counts", "stage", "link", "all"])
        ),
        st.builds(OrmUpdate, selections(), metric_changes()),
        st.builds(SqlUpdate, selections(), metric_changes()),
        st.builds(OrmDelete, selections()),
        st.builds(SqlDelete, selections()),
        st.builds(AdminMetricAdd, metric_specs()),
        st.builds(AdminMetricChange, picks, metric_specs()),
        st.builds(AdminMetricDelete, picks),
        st.builds(PruneMetrics, cutoffs()),
        st.builds(ApiRun, run_specs()),
        st.builds(ApiFinish, picks, st.sampled_from(["succeeded", "failed"]), run_times(), st.sampled_from(ERRORS)),
        st.builds(OrmRunCreate, run_specs(), st.sampled_from(["create", "save"])),
        st.builds(OrmRunBulkCreate, st.lists(run_specs(), min_size=1, max_size=4).map(tuple)),
        st.builds(OrmRunSaveChanged, picks, run_specs()),
        st.builds(OrmRunUpdate, selections(), run_changes()),
        st.builds(OrmRunDelete, selections()),
        st.builds(
            SqlRunInsert, st.lists(run_specs(), min_size=1, max_size=4).map(tuple), st.sampled_from(list(OFFSETS))
        ),
        st.builds(SqlRunUpdate, selections(), run_changes()),
        st.builds(SqlRunDelete, selections()),
        st.builds(AdminRunAdd, run_specs()),
        st.builds(AdminRunChange, picks, run_specs()),
        st.builds(AdminRunDelete, picks),
        st.builds(PruneRuns, cutoffs()),
        st.builds(Check, st.sampled_from(STATUS_WINDOWS), trend_queries()),
    ]
    if postgres:
        kinds += [
            st.builds(CopyMetrics, metric_batches()),
            st.builds(
                CopyRuns, st.lists(run_specs(), min_size=1, max_size=4).map(tuple), st.sampled_from(list(OFFSETS))
            ),
        ]
    # A few large writes first, so that every example has rows on many edges; then the mix.
    seeds: list[st.SearchStrategy[Op]] = [
        st.builds(ApiMetrics, metric_batches(20)),
        openlineage_runs(),
        st.builds(OrmBulkCreate, metric_batches(20)),
        st.builds(SqlInsert, metric_batches(20)),
        st.builds(OrmRunBulkCreate, st.lists(run_specs(), min_size=1, max_size=8).map(tuple)),
        st.builds(SqlRunInsert, st.lists(run_specs(), min_size=1, max_size=8).map(tuple), st.sampled_from(["Z"])),
    ]
    if postgres:
        seeds.append(st.builds(CopyMetrics, metric_batches(20)))
    first = st.lists(st.one_of(seeds), min_size=1, max_size=3)
    then = st.lists(st.one_of(kinds), min_size=1, max_size=20)
    return st.tuples(first, then).map(lambda parts: [*parts[0], *parts[1]])
