"""The example in docs/status.md has exactly the fields of a real status document."""

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from monitoring.selectors import pipeline_status
from monitoring.tests.factories import DataQualityMetricFactory, PipelineRunFactory

DOC = Path(__file__).resolve().parents[2] / "docs" / "status.md"


def shape(value):
    """Keys of every object, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list) and value:
        return [shape(value[0])]
    return None


@pytest.mark.django_db
def test_the_documented_example_has_the_fields_of_a_real_document():
    example = json.loads(re.search(r"## Example\s+```json\n(.*?)```", DOC.read_text(), re.S).group(1))
    now = timezone.now()
    DataQualityMetricFactory(source="gdelt", timestamp=now - timedelta(minutes=5))
    PipelineRunFactory(source="acled", started_at=now - timedelta(minutes=9), finished_at=now - timedelta(minutes=8))
    real = pipeline_status(now=now)
    example["anomalies"], example["alerts"] = real["anomalies"], real["alerts"]  # documented in their own pages
    assert shape(example) == shape(real)
