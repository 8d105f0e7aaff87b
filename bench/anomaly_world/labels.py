"""Metric names, incident kinds and the labelled event: the vocabulary shared by generator and scorer.

The metric names are the ones detectors report in ``Finding.metric``; they are spelled out here rather
than imported so that the judge does not depend on any detector module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

VOLUME = "volume"
GEOCODING = "geocoding_success_rate"
VALIDATION = "validation_pass_rate"  # noqa: S105 (a metric name)
METRICS = (VOLUME, GEOCODING, VALIDATION)

DROP = "drop"
SPIKE = "spike"

VOLUME_DROP = "volume_drop"
OUTAGE = "outage"
SPIKE_FLOOD = "spike"
GEOCODING_DROP = "geocoding_drop"
VALIDATION_DROP = "validation_drop"
VALIDATION_STEP = "validation_step"
DEGRADATION = "degradation"
KINDS = (VOLUME_DROP, OUTAGE, SPIKE_FLOOD, GEOCODING_DROP, VALIDATION_DROP, VALIDATION_STEP, DEGRADATION)


@dataclass(frozen=True, kw_only=True)
class Event:
    """One labelled incident: what a detector should report, where, and when.

    ``start``/``end`` are UTC instants on quarter-hour boundaries (an incident rarely starts on the
    hour); ``end`` is exclusive. ``magnitude`` is the size at full effect: a volume factor (0.3 = −70 %,
    5.0 = ×5) or a rate change in percentage points (−12.0).
    """

    id: int
    source: str
    kind: str
    metrics: tuple[str, ...]
    direction: str
    start: datetime
    end: datetime
    magnitude: float
    ramp_hours: float = 0.0  # degradations: hours of linear slide before full effect

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "source": self.source,
            "kind": self.kind,
            "metrics": list(self.metrics),
            "direction": self.direction,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "magnitude": round(self.magnitude, 3),
            "ramp_hours": self.ramp_hours,
        }
