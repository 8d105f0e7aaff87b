"""The comparisons of the product's figures with the oracle, and the operations that make them.

1. ``pipeline_status``: ``data_quality`` totals, ``by_source`` and ``by_stage``;
2. the alert rules' inputs (``gather_inputs``): metric sums and finished / failed run counts of the
   current and previous windows;
3. ``trends``: every bucket (hour, day) and the current / previous periods, all sources and one, every
   stage and one (the unstaged included);
4. the anomaly detector's hourly series (the ``HourCounts`` per source and hour);
5. ``scraping_health`` per source against the runs table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

from django.conf import settings
from django.test import override_settings
from hypothesis import strategies as st

import monitoring.anomaly.series as anomaly_series
from monitoring.alerting.inputs import gather_inputs
from monitoring.alerting.rules import OVERALL
from monitoring.selectors import pipeline_status, rate
from monitoring.tests.truth import oracle
from monitoring.tests.truth.moments import DAY, HOUR, At
from monitoring.tests.truth.world import SOURCES, Op, World
from monitoring.trends import trends

STATUS_WINDOWS = (1, 2, 24, 25, 720)
ALERT_WINDOWS = (1, 24)
TREND_METRICS = ["geocoding_success_rate", "validation_pass_rate", "volume"]
# Long enough that the anomaly series reaches the pruned hours (700-800 h back).
TRAINING_DAYS = 35
ZEROS = (0, 0, 0, 0)
# The order of ``by_stage``: pipeline order, then the metrics without a stage ('' in the oracle).
STAGE_ORDER = ["scrape", "geocode", "validate", ""]
# A trend's ``stage`` parameter and the oracle's stage for it.
TREND_STAGES = {"scrape": "scrape", "geocode": "geocode", "validate": "validate", "unstaged": ""}


def _iso(value: str | None) -> datetime | None:
    return oracle.moment(value)


def _quality_expected(sums: dict[str, Any], newest: datetime | None) -> dict[str, Any]:
    return {
        **{name: sums[name] for name in oracle.SUMMED},
        "geocoding_success_rate": rate(numerator=sums["geocoding_successes"], denominator=sums["geocoding_attempts"]),
        "validation_pass_rate": rate(numerator=sums["validation_passes"], denominator=sums["validation_attempts"]),
        "total_geocoded": sums["geocoding_successes"],
        "total_validated": sums["validation_passes"],
        "last_updated": newest,
    }


def _quality_actual(block: dict[str, Any]) -> dict[str, Any]:
    keys = (*oracle.SUMMED, "geocoding_success_rate", "validation_pass_rate", "total_geocoded", "total_validated")
    return {**{key: block[key] for key in keys}, "last_updated": _iso(block["last_updated"])}


def check_data_quality(world: World, *, now: datetime, window_hours: int) -> dict[str, Any]:
    """``data_quality`` of the status at ``now``: totals and per source equal the window's SQL sums."""
    document = pipeline_status(now=now, window_hours=window_hours)
    quality = document["data_quality"]
    where = f"data_quality, window {window_hours} h at {now.isoformat()}"
    by_source = oracle.metric_window_by_source(start=now - window_hours * HOUR, end=now)
    expected_rows = [
        {"source": source, **_quality_expected(sums, sums["newest"])} for source, sums in sorted(by_source.items())
    ]
    actual_rows = [{"source": row["source"], **_quality_actual(row)} for row in quality["by_source"]]
    assert actual_rows == expected_rows, f"{where}: by_source"

    by_stage = oracle.metric_window_by_stage(start=now - window_hours * HOUR, end=now)
    expected_stages = [
        {"stage": stage or None, **_quality_expected(sums, sums["newest"])}
        for stage, sums in sorted(by_stage.items(), key=lambda item: STAGE_ORDER.index(item[0]))
    ]
    actual_stages = [{"stage": row["stage"], **_quality_actual(row)} for row in quality["by_stage"]]
    assert actual_stages == expected_stages, f"{where}: by_stage"

    totals = {name: sum(sums[name] for sums in by_source.values()) for name in oracle.SUMMED}
    # Newest report at any age (docs/status.md: null only when there has never been one): pruned ones count.
    candidates = [oracle.newest_metric_before(now), world.history.newest_pruned]
    newest = max((c for c in candidates if c is not None), default=None)
    expected = _quality_expected(totals, newest)
    stale_after = settings.MONITORING_THRESHOLDS["data_stale_after_seconds"]
    expected["stale"] = newest is not None and (now - newest).total_seconds() > stale_after
    assert {**_quality_actual(quality), "stale": quality["stale"]} == expected, f"{where}: totals"
    return document


