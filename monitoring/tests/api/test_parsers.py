"""The bounded JSON parser: strict JSON (no NaN or Infinity), 413 past the body limit whether the
length is declared or not, and a 400 for bodies nested too deeply."""

import io

import pytest
from rest_framework.exceptions import ParseError
from rest_framework.test import APIRequestFactory

from monitoring.api.parsers import BoundedJSONParser, PayloadTooLarge


@pytest.fixture
def limit(settings):
    settings.MONITORING_INGEST_MAX_BODY_BYTES = 64
    return 64


def _parse(raw: bytes, *, declared: int | None = None):
    request = APIRequestFactory().post("/", data=raw, content_type="application/json")
    if declared is None:
        request.META.pop("CONTENT_LENGTH", None)
    else:
        request.META["CONTENT_LENGTH"] = str(declared)
    return BoundedJSONParser().parse(io.BytesIO(raw), parser_context={"request": request})


def test_a_body_within_the_limit_is_parsed(limit):
    assert _parse(b'{"source": "acled", "n": [1, 2.5]}') == {"source": "acled", "n": [1, 2.5]}


def test_a_declared_length_over_the_limit_is_refused_before_reading(limit):
    with pytest.raises(PayloadTooLarge, match="exceeds 64 bytes") as refused:
        _parse(b"{}", declared=limit + 1)
    assert refused.value.status_code == 413


def test_an_undeclared_body_over_the_limit_is_refused_when_read(limit):
    body = b'{"pad": "' + b"x" * limit + b'"}'
    with pytest.raises(PayloadTooLarge):
        _parse(body)
    exact = b'{"p": "' + b"x" * (limit - 9) + b'"}'
    assert len(exact) == limit
    assert _parse(exact) == {"p": "x" * (limit - 9)}


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_number_constants_are_refused(limit, constant):
    with pytest.raises(ParseError, match="is not valid JSON"):
        _parse(b'{"n": ' + constant + b"}")


def test_malformed_or_non_utf8_json_is_a_parse_error(limit):
    with pytest.raises(ParseError, match="JSON parse error"):
        _parse(b'{"n": ')
    with pytest.raises(ParseError, match="JSON parse error"):
        _parse(b'{"n": "\xff"}')


def test_nesting_deeper_than_python_can_parse_is_a_parse_error(settings):
    settings.MONITORING_INGEST_MAX_BODY_BYTES = 1_000_000
    with pytest.raises(ParseError, match="nested too deeply"):
        _parse(b"[" * 200_000 + b"]" * 200_000)
