from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"
    verbose_name = "Pipeline monitoring"

    def ready(self) -> None:
        from monitoring import checks  # noqa: F401  (registers system checks)
        from monitoring.telemetry import register_collectors

        register_collectors()
