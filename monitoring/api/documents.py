"""The API's response bodies, described for its OpenAPI schema: serializers that only document.

The endpoints build these bodies as plain dicts (``monitoring.selectors``, ``monitoring.trends``, the
views' formatters); each serializer here names the keys those dicts have, with their types, so that
the schema says what the endpoints send. None of them ever serializes a response.
"""

from __future__ import annotations

from rest_framework import serializers

from monitoring.anomaly.contract import LEARNING, READY, STARTING
from monitoring.anomaly.detector import DROP, SPIKE
from monitoring.anomaly.detector import METRICS as ANOMALY_METRICS
from monitoring.api.serializers import PipelineRunSerializer
from monitoring.models import Alert, PipelineRun
from monitoring.selectors import CRITICAL, DEGRADED, HEALTHY, NO_DATA
from monitoring.trends import BUCKET_HOURS, DOWN, FLAT, STAGE_FILTERS, UP

# Value sets that settings.SPECTACULAR_SETTINGS names as enums (several fields share a name across bodies).
STATUSES = (HEALTHY, DEGRADED, CRITICAL, NO_DATA)
LIVENESS = ("ok",)
READINESS = ("ready", "not_ready")
CHECK_RESULTS = ("ok", "failed")
ANOMALY_DIRECTIONS = (DROP, SPIKE)
ANOMALY_READINESS_STATES = (STARTING, LEARNING, READY)
TREND_DIRECTIONS = (UP, DOWN, FLAT)


def _status() -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=STATUSES)


def _moment(*, nullable: bool = False, help_text: str = "") -> serializers.DateTimeField:
    return serializers.DateTimeField(allow_null=nullable, help_text=help_text or "ISO-8601, UTC (`Z`).")


class HealthDocument(serializers.Serializer):
    status = serializers.ChoiceField(choices=LIVENESS)


class ReadinessChecks(serializers.Serializer):
    database = serializers.ChoiceField(choices=CHECK_RESULTS, help_text="`SELECT 1` answered.")
    channel_layer = serializers.ChoiceField(
        choices=CHECK_RESULTS, help_text="A message sent to itself came back within 2 s."
    )


class ReadinessDocument(serializers.Serializer):
    status = serializers.ChoiceField(choices=READINESS)
    checks = ReadinessChecks()
    errors = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="Only when not ready: the reason per failed check (`database`, `channel_layer`).",
    )


class MetricsCreated(serializers.Serializer):
    created = serializers.IntegerField(help_text="Metrics stored.")
    ids = serializers.ListField(child=serializers.IntegerField(), help_text="Their ids, in the order sent.")


class RunList(serializers.Serializer):
    results = PipelineRunSerializer(many=True, help_text="Newest first.")
    next = serializers.CharField(allow_null=True, help_text="`?cursor=` for the next page; null on the last.")


class WebSocketTicket(serializers.Serializer):
    ticket = serializers.CharField(help_text="Single use: `?ticket=` on the live feed's URL (docs/protocol.md).")
    expires_in = serializers.IntegerField(help_text="Seconds it stays valid (`WEBSOCKET_TICKET_TTL`).")


# --- Status document (docs/status.md) -----------------------------------------------------------


class QualityCounts(serializers.Serializer):
    status = _status()
    geocoding_success_rate = serializers.FloatField(help_text="Percent, one decimal; 0.0 with no attempts.")
    validation_pass_rate = serializers.FloatField(help_text="Percent, one decimal; 0.0 with no attempts.")
    geocoding_attempts = serializers.IntegerField()
    geocoding_successes = serializers.IntegerField()
    validation_attempts = serializers.IntegerField()
    validation_passes = serializers.IntegerField()
    total_geocoded = serializers.IntegerField(help_text="Equals `geocoding_successes`.")
    total_validated = serializers.IntegerField(help_text="Equals `validation_passes`.")
    reports = serializers.IntegerField(help_text="Metric reports in the window.")
    last_updated = _moment(nullable=True, help_text="Newest metric timestamp.")


class AnomalyReadiness(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=ANOMALY_READINESS_STATES,
        help_text=(
            "starting: the detectors are being built after the process started (seconds); "
            "learning: too little history yet, the detector does not judge."
        ),
    )
    hours_seen = serializers.IntegerField(help_text="Closed hours the source's detector has been fed.")
    hours_needed = serializers.IntegerField(help_text="Closed hours it needs before it judges.")


class SourceQuality(QualityCounts):
    source = serializers.CharField()
    anomaly_detection = AnomalyReadiness(help_text="Whether the anomaly detector judges this source yet.")


class StageQuality(QualityCounts):
    stage = serializers.ChoiceField(
        choices=PipelineRun.Stage.choices, allow_null=True, help_text="null: the metrics reported without a stage."
    )


