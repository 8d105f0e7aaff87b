"""Times relative to an example's ``now``: named anchors on the window, hour and day edges, plus microseconds.

Anchors sit on and around the window edges (``now - W``), UTC hour and day edges, ``now`` and just before
it, and 700-800 h back (for retention). Every time is resolved only once the example's ``now`` is known,
so the same drawn example reads the same way whatever the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import timezone as fixed_offset

from hypothesis import strategies as st

from monitoring.tests.truth import oracle

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
OFFSETS = {"Z": UTC, "+05:30": fixed_offset(timedelta(hours=5, minutes=30)), "-03:00": fixed_offset(-3 * HOUR)}


def _anchors(now: datetime) -> dict[str, datetime]:
    hour, day = oracle.floor_hour(now), oracle.floor_day(now)
    table = {"now": now}
    for back in (1, 2, 6, 24, 25, 48, 167, 169, 720, 700, 722, 750, 800):
        table[f"now-{back}h"] = now - back * HOUR
    for k in (1, 0, -1, -2, -23, -24, -25, -47, -48, -720, -721, -760):
        table[f"hour{k:+d}"] = hour + k * HOUR
    for k in (0, -1, -30, -32):
        table[f"day{k:+d}"] = day + k * DAY
    return table


RECENT = [
    "now",
    "now-1h",
    "now-2h",
    "now-24h",
    "now-25h",
    "now-48h",
    "now-720h",
    "hour+1",
    "hour+0",
    "hour-1",
    "hour-2",
    "hour-23",
    "hour-24",
    "hour-25",
    "hour-47",
    "hour-48",
    "hour-720",
    "hour-721",
    "day+0",
    "day-1",
    "day-30",
]
OLD = ["now-700h", "now-722h", "now-750h", "now-800h", "hour-760", "day-32"]
# Retention cutoffs: all more than 720 h before now (the product refuses newer ones).
CUTOFFS = ["now-722h", "now-750h", "hour-760", "now-800h", "day-32"]


def _span(micros: int) -> str:
    if micros == 0:
        return ""
    sign = "+" if micros > 0 else "-"
    seconds, us = divmod(abs(micros), 1_000_000)
    return f"{sign}{seconds}s{us:06d}us" if seconds else f"{sign}{us}us"


@dataclass(frozen=True)
class At:
    """A time relative to the example's ``now``: a named anchor plus microseconds."""

    anchor: str
    micros: int = 0

    def resolve(self, now: datetime) -> datetime:
        return _anchors(now)[self.anchor] + timedelta(microseconds=self.micros)

    def __repr__(self) -> str:
        return f"{self.anchor}{_span(self.micros)}"


def times() -> st.SearchStrategy[At]:
    edge = st.builds(At, st.sampled_from(RECENT + OLD), st.sampled_from([0, 1, -1]))
    near = st.builds(
        At,
        st.sampled_from(RECENT),
        st.sampled_from([1_000_000, -1_000_000, 1_800_000_000, -1_800_000_000, 3_599_999_999, -3_599_999_999]),
    )
    old = st.builds(At, st.sampled_from(OLD), st.integers(-7_200_000_000, 7_200_000_000))
    return st.one_of(edge, near, old)


def cutoffs() -> st.SearchStrategy[At]:
    return st.builds(At, st.sampled_from(CUTOFFS), st.sampled_from([0, 1, -1]))


@dataclass(frozen=True)
class Now:
    """``live``: a little after the wall clock, so rows stamped by the database's clock fall inside the
    windows; ``past``: on or around a UTC hour boundary some hours ago (such rows then lie after ``now``)."""

    kind: str
    hours_back: int = 0
    micros: int = 0

    def resolve(self, wall: datetime) -> datetime:
        if self.kind == "live":
            return wall + timedelta(microseconds=self.micros)
        return oracle.floor_hour(wall) - self.hours_back * HOUR + timedelta(microseconds=self.micros)

    def __repr__(self) -> str:
        if self.kind == "live":
            return f"Now(wall clock {_span(self.micros)})"
        return f"Now(hour-{self.hours_back}{_span(self.micros)})"


def nows() -> st.SearchStrategy[Now]:
    live = st.builds(Now, st.just("live"), st.just(0), st.integers(90_000_000, 200_000_000))
    past = st.builds(
        Now,
        st.just("past"),
        st.sampled_from([2, 3, 30]),
        st.sampled_from([0, 1, -1, 1_800_000_000, 3_599_999_999]),
    )
    return st.one_of(past, live)


def written(moment: datetime, offset: str) -> datetime:
    """The same instant as a writer in that offset would write it."""
    return moment.astimezone(OFFSETS[offset])
