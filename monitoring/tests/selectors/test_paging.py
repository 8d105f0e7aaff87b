"""Keyset paging: pages follow each other by (moment, id) key, ties broken by id, none shifted by new rows."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import PipelineRun
from monitoring.selectors.paging import Key, newest_first
from monitoring.tests.factories import PipelineRunFactory

pytestmark = pytest.mark.django_db


def test_pages_cover_every_row_once_newest_first_with_ties_by_id():
    at = timezone.now() - timedelta(hours=1)
    runs = [PipelineRunFactory(started_at=at) for _ in range(3)] + [PipelineRunFactory(started_at=at - timedelta(1))]
    seen, after = [], None
    while True:
        page = newest_first(rows=PipelineRun.objects.all(), moment="started_at", after=after, limit=2)
        seen += [run.pk for run in page.rows]
        if page.next is None:
            break
        after = page.next
    assert seen == [runs[2].pk, runs[1].pk, runs[0].pk, runs[3].pk]


def test_the_last_page_has_no_next_and_an_empty_listing_is_one_empty_page():
    assert newest_first(rows=PipelineRun.objects.all(), moment="started_at", after=None, limit=5).next is None
    run = PipelineRunFactory()
    page = newest_first(rows=PipelineRun.objects.all(), moment="started_at", after=None, limit=1)
    assert page.rows == [run] and page.next is None
    after_last = newest_first(
        rows=PipelineRun.objects.all(), moment="started_at", after=Key(at=run.started_at, id=run.pk), limit=1
    )
    assert after_last.rows == []
