"""The development world, the event scoring rules, and the streaming detector's floors on them."""

from datetime import timedelta

from monitoring.anomaly.contract import Finding
from monitoring.anomaly.detector import GEOCODING_SUCCESS_RATE, VOLUME
from monitoring.anomaly.evaluation import CLEAN, MIXED, STREAMING, ZSCORE, Stamped, evaluate, score
from monitoring.anomaly.synthetic import DEFAULT_START, KINDS, OUTAGE, RATE_DROP, Incident, World, generate


def test_the_world_is_deterministic_for_a_seed():
    first, second = generate(seed=3, days=20, sources=3), generate(seed=3, days=20, sources=3)
    assert first.series == second.series
    assert first.incidents == second.incidents


def test_worlds_with_fewer_kinds_share_the_background_and_the_incident_positions():
    mixed = generate(seed=5, days=20, sources=3)
    clean = generate(seed=5, days=20, sources=3, kinds=())
    outages = generate(seed=5, days=20, sources=3, kinds=(OUTAGE,))
    assert clean.incidents == ()
    assert outages.incidents == tuple(i for i in mixed.incidents if i.kind == OUTAGE)
    touched = {(i.source, h) for i in mixed.incidents for h in range(i.start, i.start + i.length + 2)}
    same = [
        (name, index)
        for name, series in clean.series.items()
        for index, counts in enumerate(series)
        if (name, index) not in touched and counts == mixed.series[name][index]
    ]
    assert len(same) > 0.9 * sum(len(s) for s in clean.series.values())


def _finding(metric: str, direction: str = "drop") -> Finding:
    return Finding(
        metric=metric,
        hour=DEFAULT_START,
        fraction=1.0,
        direction=direction,
        observed=0,
        expected=1,
        expected_low=0,
        expected_high=2,
        score=-5,
        rule="test",
        explanation="test",
    )


def test_findings_close_together_are_one_alarm_and_count_once_for_precision():
    incident = Incident(source="a", kind=RATE_DROP, metric=GEOCODING_SUCCESS_RATE, start=100, length=3, magnitude=20)
    world = World(start=DEFAULT_START, hours=300, seed=0, profiles=(), series={}, incidents=(incident,))
    stamped = [
        Stamped("a", 101.5, _finding(GEOCODING_SUCCESS_RATE)),
        Stamped("a", 102.0, _finding(GEOCODING_SUCCESS_RATE)),
        Stamped("a", 200.0, _finding(VOLUME)),  # far from the incident: a false alarm
        Stamped("a", 202.5, _finding(VOLUME)),  # within 3 h of it: the same false alarm
    ]
    result = score(world=world, stamped=stamped)
    assert (result["alarms"], result["false_alarms"], result["precision"]) == (2, 1, 0.5)
    assert result["per_kind"][RATE_DROP] == {
        "incidents": 1,
        "detected": 1,
        "recall": 1.0,
        "median_delay_h": 1.5,
        "f1": round(2 * 0.5 / 1.5, 3),
    }


def test_a_finding_of_another_metric_or_direction_does_not_detect_an_incident():
    incident = Incident(source="a", kind=OUTAGE, metric=VOLUME, start=10, length=4, magnitude=0)
    world = World(start=DEFAULT_START, hours=50, seed=0, profiles=(), series={}, incidents=(incident,))
    stamped = [Stamped("a", 11.0, _finding(GEOCODING_SUCCESS_RATE)), Stamped("a", 12.0, _finding(VOLUME, "spike"))]
    result = score(world=world, stamped=stamped)
    assert result["detected"] == 0
    assert result["false_alarms"] == 0  # it overlaps the incident: an operator would not call it noise


def test_the_streaming_detector_meets_its_floors_and_beats_the_z_score():
    report = evaluate(seed=7, days=30, sources=6, detectors=(STREAMING, ZSCORE), worlds=(MIXED, CLEAN))
    streaming, zscore = report["results"][STREAMING], report["results"][ZSCORE]
    assert streaming[MIXED]["precision"] >= 0.85
    assert streaming[MIXED]["recall"] >= 0.75
    assert streaming[CLEAN]["false_alarms"] <= 4
    assert zscore[CLEAN]["false_alarms"] > 5 * max(streaming[CLEAN]["false_alarms"], 1)
    assert streaming[MIXED]["precision"] > zscore[MIXED]["precision"] + 0.3
    for kind in KINDS:
        mine, plain = streaming[MIXED]["per_kind"][kind], zscore[MIXED]["per_kind"][kind]
        assert mine["f1"] > plain["f1"], kind


def test_outages_and_level_drops_are_found_within_about_an_hour():
    report = evaluate(seed=11, days=30, sources=6, detectors=(STREAMING,), worlds=(MIXED,))
    per_kind = report["results"][STREAMING][MIXED]["per_kind"]
    assert per_kind["outage"]["median_delay_h"] <= 1.5
    assert per_kind["level_drop"]["median_delay_h"] <= 1.5
    assert per_kind["degradation"]["median_delay_h"] <= 7
    assert timedelta(hours=per_kind["spike"]["median_delay_h"]) < timedelta(hours=1)
