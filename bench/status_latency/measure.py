"""Rounds of timed calls against a fresh daphne each: health, status 24 h and 720 h (warm), and the cold
calls that recompute the anomaly findings, kept apart by a model of the server's anomaly cache."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.lib.http import KeepAliveClient
from bench.lib.processes import Service, as_set, cpu_plan, free_port, pinned_to, server_command, wait_for_health
from bench.lib.reports import median, percentiles
from bench.lib.runtime import log

from .config import (
    ANOMALY_CACHE_SECONDS,
    CACHE_SAFETY,
    HEALTH_PATH,
    LONG_SCENARIO,
    PROCESS_WARMUP_PATH,
    SCENARIOS,
    STATUS_PATH,
    WARMUP_CALLS,
    status_env,
)


@contextmanager
def daphne_server(url: str, cpu: int | None, log_path: Path) -> Iterator[int]:
    """A fresh server as production starts it (``python -m conflict_monitor.serve``); yields its port."""
    port = free_port()
    daphne = Service("daphne", server_command(port), env=status_env(url), cpus=as_set(cpu), log_path=log_path)
    try:
        wait_for_health(daphne, port, HEALTH_PATH)
        yield port
    finally:
        daphne.stop(15)


class Client(KeepAliveClient):
    """One keep-alive connection for GETs."""

    def get(self, path: str) -> tuple[float, int, bytes]:
        elapsed_ms, response, body = self.request("GET", path)
        return elapsed_ms, response.status, body


def check_response(name: str, path: str, status: int, body: bytes) -> dict[str, Any] | None:
    """Shape of a status response (None for the others); raises on anything unexpected."""
    if status != 200:
        raise RuntimeError(f"{path} answered {status}: {body[:500]!r}")
    document = json.loads(body)
    if name == "health":
        if document != {"status": "ok"}:
            raise RuntimeError(f"unexpected health body {document!r}")
        return None
    if not name.startswith("status"):
        return None
    reports = document["data_quality"]["reports"]
    if not reports > 0:
        raise RuntimeError(f"{path} aggregated no reports; the fill is not in the window")
    return {
        "reports": reports,
        "bytes": len(body),
        "anomalies": len(document["anomalies"]),
        "alerts": len(document["alerts"]),
        "scrape_sources": len(document["scraping_health"]["sources"]),
        "overall_status": document["overall_status"],
    }


def summarize(samples: list[float]) -> dict[str, float]:
    return percentiles(samples, ("p50", "p90", "p99", "max", "mean"))


def _hour_of(epoch: float) -> float:
    return epoch - epoch % 3600


class AnomalyCache:
    """The client's model of the server's anomaly cache, so that no warm call straddles a recompute.

    The server keys the findings by the UTC hour of the request and keeps them ANOMALY_CACHE_SECONDS
    from the moment it stored them, i.e. from some instant inside the call that computed them. A call
    is warm when it ends before the earliest possible expiry and in the same UTC hour; otherwise the
    client waits until the entry has certainly expired (or the hour has certainly turned) and makes a
    cold call on purpose, which is timed on its own.
    """

    def __init__(self) -> None:
        self.filled: tuple[float, float] | None = None  # wall clock start and end of the filling call

    def cold_call_due(self, guard: float) -> tuple[str, float] | None:
        """(reason, seconds to wait first) when the next call, lasting up to ``guard`` s, would not be warm."""
        now = time.time()
        if self.filled is None:
            return "first status call after start", 0.0
        start, end = self.filled
        if _hour_of(start) != _hour_of(end):
            return "new UTC hour", max(0.0, _hour_of(end) + CACHE_SAFETY - now)
        if now + guard >= start + ANOMALY_CACHE_SECONDS:
            return "cache entry expired", max(0.0, end + ANOMALY_CACHE_SECONDS + CACHE_SAFETY - now)
        if _hour_of(now + guard) != _hour_of(end):
            return "new UTC hour", max(0.0, _hour_of(now + guard) + CACHE_SAFETY - now)
        return None


class Round:
    """One daphne process: warm it up, then health, status 24 h and 720 h, each warm-up + timed calls."""

    def __init__(self, client: Client, number: int) -> None:
        self.client = client
        self.number = number
        self.cache = AnomalyCache()
        self.cold: list[dict[str, Any]] = []
        self.recent: dict[str, list[float]] = {}

    def _guard(self, path: str) -> float:
        recent = self.recent.get(path)
        return max(0.5, 2 * max(recent[-10:]) / 1000) if recent else 5.0

    def call(self, name: str, path: str) -> tuple[float, dict[str, Any] | None]:
        if name.startswith("status"):
            due = self.cache.cold_call_due(self._guard(path))
            if due is not None:
                self.cold_call(*due)
        elapsed, status, body = self.client.get(path)
        self.recent.setdefault(path, []).append(elapsed)
        return elapsed, check_response(name, path, status, body)

    def cold_call(self, reason: str, wait: float) -> None:
        """A status call (24 h window) that recomputes the anomaly findings; timed separately."""
        if wait:
            log(f"round {self.number}: waiting {wait:.1f} s for a cold anomaly cache ({reason})")
            time.sleep(wait)
        started = time.time()
        elapsed, status, body = self.client.get(STATUS_PATH)
        self.cache.filled = (started, time.time())
        shape = check_response("status_24h", STATUS_PATH, status, body)
        self.cold.append({"round": self.number, "reason": reason, "ms": round(elapsed, 3), **(shape or {})})
        log(f"round {self.number}: cold status_24h call ({reason}) {elapsed:.1f} ms")

    def steady_until_cold(self, pace: float = 0.25) -> None:
        """Warm status calls every ``pace`` s (a few dashboards polling) until the cache entry expires,
        then the cold call: the recompute in a busy process, as in production, not after idling."""
        log(f"round {self.number}: polling status every {pace} s until the anomaly cache entry expires")
        while (due := self.cache.cold_call_due(self._guard(STATUS_PATH) + pace)) is None:
            self.call("status_24h", STATUS_PATH)
            time.sleep(pace)
        self.cold_call(*due)

    def scenario(self, name: str, path: str, calls: int) -> tuple[dict[str, float], dict[str, Any] | None]:
        for _ in range(min(WARMUP_CALLS, calls)):
            self.call(name, path)
        samples, shape = [], None
        for _ in range(calls):
            # The response is checked after the clock stopped: parsing is the client's cost.
            elapsed, shape = self.call(name, path)
            samples.append(elapsed)
        return summarize(samples), shape


def warm_process(client: Client) -> None:
    """Import paths, DRF, the ORM and the database pool, without touching the anomaly cache."""
    for path in (HEALTH_PATH, PROCESS_WARMUP_PATH):
        for _ in range(WARMUP_CALLS):
            _elapsed, status, body = client.get(path)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}: {body[:500]!r}")


def measure(
    url: str, *, calls: int, long_calls: int, rounds: int, expiry_cold_calls: int, log_path: Path
) -> dict[str, Any]:
    server_cpu, client_cpu = cpu_plan()
    scenarios: dict[str, Any] = {name: {"path": path, "rounds": []} for name, path in SCENARIOS}
    cold: list[dict[str, Any]] = []
    requests = reconnects = 0
    log_path.write_bytes(b"")
    for number in range(1, rounds + 1):
        with daphne_server(url, server_cpu, log_path) as port, pinned_to(client_cpu):
            client = Client(port)
            try:
                warm_process(client)
                current = Round(client, number)
                for name, path in SCENARIOS:
                    stats, shape = current.scenario(name, path, long_calls if name == LONG_SCENARIO else calls)
                    scenarios[name]["rounds"].append(stats)
                    if shape:
                        scenarios[name].update(shape)
                    log(f"round {number} {name}: p50 {stats['p50']:.2f} ms, p99 {stats['p99']:.2f} ms (warm)")
                for _ in range(expiry_cold_calls if number == rounds else 0):
                    current.steady_until_cold()
                cold += current.cold
            finally:
                client.close()
                requests += client.requests
                reconnects += client.reconnects
    for entry in scenarios.values():
        for key in ("p50", "p90", "p99", "max"):
            entry[f"median_of_round_{key}"] = round(statistics.median(r[key] for r in entry["rounds"]), 3)
    cold_ms = [c["ms"] for c in cold]
    warm_24h = scenarios["status_24h"]["median_of_round_p50"]
    return {
        "scenarios": scenarios,
        "cold": {
            "calls": cold,
            "count": len(cold),
            "median_ms": round(statistics.median(cold_ms), 3),
            "min_ms": round(min(cold_ms), 3),
            "max_ms": round(max(cold_ms), 3),
            "first_after_start_median_ms": round(
                statistics.median(c["ms"] for c in cold if c["reason"].startswith("first")), 3
            ),
            "later_median_ms": median([c["ms"] for c in cold if not c["reason"].startswith("first")]),
            "extra_over_warm_24h_p50_ms": round(statistics.median(cold_ms) - warm_24h, 3),
        },
        "requests": requests,
        "reconnects": reconnects,
        "pinning": {"server_cpu": server_cpu, "client_cpu": client_cpu},
    }
