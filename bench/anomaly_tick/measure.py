"""The timeline and its cases: what a tick pays with judging in the background, and what judging costs.

A simulated clock replaces the wall clock (``pipeline_status(now=...)``, the one place the status reads
``now``); moving it writes the reports and runs that arrived meanwhile, so every tick sees the data a
live pipeline would have delivered by then. ``MONITORING_ANOMALY_BACKGROUND`` is on (the production
default): a tick reads the latest judgement and, when it is stale, starts the ``anomaly-judge`` thread.

1. the fill ends at the process start P0 (20 minutes into an hour);
2. **first tick**, ``--firsts`` times, each after forgetting the fed detectors and the shared judgement:
   the tick must answer ``starting`` at once and leave the rebuild to the thread; then ticks back to back
   while it rebuilds (**during the rebuild**), then the same ticks with nothing running; then the same
   rebuild called directly, timed alone (**judging: rebuild**); once more under cProfile, untimed;
3. ``--lived-hours`` untimed: a look at the current hour every 3 minutes and every hour turn, so the
   detectors have learnt their arrival curves as a long-running process has;
4. within the hour, 5 s apart: ``--ticks`` pairs with a **fresh judgement**; then ``--ticks`` times the
   judgement aged past ``MONITORING_ANOMALY_CACHE_SECONDS``: the tick that notices (**refresh**), the ticks
   during that judgement, the same ticks with nothing running, and the judgement timed alone;
5. ``2 x --turns`` hour turns, the hour lived up to 3 minutes before its end and judged then: on every
   other turn the tick 2 s into the new hour (**hour turn**: starts the thread, answers the previous
   judgement), the ticks during the feed, the same ticks with nothing running; on the others the feed
   called directly, timed alone (**judging: hour turn**).

"With" and "without" detection: ``current_anomalies`` as it is, or replaced by an empty answer (the
status without the anomaly part, no thread). Single ticks are paired at the same ``now`` (which goes
first alternates; a "without" tick never runs beside a judgement). Every tick and judgement is checked
to be what its case claims; otherwise the bench stops.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection

from bench.lib.runtime import log
from monitoring.anomaly import series
from monitoring.selectors import anomalies
from monitoring.windows import HOUR, floor_hour

from .fill import fill, make_sources
from .summary import summarize
from .ticks import STARTING, Clock, Instruments, Tick, age, counted, entry, forget, fresh, judge_now, pool, settle

TICK_CASES = (
    "fresh",
    "refresh_notice",
    "during_refresh",
    "hour_turn_notice",
    "during_hour_turn",
    "first_tick",
    "during_rebuild",
)
DURING = {"refresh_notice": "during_refresh", "hour_turn_notice": "during_hour_turn", "first_tick": "during_rebuild"}
JUDGING = ("within_hour", "hour_turn", "rebuild")
START_INTO_HOUR = timedelta(minutes=20)
LOOK_EVERY = timedelta(minutes=3)
TICK_EVERY = timedelta(seconds=5)
TURN_OFFSET = timedelta(seconds=2)


@dataclass(frozen=True)
class Plan:
    sources: int = 100
    days: int = 15
    ticks: int = 30
    turns: int = 10
    firsts: int = 5
    lived_hours: int = 26
    seed: int = 20260518


class Timeline:
    def __init__(self, plan: Plan, clock: Clock) -> None:
        self.plan, self.clock = plan, clock
        self.tools = Instruments()
        self.ticks: dict[str, dict[str, list[float]]] = {case: {} for case in TICK_CASES}
        self.direct: dict[str, list[dict[str, float]]] = {kind: [] for kind in JUDGING}
        self.background: dict[str, list[dict[str, float]]] = {kind: [] for kind in JUDGING}
        self.profile: dict[str, Any] = {}
        self.findings: dict[str, int] = {}
        self.ready: dict[str, int] = {}

    def tick(self, case: str, side: str, *, detection: bool) -> Tick:
        tick = self.tools.tick(self.clock.now, detection=detection)
        for prefix, value in tick.figures.items():
            self.ticks[case].setdefault(prefix + side, []).append(value)
        if detection:
            self.findings[case] = len(tick.document["anomalies"])
            states = [row["anomaly_detection"]["state"] for row in tick.document["data_quality"]["by_source"]]
            self.ready[case] = states.count("ready")
        return tick

    def paired(self, case: str) -> None:
        on, off = self.ticks[case]["on"][-1], self.ticks[case]["off"][-1]
        self.ticks[case].setdefault("paired", []).append(on - off)

    def look(self, until: datetime) -> None:
        """Live (untimed) up to ``until``: a look at the current hour every 3 minutes, each hour turn fed."""
        while self.clock.now < until:
            self.clock.advance(min(self.clock.now + LOOK_EVERY, until))
            series.live_anomalies(now=self.clock.now)

    def cycle(self, notice: str, kind: str, index: int, *, expect: dict[str, Any], after: Callable[[], None]) -> None:
        """The tick that finds the judgement stale, the ticks while its thread judges, the same ticks with
        no judgement running; the "without" tick before or after (never beside the thread)."""
        during, now = DURING[notice], self.clock.now
        settle()
        off_first = index % 2 == 0
        if off_first:
            self.tick(notice, "off", detection=False)
        before, since = anomalies._worker, len(self.tools.judgements.calls)
        first = self.tick(notice, "on", detection=True)
        worker = first.worker
        if worker is None or worker is before:
            raise RuntimeError(f"{notice}: the tick started no judging thread")
        if first.answer != expect:
            raise RuntimeError(f"{notice}: the tick did not answer the judgement shown before it")
        if expect == STARTING:
            states = {row["anomaly_detection"]["state"] for row in first.document["data_quality"]["by_source"]}
            if states != {"starting"}:
                raise RuntimeError(f"{notice}: sources {states} before the first judgement, expected starting")
        answers, whole, again = [], 0, 0
        # Back to back while the thread lives: each of these ticks started beside a running judgement.
        while worker.is_alive():
            tick = self.tick(during, "on", detection=True)
            whole += worker.is_alive()
            answers.append(tick.answer)
            if tick.worker is not worker:
                if worker.is_alive():
                    raise RuntimeError(f"{during}: a second judging thread started beside the first")
                # The tick read the stale judgement just before the thread stored the new one and found the
                # thread gone: the selector judges once more (a race it allows). Counted, then waited for.
                again = 1
                break
        settle()
        counted(self.tools.judgements, since, now=now, expected=1 + again, case=notice)
        stored = entry()
        if stored is None or stored["judged_at"] != now.isoformat():
            raise RuntimeError(f"{notice}: the thread stored no judgement for {now.isoformat()}")
        if any(answer not in (expect, stored["document"]) for answer in answers):
            raise RuntimeError(f"{during}: a tick answered neither the previous judgement nor the new one")
        after()
        call = self.tools.judgements.calls[since]
        self.background[kind].append(
            {
                "wall": call.wall_ms,
                "cpu": call.cpu_ms,
                "ticks_beside": len(answers),
                "ticks_inside": whole,
                "judged_again": again,
            }
        )
        worker = anomalies._worker
        # The same number of ticks at the same moment, nothing judging: with the new judgement, without.
        for number in range(min(len(answers), self.plan.ticks)):
            for detection in (True, False) if number % 2 == 0 else (False, True):
                tick = self.tick(during, "quiet" if detection else "off", detection=detection)
                if detection and (tick.worker is not worker or tick.answer != stored["document"]):
                    raise RuntimeError(f"{during}: a tick with a fresh judgement judged again")
        if not off_first:
            self.tick(notice, "off", detection=False)
        self.paired(notice)

    def judged(self, kind: str) -> dict[str, float]:
        figures = self.tools.judge(self.clock.now)
        self.direct[kind].append(figures)
        return figures


def first_ticks(t: Timeline) -> None:
    def rebuilt() -> None:
        if len(pool()[0]) != t.plan.sources:
            raise RuntimeError(f"rebuild: {len(pool()[0])} detectors for {t.plan.sources} sources")

    for index in range(t.plan.firsts):
        t.clock.advance(t.clock.now + TICK_EVERY)
        forget()
        t.cycle("first_tick", "rebuild", index, expect=STARTING, after=rebuilt)
        detectors = pool()[0]
        series.reset_detectors()
        t.judged("rebuild")
        if pool()[0] is detectors:
            raise RuntimeError("rebuild: the direct judgement reused the thread's detectors")
        rebuilt()
    t.profile = t.tools.profile(t.clock.now)
    rebuilt()


def within_hour(t: Timeline) -> None:
    for index in range(t.plan.ticks):
        t.clock.advance(t.clock.now + TICK_EVERY)
        if not fresh(t.clock.now):
            judge_now(t.clock.now)  # untimed: the judgement the tick of a minute ago started
        stored, detectors, worker = entry(), pool(), anomalies._worker
        since = len(t.tools.judgements.calls)
        for detection in (True, False) if index % 2 == 0 else (False, True):
            tick = t.tick("fresh", "on" if detection else "off", detection=detection)
            if detection and (tick.answer != stored["document"] or tick.worker is not worker):
                raise RuntimeError("fresh: the tick did not simply read the shared judgement")
        counted(t.tools.judgements, since, now=t.clock.now, expected=0, case="fresh")
        if pool()[0] is not detectors[0] or pool()[1] != detectors[1]:
            raise RuntimeError("fresh: the detectors were fed or rebuilt within the hour")
        t.paired("fresh")

    for index in range(t.plan.ticks):
        t.clock.advance(t.clock.now + TICK_EVERY)
        aged = age(t.clock.now)
        detectors, last_closed = pool()

        def unchanged(detectors=detectors, last_closed=last_closed) -> None:
            if pool()[0] is not detectors or pool()[1] != last_closed:
                raise RuntimeError("refresh: the detectors were fed or rebuilt within the hour")

        t.cycle("refresh_notice", "within_hour", index, expect=aged["document"], after=unchanged)
        t.judged("within_hour")
        unchanged()


def hour_turns(t: Timeline) -> None:
    for index in range(2 * t.plan.turns):
        turn = floor_hour(t.clock.now) + HOUR
        t.look(turn - LOOK_EVERY)
        previous = judge_now(t.clock.now)  # the judgement shown while the new hour is judged
        t.clock.advance(turn + TURN_OFFSET)
        detectors, last_closed = pool()

        def fed_one_hour(detectors=detectors, last_closed=last_closed) -> None:
            if pool()[0] is not detectors or pool()[1] != last_closed + HOUR:
                raise RuntimeError("hour turn: the detectors were rebuilt instead of fed the one closed hour")

        if index % 2 == 0:
            t.cycle("hour_turn_notice", "hour_turn", index // 2, expect=previous["document"], after=fed_one_hour)
        else:
            t.judged("hour_turn")
            fed_one_hour()


def run(plan: Plan, *, budget_ms: float = 20.0) -> dict[str, Any]:
    """Fill the configured database, then time every case; the figures and what they were measured on."""
    if not settings.MONITORING_ANOMALY_BACKGROUND:
        raise RuntimeError("MONITORING_ANOMALY_BACKGROUND is off: this bench measures the production default")
    # The ticks measured are the broadcaster's, and its process is the one that judges.
    anomalies.judge_in_this_process(anomalies.THREAD)
    if 2 * plan.ticks * TICK_EVERY > timedelta(minutes=30):
        raise ValueError("the within-hour ticks must fit in the half hour they are given")
    sources = make_sources(plan.sources, seed=plan.seed)
    # The simulated timeline ends before the wall clock: no report lies in the future of the database.
    first_hour = floor_hour(datetime.now(UTC)) - (plan.lived_hours + 2 * plan.turns + 2) * HOUR
    start = first_hour + START_INTO_HOUR
    log(f"filling {plan.sources} sources x {plan.days} days")
    data = fill(sources, start=start - timedelta(days=plan.days), end=start, seed=plan.seed)
    series.reset_detectors()
    t = Timeline(plan, Clock(sources, now=start, seed=plan.seed))
    load_before = os.getloadavg()
    with t.tools.installed():
        t.tools.tick(t.clock.now, detection=False)  # imports, connections and plans out of the timed ticks
        log(f"first tick x {plan.firsts} (each rebuild in the background, then directly)")
        first_ticks(t)
        log(f"living {plan.lived_hours} h untimed")
        t.look(first_hour + (plan.lived_hours + 1) * HOUR + timedelta(minutes=30))
        log(f"within the hour: {plan.ticks} fresh pairs, {plan.ticks} refreshes")
        within_hour(t)
        log(f"hour turns x {2 * plan.turns} (every other one in the background)")
        hour_turns(t)
        settle()
    load_after = os.getloadavg()
    training = series.training_days_setting()
    return {
        "plan": asdict(plan),
        "data": {**data, "written_while_ticking": t.clock.written},
        **summarize(t, during=set(DURING.values()), budget_ms=budget_ms),
        "rebuild_profile": t.profile,
        "context": {
            "budget_ms": budget_ms,
            "background": settings.MONITORING_ANOMALY_BACKGROUND,
            "simulated_start": start.isoformat(),
            "simulated_end": t.clock.now.isoformat(),
            "cache_backend": settings.CACHES["default"]["BACKEND"],
            "anomaly_cache_seconds": settings.MONITORING_ANOMALY_CACHE_SECONDS,
            "broadcast_interval_seconds": settings.WEBSOCKET_BROADCAST_INTERVAL,
            "training_days": training,
            # What one rebuild feeds each source: the training days and the day so far, to the last closed hour.
            "rebuild_hours_per_source": training * 24 + (floor_hour(start) - HOUR).hour + 1,
            "database": connection.settings_dict["NAME"],
            "postgres": connection.pg_version if connection.vendor == "postgresql" else None,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
        },
    }
