"""The launcher: it refuses to start, before installing anything, when an installed package lacks a
member an override relies on or the member changed shape, naming the member and the installed
version; it settles the heap once the server runs; daphne's own arguments still work."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Run by the launcher's interpreter before the launcher (a ``sitecustomize`` on PYTHONPATH), after the
# change to upstream: says at exit whether anything had been installed.
REPORT_AT_EXIT = r"""
import atexit, sys


def report():
    http = sys.modules.get("daphne.http_protocol")
    ws = sys.modules.get("daphne.ws_protocol")
    print("reactor installed:", "twisted.internet.reactor" in sys.modules)
    print("request replaced:", http is not None and http.WebRequest.__module__ != http.__name__)
    print("protocol replaced:", ws is not None and ws.WebSocketFactory.protocol.__module__ != ws.__name__)


atexit.register(report)
"""

# Twisted 24.11's request, as far as the launcher's request is concerned: no parsePOSTFormSubmission.
TWISTED_24_11_REQUEST = """
from twisted.web import http

_original = http.Request.__init__


def __init__(self, channel, queued=None):
    _original(self, channel)


http.Request.__init__ = __init__
"""


def run_launcher(tmp_path: Path, change: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "sitecustomize.py").write_text(change + REPORT_AT_EXIT)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    argv = [sys.executable, "-m", "conflict_monitor.serve", *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("change", "member", "distribution", "problem"),
    [
        (
            "from twisted.internet.asyncioreactor import AsyncioSelectorReactor\n"
            "del AsyncioSelectorReactor._readOrWrite\n",
            "twisted.internet.asyncioreactor.AsyncioSelectorReactor._readOrWrite",
            "Twisted",
            "missing",
        ),
        (
            TWISTED_24_11_REQUEST,
            "twisted.web.http.Request.__init__",
            "Twisted",
            "has parameters (channel, queued), expected (channel, queued, parsePOSTFormSubmission)",
        ),
        (
            "from channels_redis.pubsub import RedisSingleShardConnection\n"
            "del RedisSingleShardConnection._receive_message\n",
            "channels_redis.pubsub.RedisSingleShardConnection._receive_message",
            "channels-redis",
            "missing",
        ),
        (
            "from psycopg_pool.base import AttemptWithBackoff\ndel AttemptWithBackoff.DELAY_BACKOFF\n",
            "psycopg_pool.base.AttemptWithBackoff.DELAY_BACKOFF",
            "psycopg-pool",
            "missing",
        ),
    ],
    ids=["reactor-method-gone", "twisted-24.11-request", "channels-redis-method-gone", "psycopg-pool-attribute-gone"],
)
def test_the_launcher_refuses_to_start_naming_the_member_and_the_installed_version(
    tmp_path, change, member, distribution, problem
):
    result = run_launcher(tmp_path, change, "-b", "127.0.0.1", "-p", "9", "conflict_monitor.asgi:application")
    assert result.returncode != 0
    assert member in result.stderr, result.stderr
    assert problem in result.stderr, result.stderr
    installed = version(distribution)
    assert f"{distribution} {installed} installed" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    # Refused before anything was installed.
    assert result.stdout.splitlines() == [
        "reactor installed: False",
        "request replaced: False",
        "protocol replaced: False",
    ], result.stdout


def test_daphnes_help_still_works_through_the_launcher(tmp_path):
    result = run_launcher(tmp_path, "", "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout and "--proxy-headers" in result.stdout
    assert result.stdout.splitlines()[-3:] == [
        "reactor installed: True",
        "request replaced: True",
        "protocol replaced: True",
    ]


def test_the_launcher_settles_the_heap_once_the_server_runs():
    """Startup's objects are frozen out of later full collections and young collections are rarer:
    the full-collection pauses that walked every socket's objects no longer hit a busy server."""
    probe = (
        "import gc; from conflict_monitor import serve; serve.settle_heap(); "
        "print(gc.get_freeze_count() > 0, gc.get_threshold() == serve.GC_THRESHOLDS)"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", "True"], out.stderr
