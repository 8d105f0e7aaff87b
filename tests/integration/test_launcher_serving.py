"""`make run` and production serve through one launcher; outside the image it serves the dashboard's static
files without a collectstatic."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.cluster import ROOT, free_port


def _serve(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 (lives as long as the process)
    process = subprocess.Popen(
        [sys.executable, "-m", "conflict_monitor.serve", "-b", "127.0.0.1", "-p", str(port)]
        + ["conflict_monitor.asgi:application"],
        cwd=ROOT,
        env={**base, "SQLITE_PATH": str(tmp_path / "db.sqlite3"), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, port


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _wait_healthy(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text(errors="replace")
        try:
            if _get(port, "/api/v1/monitoring/health")[0] == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.2)


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"DEBUG": "1"}, id="make-run-embedded-default"),
        pytest.param(
            {"DEBUG": "0", "SECRET_KEY": "launcher-test-only", "ALLOWED_HOSTS": "127.0.0.1"}, id="production-settings"
        ),
    ],
)
def test_the_launcher_serves_the_dashboards_static_files_without_collectstatic(tmp_path, env):
    process, port = _serve(tmp_path, STATIC_ROOT=str(tmp_path / "never-collected"), **env)
    try:
        _wait_healthy(process, port, tmp_path / "server.log")
        status, body = _get(port, "/static/monitoring/dashboard.js")
        assert status == 200
        assert body == (ROOT / "monitoring/static/monitoring/dashboard.js").read_bytes()
    finally:
        process.terminate()
        process.wait(timeout=15)
