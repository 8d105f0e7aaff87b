"""Real processes for multi-process tests: daphne servers and broadcasters sharing Redis and PostgreSQL.

The processes are ``bench.lib.processes.Service`` (the benchmarks' own: a log per process, SIGTERM then
SIGKILL); ``ROOT`` and ``free_port`` are the bench library's, importable from here as before."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bench.lib.processes import BROADCASTER_COMMAND, Service, answers, cleanup_redis, free_port, server_command
from bench.lib.runtime import ROOT

__all__ = ["ROOT", "Cluster", "free_port", "running_cluster"]


@dataclass
class Cluster:
    env: dict[str, str]
    logs: Path
    # Service has the Popen calls the tests use: poll(), send_signal(), pid.
    servers: dict[str, tuple[Service, int]] = field(default_factory=dict)
    broadcasters: list[Service] = field(default_factory=list)
    broadcaster_metric_ports: list[int] = field(default_factory=list)

    @classmethod
    def create(cls, *, database_url: str, redis_url: str, logs: Path, **overrides: str) -> Cluster:
        env = {
            # The developer's own limits and monitoring settings stay out: a test sets what it relies on.
            **{k: v for k, v in os.environ.items() if not k.startswith(("MONITORING_", "WEBSOCKET_", "API_THROTTLE_"))},
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CHANNEL_LAYER_PREFIX": f"it-{uuid.uuid4().hex[:10]}",
            "SECRET_KEY": "integration-tests-only",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "MONITORING_PUBLIC_READ": "1",
            "DATABASE_POOL_MAX_SIZE": "4",
            "DJANGO_SETTINGS_MODULE": "conflict_monitor.settings",
            **overrides,
        }
        return cls(env=env, logs=logs)

    @property
    def prefix(self) -> str:
        return self.env["CHANNEL_LAYER_PREFIX"]

    def _spawn(self, name: str, argv: list[str], **env: str) -> Service:
        return Service(name, argv, env={**self.env, **env}, log_path=self.logs / f"{name}.log")

    def start_server(self, name: str, *, port: int | None = None) -> int:
        """Start daphne ``name`` on ``port`` (a free one by default; pass the old port to restart in place)."""
        port = port or free_port()
        self.servers[name] = (self._spawn(name, server_command(port)), port)
        return port

    def stop_server(self, name: str, *, sig: signal.Signals = signal.SIGTERM) -> int:
        """Stop daphne ``name`` with ``sig`` (SIGKILL after 10 s); returns its port for a restart."""
        process, port = self.servers.pop(name)
        process.stop(10, sig=sig)
        return port

    def start_broadcaster(self, **env: str) -> Service:
        """A broadcaster with its own metrics port (``broadcaster_metric`` reads it); ``env`` adds to the
        cluster's environment for this process only (e.g. a webhook URL only the broadcaster has)."""
        port = free_port()
        process = self._spawn(
            f"broadcaster-{len(self.broadcasters)}",
            BROADCASTER_COMMAND,
            **{**env, "MONITORING_BROADCASTER_METRICS_PORT": str(port)},
        )
        self.broadcasters.append(process)
        self.broadcaster_metric_ports.append(port)
        return process

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for name, (process, port) in self.servers.items():
            while True:
                assert process.poll() is None, f"{name} exited:\n{self.log_tail(name)}"
                if answers(port):
                    break
                assert time.monotonic() < deadline, f"{name} never became healthy:\n{self.log_tail(name)}"
                time.sleep(0.2)

    def port(self, name: str) -> int:
        return self.servers[name][1]

    def pipeline_status(self, name: str) -> tuple[int, dict]:
        """Server ``name``'s ``GET /pipeline-status``: the HTTP status and the JSON body, errors included."""
        url = f"http://127.0.0.1:{self.port(name)}/api/v1/monitoring/pipeline-status"
        try:
            with urllib.request.urlopen(url, timeout=20) as response:  # noqa: S310 (http://127.0.0.1 only)
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def rss_mb(self, name: str) -> float:
        """Server ``name``'s resident memory, from /proc."""
        process, _ = self.servers[name]
        return process.rss_bytes() / 2**20

    def metric(self, name: str, sample: str, **labels: str) -> float:
        """One sample of server ``name``'s ``GET /metrics`` (0 when the series is absent)."""
        return sum(found.value for found in self._samples(name, sample) if found.labels == labels)

    def metric_total(self, name: str, sample: str, **labels: str) -> float:
        """The sum of every series of ``sample`` whose labels include ``labels`` (0 when there is none)."""
        return sum(found.value for found in self._samples(name, sample) if labels.items() <= found.labels.items())

    def broadcaster_metric(self, index: int, sample: str, **labels: str) -> float:
        """One sample of broadcaster ``index``'s own ``/metrics`` (0 when the series is absent)."""
        url = f"http://127.0.0.1:{self.broadcaster_metric_ports[index]}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (http://127.0.0.1 only)
            text = response.read().decode()
        return sum(
            found.value
            for family in text_string_to_metric_families(text)
            for found in family.samples
            if found.name == sample and found.labels == labels
        )

    def _samples(self, name: str, sample: str) -> list:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port(name)}/metrics")
        if token := self.env.get("MONITORING_METRICS_TOKEN"):
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (http://127.0.0.1 only)
            text = response.read().decode()
        return [
            found for family in text_string_to_metric_families(text) for found in family.samples if found.name == sample
        ]

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        processes = [p for p, _ in self.servers.values()] + self.broadcasters
        for process in processes:  # all at once, then wait for each
            process.signal_if_running(signal.SIGTERM)
        for process in processes:
            process.wait_stopped(10)


@contextmanager
def running_cluster(
    *,
    logs: Path,
    servers: tuple[str, ...],
    broadcasters: int,
    **overrides: str,
) -> Iterator[Cluster]:
    """Servers and broadcasters on the test database and the local Redis; stopped and cleaned up after."""
    from django.db import connection

    db = connection.settings_dict
    redis_url = os.environ.get("REDIS_URL")
    assert redis_url, "set REDIS_URL to a Redis server (make test does)"
    cluster = Cluster.create(
        database_url=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        redis_url=redis_url,
        logs=logs,
        **overrides,
    )
    try:
        for name in servers:
            cluster.start_server(name)
        for _ in range(broadcasters):
            cluster.start_broadcaster()
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.stop()
        cleanup_redis(redis_url, cluster.prefix)
