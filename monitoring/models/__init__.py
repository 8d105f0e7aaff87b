from monitoring.models.alerts import Alert, AlertEvent, AlertRule, NotificationDelivery, NotificationGroup, Silence
from monitoring.models.ingest import IdempotencyRecord, IngestToken, TokenScope
from monitoring.models.metrics import DataQualityMetric
from monitoring.models.rollups import HourlyRollup, PruneMarker
from monitoring.models.runs import PipelineRun
from monitoring.models.sources import ScrapeSource, SourceSettings

__all__ = [
    "Alert",
    "AlertEvent",
    "AlertRule",
    "NotificationDelivery",
    "NotificationGroup",
    "Silence",
    "DataQualityMetric",
    "HourlyRollup",
    "IdempotencyRecord",
    "IngestToken",
    "PipelineRun",
    "PruneMarker",
    "ScrapeSource",
    "SourceSettings",
    "TokenScope",
]