class DataQuality(QualityCounts):
    stale = serializers.BooleanField()
    window_hours = serializers.IntegerField()
    by_source = SourceQuality(many=True, help_text="Sources with reports in the window, by name.")
    by_stage = StageQuality(
        many=True,
        help_text="Stages with reports in the window, in pipeline order, then null (unstaged). Their statuses "
        "leave `status` alone.",
    )


class SourceHealth(serializers.Serializer):
    source = serializers.CharField()
    status = _status()
    last_run = _moment()
    last_success = _moment(nullable=True)
    last_failure = _moment(nullable=True)
    last_error = serializers.CharField(allow_blank=True, help_text="Error text of the last failed run.")
    stale = serializers.BooleanField()
    new = serializers.BooleanField(
        help_text="Onboarding: no successful scrape yet and the first run within MONITORING_ONBOARDING_HOURS; "
        "the staleness and failure alert rules do not page for it."
    )
    failure_rate = serializers.FloatField(help_text="Failed share of the runs finished in the window, percent.")
    finished_runs = serializers.IntegerField()
    failed_runs = serializers.IntegerField()
    running_runs = serializers.IntegerField()
    stuck_runs = serializers.IntegerField()


class ScrapingHealth(serializers.Serializer):
    status = _status()
    stale_sources = serializers.IntegerField()
    sources = SourceHealth(many=True)


class AnomalyDocument(serializers.Serializer):
    source = serializers.CharField()
    metric = serializers.ChoiceField(choices=ANOMALY_METRICS)
    hour = _moment(help_text="Start of the judged UTC hour.")
    observed = serializers.FloatField()
    expected = serializers.FloatField()
    expected_low = serializers.FloatField()
    expected_high = serializers.FloatField()
    score = serializers.FloatField(help_text="Spreads from expected that the rule saw; negative for a drop.")
    direction = serializers.ChoiceField(choices=ANOMALY_DIRECTIONS)
    rule = serializers.CharField(help_text="The test that fired: level, outage, flood, rate or cusum.")
    explanation = serializers.CharField(help_text="What was expected and what was seen, in words.")
    partial = serializers.BooleanField(help_text="True while the judged hour is still filling up.")


class AlertDocument(serializers.Serializer):
    id = serializers.IntegerField()
    fingerprint = serializers.CharField()
    rule = serializers.CharField()
    source = serializers.CharField(allow_null=True, help_text="null: all sources together.")
    severity = serializers.ChoiceField(choices=Alert.Severity.choices)
    state = serializers.ChoiceField(choices=Alert.State.choices)
    summary = serializers.CharField()
    evidence = serializers.DictField(help_text="What the rule saw, by rule kind (docs/alerts.md).")
    first_seen = _moment()
    last_seen = _moment()
    occurrences = serializers.IntegerField()
    silenced = serializers.BooleanField()
    inhibited = serializers.BooleanField()
    acknowledged_by = serializers.CharField(allow_null=True)
    acknowledged_at = _moment(nullable=True)
    acknowledge_comment = serializers.CharField(allow_blank=True)
    resolved_by = serializers.CharField(allow_null=True)
    resolved_at = _moment(nullable=True)
    resolve_comment = serializers.CharField(allow_blank=True)


class AlertsFloor(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=(CRITICAL, DEGRADED),
        allow_null=True,
        help_text="The least `overall_status` the open alerts allow; null when no alert counts.",
    )
    alerts = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Ids of the alerts that count: critical or high, firing or acknowledged, neither silenced "
        "nor inhibited (docs/status.md).",
    )


class StatusDocument(serializers.Serializer):
    timestamp = _moment(help_text="When the document was computed; the window ends here.")
    overall_status = _status()
    alerts_floor = AlertsFloor(help_text="Why `overall_status` may read worse than its parts: the open alerts.")
    window_hours = serializers.IntegerField()
    scraping_health = ScrapingHealth()
    data_quality = DataQuality()
    anomalies = AnomalyDocument(
        many=True, help_text="The detector's findings for the last complete hour and the current hour so far."
    )
    alerts = AlertDocument(many=True, help_text="Firing and acknowledged alerts, most severe first.")


# --- Trends (docs/trends.md) --------------------------------------------------------------------


class Period(serializers.Serializer):
    start = _moment()
    end = _moment()


class Periods(serializers.Serializer):
    current = Period(help_text="The last `window_hours` complete hours.")
    previous = Period(help_text="The `window_hours` before them.")


class RateValue(serializers.Serializer):
    rate = serializers.FloatField(allow_null=True, help_text="Percent, one decimal; null when `denominator` is 0.")
    numerator = serializers.IntegerField()
    denominator = serializers.IntegerField()


