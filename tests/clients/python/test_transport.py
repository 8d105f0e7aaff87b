"""What both clients share: their settings, checked when made, and the headers of every request."""

from __future__ import annotations

import httpx
import pytest
from conflict_monitor_client import __version__
from conflict_monitor_client.transport import ClientCore
from conflict_monitor_client.wire import ApiRequest


def _core(**overrides):
    settings = {"timeout": 1.0, "batch_size": 500, "retry": None, "rand": None, **overrides}
    return ClientCore.make(settings.pop("url", "http://127.0.0.1:8000"), settings.pop("token", "cm_x"), **settings)


@pytest.mark.parametrize(
    "overrides", [{"token": ""}, {"batch_size": 0}, {"batch_size": 5001}, {"url": "127.0.0.1:8000"}], ids=str
)
def test_settings_that_could_not_work_are_refused_when_the_client_is_made(overrides):
    with pytest.raises(ValueError):
        _core(**overrides)


def test_every_request_says_who_sends_it_and_the_token_never_shows_in_the_settings_repr():
    core = _core(token="cm_secret")
    headers = core.headers(ApiRequest("POST", "runs", {"source": "acled"}))
    assert headers["User-Agent"] == f"conflict-monitor-client/{__version__} httpx/{httpx.__version__}"
    assert headers["Authorization"] == "Token cm_secret" and headers["Content-Type"] == "application/json"
    assert "cm_secret" not in repr(core)
    assert core.url(ApiRequest("GET", "runs/3")) == "http://127.0.0.1:8000/api/v1/monitoring/runs/3"
