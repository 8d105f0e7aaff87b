"""Failure-rate rules (failed / finished runs of a stage per source), their validation, inhibition and
the onboarding quiet period, as pure functions."""

import pytest

from monitoring.alerting.rules import Condition, Inputs, RuleSpec, WindowStats, evaluate, is_inhibited
from monitoring.alerting.validation import rule_errors


def spec(metric="scrape_failure_rate", *, critical=50, high=25, medium=10, min_sample=5, scope="per_source"):
    return RuleSpec(metric.replace("_", "-"), "failure_rate", metric, scope, critical, high, medium, 24, min_sample)


def stats(stage="scrape", **by_source):
    """``source=(failed, finished)``."""
    failed = {source: f for source, (f, _) in by_source.items()}
    finished = {source: n for source, (_, n) in by_source.items()}
    failed[""], finished[""] = sum(failed.values()), sum(finished.values())
    return WindowStats(
        "2026-01-01T00:00:00Z",
        "2026-01-02T00:00:00Z",
        {},
        failed_by_stage={stage: failed},
        finished_by_stage={stage: finished},
    )


def inputs(current, *, stale=None, failing=None, new=()):
    return Inputs({24: current}, {24: current}, stale or {}, failing or set(), [], new_sources=frozenset(new))


@pytest.mark.parametrize(
    ("failed", "finished", "expected"),
    [
        (5, 24, "medium"),  # 20.8 %: the failing-scraper scenario
        (1, 10, "medium"),  # exactly 10 %
        (0, 10, None),
        (9, 100, None),  # 9 %
        (1, 4, None),  # 25 % but below the minimum sample
        (5, 20, "high"),  # exactly 25 %
        (49, 100, "high"),
        (5, 10, "critical"),  # exactly 50 %
        (5, 5, "critical"),  # the minimum sample itself
        (0, 0, None),
    ],
)
def test_scrape_failure_rate_severity_boundaries_and_minimum_sample(failed, finished, expected):
    found = evaluate([spec()], inputs(stats(acled=(failed, finished))))
    assert [c.severity for c in found] == ([expected] if expected else [])


def test_one_condition_per_source_with_evidence():
    found = evaluate([spec()], inputs(stats(acled=(5, 24), gdelt=(0, 24))))
    (condition,) = found
    assert (condition.fingerprint, condition.source) == ("scrape-failure-rate:acled", "acled")
    assert condition.evidence["value"] == 20.8
    assert (condition.evidence["failed_runs"], condition.evidence["finished_runs"]) == (5, 24)
    assert "5 of 24" in condition.summary


def test_overall_scope_reads_all_sources_together():
    found = evaluate([spec(scope="overall")], inputs(stats(acled=(5, 10), gdelt=(0, 10))))
    assert [(c.source, c.severity) for c in found] == [("", "high")]


@pytest.mark.parametrize(
    ("metric", "stage"), [("geocode_failure_rate", "geocode"), ("validate_failure_rate", "validate")]
)
def test_geocode_and_validate_failure_rates_read_their_stage(metric, stage):
    assert [c.source for c in evaluate([spec(metric)], inputs(stats(stage, acled=(3, 6))))] == ["acled"]
    # Another stage's failures are not theirs.
    assert evaluate([spec(metric)], inputs(stats("scrape", acled=(3, 6)))) == []


def test_a_failing_scraper_inhibits_the_downstream_failure_rates_of_its_source_only():
    geo = Condition("geocode-failure-rate", "acled", "high", "", {})
    scrape = Condition("scrape-failure-rate", "acled", "high", "", {})
    plain = inputs(stats())
    assert is_inhibited(geo, "geocode_failure_rate", plain, {"acled"})
    assert is_inhibited(geo, "validate_failure_rate", inputs(stats(), failing={"acled"}))
    assert not is_inhibited(geo, "geocode_failure_rate", plain, {"gdelt"})
    assert not is_inhibited(scrape, "scrape_failure_rate", plain, {"acled"})


def test_a_new_source_raises_no_stale_or_failure_alert():
    stale = RuleSpec("source-stale", "stale_source", "scrape", "per_source", None, 1, None, 1, 0)
    current = inputs(stats(acled=(5, 5), gdelt=(5, 5)), stale={"acled": None, "gdelt": None}, new={"acled"})
    found = evaluate([spec(), stale], current)
    assert sorted(c.fingerprint for c in found) == ["scrape-failure-rate:gdelt", "source-stale:gdelt"]


def test_a_new_source_still_counts_in_overall_and_in_other_kinds():
    found = evaluate([spec(scope="overall")], inputs(stats(acled=(5, 5)), new={"acled"}))
    assert [c.source for c in found] == [""]


@pytest.mark.parametrize(
    ("levels", "field"),
    [
        ({"critical": 25, "high": 50, "medium": 10}, "high"),  # critical must be the highest
        ({"critical": 150, "high": 25, "medium": 10}, "critical"),  # at most 100 %
        ({"critical": 50, "high": 25, "medium": 0}, "medium"),
        ({"critical": None, "high": None, "medium": None}, "critical"),
    ],
)
def test_failure_rate_rule_levels_are_validated(levels, field):
    errors = rule_errors(
        kind="failure_rate", metric="scrape_failure_rate", scope="per_source", window_hours=24, min_sample=5, **levels
    )
    assert field in errors


def test_failure_rate_rules_read_failure_rate_metrics_only():
    base = {"scope": "per_source", "critical": 50, "high": 25, "medium": 10, "window_hours": 24, "min_sample": 5}
    assert rule_errors(kind="failure_rate", metric="validate_failure_rate", **base) == {}
    assert "metric" in rule_errors(kind="failure_rate", metric="failed_runs", **base)
    assert "metric" in rule_errors(kind="issue_increase", metric="scrape_failure_rate", **base)
