"""The instruments: the simulated clock, the timed tick, the judgements counted and timed.

A tick is ``pipeline_status(now=...)`` in this (the main) thread, as the broadcaster's worker thread runs
it. Its CPU is this thread's own (``time.thread_time``): while the background judgement runs, the
process's CPU clock would count the judging thread's work into the tick. The judgements
(``live_anomalies``) are wrapped where ``monitoring.selectors.anomalies`` calls them, so every one the
selector starts, in any thread, is counted with its wall and its thread's CPU.
"""

from __future__ import annotations

import cProfile
import pstats
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from bench.lib.runtime import ROOT
from monitoring.anomaly import series
from monitoring.selectors import anomalies, status
from monitoring.windows import floor_hour

from .fill import Source, write_between

# Every source's readiness before the first judgement of a process (current_anomalies' answer then).
STARTING = {"findings": [], "readiness": {}, "starting": True}


class Clock:
    """The simulated present; moving it forward writes what the pipeline delivered meanwhile."""

    def __init__(self, sources: list[Source], *, now: datetime, seed: int) -> None:
        self.sources, self.now, self.seed = sources, now, seed
        self.written = {"metrics": 0, "runs": 0, "statements": 0}

    def advance(self, to: datetime) -> None:
        written = write_between(self.sources, start=self.now, end=to, seed=self.seed)
        self.written = {key: self.written[key] + written[key] for key in self.written}
        self.now = to


@dataclass
class Judgement:
    """One ``live_anomalies`` call the selector made: where, for which moment, how long, how much CPU."""

    thread: str
    now: datetime
    wall_ms: float = 0.0
    cpu_ms: float = 0.0


class Judgements:
    """``live_anomalies`` as the selector calls it, each call recorded (the thread's CPU clock is its own)."""

    def __init__(self) -> None:
        self.calls: list[Judgement] = []

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        call = Judgement(thread=threading.current_thread().name, now=kwargs["now"])
        self.calls.append(call)
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return series.live_anomalies(**kwargs)
        finally:
            call.wall_ms = (time.perf_counter() - wall) * 1000
            call.cpu_ms = (time.thread_time() - cpu) * 1000


class Answers:
    """``current_anomalies`` as the status calls it, its answer kept: what a tick was given is checkable."""

    NONE = object()

    def __init__(self) -> None:
        self.last: Any = self.NONE

    def __call__(self, *, now: datetime) -> dict[str, Any]:
        self.last = anomalies.current_anomalies(now=now)
        return self.last


class Statements:
    """The calling thread's SQL: statements and the time spent executing them (a Django execute wrapper)."""

    def __init__(self) -> None:
        self.count, self.seconds = 0, 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += time.perf_counter() - started


def _no_anomalies(*, now: datetime) -> dict[str, Any]:
    return {"findings": [], "readiness": {}}


@dataclass
class Tick:
    figures: dict[str, float]  # "" wall ms, "cpu_" thread CPU ms, "sql_" SQL ms, "statements_" count
    answer: Any  # what current_anomalies returned (Answers.NONE without detection)
    document: dict[str, Any]
    worker: threading.Thread | None  # the selector's judging thread after the tick


class Instruments:
    """Installs the wrappers for the whole run and times single ticks and direct judgements."""

    def __init__(self) -> None:
        self.judgements, self.answers = Judgements(), Answers()

    @contextmanager
    def installed(self) -> Iterator[None]:
        with (
            mock.patch.object(anomalies, "live_anomalies", self.judgements),
            mock.patch.object(status, "current_anomalies", self.answers),
        ):
            yield

    def tick(self, now: datetime, *, detection: bool) -> Tick:
        """One ``pipeline_status()``; without detection ``current_anomalies`` answers nothing at once."""
        replaced = mock.patch.object(status, "current_anomalies", _no_anomalies) if not detection else None
        statements = Statements()
        self.answers.last = Answers.NONE
        if replaced:
            replaced.start()
        try:
            with connection.execute_wrapper(statements):
                wall, cpu = time.perf_counter(), time.thread_time()
                document = status.pipeline_status(now=now)
                wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        finally:
            if replaced:
                replaced.stop()
        answer = self.answers.last
        if detection and (answer is Answers.NONE or document["anomalies"] != answer["findings"]):
            raise RuntimeError("a tick with detection did not show what current_anomalies answered")
        if not detection:
            states = {row["anomaly_detection"]["hours_seen"] for row in document["data_quality"]["by_source"]}
            if answer is not Answers.NONE or states - {0}:
                raise RuntimeError("a tick without detection still asked the detectors")
        figures = {"": wall * 1000, "cpu_": cpu * 1000, "sql_": statements.seconds * 1000}
        return Tick(figures | {"statements_": statements.count}, answer, document, anomalies._worker)

    @staticmethod
    def judge(now: datetime) -> dict[str, float]:
        """``live_anomalies`` called directly in this thread (the synchronous path), nothing else running:
        wall, process CPU, SQL, and the part spent reading the hourly sums (``window_sums``: the query and
        building its rows), so the rest is the detectors' own work."""
        if not anomalies.wait_for_judgement(timeout=600):
            raise RuntimeError("a background judgement is still running: the direct one would share the CPU")
        reading = {"wall": 0.0, "cpu": 0.0}
        window_sums = series.window_sums

        def timed_window_sums(**kwargs: Any) -> list[dict[str, Any]]:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return window_sums(**kwargs)
            finally:
                reading["wall"] += time.perf_counter() - wall
                reading["cpu"] += time.process_time() - cpu

        statements = Statements()
        with mock.patch.object(series, "window_sums", timed_window_sums), connection.execute_wrapper(statements):
            wall, cpu = time.perf_counter(), time.process_time()
            series.live_anomalies(now=now)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return {
            "wall": wall * 1000,
            "cpu": cpu * 1000,
            "sql": statements.seconds * 1000,
            "statements": statements.count,
            "read_wall": reading["wall"] * 1000,
            "read_cpu": reading["cpu"] * 1000,
        }

    @staticmethod
    def profile(now: datetime, *, top: int = 12) -> dict[str, Any]:
        """One more rebuild under cProfile (untimed: the profiler slows it down): its own time by module and
        the functions with the most, as shares of the profiled total, so the proportions say where a
        rebuild's CPU goes."""
        settle()
        series.reset_detectors()
        profiler = cProfile.Profile()
        profiler.runcall(series.live_anomalies, now=now)
        rows = pstats.Stats(profiler).stats  # (file, line, name) -> (primitive calls, calls, own s, cumulative s, ...)
        total = sum(row[2] for row in rows.values()) or 1.0
        modules: dict[str, float] = {}
        for (file, _line, _name), row in rows.items():
            modules[_module(file)] = modules.get(_module(file), 0.0) + row[2]
        functions = sorted(rows.items(), key=lambda item: item[1][2], reverse=True)[:top]
        return {
            "profiled_ms": round(total * 1000, 1),
            "modules": [
                {"module": name, "share": round(own / total, 3)}
                for name, own in sorted(modules.items(), key=lambda item: item[1], reverse=True)[:top]
            ],
            "functions": [
                {"function": f"{_module(file)}:{line} {name}", "calls": row[1], "share": round(row[2] / total, 3)}
                for (file, line, name), row in functions
            ],
        }


