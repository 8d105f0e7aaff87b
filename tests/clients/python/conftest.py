"""A real Conflict Monitor server for the client's tests, and fresh ingest tokens.

The server is the launcher (``python -m conflict_monitor.serve``) on the test database and the local Redis,
as in tests/integration; it is started once for this package. Each test that uses it gets its own token
(``server_key``) under ``transactional_db``, so what the server writes is visible here and wiped after.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.integration.cluster import Cluster, running_cluster

_names = itertools.count()


@pytest.fixture(scope="package")
def cluster(django_db_setup, tmp_path_factory) -> Iterator[Cluster]:
    with running_cluster(logs=tmp_path_factory.mktemp("client-server"), servers=("a",), broadcasters=0) as cluster:
        yield cluster


@pytest.fixture
def server_url(cluster: Cluster) -> str:
    return f"http://127.0.0.1:{cluster.port('a')}"


@pytest.fixture
def server_port(cluster: Cluster) -> int:
    return cluster.port("a")


@pytest.fixture
def server_key(transactional_db) -> str:
    from monitoring.services.tokens import create_ingest_token

    _, key = create_ingest_token(name=f"client-test-{next(_names)}")
    return key
