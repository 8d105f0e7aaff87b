"""Headers that daphne decodes itself (``Daphne-Root-Path``; the forwarded address, port and scheme with
``--proxy-headers``, as the production image runs it) with a value that is not text get a 400, the API's
JSON error body under /api/; daphne used to fail on them with its HTML 500 page."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration.cluster import ROOT, free_port

HEALTH = b"/api/v1/monitoring/health"


@contextmanager
def serving(*, logs: Path, args: list[str]) -> Iterator[int]:
    """``conflict_monitor.serve`` with ``args``; /health needs neither a database nor Redis."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "DJANGO_SETTINGS_MODULE": "conflict_monitor.settings",
        "SECRET_KEY": "undecodable-header-tests-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SQLITE_PATH": str(logs / "unused.sqlite3"),
        "WEBSOCKET_EMBEDDED_BROADCASTER": "0",
    }
    argv = [sys.executable, "-m", "conflict_monitor.serve", "-b", "127.0.0.1", "-p", str(port), *args]
    with open(logs / "server.log", "wb") as log:
        server = subprocess.Popen(
            [*argv, "conflict_monitor.asgi:application"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 30
        while exchange(port=port, path=HEALTH, header=b"")[0] != 200:
            assert server.poll() is None and time.monotonic() < deadline, (logs / "server.log").read_text()
            time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def exchange(*, port: int, path: bytes, header: bytes) -> tuple[int, str, bytes]:
    """Status, Content-Type and body of a GET with one raw header line (0 when nothing answers)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + header + b"\r\n")
            answer = b"".join(iter(lambda: sock.recv(65536), b""))
    except OSError:
        return 0, "", b""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers.get("Content-Type", ""), body


def assert_json_400(answer: tuple[int, str, bytes]) -> None:
    status, content_type, body = answer
    assert (status, content_type) == (400, "application/json"), answer
    assert json.loads(body) == {"error": "bad_request", "detail": "A header value is not text."}


def test_undecodable_headers_get_the_apis_json_400(tmp_path):
    with serving(logs=tmp_path, args=["--proxy-headers"]) as port:
        assert_json_400(exchange(port=port, path=HEALTH, header=b"Daphne-Root-Path: \xff\r\n"))
        assert_json_400(exchange(port=port, path=HEALTH, header=b"X-Forwarded-For: \xff\xfe\r\n"))
        assert_json_400(
            exchange(port=port, path=HEALTH, header=b"X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: \xff\r\n")
        )
        # Decodable values still pass, and outside the API the refusal stays daphne's page.
        assert exchange(port=port, path=HEALTH, header=b"X-Forwarded-For: 1.2.3.4\r\n")[0] == 200
        status, content_type, _ = exchange(port=port, path=b"/", header=b"Daphne-Root-Path: \xff\r\n")
        assert (status, content_type) == (400, "text/html; charset=utf-8")


def test_without_proxy_headers_the_forwarded_headers_are_not_read(tmp_path):
    with serving(logs=tmp_path, args=[]) as port:
        for header in (b"X-Forwarded-For: \xff\r\n", b"X-Forwarded-Proto: \xff\r\n"):
            assert exchange(port=port, path=HEALTH, header=header)[0] == 200, header
