"""LOG_FORMAT and the API_THROTTLE_* limits come from the environment; a malformed value stops start-up
naming the variable. Each case imports the settings in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json
from conflict_monitor import settings as s
print(json.dumps({
    "format": s.LOG_FORMAT, "logging": s.LOGGING, "logging_config": getattr(s, "LOGGING_CONFIG", None),
    "rates": s.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "throttles": s.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"],
}))
"""


def _settings(**env: str) -> subprocess.CompletedProcess:
    base = {
        k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "DEBUG") and not k.startswith("API_THROTTLE_")
    }
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**base, "SECRET_KEY": "k", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _load(**env: str) -> dict:
    result = _settings(**env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_text_is_the_default_format_with_todays_look():
    loaded = _load()
    assert loaded["format"] == "text" and loaded["logging_config"] is None
    console = loaded["logging"]["handlers"]["console"]
    assert console["formatter"] == "plain" and console["filters"] == ["request_id"]
    assert loaded["logging"]["formatters"]["plain"] == {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    assert "loggers" not in loaded["logging"]


def test_json_format_sends_every_logger_through_the_json_handler():
    loaded = _load(LOG_FORMAT="JSON")
    assert loaded["format"] == "json"
    assert loaded["logging"]["handlers"]["console"]["formatter"] == "json"
    assert loaded["logging"]["formatters"]["json"] == {"()": "monitoring.logs.JsonFormatter"}
    # Django's own plain-text handlers hand their records to the root's.
    assert loaded["logging"]["loggers"]["django"] == {"handlers": [], "propagate": True}
    assert loaded["logging_config"] == "monitoring.logs.configure_json"  # warnings become records too


def test_an_unknown_format_stops_start_up():
    result = _settings(LOG_FORMAT="xml")
    assert result.returncode != 0 and "LOG_FORMAT must be text or json" in result.stderr


def test_the_throttles_and_their_default_rates():
    loaded = _load()
    assert loaded["rates"] == {"ingest": "1200/min", "user": "1200/min", "anon": "600/min"}
    assert loaded["throttles"] == [
        "monitoring.api.throttling.IngestThrottle",
        "monitoring.api.throttling.UserThrottle",
        "monitoring.api.throttling.AnonThrottle",
    ]


def test_rates_come_from_the_environment_and_off_turns_a_scope_off():
    loaded = _load(API_THROTTLE_INGEST=" 50/second ", API_THROTTLE_USER="OFF", API_THROTTLE_ANON="10/h")
    assert loaded["rates"] == {"ingest": "50/second", "user": None, "anon": "10/h"}


@pytest.mark.parametrize("value", ["ten/min", "0/min", "5/week", "5", "-1/min", "", "5/min/2"])
def test_a_malformed_rate_stops_start_up_naming_the_variable(value):
    result = _settings(API_THROTTLE_ANON=value)
    assert result.returncode != 0
    assert "API_THROTTLE_ANON must be <requests>/<second|minute|hour|day>" in result.stderr
