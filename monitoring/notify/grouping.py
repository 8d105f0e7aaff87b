"""Which alerts share a notification, and when a group's next notification is due (Alertmanager's
``group_by``, ``group_wait``, ``group_interval`` and ``repeat_interval``).

Pure functions: the sender (``monitoring.services.notifications``) keeps the group rows and asks
these when to send.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

BY_SOURCE = "source"
BY_STAGE = "stage"
BY_RULE = "rule"
BY_ALERT = "alert"  # no grouping: one notification per alert
GROUP_BY_CHOICES = (BY_SOURCE, BY_STAGE, BY_RULE, BY_ALERT)

ALL_SOURCES = "(all sources)"

# The pipeline stage an alert rule's metric belongs to, for grouping by stage.
STAGE_OF_METRIC = {
    "scrape": "scrape",
    "failed_runs": "scrape",
    "scrape_failure_rate": "scrape",
    "geocoding_success_rate": "geocode",
    "geocode_failure_rate": "geocode",
    "validation_pass_rate": "validate",
    "failed_validations": "validate",
    "validate_failure_rate": "validate",
    "any": "anomaly",
}


@dataclass(frozen=True, kw_only=True)
class GroupTiming:
    """``wait``: how long a new group collects alerts before its first notice; ``interval``: the least
    time between two notices of a group; ``repeat``: how often a group that still fires is re-sent."""

    wait: timedelta
    interval: timedelta
    repeat: timedelta


@dataclass(frozen=True, kw_only=True)
class GroupKey:
    """A stable key (``source=gdelt``) and its labels; the key names the group in every notice."""

    key: str
    labels: dict[str, str]


def group_key(*, by: str, alert_id: int, rule_name: str, source: str, metric: str) -> GroupKey:
    """The group an alert's notifications go to."""
    if by == BY_SOURCE:
        labels = {"source": source or ALL_SOURCES}
    elif by == BY_STAGE:
        labels = {"stage": STAGE_OF_METRIC.get(metric, "other")}
    elif by == BY_RULE:
        labels = {"rule": rule_name}
    elif by == BY_ALERT:
        labels = {"alert": str(alert_id)}
    else:
        raise ValueError(f"unknown grouping {by!r}; choose from {', '.join(GROUP_BY_CHOICES)}")
    return GroupKey(key=",".join(f"{name}={value}" for name, value in labels.items()), labels=labels)


def first_due(*, now: datetime, open_incident: bool, last_sent_at: datetime | None, timing: GroupTiming) -> datetime:
    """When a change queued at ``now`` is sent.

    A group with no open incident waits ``wait`` so that alerts raised by one cause arrive in one
    notice; a group that already paged sends its next notice no sooner than ``interval`` after the
    last one, so a flapping source cannot page every few seconds.
    """
    if not open_incident or last_sent_at is None:
        return now + timing.wait
    return max(now, last_sent_at + timing.interval)


def repeat_due(*, sent_at: datetime, still_firing: bool, timing: GroupTiming) -> datetime | None:
    """When to remind about a group whose alerts still fire unacknowledged (None: no reminder)."""
    return sent_at + timing.repeat if still_firing else None
