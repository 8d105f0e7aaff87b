"""Window statistics the alert rules read: a few grouped queries per evaluation, whatever the row count."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q

from monitoring.alerting.rules import OVERALL, Inputs, WindowStats
from monitoring.models import PipelineRun
from monitoring.models.metrics import COUNT_FIELDS
from monitoring.selectors import isoformat
from monitoring.windows import window_sums


def _window_stats(*, start: datetime, end: datetime) -> WindowStats:
    """The window ``start <= t < end``: metric sums from the one window computation, run counts."""
    rows = window_sums(start=start, end=end)
    counts = {row["source"]: {field: row[field] for field in COUNT_FIELDS} for row in rows}
    if counts:
        counts[OVERALL] = {field: sum(c[field] for c in counts.values()) for field in COUNT_FIELDS}
    finished_runs = (
        PipelineRun.objects.filter(
            status__in=[PipelineRun.Status.SUCCEEDED, PipelineRun.Status.FAILED],
            finished_at__gte=start,
            finished_at__lt=end,
        )
        .values("source", "stage")
        .annotate(finished=Count("pk"), failed=Count("pk", filter=Q(status=PipelineRun.Status.FAILED)))
        .order_by()
    )
    # Every stage in one grouped query: the failure-rate rules read each, the issue rules two.
    failed: dict[str, dict[str, int]] = {stage: {} for stage in PipelineRun.Stage.values}
    finished: dict[str, dict[str, int]] = {stage: {} for stage in PipelineRun.Stage.values}
    for row in finished_runs:
        failed.setdefault(row["stage"], {})[row["source"]] = row["failed"]
        finished.setdefault(row["stage"], {})[row["source"]] = row["finished"]
    for by_source in (*failed.values(), *finished.values()):
        by_source[OVERALL] = sum(by_source.values())
    return WindowStats(
        start=isoformat(start),
        end=isoformat(end),
        counts=counts,
        failed_by_stage=failed,
        finished_by_stage=finished,
    )


def gather_inputs(*, now: datetime, window_lengths: set[int], document: dict[str, Any]) -> Inputs:
    current, previous = {}, {}
    for hours in window_lengths:
        length = timedelta(hours=hours)
        current[hours] = _window_stats(start=now - length, end=now)
        previous[hours] = _window_stats(start=now - 2 * length, end=now - length)
    sources = document["scraping_health"]["sources"]
    new = frozenset(s["source"] for s in sources if s.get("new"))
    return Inputs(
        current=current,
        previous=previous,
        stale_sources={s["source"]: s["last_success"] for s in sources if s["stale"] and s["source"] not in new},
        failing_sources={s["source"] for s in sources if s["stale"] or s["status"] == "critical"},
        anomalies=list(document.get("anomalies", [])),
        new_sources=new,
    )
