"""Ingest validation: the direct path for plain metrics accepts exactly what MetricSerializer accepts,
with the same values, and every other body gets MetricSerializer's own answer (coercions and errors)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from monitoring.api.serializers import MetricSerializer, validate_metrics


def metric(**overrides):
    return {
        "source": "acled",
        "geocoding_attempts": 100,
        "geocoding_successes": 90,
        "validation_attempts": 100,
        "validation_passes": 80,
        **overrides,
    }


def without(key):
    return {k: v for k, v in metric().items() if k != key}


def serializer_answer(data, many):
    serializer = MetricSerializer(data=data, many=many)
    if not serializer.is_valid():
        return ("invalid", serializer.errors)
    return ("valid", serializer.validated_data if many else [serializer.validated_data])


def validate_answer(data, many):
    try:
        return ("valid", validate_metrics(data, many=many))
    except ValidationError as exc:
        return ("invalid", exc.detail)


PAST = (timezone.now() - timedelta(minutes=30)).replace(microsecond=123456)
BODIES = {
    "plain": metric(),
    "with a UTC timestamp": metric(timestamp=PAST.isoformat().replace("+00:00", "Z")),
    "with an offset timestamp": metric(timestamp=PAST.astimezone(timezone.get_fixed_timezone(330)).isoformat()),
    "with a naive timestamp": metric(timestamp=PAST.replace(tzinfo=None).isoformat()),
    "with a metric type": metric(metric_type="daily_batch"),
    "with counts left out": {"source": "gdelt"},
    "with an unknown key": metric(comment="refused"),
    "with counts as strings": metric(geocoding_attempts="100", geocoding_successes="90"),
    "with a count as a whole float": metric(validation_attempts=100.0),
    "with a padded source": metric(source="  acled  "),
    "with a numeric source": metric(source=42),
    "with a bool count": metric(geocoding_attempts=True),
    "with a negative count": metric(validation_passes=-1),
    "with a count too large": metric(geocoding_attempts=2**31),
    "with more successes than attempts": metric(geocoding_successes=101),
    "with a bad source": metric(source="has space"),
    "with a bad metric type": metric(metric_type="Not A Type"),
    "with a null timestamp": metric(timestamp=None),
    "with an unparsable timestamp": metric(timestamp="yesterday"),
    "with a future timestamp": metric(timestamp=(timezone.now() + timedelta(hours=1)).isoformat()),
    "without a source": without("source"),
}


@pytest.mark.parametrize("name", list(BODIES))
def test_one_metric_gets_the_serializers_answer(name):
    body = BODIES[name]
    assert validate_answer(body, many=False) == serializer_answer(body, many=False)


@pytest.mark.parametrize("name", list(BODIES))
def test_a_list_with_the_metric_among_plain_ones_gets_the_serializers_answer(name):
    body = [metric(), BODIES[name], metric(source="gdelt")]
    assert validate_answer(body, many=True) == serializer_answer(body, many=True)


@pytest.mark.parametrize("item", [None, 42, "text", [metric()]])
def test_a_list_item_that_is_not_an_object_gets_the_serializers_error(item):
    body = [metric(), item]
    answer = validate_answer(body, many=True)
    assert answer[0] == "invalid"
    assert answer == serializer_answer(body, many=True)
