from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"
    verbose_name = "Pipeline monitoring"

    def ready(self) -> None:
        from monitoring import checks  # noqa: F401  (registers system checks)
        from monitoring.telemetry import register_collectors

        register_collectors()
        steady_database_reconnects()


def steady_database_reconnects() -> None:
    """Retry a lost database about once a second instead of backing off exponentially.

    psycopg's pool doubles the wait between connection attempts (1, 2, 4, 8, 16 s...), so after a
    20 s outage the next attempt could come 11 s after the database was back, and every request
    meanwhile answered 503 (tests/reliability/test_database_outage.py). An attempt against a server
    that is down is refused at once: retrying every second costs nothing.
    """
    from psycopg_pool.base import AttemptWithBackoff

    AttemptWithBackoff.DELAY_BACKOFF = 1.0
