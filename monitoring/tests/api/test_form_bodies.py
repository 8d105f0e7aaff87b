"""A POST sent as a form reaches the API through the real server (daphne on Twisted), which answers it as
any body it does not take: a JSON 415. Twisted used to parse such bodies first and to answer a multipart
one it could not parse (JSON sent as multipart, a missing boundary) with a bare 400, without a header or
a body, before the application saw the request (found by tests/reliability/test_hostile_http.py)."""

from __future__ import annotations

import http.client
import json

import pytest

from tests.integration.cluster import running_cluster

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
BODIES = [
    ("multipart/form-data", b'{"source": "acled"}'),
    ("multipart/form-data; boundary=zz", b'{"source": "acled"}'),
    (
        "multipart/form-data; boundary=zz",
        b'--zz\r\nContent-Disposition: form-data; name="source"\r\n\r\nacled\r\n--zz--\r\n',
    ),
    ("application/x-www-form-urlencoded", b"source=acled"),
]


def test_form_bodies_get_the_apis_json_415_from_the_real_server(tmp_path, ingest_key):
    with running_cluster(logs=tmp_path, servers=("a",), broadcasters=0) as cluster:
        answers = []
        for content_type, body in BODIES:
            connection = http.client.HTTPConnection("127.0.0.1", cluster.port("a"), timeout=10)
            headers = {"Content-Type": content_type, "Authorization": f"Token {ingest_key}"}
            connection.request("POST", "/api/v1/monitoring/metrics", body=body, headers=headers)
            response = connection.getresponse()
            answers.append((content_type, response.status, response.getheader("Content-Type"), response.read()))
            connection.close()

    for content_type, status, answered_type, body in answers:
        assert (status, answered_type) == (415, "application/json"), (content_type, status, body)
        assert json.loads(body)["error"] == "unsupported_media_type"