def _module(file: str) -> str:
    """A profiled file as a short name: the project's path, a package's from its name on, the standard
    library's as "stdlib/...", builtins (C functions) as "~"."""
    # Packages first: the project's virtualenv may lie inside the project.
    if "/site-packages/" in file:
        return file.split("/site-packages/", 1)[1]
    if file.startswith(f"{ROOT}/"):
        return file[len(f"{ROOT}/") :]
    if "/lib/python3" in file:
        return "stdlib/" + file.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return file


# -- the shared judgement, as the selector keeps it ---------------------------------------------------


def entry() -> dict[str, Any] | None:
    value = cache.get(anomalies.KEY)
    if value is not None and not {"judged_at", "document"} <= set(value):
        raise RuntimeError(f"{anomalies.KEY!r} holds {sorted(value)}: has the selector's entry changed?")
    return value


def fresh(now: datetime) -> bool:
    """The documented rule: a judgement is fresh within its hour for MONITORING_ANOMALY_CACHE_SECONDS."""
    value = entry()
    if value is None:
        return False
    judged_at = datetime.fromisoformat(value["judged_at"])
    keep = timedelta(seconds=settings.MONITORING_ANOMALY_CACHE_SECONDS)
    return floor_hour(judged_at) == floor_hour(now) and now - judged_at < keep


def judge_now(now: datetime) -> dict[str, Any]:
    """A fresh judgement at ``now`` (untimed): the selector's own thread, waited for."""
    anomalies.current_anomalies(now=now)
    settle()
    value = entry()
    if value is None or value["judged_at"] != now.isoformat():
        raise RuntimeError(f"no judgement stored for {now.isoformat()}")
    return value


def age(now: datetime) -> dict[str, Any]:
    """The fresh judgement made to look one second past MONITORING_ANOMALY_CACHE_SECONDS (same hour)."""
    value = judge_now(now) if not fresh(now) else entry()
    old = now - timedelta(seconds=settings.MONITORING_ANOMALY_CACHE_SECONDS + 1)
    if floor_hour(old) != floor_hour(now):
        raise RuntimeError("an aged judgement must stay in the hour it judged")
    aged = {**value, "judged_at": old.isoformat()}
    cache.set(anomalies.KEY, aged, timeout=int(anomalies.MAX_STALE.total_seconds()))
    return aged


def forget() -> None:
    """A new process: no fed detectors, no judgement shared yet."""
    settle()
    series.reset_detectors()
    cache.delete(anomalies.KEY)


def settle() -> None:
    """No judgement running and the judging lock free (the next tick decides alone whether to judge)."""
    if not anomalies.wait_for_judgement(timeout=600):
        raise RuntimeError("a background judgement ran for over 10 minutes")
    if cache.get(anomalies.LOCK_KEY) is not None:
        raise RuntimeError("the judging lock is still held after the judgement ended")


def pool() -> tuple[dict[str, Any], datetime | None]:
    return series._pool.detectors, series._pool.last_closed


def counted(judgements: Judgements, since: int, *, now: datetime, expected: int, case: str) -> None:
    made = judgements.calls[since:]
    if len(made) != expected or any(call.now != now for call in made):
        raise RuntimeError(f"{case}: {len(made)} judgements started, expected {expected} at {now.isoformat()}")
    if any(call.thread != "anomaly-judge" for call in made):
        raise RuntimeError(f"{case}: a judgement ran in the caller's thread, not in the background")
