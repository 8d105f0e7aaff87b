"""GET /api/v1/monitoring/trends: query parsing, JSON errors, access, and the response shape."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from monitoring.services.metrics import MetricInput, record_metrics

pytestmark = pytest.mark.django_db
URL = "/api/v1/monitoring/trends"
METRICS = ["geocoding_success_rate", "validation_pass_rate", "volume"]


def _is_iso(value: str) -> bool:
    return isinstance(value, str) and value.endswith("Z") and datetime.fromisoformat(value) is not None


def _record_last_hour(source: str = "acled", stage: str | None = None) -> None:
    hour = timezone.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    record_metrics(
        metrics=[
            MetricInput(
                source=source,
                stage=stage,
                timestamp=hour,
                geocoding_attempts=200,
                geocoding_successes=180,
                validation_attempts=200,
                validation_passes=190,
            )
        ]
    )


@pytest.mark.usefixtures("public_read")
def test_defaults_answer_every_metric_in_24_hour_buckets(api_client):
    _record_last_hour()
    response = api_client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert (body["bucket"], body["window_hours"], body["source"]) == ("hour", 24, None)
    assert _is_iso(body["timestamp"]) and _is_iso(body["start"]) and _is_iso(body["end"])
    assert set(body["periods"]) == {"current", "previous"}
    assert list(body["metrics"]) == METRICS
    for name in ("geocoding_success_rate", "validation_pass_rate"):
        block = body["metrics"][name]
        assert set(block) == {"points", "current", "previous", "change", "change_unit", "dead_band", "direction"}
        assert len(block["points"]) == 24
        assert all(set(p) == {"start", "rate", "numerator", "denominator"} for p in block["points"])
        assert block["change_unit"] == "points"
    geocoding = body["metrics"]["geocoding_success_rate"]
    (reported,) = [p for p in geocoding["points"] if p["denominator"]]
    assert _is_iso(reported["start"]) and reported["start"].endswith(":00:00Z")
    assert (reported["rate"], reported["numerator"], reported["denominator"]) == (90.0, 180, 200)
    assert geocoding["points"][0]["rate"] is None
    assert geocoding["current"] == {"rate": 90.0, "numerator": 180, "denominator": 200}
    # Nothing before: no rate to compare with.
    assert (geocoding["change"], geocoding["direction"]) == (None, None)
    volume = body["metrics"]["volume"]
    assert all(set(p) == {"start", "records", "reports"} for p in volume["points"])
    assert volume["current"] == {"records": 200, "reports": 1}
    assert (volume["change"], volume["direction"], volume["change_unit"]) == (None, "up", "percent")


@pytest.mark.usefixtures("public_read")
def test_day_buckets_default_to_a_30_day_window(api_client):
    body = api_client.get(URL, {"bucket": "day"}).json()
    assert (body["bucket"], body["window_hours"]) == ("day", 720)
    points = body["metrics"]["volume"]["points"]
    assert len(points) == 30 and all(p["start"].endswith("T00:00:00Z") for p in points)


@pytest.mark.usefixtures("public_read")
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"metric": "volume"}, ["volume"]),
        ({"metric": "volume,geocoding_success_rate"}, ["volume", "geocoding_success_rate"]),
        ({"metric": ["validation_pass_rate", "volume,validation_pass_rate"]}, ["validation_pass_rate", "volume"]),
    ],
)
def test_metric_may_be_repeated_or_comma_separated(api_client, params, expected):
    response = api_client.get(URL, params)
    assert response.status_code == 200
    assert list(response.json()["metrics"]) == expected


@pytest.mark.usefixtures("public_read")
def test_an_empty_parameter_counts_as_omitted(api_client):
    body = api_client.get(URL + "?metric=&bucket=&window=&source=").json()
    assert (list(body["metrics"]), body["bucket"], body["window_hours"], body["source"]) == (METRICS, "hour", 24, None)


@pytest.mark.usefixtures("public_read")
def test_source_filter_and_window(api_client):
    _record_last_hour("acled")
    _record_last_hour("gdelt")
    body = api_client.get(URL, {"source": "gdelt", "window": 6, "metric": "volume"}).json()
    assert (body["source"], body["window_hours"]) == ("gdelt", 6)
    assert len(body["metrics"]["volume"]["points"]) == 6
    assert body["metrics"]["volume"]["current"] == {"records": 200, "reports": 1}
    assert api_client.get(URL, {"window": 2160, "bucket": "day"}).status_code == 200


@pytest.mark.usefixtures("public_read")
def test_stage_keeps_one_stages_metrics_or_the_unstaged_ones_and_combines_with_source(api_client):
    _record_last_hour("acled", "geocode")
    _record_last_hour("acled")
    _record_last_hour("gdelt", "geocode")
    current = {}
    for stage in ("geocode", "validate", "unstaged", None):
        params = {"metric": "volume", **({"stage": stage} if stage else {})}
        body = api_client.get(URL, params).json()
        assert body["stage"] == stage
        current[stage] = body["metrics"]["volume"]["current"]["reports"]
    assert current == {"geocode": 2, "validate": 0, "unstaged": 1, None: 3}
    body = api_client.get(URL, {"metric": "volume", "stage": "geocode", "source": "gdelt"}).json()
    assert (body["source"], body["stage"], body["metrics"]["volume"]["current"]["reports"]) == ("gdelt", "geocode", 1)


@pytest.mark.usefixtures("public_read")
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"metric": "latency"}, "metric"),
        ({"metric": "volume,latency"}, "metric"),
        ({"metric": "volume,,geocoding_success_rate"}, "metric"),
        ({"metric": "volume,"}, "metric"),
        ({"bucket": "week"}, "bucket"),
        ({"window": "0"}, "window"),
        ({"window": "2161"}, "window"),
        ({"window": "abc"}, "window"),
        ({"window": "1.5"}, "window"),
        ({"window": "36", "bucket": "day"}, "window"),
        ({"source": "bad source"}, "source"),
        ({"source": "-leading-dash"}, "source"),
        ({"source": "acled\n"}, "source"),
        ({"source": "a" * 101}, "source"),
        ({"source": " acled"}, "source"),
        ({"stage": "load"}, "stage"),
        ({"stage": "Geocode"}, "stage"),
    ],
)
def test_bad_parameters_are_a_json_400_naming_the_parameter(api_client, params, field):
    response = api_client.get(URL, params)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid" and field in body["fields"], body


def test_private_read_requires_a_login_or_token(api_client, settings, ingest_key):
    settings.MONITORING_PUBLIC_READ = False
    response = api_client.get(URL)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {ingest_key}")
    assert api_client.get(URL).status_code == 200


@pytest.mark.usefixtures("public_read")
def test_only_get_is_allowed(api_client):
    response = api_client.post(URL, {}, format="json")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
