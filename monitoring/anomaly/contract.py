"""The one interface every anomaly detector implements: a streaming judge of one source's hours.

The live selector, ``tune_anomalies`` and the held-out evaluation (``bench/anomaly_world``) drive a
detector only through this Protocol, so the evaluation cannot reach into a detector's internals and a
detector cannot read the evaluation's generator.

Driving rules (the caller's side):

- one detector per source, built by a :data:`DetectorFactory` with the source's IANA time zone;
- ``observe`` is called once per closed UTC hour, in order, with no hour skipped (an hour without data
  is passed as zero counts); it returns the findings for that closed hour;
- ``judge_partial`` may be called any number of times for the hour after the last observed one, with
  the counts so far and the share of the hour elapsed; it judges what has arrived against what should
  have arrived by now. It may note what had arrived by that fraction (a detector can learn a source's
  arrival within the hour from it when the hour closes) but must not change how closed hours are
  judged: those are judged when ``observe`` is called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Protocol

from monitoring.anomaly.detector import HourCounts

LEARNING = "learning"
READY = "ready"
# Not a detector's state: the live service's, before a process has judged once (its detectors are being built).
STARTING = "starting"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One judgement that an hour of one metric is abnormal, explainable on its own.

    ``hour`` is the judged hour's UTC start; ``fraction`` the share of it elapsed when judged (1.0 once
    closed). ``rule`` names the test that fired (for example ``level``, ``outage``, ``cusum``) and
    ``explanation`` says in words what was expected and what was seen.
    """

    metric: str
    hour: datetime
    fraction: float
    direction: str  # "drop" or "spike"
    observed: float
    expected: float
    expected_low: float
    expected_high: float
    score: float
    rule: str
    explanation: str

    @property
    def partial(self) -> bool:
        return self.fraction < 1.0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "hour": self.hour.isoformat(), "partial": self.partial}


@dataclass(frozen=True, kw_only=True)
class Readiness:
    """Whether the detector judges yet: ``learning`` until it has enough history for a metric."""

    state: str  # LEARNING or READY
    hours_seen: int
    hours_needed: int


class Detector(Protocol):
    def observe(self, counts: HourCounts) -> list[Finding]: ...

    def judge_partial(self, counts: HourCounts, *, fraction: float) -> list[Finding]: ...  # see the rules above

    def readiness(self) -> Readiness: ...


DetectorFactory = Callable[..., Detector]  # called as factory(tz="Asia/Damascus", sensitivity=...)
