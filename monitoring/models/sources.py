from django.core.exceptions import ValidationError
from django.db import models


class ScrapeSource(models.Model):
    """Latest scrape outcome per source, kept equal to the scrape runs by database triggers (migration 0004)
    for every writer, so scraping health never scans run history."""

    name = models.CharField(max_length=100, unique=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["last_run_at"], name="source_last_run")]

    def __str__(self) -> str:
        return self.name


def validate_time_zone(value: str) -> None:
    """An IANA zone name that this machine's zone database knows (``Asia/Damascus``, ``UTC``)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValidationError(f"{value!r} is not an IANA time zone (for example Europe/Kyiv or UTC)") from error


class SourceSettings(models.Model):
    """Per-source settings an operator chooses. Kept apart from :class:`ScrapeSource`, which database
    triggers derive from the scrape runs (they insert, rebuild and delete its rows, and would lose a
    setting stored there)."""

    source = models.CharField(max_length=100, unique=True)
    timezone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="IANA time zone of the region the source covers: the anomaly detector learns its daily "
        "and weekly rhythm in this zone's local time (docs/anomaly-detection.md).",
    )

    class Meta:
        verbose_name = "source settings"
        verbose_name_plural = "source settings"

    def __str__(self) -> str:
        return f"{self.source} ({self.timezone})"
