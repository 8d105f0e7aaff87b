from django.db import models
from django.utils import timezone


class TokenScope(models.TextChoices):
    """What a token may do. Each kind does one job, so a leaked key gives away only that job: an ingest key
    cannot follow the private feed, and a read key (handed to a dashboard or a script that only watches)
    cannot write metrics, runs or OpenLineage events."""

    INGEST = "ingest", "ingest: write metrics, runs, OpenLineage events"
    READ = "read", "read: the status API and the private live feed"


class IngestToken(models.Model):
    """A credential for a program: the pipeline's ingest calls (``scope`` ingest) or a reader of the status
    and the live feed (``scope`` read). The name is historical: every token kind lives here. Only a SHA-256
    of the key is stored."""

    name = models.CharField(max_length=100, unique=True)
    scope = models.CharField(max_length=8, choices=TokenScope.choices, default=TokenScope.INGEST)
    prefix = models.CharField(max_length=16, unique=True, help_text="Public part of the key, used for lookup.")
    key_hash = models.CharField(max_length=64, help_text="SHA-256 (hex) of the whole key.")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class IdempotencyRecord(models.Model):
    """The first successful response to an ingest request that carried an ``Idempotency-Key``."""

    token = models.ForeignKey(IngestToken, on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="idempotency_token_key_unique")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self) -> str:
        return f"{self.key} -> {self.response_status}"
