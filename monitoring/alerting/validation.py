"""What makes an alert rule or a silence usable by the evaluation.

The admin's forms (through the models' ``clean()``), the silence service and the evaluation all ask
here, so a row the admin would refuse is also a row the evaluation skips rather than trips over.
Each function returns ``{field: message}``; empty means valid.
"""

from __future__ import annotations

import math
from datetime import datetime, time

RATE_METRICS = frozenset({"geocoding_success_rate", "validation_pass_rate"})
# The metrics each rule kind knows how to read.
KIND_METRICS = {
    "threshold": RATE_METRICS,
    "score_drop": RATE_METRICS,
    "issue_increase": frozenset({"failed_runs", "failed_validations"}),
    "failure_rate": frozenset({"scrape_failure_rate", "geocode_failure_rate", "validate_failure_rate"}),
    "stale_source": frozenset({"scrape"}),
    "anomaly": frozenset({"any"}),
}
SCOPES = frozenset({"overall", "per_source", "both"})
LEVELS = ("critical", "high", "medium")
# Rates fire below a level, so critical is the lowest; drops, increases, failure rates and scores fire at or above
# one, so critical is the highest. Bounds are (exclusive low, inclusive high or None).
BELOW_KINDS = frozenset({"threshold"})
LEVEL_BOUNDS = {
    "threshold": (0.0, 100.0),
    "score_drop": (0.0, 100.0),
    "issue_increase": (0.0, None),
    "failure_rate": (0.0, 100.0),  # percent of finished runs that failed
    "anomaly": (0.0, None),
}
MAX_RULE_WINDOW_HOURS = 168  # the evaluation sums two windows of raw metrics every tick
MAX_SILENCE_MINUTES = 7 * 24 * 60


def rule_errors(
    *,
    kind: str,
    metric: str,
    scope: str,
    critical: float | None,
    high: float | None,
    medium: float | None,
    window_hours: int | None,
    min_sample: int | None,
) -> dict[str, str]:
    errors: dict[str, str] = {}
    if kind not in KIND_METRICS:
        errors["kind"] = f"Unknown rule kind {kind!r}; one of {', '.join(sorted(KIND_METRICS))}."
    elif metric not in KIND_METRICS[kind]:
        errors["metric"] = f"Rules of kind {kind} read {' or '.join(sorted(KIND_METRICS[kind]))}, not {metric!r}."
    if scope not in SCOPES:
        errors["scope"] = f"Unknown scope {scope!r}; one of {', '.join(sorted(SCOPES))}."
    if window_hours is None or not 1 <= window_hours <= MAX_RULE_WINDOW_HOURS:
        errors["window_hours"] = f"Between 1 and {MAX_RULE_WINDOW_HOURS} hours."
    if min_sample is None or min_sample < 0:
        errors["min_sample"] = "Zero or more."
    if kind in KIND_METRICS:
        errors.update(_level_errors(kind, {"critical": critical, "high": high, "medium": medium}))
    return errors


def _level_errors(kind: str, levels: dict[str, float | None]) -> dict[str, str]:
    given = {name: value for name, value in levels.items() if value is not None}
    errors = {name: "Must be a finite number." for name, value in given.items() if not math.isfinite(value)}
    if errors:
        return errors
    if kind == "stale_source":
        # The level only marks the severity a stale source fires at; its value is not compared.
        if len(given) > 1:
            errors["high"] = "A stale-source rule fires at one severity: set one level (or none for high)."
        return errors
    if not given:
        errors["critical"] = "Set at least one level, or the rule can never fire."
        return errors
    low, high_bound = LEVEL_BOUNDS[kind]
    for name, value in given.items():
        if value <= low or (high_bound is not None and value > high_bound):
            errors[name] = f"Must be above {low:g}" + (f" and at most {high_bound:g}." if high_bound else ".")
    if errors:
        return errors
    ordered = [(name, given[name]) for name in LEVELS if name in given]
    below = kind in BELOW_KINDS
    for (stronger, a), (weaker, b) in zip(ordered, ordered[1:], strict=False):
        if (a >= b) if below else (a <= b):
            relation = "below" if below else "above"
            errors[weaker] = f"The {stronger} level ({a:g}) must be strictly {relation} the {weaker} level ({b:g})."
    return errors


def parse_weekdays(text: str) -> list[int]:
    """'5,6' -> [5, 6]; raises ValueError on anything but comma-separated days 0-6."""
    days = [int(part) for part in text.split(",") if part.strip()]
    if any(day not in range(7) for day in days):
        raise ValueError("Days are 0 (Monday) to 6 (Sunday).")
    return days


def silence_errors(
    *,
    starts_at: datetime | None,
    ends_at: datetime | None,
    reason: str,
    weekdays: list[int] | None,
    daily_start: time | None,
    duration_minutes: int | None,
) -> dict[str, str]:
    errors: dict[str, str] = {}
    if starts_at is None:
        errors["starts_at"] = "Required."
    if ends_at is None:
        errors["ends_at"] = "Required."
    elif starts_at is not None and ends_at <= starts_at:
        errors["ends_at"] = "Must be after starts_at."
    if not (reason or "").strip():
        errors["reason"] = "Say why (who reads the silence later needs to know)."
    if weekdays:
        if any(day not in range(7) for day in weekdays):
            errors["weekdays"] = "Days are 0 (Monday) to 6 (Sunday)."
        if daily_start is None or not duration_minutes or not 0 < duration_minutes <= MAX_SILENCE_MINUTES:
            errors["duration_minutes"] = f"A weekly window needs daily_start and 1-{MAX_SILENCE_MINUTES} minutes."
    elif daily_start is not None or duration_minutes:
        errors["weekdays"] = "daily_start and duration_minutes only apply with weekdays."
    return errors


def silence_target_errors(
    *,
    rule_name: str,
    source: str,
    ends_at: datetime | None,
    now: datetime,
    rule_known: bool,
    source_known: bool,
) -> dict[str, str]:
    """What a new silence must match and when it must end (the caller looks up what is known).

    An empty rule name or source matches any, so only a named one must be known: a typo would
    otherwise silence nothing while the operator believes it silences something. A silence that has
    already ended would never silence anything.
    """
    errors: dict[str, str] = {}
    if rule_name and not rule_known:
        errors["rule_name"] = f"Unknown rule {rule_name!r}: name an alert rule (or leave it empty for any rule)."
    if source and not source_known:
        errors["source"] = (
            f"Unknown source {source!r}: no metric, run or alert was ever recorded for it "
            "(leave it empty for any source)."
        )
    if ends_at is not None and ends_at <= now:
        errors["ends_at"] = "Already ended: a silence must end in the future."
    return errors


def stored_silence_errors(
    *,
    starts_at: datetime | None,
    ends_at: datetime | None,
    reason: str,
    weekdays: str,
    daily_start: time | None,
    duration_minutes: int | None,
) -> dict[str, str]:
    """The same checks for a silence as stored (weekdays as text, e.g. '5,6')."""
    try:
        days = parse_weekdays(weekdays or "")
    except ValueError:
        return {"weekdays": "Comma-separated days, 0 (Monday) to 6 (Sunday), e.g. '5,6'."}
    return silence_errors(
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        weekdays=days,
        daily_start=daily_start,
        duration_minutes=duration_minutes,
    )
