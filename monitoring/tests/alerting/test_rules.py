"""Rule evaluation tables: every rule kind, every severity boundary, the minimum-sample guard."""

import pytest

from monitoring.alerting.rules import (
    OVERALL,
    Condition,
    Inputs,
    RuleSpec,
    WindowStats,
    covered_by_a_source,
    evaluate,
    is_inhibited,
)


def spec(kind, metric, critical, high, medium, *, scope="both", min_sample=50, window_hours=1, name="rule"):
    return RuleSpec(name, kind, metric, scope, critical, high, medium, window_hours, min_sample)


def counts(geo=(0, 0), val=(0, 0)):
    return {
        "geocoding_successes": geo[0],
        "geocoding_attempts": geo[1],
        "validation_passes": val[0],
        "validation_attempts": val[1],
    }


def stats(by_source=None, failed_runs=None, failed_validations=None):
    return WindowStats(
        "2026-01-01T00:00:00Z",
        "2026-01-01T01:00:00Z",
        by_source or {},
        failed_by_stage={"scrape": failed_runs or {}, "validate": failed_validations or {}},
    )


def inputs(current=None, previous=None, stale=None, failing=None, anomalies=None):
    return Inputs({1: current or stats()}, {1: previous or stats()}, stale or {}, failing or set(), anomalies or [])


GEO_LOW = spec("threshold", "geocoding_success_rate", 70, 80, 85)


@pytest.mark.parametrize(
    ("successes", "expected"),
    [(699, "critical"), (700, "high"), (799, "high"), (800, "medium"), (849, "medium"), (850, None), (1000, None)],
)
def test_threshold_severity_boundaries(successes, expected):
    found = evaluate([GEO_LOW], inputs(stats({"acled": counts(geo=(successes, 1000))})))
    assert [c.severity for c in found] == ([expected] if expected else [])


def test_threshold_needs_the_minimum_sample():
    assert evaluate([GEO_LOW], inputs(stats({"acled": counts(geo=(0, 49))}))) == []
    assert [c.severity for c in evaluate([GEO_LOW], inputs(stats({"acled": counts(geo=(0, 50))})))] == ["critical"]


@pytest.mark.parametrize(
    ("scope", "expected"), [("overall", [OVERALL]), ("per_source", ["a", "b"]), ("both", [OVERALL, "a", "b"])]
)
def test_threshold_scopes(scope, expected):
    rule = spec("threshold", "validation_pass_rate", 75, 85, 90, scope=scope)
    by_source = {"a": counts(val=(10, 100)), "b": counts(val=(20, 100)), OVERALL: counts(val=(30, 200))}
    assert [c.source for c in evaluate([rule], inputs(stats(by_source)))] == expected


def test_a_condition_carries_its_evidence_and_fingerprint():
    (found,) = evaluate([GEO_LOW], inputs(stats({"acled": counts(geo=(600, 1000))})))
    assert found.fingerprint == "rule:acled"
    assert found.evidence["value"] == 60.0
    assert (found.evidence["numerator"], found.evidence["denominator"]) == (600, 1000)
    assert found.evidence["levels"] == {"critical": 70, "high": 80, "medium": 85}
    assert "60.0%" in found.summary and "acled" in found.summary
    assert Condition("rule", OVERALL, "high", "", {}).fingerprint == "rule:*"


DROP = spec("score_drop", "geocoding_success_rate", 20, 10, 5)


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        (900, 851, None),
        (900, 850, "medium"),
        (900, 801, "medium"),
        (900, 800, "high"),
        (900, 701, "high"),
        (900, 700, "critical"),
        (800, 900, None),
    ],
)
def test_score_drop_severity_boundaries(previous, current, expected):
    found = evaluate(
        [DROP], inputs(stats({"a": counts(geo=(current, 1000))}), stats({"a": counts(geo=(previous, 1000))}))
    )
    assert [c.severity for c in found] == ([expected] if expected else [])


def test_score_drop_needs_the_minimum_sample_in_both_windows():
    big, small = counts(geo=(900, 1000)), counts(geo=(0, 49))
    assert evaluate([DROP], inputs(stats({"a": small}), stats({"a": big}))) == []
    assert evaluate([DROP], inputs(stats({"a": counts(geo=(0, 100))}), stats({"a": small}))) == []


