"""POST metrics with ``run_id`` and ``stage``: the link is checked against the runs table, a linked metric
without a stage takes its run's, a refused link writes nothing, and both fields are part of the request an
``Idempotency-Key`` stands for."""

from __future__ import annotations

import pytest

from monitoring.models import DataQualityMetric, HourlyRollup
from monitoring.services.idempotency import request_fingerprint
from monitoring.services.metrics import MetricInput
from monitoring.tests.factories import PipelineRunFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/monitoring/metrics"


def metric(**overrides):
    return {"source": "acled", "geocoding_attempts": 10, "geocoding_successes": 9, **overrides}


def _links() -> list[tuple]:
    return list(DataQualityMetric.objects.order_by("id").values_list("source", "run_id", "stage"))


def test_a_linked_metric_without_a_stage_is_stored_with_its_runs_stage(ingest_client):
    run = PipelineRunFactory(source="acled", stage="geocode")
    response = ingest_client.post(URL, metric(run_id=run.pk), format="json")
    assert response.status_code == 201, response.content
    assert _links() == [("acled", run.pk, "geocode")]
    assert list(HourlyRollup.objects.values_list("source", "stage", "reports")) == [("acled", "geocode", 1)]


def test_a_stage_without_a_run_and_a_metric_with_neither_are_stored_as_given(ingest_client):
    body = [metric(stage="validate"), metric(), metric(run_id=None, stage=None)]
    assert ingest_client.post(URL, body, format="json").status_code == 201
    assert _links() == [("acled", None, "validate"), ("acled", None, None), ("acled", None, None)]
    rollups = sorted(HourlyRollup.objects.values_list("stage", "reports"))
    assert rollups == [("", 2), ("validate", 1)], "unstaged metrics are one rollup under the stage ''"


def test_a_run_and_the_same_stage_given_together_are_accepted(ingest_client):
    run = PipelineRunFactory(source="acled", stage="scrape")
    assert ingest_client.post(URL, metric(run_id=run.pk, stage="scrape"), format="json").status_code == 201
    assert _links() == [("acled", run.pk, "scrape")]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (lambda run: metric(run_id=run.pk + 1000), {"run_id": ["No run {missing}."]}),
        (lambda run: metric(source="gdelt", run_id=run.pk), {"run_id": ["Run {id} is a run of acled, not of gdelt."]}),
        (
            lambda run: metric(run_id=run.pk, stage="validate"),
            {"stage": ["Run {id} is a geocode run: give stage geocode, or none."]},
        ),
    ],
    ids=["no-such-run", "another-sources-run", "another-stage"],
)
def test_a_link_the_runs_table_contradicts_is_a_400_naming_the_field(ingest_client, body, fields):
    run = PipelineRunFactory(source="acled", stage="geocode")
    response = ingest_client.post(URL, body(run), format="json")
    assert response.status_code == 400
    expected = {
        name: [message.format(id=run.pk, missing=run.pk + 1000) for message in messages]
        for name, messages in fields.items()
    }
    assert response.json() == {"error": "invalid", "detail": "Invalid input.", "fields": expected}
    assert not DataQualityMetric.objects.exists()


def test_in_a_list_the_bad_links_are_named_by_position_and_nothing_is_stored(ingest_client):
    run = PipelineRunFactory(source="acled", stage="geocode")
    body = [metric(run_id=run.pk), metric(source="ucdp", run_id=run.pk), metric(), metric(run_id=run.pk + 1000)]
    response = ingest_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "1": {"run_id": [f"Run {run.pk} is a run of acled, not of ucdp."]},
        "3": {"run_id": [f"No run {run.pk + 1000}."]},
    }
    assert not DataQualityMetric.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"run_id": 0}, "run_id"),
        ({"run_id": -3}, "run_id"),
        ({"run_id": 2**63}, "run_id"),
        ({"run_id": 2**70}, "run_id"),
        ({"run_id": "x"}, "run_id"),
        ({"run_id": True}, "run_id"),
        ({"run_id": 1.5}, "run_id"),
        ({"stage": "load"}, "stage"),
        ({"stage": ""}, "stage"),
        ({"stage": 3}, "stage"),
    ],
)
def test_a_run_id_or_stage_of_the_wrong_kind_is_a_400_before_any_lookup(ingest_client, overrides, field):
    response = ingest_client.post(URL, metric(**overrides), format="json")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {field}


def test_deleting_a_run_unlinks_its_metrics_and_keeps_their_stage_and_sums(ingest_client):
    run = PipelineRunFactory(source="acled", stage="validate", status="succeeded")
    ingest_client.post(URL, [metric(run_id=run.pk), metric(run_id=run.pk)], format="json")
    before = list(HourlyRollup.objects.values_list("stage", "geocoding_attempts", "reports"))
    run.delete()
    assert _links() == [("acled", None, "validate")] * 2
    assert list(HourlyRollup.objects.values_list("stage", "geocoding_attempts", "reports")) == before


def test_an_idempotency_key_stands_for_the_link_too(ingest_client):
    run = PipelineRunFactory(source="acled", stage="geocode")
    other = PipelineRunFactory(source="acled", stage="geocode")
    first = ingest_client.post(URL, metric(run_id=run.pk), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = ingest_client.post(URL, metric(run_id=run.pk), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    moved = ingest_client.post(URL, metric(run_id=other.pk), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert moved.status_code == 422, "the same key for a metric of another run is another request"
    assert _links() == [("acled", run.pk, "geocode")]


def test_a_request_without_a_link_fingerprints_as_it_did_before_links_existed():
    """Keys stored before the upgrade still match their retries (the fingerprint of the validated input)."""
    plain = MetricInput(source="acled", geocoding_attempts=1)
    before = {
        "source": "acled",
        "geocoding_attempts": 1,
        "geocoding_successes": 0,
        "validation_attempts": 0,
        "validation_passes": 0,
        "metric_type": "batch",
        "timestamp": None,
    }
    assert plain.as_dict() == before
    fingerprint = request_fingerprint(method="POST", path=URL, data=[plain.as_dict()])
    assert fingerprint == request_fingerprint(method="POST", path=URL, data=[before])
    linked = MetricInput(source="acled", geocoding_attempts=1, run_id=4, stage="scrape")
    assert linked.as_dict() == {**before, "run_id": 4, "stage": "scrape"}
