from monitoring.models.ingest import IdempotencyRecord, IngestToken
from monitoring.models.metrics import DataQualityMetric
from monitoring.models.runs import PipelineRun

__all__ = ["DataQualityMetric", "IdempotencyRecord", "IngestToken", "PipelineRun"]
