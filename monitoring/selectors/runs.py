"""Run listings."""

from __future__ import annotations

from monitoring.models import PipelineRun
from monitoring.selectors.paging import Key, Page, newest_first


def list_runs(
    *,
    source: str | None = None,
    stage: str | None = None,
    status: str | None = None,
    limit: int = 50,
    after: Key | None = None,
) -> Page[PipelineRun]:
    """Newest runs first, optionally filtered; one page of ``limit`` after ``after``."""
    filters = {name: value for name, value in (("source", source), ("stage", stage), ("status", status)) if value}
    return newest_first(rows=PipelineRun.objects.filter(**filters), moment="started_at", after=after, limit=limit)
