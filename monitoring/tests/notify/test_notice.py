"""What a group notice says: headline, event, status and the payloads."""

from monitoring.notify.notice import Change, Notice, json_payload, slack_follow_up, slack_message


def _alert(alert_id: int, state: str = "firing", severity: str = "critical") -> dict:
    return {"id": alert_id, "state": state, "severity": severity, "summary": f"alert {alert_id}", "silenced": False}


def _notice(alerts, changes, **kw) -> Notice:
    return Notice(
        group_key="source=gdelt",
        group_labels={"source": "gdelt"},
        alerts=tuple(alerts),
        changes=tuple(Change(alert_id=a, event=e) for a, e in changes),
        **kw,
    )


def test_a_new_alert_headlines_the_worst_firing_severity():
    notice = _notice([_alert(1, severity="high"), _alert(2)], [(1, "fired"), (2, "fired")], first=True)
    assert notice.event == "fired" and notice.status == "firing"
    assert notice.headline() == "[CRITICAL] source=gdelt: 2 firing"


def test_a_notice_whose_alerts_are_all_resolved_is_resolved():
    notice = _notice([_alert(1, "resolved"), _alert(2, "resolved")], [(2, "resolved")])
    assert notice.status == "resolved" and notice.event == "resolved"
    assert notice.headline() == "[RESOLVED] source=gdelt: 2 resolved"


def test_a_partly_resolved_group_still_fires():
    notice = _notice([_alert(1), _alert(2, "resolved")], [(2, "resolved")])
    assert notice.status == "firing"
    assert notice.headline() == "[CRITICAL] source=gdelt: 1 firing, 1 resolved"


def test_a_group_with_every_open_alert_acknowledged_headlines_acknowledged():
    notice = _notice([_alert(1, "acknowledged")], [(1, "fired"), (1, "acknowledged")])
    assert notice.event == "fired"
    assert notice.headline().startswith("[ACKNOWLEDGED]")


def test_a_reminder_carries_no_change_and_says_still_firing():
    notice = _notice([_alert(1, severity="high")], [], repeat=True)
    assert notice.event == "repeat"
    assert notice.headline() == "[STILL FIRING (HIGH)] source=gdelt: 1 firing"


def test_the_json_payload_carries_the_group_key_the_changes_and_every_alert_of_the_incident():
    body = json_payload(_notice([_alert(1), _alert(2, "resolved")], [(2, "resolved")]))
    assert body["version"] == 2
    assert body["group_key"] == "source=gdelt" and body["group_labels"] == {"source": "gdelt"}
    assert body["changes"] == [{"alert_id": 2, "event": "resolved"}]
    assert [a["id"] for a in body["alerts"]] == [1, 2]
    assert body["status"] == "firing" and body["test"] is False
    assert body["text"].splitlines()[2] == "[CRITICAL] alert 2 — resolved (resolved now)"


def test_slack_message_lists_each_alert_and_the_follow_up_only_the_changes():
    notice = _notice([_alert(1), _alert(2, "resolved")], [(2, "resolved")])
    message = slack_message(notice)
    assert message["text"] == notice.headline()
    assert "alert 1" in message["blocks"][1]["text"]["text"] and "alert 2" in message["blocks"][1]["text"]["text"]
    follow_up = slack_follow_up(notice)
    assert follow_up["text"].endswith("resolved: alert 2")
    assert "alert 1" not in follow_up["text"]
