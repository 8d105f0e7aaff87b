"""The run listing: newest first (ties by insertion), each filter narrowing it, and a limit."""

from datetime import timedelta

import pytest

from monitoring.selectors import list_runs
from monitoring.tests.factories import PipelineRunFactory

pytestmark = pytest.mark.django_db


def test_runs_are_listed_newest_first_and_the_later_of_two_simultaneous_runs_first(now):
    old = PipelineRunFactory(started_at=now - timedelta(hours=2))
    tied_first = PipelineRunFactory(started_at=now - timedelta(hours=1))
    tied_second = PipelineRunFactory(started_at=now - timedelta(hours=1))
    assert list_runs().rows == [tied_second, tied_first, old]


def test_each_filter_narrows_the_list_and_an_empty_one_is_ignored(now):
    wanted = PipelineRunFactory(source="gdelt", stage="geocode", status="failed")
    PipelineRunFactory(source="gdelt", stage="geocode", status="succeeded")
    PipelineRunFactory(source="gdelt", stage="scrape", status="failed")
    PipelineRunFactory(source="acled", stage="geocode", status="failed")
    assert list_runs(source="gdelt", stage="geocode", status="failed").rows == [wanted]
    assert len(list_runs(source="gdelt", stage="", status=None).rows) == 3


def test_the_limit_keeps_the_newest(now):
    runs = [PipelineRunFactory(started_at=now - timedelta(minutes=m)) for m in (30, 20, 10)]
    assert list_runs(limit=2).rows == [runs[2], runs[1]]
