from django.contrib import admin
from django.utils import timezone

from monitoring.models import DataQualityMetric, IdempotencyRecord, IngestToken, PipelineRun
from monitoring.selectors import rate


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
    ]
    list_filter = ["source", "metric_type"]
    date_hierarchy = "timestamp"
    search_fields = ["source", "metric_type"]
    ordering = ["-timestamp", "-id"]
    readonly_fields = ["ingested_at"]
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
    list_display = ["started_at", "source", "stage", "status", "finished_at", "duration", "items_in", "items_out"]
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


@admin.register(IngestToken)
class IngestTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "key_hash", "created_at", "last_used_at"]
    ordering = ["name"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        # The key is shown once, by ``manage.py create_ingest_token``; the admin never sees it.
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} token(s).")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ["created_at", "token", "key", "response_status"]
    list_select_related = ["token"]
    search_fields = ["key"]
    ordering = ["-created_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
