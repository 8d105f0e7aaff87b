"""The OpenAPI schema: generated without a warning, committed as docs/openapi.yaml, served at
/api/v1/monitoring/schema, and covering every route and method of the API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.drainage import GENERATOR_STATS

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "docs" / "openapi.yaml"
API = "/api/v1/monitoring/"
SCHEMA_URL = API + "schema"
REGENERATE = "docs/openapi.yaml is out of date: regenerate it with `make openapi` and commit it"


def committed_schema() -> dict:
    return yaml.safe_load(COMMITTED.read_text())


def api_routes() -> list[tuple[str, type]]:
    """(OpenAPI path, view class) of every route under the API's base path."""
    include = next(
        pattern
        for pattern in get_resolver().url_patterns
        if isinstance(pattern, URLResolver) and str(pattern.pattern) == API.lstrip("/")
    )
    routes = []
    for pattern in include.url_patterns:
        assert isinstance(pattern, URLPattern), f"nested include {pattern} is not walked"
        path = API + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        routes.append((path, pattern.callback.cls))
    return routes


def test_the_schema_generates_without_warnings_and_equals_docs_openapi_yaml(tmp_path):
    generated = tmp_path / "openapi.yaml"
    GENERATOR_STATS.reset()  # warnings of an earlier generation in this process are not this one's
    # What `make openapi` runs; --fail-on-warn and --validate raise on any warning or schema error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(generated))
    assert generated.read_text() == COMMITTED.read_text(), REGENERATE


def test_every_route_and_method_of_the_api_is_in_the_schema():
    paths = committed_schema()["paths"]
    routes = api_routes()
    assert len(routes) >= 15, "the API's routes were not found"
    for path, view in routes:
        methods = {name for name in view.http_method_names if hasattr(view, name)} - {"options", "head"}
        assert methods, f"{view.__name__} answers no method"
        assert set(paths.get(path, {})) == methods, f"{path}: {REGENERATE}, or annotate {view.__name__}"
    assert set(paths) == {path for path, _ in routes}


def test_the_schema_endpoint_serves_the_committed_schema(ingest_client):
    as_json = ingest_client.get(SCHEMA_URL, {"format": "json"})
    assert as_json.status_code == 200
    assert as_json["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert as_json.json() == committed_schema(), REGENERATE

    as_yaml = ingest_client.get(SCHEMA_URL)
    assert as_yaml["Content-Type"].startswith("application/vnd.oai.openapi")
    assert yaml.safe_load(as_yaml.content) == committed_schema()


def test_the_schema_is_public_when_reads_are(api_client, public_read):
    assert api_client.get(SCHEMA_URL).status_code == 200


def test_without_credentials_the_schema_is_a_json_401_when_reads_are_private(api_client, settings):
    settings.MONITORING_PUBLIC_READ = False
    response = api_client.get(SCHEMA_URL)
    # The schema's own renderers are YAML first: the error must not be rendered with them.
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"


def test_an_unknown_format_is_a_json_404(ingest_client):
    response = ingest_client.get(SCHEMA_URL, {"format": "xml"})
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_found"


def test_every_error_response_of_the_schema_is_the_common_json_error_body():
    schema = committed_schema()
    error = {"$ref": "#/components/schemas/Error"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400 or path.endswith("/ready"):
                    continue
                assert response["content"] == {"application/json": {"schema": error}}, (method, path, status)
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"error", "detail"}


def test_ingest_token_security_scheme_is_the_token_header():
    schema = committed_schema()
    token = schema["components"]["securitySchemes"]["ingestToken"]
    assert (token["type"], token["in"], token["name"]) == ("apiKey", "header", "Authorization")
    assert schema["paths"][API + "metrics"]["post"]["security"] == [{"ingestToken": []}]
    assert schema["paths"][API + "pipeline-status"]["get"]["security"] == [{"ingestToken": []}, {"cookieAuth": []}]
