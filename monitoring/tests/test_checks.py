"""System checks catch the channels-redis / redis-py timeout trap before it kills consumers."""

from monitoring.checks import check_alert_rules, check_redis_socket_timeout, check_thresholds


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


def test_default_alert_rules_can_all_be_evaluated():
    assert check_alert_rules() == []


def test_a_default_alert_rule_the_evaluation_could_not_use_is_an_error(settings):
    geo = {"name": "geo", "kind": "threshold", "metric": "geocoding_success_rate", "critical": 90, "high": 80}
    settings.MONITORING_ALERT_RULES = [geo, {"name": "typo", "kind": "threshold", "metrik": "x"}]
    messages = [e.msg for e in check_alert_rules()]
    assert [e.id for e in check_alert_rules()] == ["monitoring.E003"] * 2
    assert "'geo'] high" in messages[0] and "'typo'] spec" in messages[1]


def test_the_maximum_connection_age_is_shorter_than_daphnes_websocket_timeout(settings):
    """Connections are recycled (4000, resume) before daphne's own 24 h timeout cuts them without a code."""
    import inspect

    from daphne.server import Server

    daphne_timeout = inspect.signature(Server).parameters["websocket_timeout"].default
    assert daphne_timeout > settings.WEBSOCKET_MAX_CONNECTION_AGE
