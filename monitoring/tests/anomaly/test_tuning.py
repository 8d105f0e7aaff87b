"""tune: the stored history replayed at several sensitivities, episodes matched with operators' alerts."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from monitoring.anomaly.tuning import tune
from monitoring.models import Alert, HourlyRollup
from monitoring.tests.anomaly.test_series import CURRENT, LAST, NOW, _fill

pytestmark = pytest.mark.django_db


def _collapse(source: str, hours: int) -> list:
    """Geocoding collapses for ``hours`` ending at LAST (the rows are rewritten in place)."""
    changed = []
    for row in HourlyRollup.objects.filter(source=source, hour__gt=LAST - timedelta(hours=hours), hour__lte=LAST):
        row.geocoding_successes = round(row.geocoding_attempts * 0.4)
        changed.append(row)
    HourlyRollup.objects.bulk_update(changed, ["geocoding_successes"])
    return changed


def test_each_sensitivity_reports_episodes_per_source_and_week():
    _fill(days=30, current=False)
    _collapse("acled", 3)
    report = tune(now=NOW, days=14, sensitivities=(4, 1000))
    low, high = report["results"]
    assert (low["sensitivity"], high["sensitivity"]) == (4, 1000)
    acled = next(row for row in low["sources"] if row["source"] == "acled")
    assert acled["episodes"] == 1 and acled["per_week"] == 0.5 and acled["unmatched"] == 1
    assert all(row["episodes"] == 0 for row in high["sources"])
    assert report["to"] == CURRENT


def test_an_episode_overlapping_an_alert_an_operator_resolved_is_matched():
    _fill(days=30, current=False)
    _collapse("acled", 3)
    operator = get_user_model().objects.create_user("oncall")
    Alert.objects.create(
        fingerprint="anomaly:acled",
        rule_name="anomaly",
        source="acled",
        severity="high",
        state="resolved",
        summary="Anomalous geocoding",
        first_seen=LAST - timedelta(hours=1),
        last_seen=LAST,
        resolved_by=operator,
        resolved_at=LAST + timedelta(minutes=30),
    )
    (result,) = tune(now=NOW, days=14, sensitivities=(4,))["results"]
    acled = next(row for row in result["sources"] if row["source"] == "acled")
    assert (acled["matched_resolved"], acled["matched_acknowledged"], acled["unmatched"]) == (1, 0, 0)


def test_one_source_can_be_replayed_and_an_unknown_one_is_refused():
    _fill(days=30, current=False)
    (result,) = tune(now=NOW, days=7, source="gdelt", sensitivities=(4,))["results"]
    assert [row["source"] for row in result["sources"]] == ["gdelt"]
    with pytest.raises(LookupError, match="nope"):
        tune(now=NOW, source="nope")


@pytest.mark.parametrize("kwargs", [{"days": 0}, {"days": 400}, {"sensitivities": (0,)}, {"sensitivities": ()}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        tune(now=NOW, **kwargs)
