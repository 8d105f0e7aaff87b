import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from monitoring.tests.factories import DataQualityMetricFactory

pytestmark = pytest.mark.django_db


def test_prints_the_same_document_as_the_api(api_client, public_read):
    DataQualityMetricFactory(geocoding_attempts=10, geocoding_successes=7)
    out = StringIO()
    call_command("pipeline_status", "--window-hours=12", stdout=out)
    printed = json.loads(out.getvalue())
    served = api_client.get("/api/v1/monitoring/pipeline-status", {"window_hours": 12}).json()
    printed.pop("timestamp"), served.pop("timestamp")
    assert printed == served
    assert printed["data_quality"]["geocoding_success_rate"] == 70.0


def test_compact_output_is_one_line():
    out = StringIO()
    call_command("pipeline_status", "--compact", stdout=out)
    assert out.getvalue().strip().count("\n") == 0


def test_window_out_of_range_is_a_command_error():
    with pytest.raises(CommandError):
        call_command("pipeline_status", "--window-hours=0", stdout=StringIO())
