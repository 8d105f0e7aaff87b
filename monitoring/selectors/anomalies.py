"""The anomaly findings the status document shows, judged off the caller's path.

Judging costs far more than a tick can give (``bench/results/anomaly_tick.md``, 100 sources): building
the per-source detectors from 14 days of history takes seconds, feeding them the hour that just closed
tens of milliseconds, one judgement of the current hour about ten. The broadcaster builds a status every
few seconds and a REST request must answer at once, so with ``MONITORING_ANOMALY_BACKGROUND`` on (the
default) neither waits: the latest judgement is read from the cache, and when it is older than
``MONITORING_ANOMALY_CACHE_SECONDS`` or from an earlier hour, one thread of this process judges again
while callers keep reading the previous judgement (a judgement is at most one refresh old, and says
which hour it judged). Until the first judgement exists, every source's detector is ``starting``.
One process judges at a time (a lock in the shared cache); the others read its result.

Which processes judge: the one that runs the broadcaster (its thread; in the embedded default that is
the server itself), and a command that prints the status (in the caller: it exits right after). A
server of a deployment with Redis only reads what the broadcaster judged, so judging never competes
with the sockets it serves. Off (the test settings), every caller judges when the shared judgement is
stale, as before.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from monitoring.anomaly.series import live_anomalies
from monitoring.windows import floor_hour

logger = logging.getLogger(__name__)

# "v3": one entry for the latest judgement with the moment it was made (v2 was per hour, findings only).
KEY = "anomalies:v3:latest"
LOCK_KEY = "anomalies:v3:judging"
# A judgement older than this is not shown at all (judging has been failing): "starting" instead.
MAX_STALE = timedelta(minutes=10)
# A judging process that died frees the lock after this long.
LOCK_SECONDS = 600

# Roles: judge in the caller, judge in this process's thread, or only read what another process judged.
CALLER, THREAD, READER = "caller", "thread", "reader"

_worker: threading.Thread | None = None
_worker_lock = threading.Lock()
_role: str | None = None


def judge_in_this_process(role: str) -> None:
    """Set at start-up by a process that judges: the broadcaster (``THREAD``) or a command (``CALLER``)."""
    global _role
    if role not in (CALLER, THREAD, READER):
        raise ValueError(f"unknown judging role {role!r}")
    _role = role


def judging_role() -> str:
    if not settings.MONITORING_ANOMALY_BACKGROUND:
        return CALLER
    if _role is not None:
        return _role
    # Without Redis the broadcaster runs in this very process; with it, the broadcaster's process judges.
    return READER if settings.REDIS_URL else THREAD


def current_anomalies(*, now: datetime) -> dict[str, Any]:
    """The findings (last closed hour and the current one so far) and each source's readiness.

    ``readiness`` maps each source the judgement knows to ``state``, ``hours_seen``, ``hours_needed``; a
    source it does not know yet gets :func:`not_judged_yet` from the caller.
    """
    role = judging_role()
    if role == CALLER:
        return _judged_here(now=now)
    entry = _read()
    if role == THREAD and (entry is None or not _fresh(entry, now=now)):
        _judge_in_background(now=now)
    if entry is None or now - datetime.fromisoformat(entry["judged_at"]) > MAX_STALE:
        return {"findings": [], "readiness": {}, "starting": True}
    return entry["document"]


def _fresh(entry: dict[str, Any], *, now: datetime) -> bool:
    judged_at = datetime.fromisoformat(entry["judged_at"])
    same_hour = floor_hour(judged_at) == floor_hour(now)
    return same_hour and now - judged_at < timedelta(seconds=settings.MONITORING_ANOMALY_CACHE_SECONDS)


def _read() -> dict[str, Any] | None:
    # The cache only saves work: unreachable (Redis down), judging happens each time in the caller.
    try:
        return cache.get(KEY)
    except Exception:
        logger.warning("anomaly cache unavailable", exc_info=True)
        return None


def _store(*, now: datetime, document: dict[str, Any]) -> None:
    try:
        cache.set(KEY, {"judged_at": now.isoformat(), "document": document}, timeout=int(MAX_STALE.total_seconds()))
    except Exception:
        logger.warning("anomaly cache unavailable; judgement not kept", exc_info=True)


def _judged_here(*, now: datetime) -> dict[str, Any]:
    entry = _read()
    if entry is not None and _fresh(entry, now=now):
        return entry["document"]
    document = live_anomalies(now=now)
    _store(now=now, document=document)
    return document


def _judge_in_background(*, now: datetime) -> None:
    global _worker
    with _worker_lock:
        if _worker is not None and _worker.is_alive():
            return
        try:
            if not cache.add(LOCK_KEY, now.isoformat(), timeout=LOCK_SECONDS):
                return  # another process is judging; its result arrives through the cache
        except Exception:
            logger.warning("anomaly cache unavailable; judging without the lock", exc_info=True)
        # A judgement may have been stored since the caller read the cache (the thread that made it has
        # just ended): judging the same moment again would only cost a second judgement.
        entry = _read()
        if entry is not None and _fresh(entry, now=now):
            _unlock()
            return
        _worker = threading.Thread(target=_judge, kwargs={"now": now}, name="anomaly-judge", daemon=True)
        _worker.start()


def _judge(*, now: datetime) -> None:
    try:
        _store(now=now, document=live_anomalies(now=now))
    except Exception:
        logger.exception("judging the anomalies failed; the previous judgement stays shown for now")
    finally:
        _unlock()
        # This thread's own database connection: nothing else would ever close it.
        connection.close()


def _unlock() -> None:
    try:
        cache.delete(LOCK_KEY)
    except Exception:
        logger.warning("anomaly cache unavailable; the judging lock expires by itself", exc_info=True)


def wait_for_judgement(timeout: float | None = None) -> bool:
    """Wait for this process's background judgement, if one runs (tests, benches); True when none is left."""
    worker = _worker
    if worker is not None:
        worker.join(timeout)
        return not worker.is_alive()
    return True
