from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from monitoring.alerting.validation import parse_weekdays, rule_errors, stored_silence_errors


class AlertRule(models.Model):
    """A condition that opens an alert. Defaults come from settings; the admin can edit them."""

    class Kind(models.TextChoices):
        THRESHOLD = "threshold", "Rate below a threshold"
        SCORE_DROP = "score_drop", "Rate drop versus the previous window (points)"
        ISSUE_INCREASE = "issue_increase", "More issues than the previous window"
        FAILURE_RATE = "failure_rate", "Failed runs of a stage at or above a share of finished runs (%)"
        STALE_SOURCE = "stale_source", "No successful scrape within the expected interval"
        ANOMALY = "anomaly", "Anomaly detector finding"

    class Metric(models.TextChoices):
        GEOCODING = "geocoding_success_rate", "Geocoding success rate"
        VALIDATION = "validation_pass_rate", "Validation pass rate"
        FAILED_RUNS = "failed_runs", "Failed scrape runs"
        FAILED_VALIDATIONS = "failed_validations", "Failed validations"
        SCRAPE_FAILURE_RATE = "scrape_failure_rate", "Failed scrape runs (%)"
        GEOCODE_FAILURE_RATE = "geocode_failure_rate", "Failed geocode runs (%)"
        VALIDATE_FAILURE_RATE = "validate_failure_rate", "Failed validate runs (%)"
        SCRAPE = "scrape", "Scraping"
        ANY = "any", "Any detector metric"

    class Scope(models.TextChoices):
        OVERALL = "overall", "All sources together"
        PER_SOURCE = "per_source", "Each source"
        BOTH = "both", "Overall and each source"

    name = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    metric = models.CharField(max_length=30, choices=Metric.choices)
    scope = models.CharField(max_length=12, choices=Scope.choices, default=Scope.BOTH)
    # Rates fire below a level; drops and increases fire at or above one. Empty: that severity is unused.
    critical = models.FloatField(null=True, blank=True)
    high = models.FloatField(null=True, blank=True)
    medium = models.FloatField(null=True, blank=True)
    window_hours = models.PositiveIntegerField(default=1)
    min_sample = models.PositiveIntegerField(default=50, help_text="Fewer attempts (or runs) cannot fire the rule.")
    auto_resolve = models.BooleanField(default=True)
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=Q(window_hours__gte=1), name="rule_window_positive")]

    def __str__(self) -> str:
        return self.name

    def validation_errors(self) -> dict[str, str]:
        """Why the evaluation could not use this rule (empty: it can)."""
        return rule_errors(
            kind=self.kind,
            metric=self.metric,
            scope=self.scope,
            critical=self.critical,
            high=self.high,
            medium=self.medium,
            window_hours=self.window_hours,
            min_sample=self.min_sample,
        )

    def clean(self) -> None:
        if errors := self.validation_errors():
            raise ValidationError(errors)


class Alert(models.Model):
    class Severity(models.TextChoices):
        CRITICAL = "critical", "Critical"
        HIGH = "high", "High"
        MEDIUM = "medium", "Medium"

    class State(models.TextChoices):
        FIRING = "firing", "Firing"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    fingerprint = models.CharField(max_length=220, help_text="rule + source: one open alert per fingerprint.")
    rule = models.ForeignKey(AlertRule, null=True, on_delete=models.SET_NULL, related_name="alerts")
    rule_name = models.CharField(max_length=100)
    source = models.CharField(max_length=100, blank=True, default="", help_text="Empty: all sources together.")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    state = models.CharField(max_length=14, choices=State.choices, default=State.FIRING)
    summary = models.CharField(max_length=300)
    evidence = models.JSONField(default=dict)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    occurrences = models.PositiveIntegerField(default=1, help_text="Evaluations that found the condition true.")
    silenced = models.BooleanField(default=False)
    inhibited = models.BooleanField(default=False)
    notified = models.BooleanField(default=False)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledge_comment = models.TextField(blank=True, default="")
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolve_comment = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint"], condition=~Q(state="resolved"), name="alert_one_open_per_fingerprint"
            ),
            models.CheckConstraint(condition=Q(state__in=["firing", "acknowledged", "resolved"]), name="alert_state"),
            models.CheckConstraint(condition=Q(severity__in=["critical", "high", "medium"]), name="alert_severity"),
        ]
        indexes = [
            models.Index(fields=["state", "severity"], name="alert_state_severity"),
            models.Index(fields=["source", "state"], name="alert_source_state"),
            models.Index(fields=["-last_seen"], name="alert_last_seen"),
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.summary}"