SCRAPING_FIELDS = (
    "last_run",
    "last_success",
    "last_failure",
    "last_error",
    "finished_runs",
    "failed_runs",
    "running_runs",
    "stuck_runs",
    "failure_rate",
    "stale",
)


def check_scraping(document: dict[str, Any], *, now: datetime, window_hours: int) -> None:
    limits = settings.MONITORING_THRESHOLDS
    expected = oracle.scraping_by_source(
        now=now,
        window_hours=window_hours,
        retire=timedelta(seconds=limits["source_retire_after_seconds"]),
        timeout=timedelta(seconds=limits["run_timeout_seconds"]),
    )
    for row in expected.values():
        row["failure_rate"] = rate(numerator=row["failed_runs"], denominator=row["finished_runs"])
        last_success = row["last_success"]
        row["stale"] = (
            last_success is None or (now - last_success).total_seconds() > limits["source_stale_after_seconds"]
        )
    actual = {
        row["source"]: {
            **{key: row[key] for key in SCRAPING_FIELDS},
            **{key: _iso(row[key]) for key in ("last_run", "last_success", "last_failure")},
        }
        for row in document["scraping_health"]["sources"]
    }
    order = [row["source"] for row in document["scraping_health"]["sources"]]
    assert (order, actual) == (sorted(expected), expected), (
        f"scraping_health, window {window_hours} h at {now.isoformat()}"
    )


def _nonzero(mapping: dict[str, Any]) -> dict[str, Any]:
    """Entries whose value is not all zeros: a rule cannot tell a zero entry from a missing one."""

    def zero(value: Any) -> bool:
        return not any(value.values()) if isinstance(value, dict) else value == 0

    return {key: value for key, value in mapping.items() if not zero(value)}


def check_alert_inputs(document: dict[str, Any], *, now: datetime, lengths: tuple[int, ...]) -> None:
    inputs = gather_inputs(now=now, window_lengths=set(lengths), document=document)
    for hours in lengths:
        length = hours * HOUR
        for name, (start, end) in (("current", (now - length, now)), ("previous", (now - 2 * length, now - length))):
            stats = getattr(inputs, name)[hours]
            sums = oracle.metric_window_by_source(start=start, end=end)
            counts = {source: {c: s[c] for c in oracle.COUNTS} for source, s in sums.items()}
            if counts:
                counts[OVERALL] = {c: sum(s[c] for s in sums.values()) for c in oracle.COUNTS}
            runs = oracle.finished_runs_by_stage(start=start, end=end)
            expected = {"counts": _nonzero(counts)}
            for stage, finished_key, failed_key in (
                ("scrape", "finished_runs", "failed_runs"),
                ("validate", "finished_validations", "failed_validations"),
            ):
                by_source = runs.get(stage, {})
                for key, index in ((finished_key, 0), (failed_key, 1)):
                    values = {source: pair[index] for source, pair in by_source.items()}
                    values[OVERALL] = sum(values.values())
                    expected[key] = _nonzero(values)
            actual = {
                "counts": _nonzero(stats.counts),
                **{key: _nonzero(getattr(stats, key)) for key in expected if key != "counts"},
            }
            assert actual == expected, f"alert inputs, {name} {hours} h window at {now.isoformat()}"