@pytest.mark.parametrize(
    ("metric", "previous", "current", "expected"),
    [
        ("failed_runs", 3, 4, None),
        ("failed_runs", 3, 5, "medium"),
        ("failed_runs", 0, 4, "medium"),
        ("failed_runs", 0, 5, "high"),
        ("failed_runs", 1, 10, "high"),
        ("failed_runs", 0, 10, "critical"),
        ("failed_validations", 0, 2, "medium"),
        ("failed_validations", 5, 0, None),
    ],
)
def test_issue_increase_severity_boundaries(metric, previous, current, expected):
    rule = spec("issue_increase", metric, 10, 5, 2, scope="per_source", min_sample=0)
    now = stats(**{metric: {"a": current}})
    before = stats(**{metric: {"a": previous}})
    assert [c.severity for c in evaluate([rule], inputs(now, before))] == ([expected] if expected else [])


@pytest.mark.parametrize(("finished", "expected"), [(2, []), (3, ["medium"]), (40, ["medium"])])
def test_an_issue_increase_needs_the_minimum_sample_of_finished_runs(finished, expected):
    """Two failed runs out of two is no evidence yet: like a rate, a tiny sample cannot page anyone."""
    rule = spec("issue_increase", "failed_runs", 10, 5, 2, scope="per_source", min_sample=3)
    now = WindowStats("s", "e", {}, failed_by_stage={"scrape": {"a": 2}}, finished_by_stage={"scrape": {"a": finished}})
    assert [c.severity for c in evaluate([rule], inputs(now, stats()))] == expected


def test_the_sample_of_failed_validations_is_the_finished_validation_runs():
    rule = spec("issue_increase", "failed_validations", 10, 5, 2, scope="per_source", min_sample=3)
    only_scrapes = WindowStats(
        "s",
        "e",
        {},
        failed_by_stage={"validate": {"a": 2}},
        finished_by_stage={"scrape": {"a": 50}, "validate": {"a": 2}},
    )
    assert evaluate([rule], inputs(only_scrapes, stats())) == []


def test_stale_sources_fire_at_the_configured_severity():
    rule = spec("stale_source", "scrape", None, 1, None, scope="per_source")
    found = evaluate([rule], inputs(stale={"acled": "2026-01-01T00:00:00Z", "gdelt": None}))
    assert [(c.source, c.severity) for c in found] == [("acled", "high"), ("gdelt", "high")]
    assert "ever" in found[1].summary


@pytest.mark.parametrize(("score", "expected"), [(3.9, None), (4, "medium"), (-6.5, "high"), (12, "critical")])
def test_anomalies_are_graded_by_score_and_one_alert_per_source(score, expected):
    rule = spec("anomaly", "any", 10, 6, 4, scope="per_source")
    finding = {"source": "a", "metric": "volume", "observed": 1, "expected_low": 5, "expected_high": 9, "score": score}
    weaker = {**finding, "metric": "geocoding_success_rate", "score": 0.5}
    found = evaluate([rule], inputs(anomalies=[weaker, finding]))
    assert [c.severity for c in found] == ([expected] if expected else [])


def test_downstream_alerts_of_a_failing_scraper_are_inhibited():
    failing = inputs(failing={"acled"})
    geo = Condition("geo", "acled", "high", "", {})
    assert is_inhibited(geo, "geocoding_success_rate", failing)
    assert not is_inhibited(geo, "failed_runs", failing)
    assert not is_inhibited(Condition("geo", "gdelt", "high", "", {}), "geocoding_success_rate", failing)
    assert not is_inhibited(Condition("geo", OVERALL, "high", "", {}), "geocoding_success_rate", failing)


def test_an_overall_alert_is_covered_by_a_source_alert_of_its_rule_at_its_severity_or_worse():
    overall = Condition("geo", OVERALL, "high", "", {})
    assert covered_by_a_source(overall, [overall, Condition("geo", "gdelt", "critical", "", {})])
    assert covered_by_a_source(overall, [overall, Condition("geo", "gdelt", "high", "", {})])


def test_an_overall_alert_no_source_explains_pages_itself():
    overall = Condition("geo", OVERALL, "critical", "", {})
    assert not covered_by_a_source(overall, [overall, Condition("geo", "gdelt", "high", "", {})]), "milder"
    assert not covered_by_a_source(overall, [overall, Condition("val", "gdelt", "critical", "", {})]), "other rule"
    assert not covered_by_a_source(overall, [overall])
    source = Condition("geo", "gdelt", "critical", "", {})
    assert not covered_by_a_source(source, [source, overall]), "a source's own alert is never covered"
