from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from monitoring.tests.anomaly.test_series import NOW, _fill

pytestmark = pytest.mark.django_db


def test_prints_episodes_per_sensitivity_and_source():
    _fill(days=20, current=False)
    out = StringIO()
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        call_command("tune_anomalies", "--days", "7", "--sensitivity", "4", "--sensitivity", "6", stdout=out)
    text = out.getvalue()
    assert "sensitivity 4: 0 episodes" in text and "sensitivity 6: 0 episodes" in text
    assert "gdelt" in text and "acled" in text and "0.00/week" in text


@pytest.mark.parametrize("args", [["--days", "0"], ["--source", "nope"], ["--sensitivity", "-1"]])
def test_bad_input_is_a_command_error(args):
    with pytest.raises(CommandError):
        call_command("tune_anomalies", *args, stdout=StringIO())