class AlertEvent(models.Model):
    """Audit trail: every change of an alert's state, severity, silencing or inhibition."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=20)
    from_state = models.CharField(max_length=14, blank=True, default="")
    to_state = models.CharField(max_length=14, blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["alert", "at"], name="alert_event_alert_at")]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_state}->{self.to_state}"


class Silence(models.Model):
    """Suppresses notifications for matching alerts (they stay visible, marked silenced)."""

    rule_name = models.CharField(max_length=100, blank=True, default="", help_text="Empty: any rule.")
    source = models.CharField(max_length=100, blank=True, default="", help_text="Empty: any source.")
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    # Weekly recurrence (maintenance windows): on these weekdays (0 = Monday), from daily_start for duration.
    weekdays = models.CharField(max_length=20, blank=True, default="", help_text="e.g. '5,6'; empty: no recurrence.")
    daily_start = models.TimeField(null=True, blank=True, help_text="UTC.")
    duration_minutes = models.PositiveIntegerField(null=True, blank=True)
    reason = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="silence_ends_after_start"),
            models.CheckConstraint(
                condition=Q(weekdays="") | Q(daily_start__isnull=False, duration_minutes__gt=0),
                name="silence_recurrence_complete",
            ),
        ]
        indexes = [models.Index(fields=["ends_at"], name="silence_ends")]

    def __str__(self) -> str:
        return f"silence {self.rule_name or '*'}/{self.source or '*'} until {self.ends_at:%Y-%m-%d %H:%M}"

    def validation_errors(self) -> dict[str, str]:
        """Why the evaluation could not use this silence (empty: it can)."""
        return stored_silence_errors(
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            reason=self.reason,
            weekdays=self.weekdays,
            daily_start=self.daily_start,
            duration_minutes=self.duration_minutes,
        )

    def clean(self) -> None:
        if errors := self.validation_errors():
            raise ValidationError(errors)

    def weekday_set(self) -> set[int]:
        return set(parse_weekdays(self.weekdays))

    def is_active(self, at: datetime) -> bool:
        if not self.starts_at <= at < self.ends_at:
            return False
        if not self.weekdays:
            return True
        days = self.weekday_set()
        moment = at.astimezone(UTC)
        # A window that starts late on one day may run past midnight into the next.
        for day in (moment.date(), moment.date() - timedelta(days=1)):
            if day.weekday() in days:
                start = datetime.combine(day, self.daily_start, tzinfo=UTC)
                if start <= moment < start + timedelta(minutes=self.duration_minutes):
                    return True
        return False

    def matches(self, *, rule_name: str, source: str) -> bool:
        return (not self.rule_name or self.rule_name == rule_name) and (not self.source or self.source == source)


class NotificationGroup(models.Model):
    """Alerts that share notifications (by source, stage or rule): one notice per group at a time.

    ``open`` while the group's incident has been announced and not all of it resolved; ``due_at`` when
    queued changes are to be sent; ``repeat_at`` when to remind of alerts still firing. ``slack_channel``
    and ``slack_ts`` name the incident's Slack message, which later notices edit.
    """

    key = models.CharField(max_length=220, unique=True)
    labels = models.JSONField(default=dict)
    open = models.BooleanField(default=False)
    due_at = models.DateTimeField(null=True, blank=True)
    repeat_at = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    notices_sent = models.PositiveIntegerField(default=0)
    slack_channel = models.CharField(max_length=40, blank=True, default="")
    slack_ts = models.CharField(max_length=40, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["due_at"], condition=Q(due_at__isnull=False), name="notify_group_due"),
            models.Index(fields=["repeat_at"], condition=Q(repeat_at__isnull=False), name="notify_group_repeat"),
        ]

    def __str__(self) -> str:
        return self.key


class NotificationDelivery(models.Model):
    """Outbox of alert changes to announce, written with the change; the notifier sends each group's
    queued changes in one notice, with retries."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    group = models.ForeignKey(
        NotificationGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    event = models.CharField(max_length=20)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event} for alert {self.alert_id}: {self.status}"
