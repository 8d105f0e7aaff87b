"""All-or-nothing writes, proven by making PostgreSQL itself fail part-way through."""

import pytest
from django.db import DatabaseError, connection

from monitoring.models import DataQualityMetric, IdempotencyRecord
from monitoring.services.idempotency import run_idempotent
from monitoring.services.metrics import MetricInput, record_metrics
from monitoring.services.tokens import create_ingest_token

pytestmark = pytest.mark.postgres


@pytest.fixture
def refuse_inserts():
    """A trigger that raises when a row matching ``condition`` is inserted into ``table``."""
    installed = []

    def install(table: str, condition: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE OR REPLACE FUNCTION test_refuse() RETURNS trigger AS $$ "
                f"BEGIN IF {condition} THEN RAISE EXCEPTION 'refused by test trigger'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER test_refuse BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION test_refuse()"
            )
        installed.append(table)

    yield install
    with connection.cursor() as cursor:
        for table in installed:
            cursor.execute(f"DROP TRIGGER IF EXISTS test_refuse ON {table}")


def test_a_failure_in_a_later_insert_batch_rolls_back_the_earlier_ones(refuse_inserts):
    refuse_inserts("monitoring_dataqualitymetric", "NEW.source = 'boom'")
    metrics = [MetricInput(source="ok") for _ in range(1500)]
    metrics[1200] = MetricInput(source="boom")  # lands in the second 1000-row INSERT
    with pytest.raises(DatabaseError, match="refused by test trigger"):
        record_metrics(metrics=metrics)
    assert DataQualityMetric.objects.count() == 0


def test_if_the_idempotency_record_cannot_be_stored_the_write_is_undone(refuse_inserts):
    refuse_inserts("monitoring_idempotencyrecord", "TRUE")
    token, _ = create_ingest_token(name="atomic")

    def action():
        record_metrics(metrics=[MetricInput(source="ok")] * 3)
        return 201, {"created": 3}

    with pytest.raises(DatabaseError, match="refused by test trigger"):
        run_idempotent(token=token, key="k", fingerprint="f", action=action, ttl_hours=24)
    assert DataQualityMetric.objects.count() == 0
    assert IdempotencyRecord.objects.count() == 0


def test_if_the_rollup_cannot_be_updated_the_metrics_are_not_stored(refuse_inserts):
    refuse_inserts("monitoring_hourlyrollup", "TRUE")
    with pytest.raises(DatabaseError, match="refused by test trigger"):
        record_metrics(metrics=[MetricInput(source="ok")] * 3)
    assert DataQualityMetric.objects.count() == 0
