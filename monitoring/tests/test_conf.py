"""Monitoring settings are read when asked, never at import, and a threshold set without all its
fields is refused."""

import dataclasses

import pytest

from monitoring import conf


def test_thresholds_follow_the_settings_of_the_moment(settings):
    settings.MONITORING_THRESHOLDS = {**settings.MONITORING_THRESHOLDS, "geocoding_warn": 95.5, "min_runs": 7}
    first = conf.thresholds()
    assert (first.geocoding_warn, first.min_runs) == (95.5, 7)
    settings.MONITORING_THRESHOLDS = {**settings.MONITORING_THRESHOLDS, "geocoding_warn": 80.0}
    assert conf.thresholds().geocoding_warn == 80.0


def test_thresholds_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        conf.thresholds().geocoding_warn = 1.0


@pytest.mark.parametrize("change", ["missing", "unknown"])
def test_thresholds_missing_a_field_or_naming_an_unknown_one_are_refused(settings, change):
    values = dict(settings.MONITORING_THRESHOLDS)
    if change == "missing":
        del values["min_runs"]
    else:
        values["geocoding_panic"] = 1.0
    settings.MONITORING_THRESHOLDS = values
    with pytest.raises(TypeError):
        conf.thresholds()


def test_the_default_window_follows_the_setting(settings):
    settings.MONITORING_WINDOW_HOURS = 6
    assert conf.default_window_hours() == 6
