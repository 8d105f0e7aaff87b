"""current_anomalies: judged in the caller (tests' default) or in a thread of its own while callers read the latest."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core.cache import cache

from monitoring.anomaly import series
from monitoring.selectors import anomalies, pipeline_status
from monitoring.selectors.anomalies import KEY, LOCK_KEY, current_anomalies, wait_for_judgement
from monitoring.tests.anomaly.test_series import LAST, NOW, _fill

STARTING = {"findings": [], "readiness": {}, "starting": True}


@pytest.fixture
def counted():
    """live_anomalies, counted: how often the detectors judged."""
    with mock.patch.object(anomalies, "live_anomalies", wraps=series.live_anomalies) as judged:
        yield judged


@pytest.fixture
def background(settings, transactional_db):
    """Judging in a thread of its own (committed rows: the thread has its own database connection)."""
    settings.MONITORING_ANOMALY_BACKGROUND = True
    anomalies._worker = None
    anomalies.judge_in_this_process(anomalies.THREAD)  # as the broadcaster's process
    yield
    assert wait_for_judgement(timeout=60), "a judgement was still running when the test ended"
    anomalies._worker = None
    anomalies._role = None


@pytest.mark.django_db
def test_judged_in_the_caller_once_per_cache_period_within_the_hour(counted, settings):
    settings.MONITORING_ANOMALY_CACHE_SECONDS = 60
    _fill(collapse={("acled", LAST)})
    first = current_anomalies(now=NOW)
    assert [f["source"] for f in first["findings"]] == ["acled"]
    assert current_anomalies(now=NOW + timedelta(seconds=30)) == first
    assert counted.call_count == 1
    current_anomalies(now=NOW + timedelta(seconds=61))  # judged again: reports keep arriving
    assert counted.call_count == 2


@pytest.mark.django_db
def test_a_new_hour_is_judged_at_once_in_the_caller(counted):
    _fill()
    current_anomalies(now=NOW)
    current_anomalies(now=NOW + timedelta(minutes=15))  # 11:05: a new hour
    assert counted.call_count == 2


def test_in_the_background_the_first_caller_gets_every_source_starting_without_waiting(background, counted):
    _fill(collapse={("acled", LAST)})
    judging = mock.patch.object(anomalies, "live_anomalies", side_effect=_slow(series.live_anomalies))
    with judging:
        assert current_anomalies(now=NOW) == STARTING
        assert wait_for_judgement(timeout=60)
    judged = current_anomalies(now=NOW + timedelta(seconds=1))
    series.reset_detectors()
    assert judged == series.live_anomalies(now=NOW)  # what the caller would have judged itself
    assert [f["source"] for f in judged["findings"]] == ["acled"]


def test_the_status_says_the_detectors_are_starting_until_the_first_judgement(background):
    _fill()
    document = pipeline_status(now=NOW)
    states = {row["source"]: row["anomaly_detection"]["state"] for row in document["data_quality"]["by_source"]}
    assert states == {"acled": "starting", "gdelt": "starting"} and document["anomalies"] == []
    wait_for_judgement(timeout=60)
    document = pipeline_status(now=NOW + timedelta(seconds=1))
    assert {row["anomaly_detection"]["state"] for row in document["data_quality"]["by_source"]} == {"ready"}


def test_the_previous_judgement_is_shown_while_the_new_hour_is_judged(background, counted):
    _fill(collapse={("acled", LAST)})
    late = NOW + timedelta(minutes=9)  # 10:59
    current_anomalies(now=late)
    wait_for_judgement(timeout=60)
    before = current_anomalies(now=late + timedelta(seconds=1))
    assert before["findings"]
    # 11:01: the judgement of 10:59 is answered at once while 11:00 is being judged.
    turned = late + timedelta(minutes=2)
    assert current_anomalies(now=turned) == before
    wait_for_judgement(timeout=60)
    assert counted.call_count == 2
    assert cache.get(KEY)["judged_at"] == turned.isoformat()


def test_a_fresh_judgement_is_read_without_judging_again(background, counted):
    _fill()
    current_anomalies(now=NOW)
    wait_for_judgement(timeout=60)
    for seconds in (1, 10, 59):
        current_anomalies(now=NOW + timedelta(seconds=seconds))
    wait_for_judgement(timeout=60)
    assert counted.call_count == 1


def test_another_process_judging_holds_the_lock_and_this_one_waits_for_its_result(background, counted):
    _fill()
    cache.set(LOCK_KEY, "another process", timeout=60)
    assert current_anomalies(now=NOW) == STARTING
    assert wait_for_judgement(timeout=60)
    assert counted.call_count == 0
    cache.set(KEY, {"judged_at": NOW.isoformat(), "document": {"findings": [], "readiness": {"x": {}}}})
    assert current_anomalies(now=NOW + timedelta(seconds=1)) == {"findings": [], "readiness": {"x": {}}}


def test_a_failed_judgement_keeps_the_previous_one_frees_the_lock_and_is_retried(background, caplog):
    _fill()
    previous = {"findings": [], "readiness": {}}
    cache.set(KEY, {"judged_at": (NOW - timedelta(minutes=2)).isoformat(), "document": previous})
    with mock.patch.object(anomalies, "live_anomalies", side_effect=RuntimeError("database gone")):
        assert current_anomalies(now=NOW) == {"findings": [], "readiness": {}}
        wait_for_judgement(timeout=60)
    assert "judging the anomalies failed" in caplog.text
    assert cache.get(LOCK_KEY) is None
    current_anomalies(now=NOW + timedelta(seconds=1))  # tried again, and this time it works
    wait_for_judgement(timeout=60)
    assert cache.get(KEY)["judged_at"] == (NOW + timedelta(seconds=1)).isoformat()


def test_a_judgement_older_than_ten_minutes_is_not_shown(background):
    _fill()
    old = {"findings": [{"x": 1}], "readiness": {}}
    cache.set(KEY, {"judged_at": (NOW - timedelta(minutes=11)).isoformat(), "document": old})
    with mock.patch.object(anomalies, "live_anomalies", side_effect=RuntimeError("still failing")):
        assert current_anomalies(now=NOW) == STARTING
        wait_for_judgement(timeout=60)


def _slow(function):
    """``function`` after a pause: the caller must have had its answer before the judgement ends."""
    import time

    def slow(**kwargs):
        time.sleep(0.2)
        return function(**kwargs)

    return slow


def test_a_judgement_stored_while_the_caller_decided_to_judge_is_not_made_twice(background, counted):
    _fill()
    # The caller read a stale entry; by the time it starts judging, another thread has stored a fresh one.
    cache.set(KEY, {"judged_at": NOW.isoformat(), "document": {"findings": [], "readiness": {}}})
    anomalies._judge_in_background(now=NOW + timedelta(seconds=1))
    assert wait_for_judgement(timeout=60)
    assert counted.call_count == 0 and cache.get(LOCK_KEY) is None


@pytest.fixture
def role():
    yield anomalies.judge_in_this_process
    anomalies._role = None


def test_a_server_of_a_redis_deployment_only_reads_what_the_broadcaster_judged(background, counted, settings, role):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"  # the cache stays the test's: only the role is read from it
    anomalies._role = None  # a server process: it built no broadcaster
    _fill()
    assert anomalies.judging_role() == anomalies.READER
    assert current_anomalies(now=NOW) == STARTING
    assert wait_for_judgement(timeout=60) and counted.call_count == 0
    role(anomalies.THREAD)  # the broadcaster's process
    current_anomalies(now=NOW)
    assert wait_for_judgement(timeout=60) and counted.call_count == 1


def test_without_redis_the_server_judges_itself_since_the_broadcaster_runs_inside_it(background, settings):
    settings.REDIS_URL = ""
    anomalies._role = None
    assert anomalies.judging_role() == anomalies.THREAD


def test_a_command_judges_in_the_caller_because_it_exits_once_it_has_printed(background, counted, role):
    _fill(collapse={("acled", LAST)})
    role(anomalies.CALLER)
    assert [f["source"] for f in current_anomalies(now=NOW)["findings"]] == ["acled"]
    assert counted.call_count == 1


def test_an_unknown_role_is_refused(role):
    with pytest.raises(ValueError):
        role("judge-everything")
