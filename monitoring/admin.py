from django import forms
from django.contrib import admin
from django.utils import timezone

from monitoring.models import (
    Alert,
    AlertEvent,
    AlertRule,
    DataQualityMetric,
    IdempotencyRecord,
    IngestToken,
    NotificationDelivery,
    NotificationGroup,
    PipelineRun,
    Silence,
    SourceSettings,
)
from monitoring.selectors import rate
from monitoring.services.alerts import InvalidTransition, acknowledge_alert, apply_silences, resolve_alert
from monitoring.services.silences import target_errors


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the application writes: shown (and deleted, or acted on), never added or edited by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DataQualityMetric)
class DataQualityMetricAdmin(admin.ModelAdmin):
    list_display = [
        "timestamp",
        "source",
        "metric_type",
        "geocoding_attempts",
        "geocoding_successes",
        "geocoding_success_rate",
        "validation_attempts",
        "validation_passes",
        "validation_pass_rate",
        "stage",
        "run_id",  # the id, not the run: a nullable key is not joined, so each row would query its run
    ]
    list_filter = ["source", "stage", "metric_type"]
    # The run by id: a select of every run would load the whole runs table into the form.
    raw_id_fields = ["run"]
    date_hierarchy = "timestamp"
    search_fields = ["source", "metric_type"]
    ordering = ["-timestamp", "-id"]
    readonly_fields = ["ingested_at"]

    # Metrics are the pipeline's record: rollups and alerts were computed from them, so the admin
    # shows them but does not add, change or delete them (retention is prune_metrics' job).

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    # Skips the second COUNT(*) (of the unfiltered table) that filtered changelists would show.
    show_full_result_count = False
    list_per_page = 100

    @admin.display(description="geocoding %")
    def geocoding_success_rate(self, obj: DataQualityMetric) -> float:
        return rate(numerator=obj.geocoding_successes, denominator=obj.geocoding_attempts)

    @admin.display(description="validation %")
    def validation_pass_rate(self, obj: DataQualityMetric) -> float:
        return rate(numerator=obj.validation_passes, denominator=obj.validation_attempts)


@admin.register(PipelineRun)
class PipelineRunAdmin(admin.ModelAdmin):
    list_display = [
        "started_at",
        "source",
        "stage",
        "status",
        "finished_at",
        "duration",
        "items_in",
        "items_out",
        "yield_percent",
    ]
    list_filter = ["stage", "status", "source"]
    date_hierarchy = "started_at"
    search_fields = ["source", "error"]
    ordering = ["-started_at", "-id"]
    show_full_result_count = False
    list_per_page = 100

    @admin.display(description="duration")
    def duration(self, obj: PipelineRun) -> str:
        if obj.finished_at is None:
            return "running"
        return str(obj.finished_at - obj.started_at).split(".")[0]

    @admin.display(description="yield %")
    def yield_percent(self, obj: PipelineRun) -> float | str:
        if obj.items_in == 0:
            return "—"
        return rate(numerator=obj.items_out, denominator=obj.items_in)


@admin.register(IngestToken)
class IngestTokenAdmin(ReadOnlyAdmin):
    list_display = ["name", "scope", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["scope"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["scope", "prefix", "key_hash", "created_at", "last_used_at"]
    ordering = ["name"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        # The key is shown once, by ``manage.py create_ingest_token`` or ``create_read_token``; the admin
        # never sees it.
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} token(s).")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "token", "key", "response_status"]
    list_select_related = ["token"]
    search_fields = ["key"]
    ordering = ["-created_at"]


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    can_delete = False
    fields = ["at", "kind", "from_state", "to_state", "actor", "comment"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = [
        "last_seen",
        "severity",
        "state",
        "rule_name",
        "source",
        "summary",
        "occurrences",
        "silenced",
        "inhibited",
    ]
    list_filter = ["state", "severity", "rule_name", "silenced", "inhibited"]
    search_fields = ["summary", "source", "rule_name", "fingerprint"]
    ordering = ["-last_seen", "-id"]
    date_hierarchy = "first_seen"
    list_select_related = ["acknowledged_by", "resolved_by"]
    inlines = [AlertEventInline]
    actions = ["acknowledge", "resolve"]
    readonly_fields = [f.name for f in Alert._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # alerts come from rules, not from people

    def _apply(self, request, queryset, transition, verb: str) -> None:
        changed = refused = 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                _, did = transition(alert_id=pk, user=request.user, comment=f"Bulk {verb} in the admin.")
                changed += did
            except InvalidTransition:
                refused += 1
        self.message_user(request, f"{verb.capitalize()}d {changed} alert(s); {refused} could not be {verb}d.")

    @admin.action(description="Acknowledge selected alerts")
    def acknowledge(self, request, queryset) -> None:
        self._apply(request, queryset, acknowledge_alert, "acknowledge")

    @admin.action(description="Resolve selected alerts")
    def resolve(self, request, queryset) -> None:
        self._apply(request, queryset, resolve_alert, "resolve")


@admin.register(SourceSettings)
class SourceSettingsAdmin(admin.ModelAdmin):
    list_display = ["source", "timezone"]
    list_editable = ["timezone"]
    search_fields = ["source"]


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "metric",
        "scope",
        "critical",
        "high",
        "medium",
        "window_hours",
        "min_sample",
        "auto_resolve",
        "enabled",
    ]
    list_editable = ["critical", "high", "medium", "window_hours", "min_sample", "auto_resolve", "enabled"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "description"]


class SilenceAdminForm(forms.ModelForm):
    """The API's checks: a silence for an unknown rule or source, or one already ended, silences nothing."""

    class Meta:
        model = Silence
        fields = [
            "rule_name",
            "source",
            "starts_at",
            "ends_at",
            "weekdays",
            "daily_start",
            "duration_minutes",
            "reason",
            "created_by",
            "created_at",
        ]

    def clean(self):
        cleaned = super().clean()
        changed = set(self.changed_data)
        if self.instance.pk and not changed & {"rule_name", "source", "ends_at"}:
            return cleaned  # editing the reason of an expired silence stays possible
        errors = target_errors(
            rule_name=cleaned.get("rule_name") or "",
            source=cleaned.get("source") or "",
            ends_at=cleaned.get("ends_at"),
            now=timezone.now(),
        )
        for field, message in errors.items():
            if field in self.fields and field not in self.errors:
                self.add_error(field, message)
        return cleaned


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    form = SilenceAdminForm
    list_display = [
        "rule_name",
        "source",
        "starts_at",
        "ends_at",
        "weekdays",
        "daily_start",
        "duration_minutes",
        "created_by",
        "reason",
    ]
    list_select_related = ["created_by"]
    search_fields = ["rule_name", "source", "reason"]
    ordering = ["-ends_at"]

    # Open alerts follow a silence's change at once (and the live feed hears of it), not at the next tick.
    def save_model(self, request, obj, form, change) -> None:
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        apply_silences()

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        apply_silences()

    def delete_queryset(self, request, queryset) -> None:
        super().delete_queryset(request, queryset)
        apply_silences()


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "alert", "group", "event", "status", "attempts", "next_attempt_at", "last_error"]
    list_filter = ["status", "event"]
    list_select_related = ["alert", "group"]
    ordering = ["-created_at"]


@admin.register(NotificationGroup)
class NotificationGroupAdmin(ReadOnlyAdmin):
    """Read-only: the sender keeps these rows (timers, the Slack message being edited)."""

    list_display = ["key", "open", "due_at", "repeat_at", "last_sent_at", "notices_sent", "slack_ts"]
    list_filter = ["open"]
    search_fields = ["key"]
    ordering = ["key"]