@dataclass(frozen=True)
class TrendQuery:
    source: str | None
    bucket: str
    window_hours: int
    stage: str | None = None  # the trend's parameter: a stage, "unstaged", or None for every metric


def check_trend(world: World, hours: dict, *, now: datetime, query: TrendQuery) -> None:
    got = trends(
        now=now,
        metrics=TREND_METRICS,
        source=query.source,
        bucket=query.bucket,
        window_hours=query.window_hours,
        stage=query.stage,
    )
    assert got["stage"] == query.stage
    hours = _of_stage(hours, query.stage)
    step = HOUR if query.bucket == "hour" else DAY
    end = (oracle.floor_hour(now) if query.bucket == "hour" else oracle.floor_day(now)) + step
    start = end - query.window_hours * HOUR
    starts = [start + i * step for i in range((end - start) // step)]
    buckets = [oracle.sum_hours(hours, start=s, end=s + step, source=query.source) for s in starts]
    period_end = oracle.floor_hour(now)
    length = query.window_hours * HOUR
    periods = {
        "current": oracle.sum_hours(hours, start=period_end - length, end=period_end, source=query.source),
        "previous": oracle.sum_hours(
            hours, start=period_end - 2 * length, end=period_end - length, source=query.source
        ),
    }

    def rate_value(sums: dict[str, int], numerator: str, denominator: str) -> dict[str, Any]:
        n, d = sums[numerator], sums[denominator]
        return {"rate": rate(numerator=n, denominator=d) if d else None, "numerator": n, "denominator": d}

    def values(metric: str, sums: dict[str, int]) -> dict[str, Any]:
        if metric == "volume":
            return {"records": sums["geocoding_attempts"], "reports": sums["reports"]}
        if metric == "geocoding_success_rate":
            return rate_value(sums, "geocoding_successes", "geocoding_attempts")
        return rate_value(sums, "validation_passes", "validation_attempts")

    where = f"trends {query} at {now.isoformat()}"
    for metric in TREND_METRICS:
        block = got["metrics"][metric]
        expected_points = [{"start": s, **values(metric, b)} for s, b in zip(starts, buckets, strict=True)]
        actual_points = [{**point, "start": _iso(point["start"])} for point in block["points"]]
        assert actual_points == expected_points, f"{where}: {metric} points"
        for period in ("current", "previous"):
            assert block[period] == values(metric, periods[period]), f"{where}: {metric} {period}"


def _of_stage(hours: oracle.Hours, stage: str | None) -> oracle.Hours:
    """The history's hours of one stage (a trend's ``stage``), or all of them."""
    if stage is None:
        return hours
    return {key: sums for key, sums in hours.items() if key[1] == TREND_STAGES[stage]}


def _per_source_hour(hours: oracle.Hours) -> dict[tuple[str, datetime], tuple[int, ...]]:
    """The history's hours with their stages added up: per (source, hour)."""
    merged: dict[tuple[str, datetime], list[int]] = {}
    for (source, _stage, hour), sums in hours.items():
        totals = merged.setdefault((source, hour), [0] * len(sums))
        for i, value in enumerate(sums):
            totals[i] += value
    return {key: tuple(sums) for key, sums in merged.items()}


def check_anomaly_series(hours: dict, *, now: datetime) -> None:
    """The hourly counts the anomaly detector is fed equal the history (raw + pruned) per source and hour."""
    assert hasattr(anomaly_series, "hourly_series"), "the function that turns hourly sums into HourCounts moved"
    original = anomaly_series.hourly_series
    captured: dict[str, list] = {}

    def spy(*, rows, last):
        counts = original(rows=rows, last=last)
        (source,) = {row["source"] for row in rows}
        captured[source] = counts
        return counts

    anomaly_series.reset_detectors()  # the detectors are rebuilt from the history, not fed one more hour
    with (
        mock.patch.object(anomaly_series, "hourly_series", spy),
        override_settings(MONITORING_ANOMALY_TRAINING_DAYS=TRAINING_DAYS),
    ):
        anomaly_series.live_anomalies(now=now)
    last = oracle.floor_hour(now) - HOUR
    since = last.replace(hour=0) - timedelta(days=TRAINING_DAYS)
    for source in SOURCES:
        got = {
            c.hour: (c.geocoding_attempts, c.geocoding_successes, c.validation_attempts, c.validation_passes)
            for c in captured.get(source, [])
        }
        expected = {
            hour: sums[:4]
            for (s, hour), sums in _per_source_hour(hours).items()
            if s == source and since <= hour <= last
        }
        got = {hour: counts for hour, counts in got.items() if counts != ZEROS}
        expected = {hour: counts for hour, counts in expected.items() if counts != ZEROS}
        assert got == expected, f"anomaly series of {source} at {now.isoformat()}"


@dataclass(frozen=True)
class Check(Op):
    """A check in the middle of the sequence: one status window, the 1 h alert inputs, one trend."""

    window_hours: int
    trend: TrendQuery

    def apply(self, world: World) -> None:
        document = check_data_quality(world, now=world.now, window_hours=self.window_hours)
        check_scraping(document, now=world.now, window_hours=self.window_hours)
        check_alert_inputs(document, now=world.now, lengths=(1,))
        check_trend(world, world.history.hours(), now=world.now, query=self.trend)


FINAL_TRENDS = [
    TrendQuery(None, "hour", 24),
    TrendQuery(None, "hour", 800),
    TrendQuery(None, "day", 720),
    TrendQuery(None, "day", 1440),
    # Per stage, reaching the pruned hours: the breakdown outlives the raw rows too.
    *(TrendQuery(None, "hour", 800, stage) for stage in TREND_STAGES),
    TrendQuery(None, "day", 1440, "unstaged"),
]


@dataclass(frozen=True)
class FinalCheck:
    """Everything at ``now``; the data quality and trends also at a second moment on an hour edge."""

    source: str
    other_now: At

    def apply(self, world: World) -> None:
        now = world.now
        documents = {}
        for window_hours in STATUS_WINDOWS:
            documents[window_hours] = check_data_quality(world, now=now, window_hours=window_hours)
            check_scraping(documents[window_hours], now=now, window_hours=window_hours)
        check_alert_inputs(documents[24], now=now, lengths=ALERT_WINDOWS)
        hours = world.history.hours()
        for query in [
            *FINAL_TRENDS,
            TrendQuery(self.source, "hour", 48),
            TrendQuery(self.source, "day", 48),
            TrendQuery(self.source, "hour", 48, "geocode"),
        ]:
            check_trend(world, hours, now=now, query=query)
        check_anomaly_series(hours, now=now)
        other = world.at(self.other_now)
        for window_hours in (1, 24):
            check_data_quality(world, now=other, window_hours=window_hours)
        check_trend(world, hours, now=other, query=TrendQuery(None, "hour", 25))


def trend_queries() -> st.SearchStrategy[TrendQuery]:
    sources = st.sampled_from([None, *SOURCES])
    stages = st.sampled_from([None, None, *TREND_STAGES])
    return st.one_of(
        st.builds(TrendQuery, sources, st.just("hour"), st.sampled_from([1, 2, 24, 25, 760]), stages),
        st.builds(TrendQuery, sources, st.just("day"), st.sampled_from([24, 48, 720, 792]), stages),
    )


def final_checks() -> st.SearchStrategy[FinalCheck]:
    return st.builds(
        FinalCheck,
        st.sampled_from(SOURCES),
        st.builds(At, st.sampled_from(["hour+0", "hour-1", "now-1h", "day+0"]), st.sampled_from([0, 1, -1])),
    )