class RatePoint(RateValue):
    start = _moment(help_text="Start of the bucket.")


class VolumeValue(serializers.Serializer):
    records = serializers.IntegerField(help_text="Geocoding attempts: the records that entered the pipeline.")
    reports = serializers.IntegerField()


class VolumePoint(VolumeValue):
    start = _moment(help_text="Start of the bucket.")


class RateTrend(serializers.Serializer):
    points = RatePoint(many=True)
    current = RateValue()
    previous = RateValue()
    change = serializers.FloatField(allow_null=True, help_text="Points; null when either rate is null.")
    change_unit = serializers.ChoiceField(choices=["points"])
    dead_band = serializers.FloatField(help_text="Changes smaller than this many points read as `flat`.")
    direction = serializers.ChoiceField(choices=TREND_DIRECTIONS, allow_null=True)


class VolumeTrend(serializers.Serializer):
    points = VolumePoint(many=True)
    current = VolumeValue()
    previous = VolumeValue()
    change = serializers.FloatField(allow_null=True, help_text="Percent; null when the previous period had none.")
    change_unit = serializers.ChoiceField(choices=["percent"])
    dead_band = serializers.FloatField(help_text="Changes smaller than this many percent read as `flat`.")
    direction = serializers.ChoiceField(choices=TREND_DIRECTIONS)


class TrendMetrics(serializers.Serializer):
    """One entry per metric asked for (all three by default), in the order asked."""

    geocoding_success_rate = RateTrend(required=False)
    validation_pass_rate = RateTrend(required=False)
    volume = VolumeTrend(required=False)


class TrendsDocument(serializers.Serializer):
    timestamp = _moment()
    source = serializers.CharField(allow_null=True, help_text="null: all sources, summed.")
    stage = serializers.ChoiceField(
        choices=list(STAGE_FILTERS), allow_null=True, help_text="The stage asked for; null: every metric."
    )
    bucket = serializers.ChoiceField(choices=list(BUCKET_HOURS))
    window_hours = serializers.IntegerField()
    start = _moment(help_text="Start of the first bucket.")
    end = _moment(help_text="End of the last (current, still-filling) bucket.")
    periods = Periods()
    metrics = TrendMetrics()


# --- Alerts and silences (docs/alerts.md) -------------------------------------------------------


class AlertList(serializers.Serializer):
    results = AlertDocument(many=True, help_text="Newest (last seen) first.")
    next = serializers.CharField(allow_null=True, help_text="`?cursor=` for the next page; null on the last.")


class AlertEventDocument(serializers.Serializer):
    at = _moment()
    kind = serializers.CharField()
    from_state = serializers.CharField(allow_null=True)
    to_state = serializers.CharField(allow_null=True)
    actor = serializers.CharField(allow_null=True, help_text="Username; null for the evaluation.")
    comment = serializers.CharField(allow_blank=True)
    details = serializers.DictField()


class AlertDetail(AlertDocument):
    events = AlertEventDocument(many=True, help_text="The audit trail, oldest first.")


class AlertTransition(AlertDocument):
    changed = serializers.BooleanField(help_text="false when the alert already was in that state.")


class SilenceDocument(serializers.Serializer):
    id = serializers.IntegerField()
    rule_name = serializers.CharField(allow_null=True, help_text="null: any rule.")
    source = serializers.CharField(allow_null=True, help_text="null: any source.")
    starts_at = _moment()
    ends_at = _moment()
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), help_text="0 = Monday; empty: no recurrence."
    )
    # Not TimeField: the schema's "time" format asks for a UTC offset, and the time is sent without one.
    daily_start = serializers.RegexField(
        r"^\d{2}:\d{2}:\d{2}(\.\d{6})?$", allow_null=True, help_text="`HH:MM:SS`, UTC."
    )
    duration_minutes = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField()
    created_by = serializers.CharField(allow_null=True)
    active_now = serializers.BooleanField()


class SilenceList(serializers.Serializer):
    results = SilenceDocument(many=True, help_text="Silences that have not ended, soonest end first.")


class NotificationTestResult(serializers.Serializer):
    ok = serializers.BooleanField(help_text="true when the receiver answered 2xx.")
    status_code = serializers.IntegerField(
        allow_null=True, help_text="The receiver's HTTP status; null when it did not answer or no URL is set."
    )
    elapsed_ms = serializers.FloatField(help_text="How long the POST took, in milliseconds.")
    error = serializers.CharField(
        allow_null=True, help_text="Why it failed (e.g. `no webhook configured`); null if ok."
    )
    url_host = serializers.CharField(
        allow_null=True, help_text="The receiver's host (and port) only, never the URL's path or token."
    )
