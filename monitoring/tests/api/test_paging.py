"""The paging cursor: what ``encode`` gives, ``CursorField`` takes back; anything else is refused."""

import base64
from datetime import UTC, datetime

import pytest
from rest_framework import serializers

from monitoring.api.paging import CursorField, encode
from monitoring.selectors.paging import Key


def _raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


class Query(serializers.Serializer):
    cursor = CursorField()


def test_a_cursor_round_trips_to_its_key():
    key = Key(at=datetime(2026, 12, 7, 15, 4, 5, 123456, tzinfo=UTC), id=42)
    query = Query(data={"cursor": encode(key)})
    assert query.is_valid(), query.errors
    assert query.validated_data["after"] == key
    assert encode(None) is None


@pytest.mark.parametrize(
    "text",
    ["nonsense", _raw('["2026-01-01T00:00:00", 1]'), _raw('["2026-01-01T00:00:00Z", "x"]'), "x" * 201, "WzEsMl0"],
)
def test_anything_but_a_cursor_this_api_gave_is_invalid(text):
    query = Query(data={"cursor": text})
    assert not query.is_valid() and "cursor" in query.errors
