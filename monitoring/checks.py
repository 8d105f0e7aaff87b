"""System checks for configuration mistakes that only show up at run time."""

from django.conf import settings
from django.core.checks import Error, register


@register()
def check_thresholds(app_configs=None, **kwargs) -> list[Error]:
    """A critical threshold that is laxer than its warning would skip the warning stage."""
    limits = settings.MONITORING_THRESHOLDS
    pairs = [
        ("geocoding_critical", "geocoding_warn", "MONITORING_GEOCODING_CRITICAL <= MONITORING_GEOCODING_WARN"),
        ("validation_critical", "validation_warn", "MONITORING_VALIDATION_CRITICAL <= MONITORING_VALIDATION_WARN"),
        (
            "failure_rate_warn",
            "failure_rate_critical",
            "MONITORING_FAILURE_RATE_WARN <= MONITORING_FAILURE_RATE_CRITICAL",
        ),
    ]
    return [
        Error(f"Thresholds out of order: need {rule}.", id="monitoring.E002")
        for low, high, rule in pairs
        if limits[low] > limits[high]
    ]


@register()
def check_redis_socket_timeout(app_configs=None, **kwargs) -> list[Error]:
    """An idle consumer blocks in BZPOPMIN; a socket timeout not above that block kills it."""
    layer = settings.CHANNEL_LAYERS.get("default", {})
    if not layer.get("BACKEND", "").startswith("channels_redis."):
        return []
    from channels_redis.core import RedisChannelLayer

    blocking = RedisChannelLayer.brpop_timeout
    errors = []
    for host in layer.get("CONFIG", {}).get("hosts", []):
        timeout = host.get("socket_timeout") if isinstance(host, dict) else None
        if timeout is None or timeout <= blocking:
            errors.append(
                Error(
                    f"Redis socket_timeout {timeout!r} must exceed channels-redis' {blocking} s blocking read.",
                    hint="Set REDIS_SOCKET_TIMEOUT above it (default 15); see channels_redis#422.",
                    id="monitoring.E001",
                )
            )
    return errors


@register()
def check_alert_rules(app_configs=None, **kwargs) -> list[Error]:
    """Default rules are copied into the database once; one the evaluation cannot use would only be skipped."""
    from monitoring.models import AlertRule

    errors = []
    for spec in settings.MONITORING_ALERT_RULES:
        try:
            problems = AlertRule(**spec).validation_errors()
        except TypeError as exc:  # an unknown key
            problems = {"spec": str(exc)}
        errors.extend(
            Error(f"MONITORING_ALERT_RULES[{spec.get('name')!r}] {field}: {message}", id="monitoring.E003")
            for field, message in problems.items()
        )
    return errors


@register()
def check_openlineage_job_map(app_configs=None, **kwargs) -> list[Error]:
    """The job map is read when OpenLineage events arrive; a wrong one should stop a deploy, not the first event."""
    from django.core.exceptions import ImproperlyConfigured

    from monitoring.openlineage.mapping import job_map

    try:
        job_map()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="monitoring.E004")]
    return []
