"""run_broadcaster refuses to start, with a CommandError that says why, when it has no Redis to share
the feed through or cannot serve its metrics."""

import socket

import pytest
from django.core.management import CommandError, call_command


def test_without_redis_it_points_to_the_embedded_broadcaster(settings):
    settings.REDIS_URL = None
    with pytest.raises(CommandError, match="REDIS_URL is not set"):
        call_command("run_broadcaster")


def test_a_metrics_port_already_taken_is_a_command_error_naming_it(settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings.MONITORING_BROADCASTER_METRICS_ADDR = "127.0.0.1"
        settings.MONITORING_BROADCASTER_METRICS_PORT = port
        with pytest.raises(CommandError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            call_command("run_broadcaster")
