from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"
    verbose_name = "Pipeline monitoring"

    def ready(self) -> None:
        from monitoring import checks  # noqa: F401  (registers system checks)
        from monitoring.telemetry import register_collectors

        register_collectors()
        install_overrides()


# The channel layer backend that is the channels-redis override.
PUBSUB_LAYER = "conflict_monitor.overrides.channels_redis.PubSubChannelLayer"


def install_overrides() -> None:
    """Check the overrides every Django process applies, then install psycopg-pool's.

    Every command (``runserver``, ``run_broadcaster``, ``migrate``...) refuses to start with
    ``OverrideMismatch`` when an installed package lacks what they rely on: psycopg-pool's backoff,
    always installed, and the pub/sub layer when a channel layer uses it. The launcher
    (``conflict_monitor.serve``) has already checked them all.
    """
    from django.conf import settings

    from conflict_monitor import overrides
    from conflict_monitor.overrides import psycopg_pool as pool_overrides

    used = ["psycopg_pool"]
    if any(layer.get("BACKEND") == PUBSUB_LAYER for layer in getattr(settings, "CHANNEL_LAYERS", {}).values()):
        used.append("channels_redis")
    overrides.check(*used)
    pool_overrides.install()
