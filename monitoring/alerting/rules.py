"""Pure rule evaluation: given window statistics, which alert conditions hold right now."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitoring.selectors import rate

CRITICAL, HIGH, MEDIUM = "critical", "high", "medium"
SEVERITIES = (CRITICAL, HIGH, MEDIUM)
OVERALL = ""  # the source key for "all sources together"
RATE_PARTS = {
    "geocoding_success_rate": ("geocoding_successes", "geocoding_attempts", "Geocoding success rate"),
    "validation_pass_rate": ("validation_passes", "validation_attempts", "Validation pass rate"),
}
ISSUE_LABELS = {"failed_runs": "failed scrape runs", "failed_validations": "failed validation runs"}
ISSUE_SAMPLES = {"failed_runs": "finished_runs", "failed_validations": "finished_validations"}
# Failure-rate metrics: the pipeline stage whose failed / finished runs they read.
FAILURE_RATE_STAGES = {
    "scrape_failure_rate": ("scrape", "Scrape"),
    "geocode_failure_rate": ("geocode", "Geocode"),
    "validate_failure_rate": ("validate", "Validate"),
}
# Rule kinds that stay quiet for a source still onboarding (see ``Inputs.new_sources``).
ONBOARDING_QUIET_KINDS = frozenset({"stale_source", "failure_rate", "issue_increase"})


@dataclass(frozen=True)
class RuleSpec:
    name: str
    kind: str
    metric: str
    scope: str
    critical: float | None
    high: float | None
    medium: float | None
    window_hours: int
    min_sample: int


@dataclass(frozen=True)
class Condition:
    rule_name: str
    source: str
    severity: str
    summary: str
    evidence: dict[str, Any] = field(hash=False)

    @property
    def fingerprint(self) -> str:
        return f"{self.rule_name}:{self.source or '*'}"


@dataclass(frozen=True)
class WindowStats:
    """Sums for one window; keyed by source, with ``OVERALL`` for all sources together."""

    start: str
    end: str
    counts: dict[str, dict[str, int]]
    # Every stage: stage -> source -> failed (or finished) runs, ``OVERALL`` included.
    failed_by_stage: dict[str, dict[str, int]] = field(default_factory=dict)
    finished_by_stage: dict[str, dict[str, int]] = field(default_factory=dict)

    # The issue metrics read one stage each; the finished runs are the sample an increase is judged on.
    @property
    def failed_runs(self) -> dict[str, int]:
        return self.failed_by_stage.get("scrape", {})

    @property
    def failed_validations(self) -> dict[str, int]:
        return self.failed_by_stage.get("validate", {})

    @property
    def finished_runs(self) -> dict[str, int]:
        return self.finished_by_stage.get("scrape", {})

    @property
    def finished_validations(self) -> dict[str, int]:
        return self.finished_by_stage.get("validate", {})


@dataclass(frozen=True)
class Inputs:
    current: dict[int, WindowStats]  # by window length in hours
    previous: dict[int, WindowStats]
    stale_sources: dict[str, str | None]  # source -> last success (ISO) for stale sources
    failing_sources: set[str]  # scrapers failing or stale: downstream alerts are inhibited
    anomalies: list[dict[str, Any]]
    # Sources still onboarding (no successful scrape yet, first run recent): staleness and failure
    # rules do not page for them.
    new_sources: frozenset[str] = frozenset()


def _where(source: str) -> str:
    return f"for {source}" if source else "across all sources"


def _scopes(spec: RuleSpec, keys) -> list[str]:
    keys = sorted(keys)
    if spec.scope == "overall":
        return [OVERALL] if OVERALL in keys else []
    if spec.scope == "per_source":
        return [k for k in keys if k != OVERALL]
    return keys


def _below(value: float, spec: RuleSpec) -> str | None:
    for severity, level in ((CRITICAL, spec.critical), (HIGH, spec.high), (MEDIUM, spec.medium)):
        if level is not None and value < level:
            return severity
    return None


def _at_least(value: float, spec: RuleSpec) -> str | None:
    for severity, level in ((CRITICAL, spec.critical), (HIGH, spec.high), (MEDIUM, spec.medium)):
        if level is not None and value >= level:
            return severity
    return None


def _levels(spec: RuleSpec) -> dict[str, float | None]:
    return {CRITICAL: spec.critical, HIGH: spec.high, MEDIUM: spec.medium}


def _window(stats: WindowStats) -> dict[str, str]:
    return {"start": stats.start, "end": stats.end}


def threshold(spec: RuleSpec, inputs: Inputs) -> list[Condition]:
    part, whole, label = RATE_PARTS[spec.metric]
    stats = inputs.current[spec.window_hours]
    found = []
    for source in _scopes(spec, stats.counts):
        counts = stats.counts[source]
        if counts[whole] < spec.min_sample:
            continue
        value = rate(numerator=counts[part], denominator=counts[whole])
        severity = _below(value, spec)
        if severity:
            found.append(
                Condition(
                    spec.name,
                    source,
                    severity,
                    f"{label} {value}% {_where(source)} over {spec.window_hours} h "
                    f"(below the {severity} level {_levels(spec)[severity]:g}%)",
                    {
                        "metric": spec.metric,
                        "value": value,
                        "numerator": counts[part],
                        "denominator": counts[whole],
                        "window": _window(stats),
                        "levels": _levels(spec),
                    },
                )
            )
    return found


def score_drop(spec: RuleSpec, inputs: Inputs) -> list[Condition]:
    part, whole, label = RATE_PARTS[spec.metric]
    now, before = inputs.current[spec.window_hours], inputs.previous[spec.window_hours]
    found = []
    for source in _scopes(spec, now.counts.keys() & before.counts.keys()):
        cur, prev = now.counts[source], before.counts[source]
        if cur[whole] < spec.min_sample or prev[whole] < spec.min_sample:
            continue
        current = rate(numerator=cur[part], denominator=cur[whole])
        previous = rate(numerator=prev[part], denominator=prev[whole])
        drop = round(previous - current, 1)
        severity = _at_least(drop, spec)
        if severity:
            found.append(
                Condition(
                    spec.name,
                    source,
                    severity,
                    f"{label} fell {drop} points {_where(source)}: {previous}% → {current}% "
                    f"(last {spec.window_hours} h versus the {spec.window_hours} h before)",
                    {
                        "metric": spec.metric,
                        "drop_points": drop,
                        "value": current,
                        "previous_value": previous,
                        "window": _window(now),
                        "previous_window": _window(before),
                        "levels": _levels(spec),
                    },
                )
            )
    return found


def issue_increase(spec: RuleSpec, inputs: Inputs) -> list[Condition]:
    now, before = inputs.current[spec.window_hours], inputs.previous[spec.window_hours]
    current_counts = getattr(now, spec.metric)
    previous_counts = getattr(before, spec.metric)
    found = []
    samples = getattr(now, ISSUE_SAMPLES[spec.metric])
    for source in _scopes(spec, current_counts.keys()):
        # Like the rate rules: a source with a handful of runs cannot page anyone.
        if samples.get(source, 0) < spec.min_sample:
            continue
        current, previous = current_counts[source], previous_counts.get(source, 0)
        increase = current - previous
        severity = _at_least(increase, spec)
        if severity:
            found.append(
                Condition(
                    spec.name,
                    source,
                    severity,
                    f"{increase} more {ISSUE_LABELS[spec.metric]} {_where(source)} than the previous "
                    f"{spec.window_hours} h ({previous} → {current})",
                    {
                        "metric": spec.metric,
                        "increase": increase,
                        "value": current,
                        "previous_value": previous,
                        "window": _window(now),
                        "previous_window": _window(before),
                        "levels": _levels(spec),
                    },
                )
            )
    return found


def failure_rate(spec: RuleSpec, inputs: Inputs) -> list[Condition]:
    """Failed / finished runs of one stage at or above a level, given at least ``min_sample`` finished runs."""
    stage, label = FAILURE_RATE_STAGES[spec.metric]
    stats = inputs.current[spec.window_hours]
    failed = stats.failed_by_stage.get(stage, {})
    finished = stats.finished_by_stage.get(stage, {})
    found = []
    for source in _scopes(spec, finished.keys()):
        runs = finished[source]
        if runs == 0 or runs < spec.min_sample:
            continue
        failures = failed.get(source, 0)
        value = rate(numerator=failures, denominator=runs)
        severity = _at_least(value, spec)
        if severity:
            found.append(
                Condition(
                    spec.name,
                    source,
                    severity,
                    f"{label} runs failing {_where(source)}: {failures} of {runs} ({value}%) over "
                    f"{spec.window_hours} h (at or above the {severity} level {_levels(spec)[severity]:g}%)",
                    {
                        "metric": spec.metric,
                        "stage": stage,
                        "value": value,
                        "failed_runs": failures,
                        "finished_runs": runs,
                        "window": _window(stats),
                        "levels": _levels(spec),
                    },
                )
            )
    return found


def stale_source(spec: RuleSpec, inputs: Inputs) -> list[Condition]:
    severity = next((s for s, level in _levels(spec).items() if level is not None), HIGH)
    return [
        Condition(
            spec.name,
            source,
            severity,
            f"No successful scrape for {source} since {last or 'ever'}",
            {"metric": "scrape", "last_success": last},
        )
        for source, last in sorted(inputs.stale_sources.items())
    ]


def anomaly(spec: RuleSpec, inputs: Inputs) -> list[Condition]:
    """One alert per source: its strongest current anomaly, graded by the detector's score."""
    strongest: dict[str, dict[str, Any]] = {}
    for finding in inputs.anomalies:
        best = strongest.get(finding["source"])
        if best is None or abs(finding["score"]) > abs(best["score"]):
            strongest[finding["source"]] = finding
    found = []
    for source, finding in sorted(strongest.items()):
        severity = _at_least(abs(finding["score"]), spec)
        if severity:
            found.append(
                Condition(
                    spec.name,
                    source,
                    severity,
                    f"Anomalous {finding['metric']} for {source}: {finding['observed']} "
                    f"(expected {finding['expected_low']}–{finding['expected_high']})",
                    {**finding, "levels": _levels(spec)},
                )
            )
    return found


