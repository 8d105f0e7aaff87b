"""Structured logs: one JSON object per line with the fields an operator filters on, the request id on
every record emitted while a request is handled, and a real server with ``LOG_FORMAT=json`` whose every
output line is such an object."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from email.message import Message
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from monitoring import logs
from monitoring.events import CLOSE_FORBIDDEN
from tests.integration.cluster import free_port

ROOT = Path(__file__).resolve().parents[2]


def record(message: str = "hello", *args, level: int = logging.INFO, exc_info=None, **extra) -> logging.LogRecord:
    made = logging.getLogger("monitoring.probe").makeRecord(
        "monitoring.probe", level, __file__, 1, message, args, exc_info, extra=extra or None
    )
    return made


def formatted(made: logging.LogRecord) -> dict:
    line = logs.JsonFormatter().format(made)
    assert "\n" not in line
    return json.loads(line)


# --- the formatter ------------------------------------------------------------------------------
def test_a_record_is_one_json_object_with_time_level_logger_and_message():
    made = record("%s of %d\nsecond line", "one", 2, level=logging.WARNING)
    document = formatted(made)
    assert set(document) == {"time", "level", "logger", "message"}
    assert (document["level"], document["logger"]) == ("WARNING", "monitoring.probe")
    assert document["message"] == "one of 2\nsecond line"
    assert document["time"].endswith("Z")
    written = datetime.fromisoformat(document["time"].replace("Z", "+00:00"))
    assert written.tzinfo is not None and written.utcoffset().total_seconds() == 0
    assert abs(written.timestamp() - made.created) < 0.001


def test_an_exception_is_its_formatted_traceback():
    try:
        raise ValueError('broken "quote"\nand a newline')
    except ValueError:
        made = record("failed", level=logging.ERROR, exc_info=sys.exc_info())
    document = formatted(made)
    assert document["exc_info"].startswith("Traceback (most recent call last):")
    assert document["exc_info"].endswith('ValueError: broken "quote"\nand a newline')
    assert "test_an_exception_is_its_formatted_traceback" in document["exc_info"]


def test_exc_info_without_an_exception_writes_none():
    logger = logging.getLogger("monitoring.probe.noexc")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger.addHandler(handler)
    try:
        logger.error("no exception here", exc_info=True)
    finally:
        logger.removeHandler(handler)
    assert "exc_info" not in json.loads(stream.getvalue())


def test_extra_fields_are_written_objects_as_text_and_never_the_request():
    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    made = record(
        status=201, client=None, route="api/v1/monitoring/metrics", tags=["a"], obj=Opaque(), request=object()
    )
    document = formatted(made)
    assert document["status"] == 201 and document["client"] is None and document["tags"] == ["a"]
    assert document["route"] == "api/v1/monitoring/metrics" and document["obj"] == "opaque"
    # Django's django.request records carry the request, whose text holds the query string.
    assert "request" not in document


def test_an_extra_cannot_replace_a_standard_field():
    document = formatted(record("kept", level=logging.ERROR, time="x", logger="x"))
    assert (document["level"], document["logger"], document["message"]) == ("ERROR", "monitoring.probe", "kept")
    assert document["time"] != "x"


def test_hostile_text_stays_one_valid_json_line():
    hostile = 'a\nb\r\n"}\x00\x1b[31m\u2028\udcff end'
    document = formatted(record("%s", hostile, path=hostile))
    assert document["message"] == hostile and document["path"] == hostile


def test_an_extra_that_cannot_be_written_leaves_the_record():
    circular: list = []
    circular.append(circular)
    document = formatted(record("still here", loop=circular))
    assert document["message"] == "still here" and "loop" not in document and "extra_error" in document


# --- request ids --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"abc-123", "abc-123"),
        (b"x" * 128, "x" * 128),
        (b"  padded  ", "padded"),
        (b"with inner space", "with inner space"),
        (b"x" * 129, None),
        (b"", None),
        (b"   ", None),
        (b"line\nbreak", None),
        (b"nul\x00", None),
        (b"tab\there", None),
        ("caf\u00e9".encode(), None),
        (b"\xff\xfe", None),
        (None, None),
    ],
)
def test_only_a_sane_request_id_is_kept(value, expected):
    assert logs.sane_request_id(value) == expected


def test_a_request_id_is_the_clients_when_sane_else_new():
    assert logs.request_id_from([(b"host", b"x"), (b"x-request-id", b"client-id")]) == "client-id"
    assert logs.request_id_from([(b"X-Request-ID", b"upper-case-name")]) == "upper-case-name"
    generated = {logs.request_id_from([(b"x-request-id", b"bad\nid")]), logs.request_id_from([])}
    assert len(generated) == 2 and all(len(new) == 32 and int(new, 16) >= 0 for new in generated)


def test_the_filter_adds_the_current_request_id_and_keeps_a_given_one():
    request_filter = logs.RequestIdFilter()
    outside = record()
    assert request_filter.filter(outside) and not hasattr(outside, "request_id")
    token = logs.request_id.set("current")
    try:
        inside, given = record(), record(request_id="given")
        assert request_filter.filter(inside) and request_filter.filter(given)
    finally:
        logs.request_id.reset(token)
    assert (inside.request_id, given.request_id) == ("current", "given")


def test_the_settings_handler_formats_as_configured(settings):
    """LOGGING's console handler carries the request-id filter in both formats."""
    console = settings.LOGGING["handlers"]["console"]
    assert console["filters"] == ["request_id"]
    assert settings.LOGGING["filters"]["request_id"]["()"] == "monitoring.logs.RequestIdFilter"
    assert settings.LOGGING["formatters"]["json"]["()"] == "monitoring.logs.JsonFormatter"
    assert settings.LOGGING["formatters"]["plain"]["format"] == "%(asctime)s %(levelname)s %(name)s %(message)s"


