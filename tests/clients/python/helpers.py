"""What the server stored, read from the test database; what went over the wire, read from httpx's event
hooks (the real client and sockets; nothing is replaced); and a driver of the client's steps without I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
from conflict_monitor_client.wire import Answer, NoAnswer, Send, Sleep, Steps

# What a test that writes through the server needs: the real backends, and committed rows (the server is another
# process) flushed after the test. Only the monitoring tables: flushing them without re-creating content types
# and permissions takes about half the time of a full flush.
SERVER_MARKS = (
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True, available_apps=["monitoring"]),
)
T = TypeVar("T")


def on_server(test: T) -> T:
    """Mark ``test`` with ``SERVER_MARKS``."""
    for mark in SERVER_MARKS:
        test = mark(test)
    return test


def stored_links(source: str | None = None) -> list[tuple[int | None, str | None]]:
    """The (run id, stage) of each stored metric row, oldest first."""
    from monitoring.models import DataQualityMetric

    rows = DataQualityMetric.objects.order_by("timestamp", "id")
    if source is not None:
        rows = rows.filter(source=source)
    return list(rows.values_list("run_id", "stage"))


def stored_metrics(source: str | None = None) -> list[tuple]:
    """The metric rows the server stored: (source, metric_type, four counts), oldest first."""
    from monitoring.models import DataQualityMetric

    rows = DataQualityMetric.objects.order_by("timestamp", "id")
    if source is not None:
        rows = rows.filter(source=source)
    return list(
        rows.values_list(
            "source",
            "metric_type",
            "geocoding_attempts",
            "geocoding_successes",
            "validation_attempts",
            "validation_passes",
        )
    )


def revoke(key: str) -> None:
    """Revoke the ingest token whose key is ``key``, as the admin's action does."""
    from django.utils import timezone

    from monitoring.models import IngestToken

    assert IngestToken.objects.filter(prefix=key.split("_")[1]).update(revoked_at=timezone.now()) == 1


@dataclass
class Wire:
    """Every request an httpx client sent and every answer's status and replay flag."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    answers: list[tuple[int, bool]] = field(default_factory=list)

    def _request(self, request: httpx.Request) -> None:
        self.requests.append((request.method, request.url.path.removeprefix("/api/v1/monitoring/")))

    def _answer(self, response: httpx.Response) -> None:
        self.answers.append((response.status_code, response.headers.get("Idempotent-Replayed") == "true"))

    def client(self) -> httpx.Client:
        return httpx.Client(event_hooks={"request": [self._request], "response": [self._answer]})

    def async_client(self) -> httpx.AsyncClient:
        async def on_request(request: httpx.Request) -> None:
            self._request(request)

        async def on_answer(response: httpx.Response) -> None:
            self._answer(response)

        return httpx.AsyncClient(event_hooks={"request": [on_request], "response": [on_answer]})


def drive(steps: Steps[Any], outcomes: Iterable[Answer | NoAnswer]) -> tuple[list[Send | Sleep], Any]:
    """Feed ``outcomes`` to the Send steps; returns (the steps seen, the result or the exception)."""
    seen, outcome, answers = [], None, iter(outcomes)
    while True:
        try:
            step = steps.send(outcome)
        except StopIteration as done:
            return seen, done.value
        except Exception as exc:  # what the loop raised is the result under test
            return seen, exc
        seen.append(step)
        outcome = next(answers) if isinstance(step, Send) else None
