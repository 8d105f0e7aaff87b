"""One notification of one alert group, and how it reads: the generic webhook's JSON, Slack's
message. Built by the sender from the group's queued changes; transports only format and send it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PAYLOAD_VERSION = 2

FIRED = "fired"
ACKNOWLEDGED = "acknowledged"
RESOLVED = "resolved"
REPEAT = "repeat"
TEST = "test"
CHANGE_EVENTS = (FIRED, ACKNOWLEDGED, RESOLVED)

FIRING_STATUS = "firing"
RESOLVED_STATUS = "resolved"

TEST_SUMMARY = "[TEST] Conflict Monitor test notification — no action needed"


@dataclass(frozen=True, kw_only=True)
class Change:
    """An alert's state change this notice announces."""

    alert_id: int
    event: str


@dataclass(frozen=True, kw_only=True)
class Notice:
    """What one notification says about a group.

    ``alerts`` are the documents (``selectors.alert_dict``) of every alert of the group's current
    incident: those still open and those this notice announces as resolved. ``first`` is true for the
    notice that opens an incident (a Slack bot posts it; later ones edit that message).
    """

    group_key: str | None
    group_labels: dict[str, str]
    changes: tuple[Change, ...]
    alerts: tuple[dict[str, Any], ...]
    first: bool = False
    test: bool = False
    repeat: bool = False

    @property
    def status(self) -> str:
        """``resolved`` once every alert of the incident is resolved."""
        if self.test or any(a["state"] != RESOLVED for a in self.alerts):
            return FIRING_STATUS
        return RESOLVED_STATUS

    @property
    def event(self) -> str:
        """The notice's headline event: a new alert outranks the rest; a reminder has no change."""
        if self.test:
            return TEST
        kinds = {c.event for c in self.changes}
        for kind in (FIRED, RESOLVED, ACKNOWLEDGED):
            if kind in kinds:
                return kind
        return REPEAT

    def counts(self) -> dict[str, int]:
        tally = {"firing": 0, "acknowledged": 0, "resolved": 0}
        for alert in self.alerts:
            tally[alert["state"]] = tally.get(alert["state"], 0) + 1
        return tally

    def headline(self) -> str:
        """One line: the group's state, its key and tally, e.g. ``[CRITICAL] source=gdelt: 2 firing``; the
        state is the worst firing severity, else ACKNOWLEDGED or RESOLVED; a reminder says STILL FIRING."""
        if self.test:
            return TEST_SUMMARY
        open_alerts = [a for a in self.alerts if a["state"] != RESOLVED]
        worst = (_worst_severity(a for a in open_alerts if a["state"] == "firing") or "firing").upper()
        if self.status == RESOLVED_STATUS:
            verb = "RESOLVED"
        elif not any(a["state"] == "firing" for a in open_alerts):
            verb = "ACKNOWLEDGED"
        elif self.repeat:
            verb = f"STILL FIRING ({worst})"
        else:
            verb = worst  # the message shows the group's state: any alert firing makes it a page
        tally = ", ".join(f"{count} {state}" for state, count in self.counts().items() if count)
        return f"[{verb}] {self.group_key}: {tally}"

    def lines(self) -> list[str]:
        """One line per alert, newest change marked."""
        changed = {c.alert_id: c.event for c in self.changes}
        out = []
        for alert in self.alerts:
            mark = f" ({changed[alert['id']]} now)" if alert["id"] in changed else ""
            out.append(f"[{alert['severity'].upper()}] {alert['summary']} — {alert['state']}{mark}")
        return out

    def text(self) -> str:
        return "\n".join([self.headline(), *self.lines()])


def _worst_severity(alerts) -> str | None:
    order = ("critical", "high", "medium")
    found = {a["severity"] for a in alerts}
    return next((s for s in order if s in found), None)


def json_payload(notice: Notice) -> dict[str, Any]:
    """The generic webhook body (``docs/alerts.md`` documents it)."""
    return {
        "version": PAYLOAD_VERSION,
        "event": notice.event,
        "status": notice.status,
        "test": notice.test,
        "group_key": notice.group_key,
        "group_labels": notice.group_labels,
        "text": notice.text(),
        "changes": [{"alert_id": c.alert_id, "event": c.event} for c in notice.changes],
        "alerts": list(notice.alerts),
    }


def slack_blocks(notice: Notice) -> list[dict[str, Any]]:
    """The group's whole message: headline, one line per alert, and the group key."""
    if notice.test:
        context = "sent by `send_test_notification` · no alert"
        return [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*TEST* {TEST_SUMMARY}"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ]
    body = "\n".join(f"• {line}" for line in notice.lines()) or "no alerts"
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{notice.headline()}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"group `{notice.group_key}`"}]},
    ]


def slack_message(notice: Notice) -> dict[str, Any]:
    return {"text": notice.headline(), "blocks": slack_blocks(notice)}


def slack_follow_up(notice: Notice) -> dict[str, Any]:
    """A short follow-up (an incoming webhook cannot edit the message it posted): the changes only."""
    by_id = {a["id"]: a for a in notice.alerts}
    changed = [f"{c.event}: {by_id[c.alert_id]['summary']}" for c in notice.changes if c.alert_id in by_id]
    text = "\n".join([notice.headline(), *changed])
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}]}


def changes_of(events: Sequence[tuple[int, str]]) -> tuple[Change, ...]:
    return tuple(Change(alert_id=alert_id, event=event) for alert_id, event in events)
