from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from monitoring.models import DataQualityMetric
from monitoring.tests.factories import PipelineRunFactory

pytestmark = pytest.mark.django_db


def test_records_one_metric_from_the_command_line():
    out = StringIO()
    call_command(
        "record_metric",
        "--source=acled",
        "--geocoding-attempts=10",
        "--geocoding-successes=9",
        "--timestamp=2026-01-02T03:04:05+00:00",
        stdout=out,
    )
    row = DataQualityMetric.objects.get()
    assert (row.source, row.geocoding_attempts, row.geocoding_successes) == ("acled", 10, 9)
    assert row.timestamp.isoformat() == "2026-01-02T03:04:05+00:00"
    assert f"Recorded metric {row.pk}" in out.getvalue()


@pytest.mark.parametrize(
    "args",
    [
        ["--source=acled", "--geocoding-attempts=1", "--geocoding-successes=2"],
        ["--source=bad source"],
        ["--source=acled", "--timestamp=not-a-date"],
        ["--source=acled", "--timestamp=2026-02-30T00:00:00Z"],
        ["--source=acled\n"],
    ],
)
def test_invalid_input_is_a_command_error_and_writes_nothing(args):
    with pytest.raises(CommandError):
        call_command("record_metric", *args, stdout=StringIO())
    assert DataQualityMetric.objects.count() == 0


def test_a_metric_of_a_run_takes_the_runs_stage_and_a_run_of_another_source_is_refused():
    run = PipelineRunFactory(source="acled", stage="validate")
    call_command("record_metric", "--source=acled", f"--run-id={run.pk}", stdout=StringIO())
    assert list(DataQualityMetric.objects.values_list("run_id", "stage")) == [(run.pk, "validate")]
    with pytest.raises(CommandError, match=f"Run {run.pk} is a run of acled, not of gdelt"):
        call_command("record_metric", "--source=gdelt", f"--run-id={run.pk}", stdout=StringIO())
    assert DataQualityMetric.objects.count() == 1
