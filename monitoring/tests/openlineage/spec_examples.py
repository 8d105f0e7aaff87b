"""Events shaped exactly as the OpenLineage specification's examples (``examples/README.md`` says where each
comes from): a test changes the values it is about and keeps the rest."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).with_name("examples")
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/blob/v1-0-0/client"


def example(name: str) -> Any:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def pipeline_counts(**counts: int) -> dict[str, Any]:
    """The monitor's own run facet (docs/openlineage.md), with the base facet's two fields."""
    return {
        "conflictMonitor_pipelineCounts": {
            "_producer": PRODUCER,
            "_schemaURL": "urn:conflict-monitor:openlineage:facets:1-0-0:PipelineCountsRunFacet.json",
            **counts,
        }
    }


def run_event(
    event_type: str,
    *,
    run_id: str,
    at: datetime,
    namespace: str = "airflow",
    name: str = "acled.scrape",
    run_facets: dict[str, Any] | None = None,
    input_facets: dict[str, Any] | None = None,
    output_facets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The specification's START example (spec/OpenLineage.md) with this run, job, type and time; facets (the
    specification's facet examples) go to the run, the input and the output it already has."""
    event = copy.deepcopy(example("spec_start_event"))
    event["eventType"] = event_type
    event["eventTime"] = at.isoformat()
    event["run"]["runId"] = run_id
    event["job"] = {"namespace": namespace, "name": name}
    if run_facets is not None:
        event["run"]["facets"] = run_facets
    if input_facets is not None:
        event["inputs"][0]["inputFacets"] = input_facets
    if output_facets is not None:
        event["outputs"][0]["outputFacets"] = output_facets
    return event
