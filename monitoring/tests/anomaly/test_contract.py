"""The detector interface: Finding, Readiness, and the streaming detector as a Detector."""

import dataclasses
import inspect
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.anomaly.contract import LEARNING, READY, Detector, Finding, Readiness
from monitoring.anomaly.detector import HourCounts
from monitoring.anomaly.streaming import StreamingConfig, make_detector

START = datetime(2025, 3, 3, tzinfo=UTC)
HOUR = timedelta(hours=1)


def finding(**overrides) -> Finding:
    values = {
        "metric": "volume",
        "hour": datetime(2026, 12, 7, 10, tzinfo=UTC),
        "fraction": 0.83,
        "direction": "drop",
        "observed": 0,
        "expected": 954.2,
        "expected_low": 429.4,
        "expected_high": 2576.4,
        "score": -30.02,
        "rule": "outage",
        "explanation": "volume outage: 0 records in the last 0.83 h against 954 expected (0 %)",
    }
    return Finding(**{**values, **overrides})


def steady(hours: int, *, start=START, records=200) -> list[HourCounts]:
    return [
        HourCounts(
            hour=start + i * HOUR,
            geocoding_attempts=records,
            geocoding_successes=round(0.9 * records),
            validation_attempts=records,
            validation_passes=round(0.95 * records),
        )
        for i in range(hours)
    ]


# -- Finding ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fraction", "partial"), [(0.25, True), (0.9999, True), (1.0, False)])
def test_a_finding_is_partial_until_its_hour_has_closed(fraction, partial):
    assert finding(fraction=fraction).partial is partial


def test_as_dict_holds_every_field_the_hour_in_iso_format_and_whether_it_is_partial():
    as_dict = finding().as_dict()
    fields = {f.name for f in dataclasses.fields(Finding)}
    assert set(as_dict) == fields | {"partial"}
    assert as_dict["hour"] == "2026-12-07T10:00:00+00:00"
    assert as_dict["partial"] is True
    assert (as_dict["rule"], as_dict["score"], as_dict["expected"]) == ("outage", -30.02, 954.2)
    assert finding(fraction=1.0).as_dict()["partial"] is False


def test_a_finding_is_immutable_and_built_by_keyword_only():
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding().score = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        Finding("volume", START, 1.0, "drop", 0, 1, 0, 2, -5, "level", "text")  # type: ignore[misc]


def test_findings_with_the_same_values_are_equal():
    assert finding() == finding()
    assert finding() != finding(score=-29.0)


# -- Readiness ------------------------------------------------------------------------------------


def test_readiness_names_its_states_as_the_status_document_shows_them():
    assert (LEARNING, READY) == ("learning", "ready")
    readiness = Readiness(state=LEARNING, hours_seen=3, hours_needed=24)
    assert dataclasses.asdict(readiness) == {"state": "learning", "hours_seen": 3, "hours_needed": 24}
    with pytest.raises(dataclasses.FrozenInstanceError):
        readiness.state = READY  # type: ignore[misc]


# -- the streaming detector as a Detector ---------------------------------------------------------


def protocol_methods() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(Detector).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


def test_the_protocol_is_observe_judge_partial_and_readiness():
    assert set(protocol_methods()) == {"observe", "judge_partial", "readiness"}


def test_make_detector_is_called_as_the_factory_is_and_has_every_protocol_method_with_its_signature():
    detector = make_detector(tz="Asia/Damascus", sensitivity=4.0)
    for name, expected in protocol_methods().items():
        method = getattr(detector, name)
        assert callable(method), name
        bound = list(expected.parameters.values())[1:]  # without self
        actual = list(inspect.signature(method).parameters.values())
        assert [(p.name, p.kind) for p in actual] == [(p.name, p.kind) for p in bound], name


def test_a_detector_learns_for_hours_needed_closed_hours_then_is_ready():
    config = replace(StreamingConfig(), hours_needed=5)
    detector = make_detector(config=config)
    states = []
    for counts in steady(7):
        readiness = detector.readiness()
        states.append((readiness.state, readiness.hours_seen))
        detector.observe(counts)
    assert states == [
        (LEARNING, 0),
        (LEARNING, 1),
        (LEARNING, 2),
        (LEARNING, 3),
        (LEARNING, 4),
        (READY, 5),
        (READY, 6),
    ]
    assert detector.readiness().hours_needed == 5


def test_partial_judgements_do_not_count_as_hours_seen():
    detector = make_detector()
    series = steady(3)
    for counts in series:
        detector.judge_partial(replace(counts, geocoding_attempts=counts.geocoding_attempts // 2), fraction=0.5)
        detector.observe(counts)
    assert detector.readiness() == Readiness(state=LEARNING, hours_seen=3, hours_needed=24)


def test_observe_and_judge_partial_answer_with_lists_of_findings():
    detector = make_detector()
    series = steady(30)
    for counts in series:
        assert detector.observe(counts) == []
    broken = replace(steady(1, start=series[-1].hour + HOUR)[0], validation_passes=0)
    partial = detector.judge_partial(broken, fraction=0.8)
    closed = detector.observe(broken)
    for findings, fraction in ((partial, 0.8), (closed, 1.0)):
        assert [(f.metric, f.direction, f.fraction) for f in findings] == [("validation_pass_rate", "drop", fraction)]
        assert all(isinstance(f, Finding) for f in findings)
