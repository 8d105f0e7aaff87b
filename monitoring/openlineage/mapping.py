"""Which source and stage an OpenLineage job reports as.

``MONITORING_OPENLINEAGE_JOB_MAP`` (JSON, read when called) names jobs explicitly:
``{"<job namespace>/<job name>": {"source": "acled", "stage": "scrape"}, ...}``. A job it does not name
maps by its name: a name whose last dot-separated part is a stage (``scrape``, ``geocode``,
``validate``, in any case) reports as that stage, of the source named by the rest of the name, or, for a
name that is the stage alone, by the job's namespace. So Airflow's ``<dag_id>.<task_id>`` jobs map with
no setting: DAG ``acled`` with tasks ``scrape``, ``geocode``, ``validate``. Any other job (a DAG's own
run, an unrelated task) maps to nothing, and its events are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from monitoring.models import PipelineRun
from monitoring.openlineage.validation import safe_text
from monitoring.services.metrics import SOURCE_PATTERN

SETTING = "MONITORING_OPENLINEAGE_JOB_MAP"
STAGES = tuple(PipelineRun.Stage.values)


@dataclass(frozen=True)
class Target:
    source: str
    stage: str


@dataclass(frozen=True)
class Resolution:
    """A job's target, or None with the reason it has none."""

    target: Target | None
    reason: str = ""


def job_key(*, namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def job_map() -> dict[str, Target]:
    """The setting, parsed; ``ImproperlyConfigured`` naming the entry at fault when it is wrong."""
    return parse_job_map(settings.MONITORING_OPENLINEAGE_JOB_MAP)


@lru_cache(maxsize=4)
def parse_job_map(raw: str) -> dict[str, Target]:
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{SETTING} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ImproperlyConfigured(f'{SETTING} must be a JSON object: {{"<namespace>/<name>": {{"source", "stage"}}}}')
    return {key: _target(key, value) for key, value in document.items()}


def _target(key: str, value: object) -> Target:
    where = f"{SETTING}[{key!r}]"
    if "/" not in key:
        raise ImproperlyConfigured(f"{where}: a key is '<job namespace>/<job name>'.")
    if not isinstance(value, dict) or set(value) != {"source", "stage"}:
        raise ImproperlyConfigured(f'{where} must be {{"source": ..., "stage": ...}} (those two keys only).')
    source, stage = value["source"], value["stage"]
    if not isinstance(source, str) or not SOURCE_PATTERN.fullmatch(source):
        raise ImproperlyConfigured(
            f"{where}: source {source!r} must be 1-100 of letters, digits, '_', '.', ':', '-' "
            "(starting with a letter or digit)."
        )
    if stage not in STAGES:
        raise ImproperlyConfigured(f"{where}: stage {stage!r} must be one of {', '.join(STAGES)}.")
    return Target(source=source, stage=stage)


def resolve_job(*, namespace: str, name: str, explicit: dict[str, Target]) -> Resolution:
    """The job's entry in ``explicit`` (the setting), else the default by its name (module docstring)."""
    key = job_key(namespace=namespace, name=name)
    if key in explicit:
        return Resolution(explicit[key])
    quoted = safe_text(repr(key[:200]))
    prefix, _, last = name.rpartition(".")
    stage = last.lower()
    if stage not in STAGES:
        return Resolution(
            None,
            f"Job {quoted} maps to no stage: its name does not end in {', '.join(STAGES)} "
            f"(after a '.', or alone) and {SETTING} does not name it.",
        )
    source = prefix or namespace
    if not SOURCE_PATTERN.fullmatch(source):
        return Resolution(
            None,
            f"Job {quoted} maps to source {safe_text(repr(source[:100]))}, which is not a source name (1-100 of "
            f"letters, digits, '_', '.', ':', '-'); name the job in {SETTING}.",
        )
    return Resolution(Target(source=source, stage=stage))