EVALUATORS = {
    "threshold": threshold,
    "score_drop": score_drop,
    "issue_increase": issue_increase,
    "failure_rate": failure_rate,
    "stale_source": stale_source,
    "anomaly": anomaly,
}
# Downstream of scraping: when a source's scraper fails, these alerts are symptoms, not causes.
DOWNSTREAM_METRICS = {
    "geocoding_success_rate",
    "validation_pass_rate",
    "failed_validations",
    "geocode_failure_rate",
    "validate_failure_rate",
    "any",
}
# A source whose scrape failure rate fires is failing: its downstream alerts are inhibited too.
SCRAPE_FAILING_METRIC = "scrape_failure_rate"


def evaluate(specs: list[RuleSpec], inputs: Inputs) -> list[Condition]:
    found: list[Condition] = []
    for spec in specs:
        conditions = EVALUATORS[spec.kind](spec, inputs)
        if spec.kind in ONBOARDING_QUIET_KINDS and inputs.new_sources:
            conditions = [c for c in conditions if c.source not in inputs.new_sources]
        found.extend(conditions)
    return found


def is_inhibited(condition: Condition, metric: str, inputs: Inputs, also_failing=frozenset()) -> bool:
    """Downstream per-source alerts of a failing scraper (stale, critical, or its scrape failure rate
    firing: ``also_failing``) are symptoms, not causes."""
    if not condition.source or metric not in DOWNSTREAM_METRICS:
        return False
    return condition.source in inputs.failing_sources or condition.source in also_failing


def covered_by_a_source(condition: Condition, conditions: list[Condition]) -> bool:
    """An alert across all sources whose rule also fires for a source at the same severity or worse is
    that source's echo: the source's alert pages, naming the culprit. When no source's alert explains
    it (many sources each a little low), the overall alert pages itself."""
    if condition.source:
        return False
    rank = SEVERITIES.index(condition.severity)
    return any(
        other.source and other.rule_name == condition.rule_name and SEVERITIES.index(other.severity) <= rank
        for other in conditions
    )
