"""Readiness probes against the real services: ``None`` when each answers, else only the exception's
class name (driver messages, with hosts and ports, go to the log)."""

import logging

import pytest

from monitoring.readiness import check_channel_layer, check_database

UNREACHABLE_LAYER = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 1}]},
    }
}


@pytest.mark.django_db
def test_the_database_answers():
    assert check_database() is None


@pytest.mark.usefixtures("feed_backend")
def test_a_message_makes_the_round_trip_through_the_channel_layer():
    assert check_channel_layer() is None


def test_an_unreachable_channel_layer_is_named_by_its_exception_class_and_logged(settings, caplog):
    settings.CHANNEL_LAYERS = UNREACHABLE_LAYER
    with caplog.at_level(logging.WARNING, logger="monitoring.readiness"):
        reason = check_channel_layer()
    assert reason is not None
    assert reason.isidentifier()  # a class name, no host or port
    assert "127.0.0.1" not in reason
    assert "channel layer check failed" in caplog.text
