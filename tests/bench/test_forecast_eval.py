"""The forecast backtest (bench/forecast_eval.py) on a tiny fixed-seed world: its report's structure and sanity.

A development seed (101), not a held-out one; 4 sources × 21 days, one process, a few seconds. No timing
assertions: the speed figures depend on the machine.
"""

from __future__ import annotations

import json

import pytest

from bench import forecast_eval
from bench.forecast_world.scoring import crossings, episodes, score_warnings, smoothed_rate


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("forecast_eval")
    assert (
        forecast_eval.main(
            [
                "--seeds",
                "101",
                "--sources",
                "4",
                "--days",
                "21",
                "--processes",
                "1",
                "--output-dir",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    data = json.loads((out / "forecast_eval.json").read_text())
    data["markdown"] = (out / "forecast_eval.md").read_text()
    return data


def test_the_report_has_errors_for_every_metric_and_horizon(report):
    errors = report["summary"]["errors"]
    for metric in ("volume", "geocoding_success_rate", "validation_pass_rate"):
        for horizon in (1, 6, 24):
            e = errors[f"{metric}|{horizon}|mature|all"]
            assert e["n"] > 0
            assert {"forecast", "last", "yesterday", "last_week", "coverage", "ratio_to_last"} <= set(e)


def test_the_6_hour_volume_forecast_beats_the_naive_baselines(report):
    e = report["summary"]["errors"]["volume|6|mature|all"]
    assert e["ratio_to_last"] < 0.8  # the last hour ignores the daily cycle
    assert e["ratio_to_yesterday"] < 1.0
    assert e["forecast"]["wape_pct"] < e["last"]["wape_pct"]


def test_the_6_hour_rate_forecasts_beat_the_last_value(report):
    for metric in ("geocoding_success_rate", "validation_pass_rate"):
        assert report["summary"]["errors"][f"{metric}|6|mature|all"]["ratio_to_last"] < 1.0


def test_the_bands_cover_roughly_their_share(report):
    for key, e in report["summary"]["errors"].items():
        if key.endswith("|mature|all") and e["n"] >= 200:
            assert 0.6 <= e["coverage"] <= 0.95, (key, e["coverage"])


def test_warnings_are_scored_per_threshold_and_policy(report):
    warnings = report["summary"]["warnings"]
    assert set(warnings) == {
        f"{m}|{level}|{policy}"
        for m in ("geocoding_success_rate", "validation_pass_rate")
        for level in ("warn", "critical")
        for policy in ("central", "central_trend", "central_confident", "earliest", "band")
    }
    for w in warnings.values():
        assert {"episodes", "precision_episodes", "recall", "lead_median_h", "base_rate", "per_cause"} <= set(w)
        assert w["warned"] <= w["crossings"]
        if w["precision_episodes"] is not None:
            assert 0.0 <= w["precision_episodes"] <= 1.0


def test_the_report_measures_speed_and_renders(report):
    speed = report["summary"]["speed"]
    assert speed["observe_us"] > 0 and speed["forecasts_us"] > 0 and speed["hour_turn_ms_at_100_sources"] > 0
    assert report["parameters"]["seeds"] == [101]
    text = report["markdown"]
    assert "## 6 h ahead, all hours" in text and "Will it cross within 24 h?" in text and "## Speed" in text


def test_crossing_definitions():
    smoothed = [90.0] * 30 + [84.0] + [90.0] * 5 + [84.0] + [90.0] * 30 + [84.0]
    # A crossing needs 24 clear hours before it: the second dip (6 h after the first) is not a new one.
    assert crossings(smoothed, 85.0, first=0) == [30, 67]
    assert episodes([0, 1, 1, 0, 1], first=0) == [(1, 2), (4, 4)]
    active = [0] * len(smoothed)
    for t in range(20, 30):
        active[t] = 1
    result = score_warnings(active=active, smoothed=smoothed, threshold=85.0, first=0, cause={30: "degradation"})
    assert result["episodes"] == 1 and result["right_episodes"] == 1
    assert result["per_cause"]["degradation"] == {"crossings": 1, "warned": 1, "leads": [10]}
    assert result["per_cause"]["background"]["warned"] == 0


def test_the_smoothed_rate_needs_its_minimum_sample():
    assert smoothed_rate([(9, 10), (9, 10), (9, 10)]) == [None, None, None]
    assert smoothed_rate([(45, 50), (0, 0), (40, 50)]) == [90.0, 90.0, 85.0]
