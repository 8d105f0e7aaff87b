"""Alert reads: documents, the active list, listings, and the floor open alerts put under a status."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection

from monitoring.models import Alert
from monitoring.selectors.common import CRITICAL, DEGRADED, isoformat, worst
from monitoring.selectors.paging import Key, Page, newest_first
from monitoring.windows import db_moment

# How an alert that counts (see :func:`alerts_floor`) raises the headline: medium alerts do not.
ALERT_FLOOR = {"critical": CRITICAL, "high": DEGRADED}
_COUNTING_STATES = frozenset({Alert.State.FIRING.value, Alert.State.ACKNOWLEDGED.value})


def alerts_floor(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """The floor the alerts put under a status, and the alerts that set it (pure: alert documents in).

    An alert counts while it is open (firing, or acknowledged: someone is on it, the problem is not
    over) and neither silenced nor inhibited; a critical one makes the floor ``critical``, a high one
    ``degraded``, a medium one nothing. ``status`` is null when no alert counts (then the floor
    changes nothing, not even ``no_data``); ``alerts`` are the ids of the counting alerts, in the
    order given.
    """
    counting = [
        alert
        for alert in alerts
        if alert["state"] in _COUNTING_STATES
        and not alert["silenced"]
        and not alert["inhibited"]
        and alert["severity"] in ALERT_FLOOR
    ]
    status = worst(*(ALERT_FLOOR[alert["severity"]] for alert in counting)) if counting else None
    return {"status": status, "alerts": [alert["id"] for alert in counting]}


def with_floor(status: str, floor: dict[str, Any]) -> str:
    """``status`` raised to the floor's (unchanged when the floor has none)."""
    return worst(status, floor["status"]) if floor["status"] else status


_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2}


# The alert's own columns that its document shows; the active-alerts query selects them in this order.
_ALERT_COLUMNS = (
    "id",
    "fingerprint",
    "rule_name",
    "source",
    "severity",
    "state",
    "summary",
    "evidence",
    "first_seen",
    "last_seen",
    "occurrences",
    "silenced",
    "inhibited",
    "acknowledged_at",
    "acknowledge_comment",
    "resolved_at",
    "resolve_comment",
)


def _alert_document(values: dict[str, Any], *, acknowledged_by: str | None, resolved_by: str | None) -> dict[str, Any]:
    return {
        "id": values["id"],
        "fingerprint": values["fingerprint"],
        "rule": values["rule_name"],
        "source": values["source"] or None,
        "severity": values["severity"],
        "state": values["state"],
        "summary": values["summary"],
        "evidence": values["evidence"],
        "first_seen": isoformat(values["first_seen"]),
        "last_seen": isoformat(values["last_seen"]),
        "occurrences": values["occurrences"],
        "silenced": values["silenced"],
        "inhibited": values["inhibited"],
        "acknowledged_by": acknowledged_by,
        "acknowledged_at": isoformat(values["acknowledged_at"]),
        "acknowledge_comment": values["acknowledge_comment"],
        "resolved_by": resolved_by,
        "resolved_at": isoformat(values["resolved_at"]),
        "resolve_comment": values["resolve_comment"],
    }


def alert_dict(alert: Alert) -> dict[str, Any]:
    return _alert_document(
        {column: getattr(alert, column) for column in _ALERT_COLUMNS},
        acknowledged_by=alert.acknowledged_by.get_username() if alert.acknowledged_by else None,
        resolved_by=alert.resolved_by.get_username() if alert.resolved_by else None,
    )


@lru_cache(maxsize=1)
def _active_alerts_sql() -> str:
    """Active alerts with the usernames of who acknowledged / resolved them (built once the user model is known)."""
    user = get_user_model()._meta
    username = user.get_field(get_user_model().USERNAME_FIELD).column
    columns = ", ".join(f"a.{column}" for column in _ALERT_COLUMNS)
    states = ", ".join(f"'{state}'" for state in (Alert.State.FIRING.value, Alert.State.ACKNOWLEDGED.value))
    # Identifiers come from the models, the states are the model's constants.
    return (
        f"SELECT {columns}, ack.{username}, res.{username} FROM {Alert._meta.db_table} AS a "  # noqa: S608
        f"LEFT JOIN {user.db_table} AS ack ON ack.{user.pk.column} = a.acknowledged_by_id "
        f"LEFT JOIN {user.db_table} AS res ON res.{user.pk.column} = a.resolved_by_id "
        f"WHERE a.state IN ({states}) ORDER BY a.id"
    )


def _alert_values(row: tuple[Any, ...]) -> dict[str, Any]:
    """Raw columns as the model would read them: JSON decoded, booleans and timestamps on every backend."""
    values = dict(zip(_ALERT_COLUMNS, row, strict=False))
    if isinstance(values["evidence"], str):
        values["evidence"] = json.loads(values["evidence"])
    for name in ("silenced", "inhibited"):
        values[name] = bool(values[name])
    for name in ("first_seen", "last_seen", "acknowledged_at", "resolved_at"):
        values[name] = db_moment(values[name])
    return values


def active_alerts() -> list[dict[str, Any]]:
    """Firing and acknowledged alerts, most severe first, newest first within a severity."""
    with connection.cursor() as cursor:
        cursor.execute(_active_alerts_sql())
        rows = cursor.fetchall()
    alerts = [(_alert_values(row), row[-2], row[-1]) for row in rows]
    alerts.sort(key=lambda alert: (_SEVERITY_ORDER[alert[0]["severity"]], -alert[0]["last_seen"].timestamp()))
    return [
        _alert_document(values, acknowledged_by=acknowledged_by, resolved_by=resolved_by)
        for values, acknowledged_by, resolved_by in alerts
    ]


def list_alerts(
    *,
    state: str | None = None,
    severity: str | None = None,
    source: str | None = None,
    limit: int = 100,
    after: Key | None = None,
) -> Page[Alert]:
    """Alerts newest (last seen) first, optionally filtered; one page of ``limit`` after ``after``."""
    filters = {name: value for name, value in (("state", state), ("severity", severity), ("source", source)) if value}
    rows = Alert.objects.filter(**filters).select_related("acknowledged_by", "resolved_by")
    return newest_first(rows=rows, moment="last_seen", after=after, limit=limit)