# --- a real server ------------------------------------------------------------------------------
@contextmanager
def json_logging_server(tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    """``conflict_monitor.serve`` as the image runs it (``--proxy-headers``), with ``LOG_FORMAT=json``
    and ``-v 0``: daphne's own access log (NCSA text on stdout) off. Health needs no database."""
    port = free_port()
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "DEBUG") and not k.startswith(("MONITORING_", "LOG_"))
        },
        "DJANGO_SETTINGS_MODULE": "conflict_monitor.settings",
        "SECRET_KEY": "json-log-tests-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SQLITE_PATH": str(tmp_path / "unused.sqlite3"),
        "WEBSOCKET_EMBEDDED_BROADCASTER": "0",
        "MONITORING_PUBLIC_READ": "0",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    argv = [sys.executable, "-m", "conflict_monitor.serve", "-v", "0", "-b", "127.0.0.1", "-p", str(port)]
    argv += ["--proxy-headers", "conflict_monitor.asgi:application"]
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None and time.monotonic() < deadline, stderr.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/monitoring/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.2)
        yield port, stdout, stderr
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def get(url: str, headers: dict[str, str]) -> tuple[int, Message]:
    """The status and the response's headers (names in any case)."""
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (http://127.0.0.1 only)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (http://127.0.0.1 only)
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


def test_a_server_with_log_format_json_writes_only_json_lines_with_access_records(tmp_path):
    with json_logging_server(tmp_path) as (port, stdout, stderr):
        base = f"http://127.0.0.1:{port}"
        # Reads are private: a 401 that needs no database, logged by django.request too.
        status, headers = get(
            f"{base}/api/v1/monitoring/pipeline-status?ticket=query-secret-7",
            {"X-Request-ID": "probe-7", "X-Forwarded-For": "203.0.113.9", "Authorization": "Bearer header-secret-7"},
        )
        assert (status, headers["X-Request-ID"]) == (401, "probe-7")
        status, headers = get(f"{base}/no/such/page", {"X-Request-ID": "bad\x7fid"})
        assert status == 404 and len(headers["X-Request-ID"]) == 32
        generated = headers["X-Request-ID"]
        feed = f"ws://127.0.0.1:{port}/ws/monitoring/pipeline-status?ticket=query-secret-8"
        with (
            pytest.raises(ConnectionClosed) as refused,
            connect(feed, open_timeout=10, additional_headers={"X-Request-ID": "socket-7"}) as ws,
        ):
            ws.recv(timeout=10)
        assert refused.value.rcvd.code == CLOSE_FORBIDDEN
        deadline = time.monotonic() + 10
        while "websocket_close" not in stderr.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    output = stdout.read_text() + stderr.read_text()

    lines = [line for line in output.splitlines() if line.strip()]
    assert lines, "the server wrote nothing"
    documents = []
    for line in lines:
        try:
            documents.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a line that is not JSON: {line!r}\n\n{output}")
    assert all({"time", "level", "logger", "message"} <= set(document) for document in documents)
    access = [document for document in documents if document["logger"] == "monitoring.access"]
    probe = next(document for document in access if document.get("request_id") == "probe-7")
    assert {key: probe[key] for key in ("method", "route", "status", "client")} == {
        "method": "GET",
        "route": "api/v1/monitoring/pipeline-status",
        "status": 401,
        "client": "203.0.113.9",  # daphne's --proxy-headers
    }
    assert isinstance(probe["duration_ms"], float) and probe["duration_ms"] > 0
    # Django's own record of the refusal carries the request's id.
    assert any(
        document["logger"] == "django.request" and document.get("request_id") == "probe-7" for document in documents
    )
    unmatched = next(document for document in access if document.get("request_id") == generated)
    assert (unmatched["route"], unmatched["status"]) == ("unmatched", 404)
    closed = next(document for document in access if document.get("event") == "websocket_close")
    assert closed["request_id"] == "socket-7" and closed["path"] == "/ws/monitoring/pipeline-status"
    assert closed["code"] == CLOSE_FORBIDDEN and closed["duration_ms"] >= 0
    for secret in ("query-secret-7", "query-secret-8", "header-secret-7", "ticket="):
        assert secret not in output
