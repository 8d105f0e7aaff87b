"""Group keys and group timers (pure functions)."""

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.notify.grouping import GroupTiming, first_due, group_key, repeat_due

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TIMING = GroupTiming(wait=timedelta(seconds=30), interval=timedelta(minutes=5), repeat=timedelta(hours=4))


def _key(by: str, **fields):
    values = {"alert_id": 7, "rule_name": "geo-low", "source": "gdelt", "metric": "geocoding_success_rate"}
    return group_key(by=by, **{**values, **fields})


@pytest.mark.parametrize(
    ("by", "key", "labels"),
    [
        ("source", "source=gdelt", {"source": "gdelt"}),
        ("stage", "stage=geocode", {"stage": "geocode"}),
        ("rule", "rule=geo-low", {"rule": "geo-low"}),
        ("alert", "alert=7", {"alert": "7"}),
    ],
)
def test_each_grouping_gives_a_stable_readable_key(by, key, labels):
    assert _key(by).key == key
    assert _key(by).labels == labels
    assert _key(by) == _key(by)


def test_alerts_over_all_sources_share_one_named_source_group():
    assert _key("source", source="").key == "source=(all sources)"


def test_stage_grouping_puts_the_failure_rate_and_the_rate_of_one_stage_together():
    assert _key("stage", metric="validate_failure_rate").key == _key("stage", metric="validation_pass_rate").key
    assert _key("stage", metric="scrape").key == _key("stage", metric="scrape_failure_rate").key == "stage=scrape"
    assert _key("stage", metric="geocode_failure_rate").key != _key("stage", metric="scrape").key


def test_an_unknown_grouping_is_refused():
    with pytest.raises(ValueError, match="unknown grouping"):
        _key("colour")


def test_a_group_without_an_open_incident_waits_group_wait():
    assert first_due(now=T0, open_incident=False, last_sent_at=None, timing=TIMING) == T0 + timedelta(seconds=30)
    # A closed incident's last notice does not shorten the wait of the next one.
    last = T0 - timedelta(hours=1)
    assert first_due(now=T0, open_incident=False, last_sent_at=last, timing=TIMING) == T0 + timedelta(seconds=30)


def test_an_open_group_sends_no_sooner_than_group_interval_after_its_last_notice():
    last = T0 - timedelta(minutes=2)
    assert first_due(now=T0, open_incident=True, last_sent_at=last, timing=TIMING) == last + timedelta(minutes=5)
    long_ago = T0 - timedelta(hours=1)
    assert first_due(now=T0, open_incident=True, last_sent_at=long_ago, timing=TIMING) == T0


def test_only_a_group_still_firing_is_repeated():
    assert repeat_due(sent_at=T0, still_firing=True, timing=TIMING) == T0 + timedelta(hours=4)
    assert repeat_due(sent_at=T0, still_firing=False, timing=TIMING) is None
