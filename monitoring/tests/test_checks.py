"""System checks catch the channels-redis / redis-py timeout trap before it kills consumers."""

from monitoring.checks import check_redis_socket_timeout, check_thresholds


def _layer(host):
    return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [host]}}}


def test_socket_timeout_at_or_below_the_blocking_read_is_an_error(settings):
    for timeout in (None, 5, 3.0):
        settings.CHANNEL_LAYERS = _layer({"address": "redis://127.0.0.1:6379/0", "socket_timeout": timeout})
        assert [e.id for e in check_redis_socket_timeout()] == ["monitoring.E001"]


def test_socket_timeout_above_the_blocking_read_passes(settings):
    settings.CHANNEL_LAYERS = _layer({"address": "redis://127.0.0.1:6379/0", "socket_timeout": 15})
    assert check_redis_socket_timeout() == []


def test_in_memory_layer_needs_no_check(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert check_redis_socket_timeout() == []


def test_thresholds_out_of_order_are_an_error(settings):
    settings.MONITORING_THRESHOLDS = {**settings.MONITORING_THRESHOLDS, "geocoding_critical": 90.0}
    assert [e.id for e in check_thresholds()] == ["monitoring.E002"]


def test_default_thresholds_are_in_order():
    assert check_thresholds() == []
