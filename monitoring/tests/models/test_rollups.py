"""Hourly rollups: one row per source, stage and hour, and the database refuses impossible sums whoever
writes them (the triggers keep them; test_triggers.py covers that)."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction

from monitoring.models import HourlyRollup

pytestmark = pytest.mark.postgres

HOUR = datetime(2026, 11, 23, 10, tzinfo=UTC)


def test_a_second_rollup_for_the_same_source_stage_and_hour_is_refused_but_another_hour_or_stage_is_not():
    HourlyRollup.objects.create(source="acled", hour=HOUR, geocoding_attempts=5, reports=1)
    with pytest.raises(IntegrityError, match="rollup_source_hour_stage_unique"), transaction.atomic():
        HourlyRollup.objects.create(source="acled", hour=HOUR)
    HourlyRollup.objects.create(source="acled", hour=HOUR.replace(hour=11))
    HourlyRollup.objects.create(source="gdelt", hour=HOUR)
    HourlyRollup.objects.create(source="acled", stage="geocode", hour=HOUR)
    with pytest.raises(IntegrityError, match="rollup_source_hour_stage_unique"), transaction.atomic():
        HourlyRollup.objects.create(source="acled", stage="geocode", hour=HOUR)
    assert HourlyRollup.objects.count() == 4


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"geocoding_attempts": -1}, "rollup_geocoding_attempts_non_negative"),
        ({"validation_passes": -1}, "rollup_validation_passes_non_negative"),
        ({"geocoding_attempts": 5, "geocoding_successes": 6}, "rollup_parts_lte_attempts"),
        ({"validation_attempts": 5, "validation_passes": 6}, "rollup_parts_lte_attempts"),
    ],
)
def test_the_database_refuses_impossible_sums(fields, constraint):
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        HourlyRollup.objects.create(source="acled", hour=HOUR, **fields)
    assert not HourlyRollup.objects.exists()


def test_a_rollup_reads_as_its_source_stage_and_utc_hour():
    assert str(HourlyRollup(source="acled", hour=HOUR)) == "acled/unstaged @ 2026-11-23 10:00"
    assert str(HourlyRollup(source="acled", stage="geocode", hour=HOUR)) == "acled/geocode @ 2026-11-23 10:00"
