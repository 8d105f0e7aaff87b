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
