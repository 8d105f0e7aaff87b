"""Which rules and silences the evaluation can use: the admin refuses the others, the evaluation skips them."""

from datetime import UTC, datetime, time

import pytest

from monitoring.alerting.validation import rule_errors, stored_silence_errors

GEO = {
    "kind": "threshold",
    "metric": "geocoding_success_rate",
    "scope": "both",
    "critical": 70.0,
    "high": 80.0,
    "medium": 85.0,
    "window_hours": 1,
    "min_sample": 50,
}
DROP = {**GEO, "kind": "score_drop", "critical": 20.0, "high": 10.0, "medium": 5.0}
ISSUES = {**DROP, "kind": "issue_increase", "metric": "failed_runs", "critical": 10.0, "high": 5.0, "medium": 2.0}
STALE = {**GEO, "kind": "stale_source", "metric": "scrape", "critical": None, "high": 1.0, "medium": None}


@pytest.mark.parametrize(
    "rule",
    [
        GEO,
        DROP,
        ISSUES,
        STALE,
        {**STALE, "high": None},
        {**GEO, "high": None, "medium": None},
        {**GEO, "critical": 100.0, "high": None, "medium": None},
        {**GEO, "kind": "anomaly", "metric": "any", "critical": 10.0, "high": 6.0, "medium": 4.0},
    ],
)
def test_rules_the_evaluation_can_use_have_no_errors(rule):
    assert rule_errors(**rule) == {}


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({**GEO, "kind": "percentile"}, "kind"),
        ({**GEO, "metric": "failed_runs"}, "metric"),
        ({**ISSUES, "metric": "validation_pass_rate"}, "metric"),
        ({**GEO, "scope": "galaxy"}, "scope"),
        ({**GEO, "critical": -5.0}, "critical"),
        ({**GEO, "medium": 120.0}, "medium"),
        ({**GEO, "critical": 80.0, "high": 70.0}, "high"),  # a rate's critical level must be the lowest
        ({**GEO, "critical": 80.0, "high": None, "medium": 80.0}, "medium"),
        ({**DROP, "critical": 5.0, "high": 10.0}, "high"),  # a drop's critical level must be the highest
        ({**ISSUES, "medium": 0.0}, "medium"),  # an increase of 0 would fire on every quiet hour
        ({**ISSUES, "high": float("nan")}, "high"),
        ({**GEO, "critical": None, "high": None, "medium": None}, "critical"),
        ({**STALE, "critical": 1.0}, "high"),
        ({**GEO, "window_hours": 0}, "window_hours"),
        ({**GEO, "window_hours": 10_000}, "window_hours"),
        ({**GEO, "min_sample": -1}, "min_sample"),
    ],
)
def test_a_rule_the_evaluation_cannot_use_names_the_field(rule, field):
    assert field in rule_errors(**rule)


START = datetime(2026, 11, 23, tzinfo=UTC)
END = datetime(2026, 11, 30, tzinfo=UTC)
SILENCE = {
    "starts_at": START,
    "ends_at": END,
    "reason": "maintenance",
    "weekdays": "5,6",
    "daily_start": time(23),
    "duration_minutes": 120,
}


def test_a_weekly_and_a_plain_silence_have_no_errors():
    assert stored_silence_errors(**SILENCE) == {}
    assert stored_silence_errors(**{**SILENCE, "weekdays": "", "daily_start": None, "duration_minutes": None}) == {}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ends_at": START}, "ends_at"),
        ({"ends_at": datetime(2026, 11, 1, tzinfo=UTC)}, "ends_at"),
        ({"ends_at": None}, "ends_at"),
        ({"reason": "  "}, "reason"),
        ({"weekdays": "sat,sun"}, "weekdays"),
        ({"weekdays": "5,7"}, "weekdays"),
        ({"daily_start": None}, "duration_minutes"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"duration_minutes": 7 * 24 * 60 + 1}, "duration_minutes"),
        ({"weekdays": ""}, "weekdays"),  # a daily window without days
    ],
)
def test_a_silence_the_evaluation_cannot_use_names_the_field(changes, field):
    assert field in stored_silence_errors(**{**SILENCE, **changes})
