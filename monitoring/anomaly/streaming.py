"""The streaming detector: one per source, fed closed hours in order, asked about the current hour.

Implements :class:`monitoring.anomaly.contract.Detector`. Method and measured figures:
``docs/anomaly-detection.md``. In short, per source:

- expected volume from a local-time seasonal profile (:mod:`monitoring.anomaly.seasonal`), expected
  rates with beta-binomial noise whose overdispersion is calibrated from the source's own prediction
  errors (:mod:`monitoring.anomaly.rates`);
- the current hour is judged as it fills, against what this source usually has delivered by then
  (:class:`monitoring.anomaly.seasonal.ArrivalCurve`, learnt from the partial views): a source that
  posts one batch at :10 is no flood at :15, one that posts at :50 no outage at :45;
- a shortfall is judged over trailing windows that hold the current hour *and* closed hours: one short
  or empty hour alone is what a late report looks like, never an incident; the current hour must be
  short beyond its own noise, so a window made low by one closed hour (a late report) stays quiet;
- an outage: silence from before the end of the previous hour running on into this one (a late
  report's catch-up arrives at the start of the next hour or in the source's batch quarter);
- a local day running at the source's weekend level from its first hours is a public holiday: drops
  are judged against the quietest weekday's level that day;
- an alarm needs a score beyond the sensitivity (4.5 spreads by default) *and* an absolute effect (a
  ratio and a count for volume, points and items for rates): two missing records are no incident;
- spikes only as floods (×2.7 and more of today's pace, beyond the source's own noise around it, not
  explained by a catch-up); news bursts stay quiet;
- rate windows (:mod:`monitoring.anomaly.streaming_rates`) and a CUSUM per rate for slow degradations
  (:mod:`monitoring.anomaly.cusum`); once a closed hour in a window was reported, the current hour must
  be clearly low on its own, so findings stop when the incident does;
- flagged hours and clearly abnormal ones do not train the baseline, until a change has lasted
  ``adapt_hours`` (then it is the new normal).

Pure Python, no Django.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace
from datetime import datetime

from monitoring.anomaly.config import DEFAULT_SENSITIVITY, StreamingConfig
from monitoring.anomaly.contract import LEARNING, READY, Detector, Finding, Readiness
from monitoring.anomaly.cusum import Run
from monitoring.anomaly.detector import (
    DROP,
    GEOCODING_SUCCESS_RATE,
    SPIKE,
    VALIDATION_PASS_RATE,
    VOLUME,
    HourCounts,
)
from monitoring.anomaly.rates import RateBaseline
from monitoring.anomaly.seasonal import ArrivalCurve, LocalClock, Slot, VolumeBaseline, volume_score
from monitoring.anomaly.streaming_rates import RateRules, _Closed, _Day, _finding, _rate_counts, _Verdict

RATES = (GEOCODING_SUCCESS_RATE, VALIDATION_PASS_RATE)
__all__ = ["DEFAULT_SENSITIVITY", "StreamingConfig", "StreamingDetector", "make_detector"]


class StreamingDetector(RateRules):
    def __init__(self, *, tz: str = "UTC", config: StreamingConfig | None = None) -> None:
        self.config = config or StreamingConfig()
        self.clock = LocalClock(tz)
        history = self.config.history_days * 24
        self.volume = VolumeBaseline(history_hours=history)
        self.arrival = ArrivalCurve(history_hours=14 * 24)
        self.rates = {metric: RateBaseline(history_hours=history) for metric in RATES}
        self.recent: deque[_Closed] = deque(maxlen=max(self.config.max_window_hours, *self.config.long_windows))
        self.cusum = {metric: Run() for metric in RATES}
        self.abnormal_streak = dict.fromkeys((VOLUME, *RATES), 0)
        self.catchups: deque[int] = deque()
        self.hours_seen = 0
        self.last_hour: datetime | None = None
        self.today = _Day()

    # -- the contract -------------------------------------------------------------------------

    def readiness(self) -> Readiness:
        needed = self.config.hours_needed
        return Readiness(
            state=READY if self.hours_seen >= needed else LEARNING, hours_seen=self.hours_seen, hours_needed=needed
        )

    def judge_partial(self, counts: HourCounts, *, fraction: float) -> list[Finding]:
        fraction = min(max(fraction, 0.0), 1.0)
        if fraction <= 0:
            return []
        if fraction < 1.0:
            # Learnt when the hour closes; no judgement of a closed hour depends on it.
            self.arrival.note(counts.hour, fraction, counts.geocoding_attempts)
        if self.hours_seen < self.config.hours_needed:
            return []
        verdicts, _ = self._judge(counts, self.clock.slot(counts.hour), fraction)
        return [v.finding for v in verdicts.values() if v.finding is not None]

    def observe(self, counts: HourCounts) -> list[Finding]:
        c = self.config
        slot = self.clock.slot(counts.hour)
        ready = self.hours_seen >= self.config.hours_needed
        if ready:
            verdicts, runs = self._judge(counts, slot, 1.0)
        else:
            verdicts, runs = {}, dict(self.cusum)
        closed = self._closed(counts, slot)
        silent_since = self.arrival.close(counts.hour, counts.geocoding_attempts)
        if silent_since < 1.0:
            closed.silent_tail = closed.volume_expected * (1.0 - self.arrival.bounds(silent_since)[1])
        for metric in (VOLUME, *RATES):
            verdict = verdicts.get(metric)
            abnormal = verdict is not None and (verdict.soft or verdict.finding is not None)
            if abnormal:
                closed.abnormal.add(metric)
            self.abnormal_streak[metric] = self.abnormal_streak[metric] + 1 if abnormal else 0
        # A change that has lasted ``adapt_hours`` is the new normal: it trains again.
        clean = {m: s == 0 or s > self.config.adapt_hours for m, s in self.abnormal_streak.items()}
        self._note_catchup(closed)
        self.volume.add(
            slot, counts.geocoding_attempts, clean=clean[VOLUME], predicted=closed.volume_expected if ready else None
        )
        for metric, (x, n) in _rate_counts(counts).items():
            self.rates[metric].add(
                slot, x, n, clean=clean[metric], predicted=closed.rates[metric][2] if ready else None
            )
        # The hour a change turns into the new normal, its hours so far join the baseline at once.
        for metric, streak in self.abnormal_streak.items():
            if streak == c.adapt_hours + 1:
                baseline = self.volume if metric == VOLUME else self.rates[metric]
                baseline.accept(streak)
        self.recent.append(closed)
        if self.today.day != slot.day:
            self.today = _Day(slot.day)
        self.today.observed += closed.volume
        self.today.expected += closed.volume_expected
        self.today.hours += 1
        if self.today.hours <= 3:
            self.today.opening = self.today.observed / max(self.today.expected, 1e-9)
        # A shortfall the point rules reported is not a slow degradation: the CUSUM starts afresh, or
        # it would keep the incident's weight (and its finding) for a day after recovery.
        for metric, run in runs.items():
            verdict = verdicts.get(metric)
            reported = verdict is not None and verdict.finding is not None and verdict.finding.rule != "cusum"
            self.cusum[metric] = Run() if reported else run
        self.hours_seen += 1
        self.last_hour = counts.hour
        return [v.finding for v in verdicts.values() if v.finding is not None]

    # -- judging --------------------------------------------------------------------------------

    def _widening(self) -> float:
        c = self.config
        if self.hours_seen >= c.mature_hours:
            return 1.0
        young = 1 - (self.hours_seen - c.hours_needed) / max(c.mature_hours - c.hours_needed, 1)
        return 1.0 + (c.young_widening - 1.0) * min(max(young, 0.0), 1.0)

    def _closed(self, counts: HourCounts, slot: Slot) -> _Closed:
        expected = self.volume.expected(slot)
        closed = _Closed(slot, counts.geocoding_attempts, expected, self.volume.variance(expected))
        for metric, (x, n) in _rate_counts(counts).items():
            p = self.rates[metric].expected(slot)
            closed.rates[metric] = (x, n, p, self.rates[metric].variance(attempts=n, p=p))
        return closed

    def _judge(self, counts: HourCounts, slot: Slot, fraction: float) -> tuple[dict[str, _Verdict], dict[str, Run]]:
        k = self.config.sensitivity * self._widening()
        verdicts = {VOLUME: self._judge_volume(counts, slot, fraction, k)}
        runs = {}
        k_rate = k * self.config.rate_factor
        for metric, (x, n) in _rate_counts(counts).items():
            verdicts[metric], runs[metric] = self._judge_rate(metric, x, n, counts.hour, slot, fraction, k_rate)
        return verdicts, runs

    def _late_prone(self) -> bool:
        # Until a week has shown that this source does not deliver late, assume that it may.
        return bool(self.catchups) or self.hours_seen < self.config.mature_hours

    def _note_catchup(self, closed: _Closed) -> None:
        """Remember a low hour followed by its catch-up: this source's reports can arrive late."""
        while self.catchups and self.catchups[0] <= self.hours_seen - self.config.history_days * 24:
            self.catchups.popleft()
        if not self.recent:
            return
        prev = self.recent[-1]
        pair = prev.volume_expected + closed.volume_expected
        if pair < self.config.min_drop_items or prev.volume_expected <= 0:
            return
        if (
            prev.volume < 0.4 * prev.volume_expected
            and closed.volume > 1.4 * closed.volume_expected
            and 0.75 <= (prev.volume + closed.volume) / pair <= 1.5
        ):
            self.catchups.append(self.hours_seen)

    def _judge_volume(self, counts: HourCounts, slot: Slot, fraction: float, k: float) -> _Verdict:
        c = self.config
        hourly = self.volume.expected(slot)
        # What should have arrived by now, by this source's own arrival curve: at most (floods), at
        # least (drops) and typically.
        share_low, share, share_high = self.arrival.bounds(fraction)
        e, e_typical, e_high = hourly * share_low, hourly * share, hourly * share_high
        o = counts.geocoding_attempts
        var = self.volume.variance(e)
        z_now = volume_score(o, e, var)
        soft = e >= c.min_drop_items and abs(z_now) >= c.clean_score and not 0.6 * e <= o <= 2.0 * e

        def found(rule: str, direction: str, score: float, text: str, expected: float) -> _Verdict:
            return _Verdict(
                _finding(VOLUME, counts.hour, fraction, direction, o, expected, max(low, 0.0), high, score, rule, text),
                True,
            )

        # Spike: a flood, not counting what the previous hour was short by (a late batch catching up).
        # Against today's pace too: a news burst lifts every hour for a day or two.
        e_pace = e_high * max(self.volume.recent_pace(), 1.0)
        # A young detector has not seen every weekday yet: the first weekend or holiday must not page.
        drop_ratio = c.drop_ratio if self.hours_seen >= c.mature_hours else c.young_drop_ratio
        # The range is what the ratio tests let pass (the score test only narrows what they flag).
        low, high = drop_ratio * e, c.spike_ratio * e_pace
        flood_ready = self.hours_seen >= c.flood_after_hours
        # Judged against today's pace with the source's own noise around it: a busy hour of a news day
        # on a noisy source is not a flood.
        z_high = volume_score(o, e_pace, self.volume.variance(e_pace))
        if flood_ready and o >= c.spike_ratio * e_pace and z_high >= k and o - e_pace >= c.min_spike_items:
            prev = self.recent[-1] if self.recent else None
            # What the previous hour may have owed: its expectation is uncertain too, so its upper end.
            owed = max(prev.volume_expected + 2 * math.sqrt(prev.volume_variance) - prev.volume, 0.0) if prev else 0.0
            excess = o - owed
            if excess >= c.spike_ratio * e_pace and excess - e_pace >= c.min_spike_items:
                return found(
                    "flood",
                    SPIKE,
                    z_high,
                    f"{o} records so far against {e_high:.0f} expected at most by now (×{o / max(e_high, 1e-9):.1f}); "
                    f"×{excess / max(e_high, 1e-9):.1f} after the previous hour's shortfall of {owed:.0f}",
                    e_high,
                )
        # Silence across the turn of the hour: the closed hour went quiet before its end and nothing has
        # come since. A late report cannot look like this (its catch-up arrives when the next hour
        # starts or in the source's batch quarter), so an outage starting at :45 is seen at :15.
        # This hour's records must be due by now (by the arrival curve; evenly spread while it is unknown).
        due = e if self.arrival.known(fraction) else e_typical
        prev = self.recent[-1] if self.recent else None
        if (
            o == 0
            and prev is not None
            and prev.silent_tail > 0
            and volume_score(0, due, self.volume.variance(due)) <= -c.now_low_score
        ):
            silent = prev.silent_tail + e
            z = volume_score(0, silent, self.volume.variance(silent))
            if silent >= c.min_drop_items and z <= -k:
                return found(
                    "outage",
                    DROP,
                    z,
                    f"nothing since the last {prev.silent_tail / max(prev.volume_expected, 1e-9):.2f} of the "
                    f"previous hour, against {silent:.0f} expected over that silence; this hour 0 so far "
                    f"against {e_typical:.0f}",
                    e_typical,
                )
        # The current hour must itself be short, beyond its noise: nothing due by now is no evidence
        # (a batch source before its batch), and a window made low by a closed hour alone (a late
        # report) was judged when that hour closed.
        if o > drop_ratio * e or z_now > -c.now_low_score:
            return _Verdict(None, soft)
        # Drop: the shortest trailing window that is low enough, significant and confirmed. A source
        # known to deliver late needs its closed hours in the window as low as the drop itself: one
        # late batch makes one low hour, an outage makes them all low.
        prev_ratio = drop_ratio if self._late_prone() else (1 + drop_ratio) / 2
        # A whole local day at the source's weekend level is a public holiday, not a drop: judged
        # against the quietest weekday's level (an outage still falls far below it).
        scale = self._holiday_scale(slot)
        win_o, win_e, win_var, span = o, e * scale, self.volume.variance(e * scale), fraction
        prev_o = prev_e = 0.0
        for m in range(min(len(self.recent), c.max_window_hours) + 1):
            if m:
                hour = self.recent[-m]
                win_o += hour.volume
                win_e += hour.volume_expected * scale
                win_var += self.volume.variance(hour.volume_expected * scale)
                prev_o += hour.volume
                prev_e += hour.volume_expected * scale
                span += 1
            if win_e - win_o < c.min_drop_items or win_o > drop_ratio * win_e:
                continue
            z = volume_score(win_o, win_e, win_var)
            if m == 0:
                # One short or empty hour is what a late report looks like: never enough alone.
                continue
            if z > -k or prev_o > prev_ratio * prev_e:
                continue
            rule = "outage" if win_o <= c.outage_ratio * win_e else "level"
            return found(
                rule,
                DROP,
                z,
                f"{win_o:.0f} records in the last {span:.2f} h against {win_e:.0f} expected "
                f"({100 * win_o / max(win_e, 1e-9):.0f} %); this hour {o} so far against {e:.0f}",
                e,
            )
        return _Verdict(None, soft)

    def _holiday_scale(self, slot: Slot) -> float:
        weekday = self.volume.weekday
        quiet = min(weekday) / max(weekday[slot.weekday], 1e-9)
        day = self.today
        if quiet > 0.9 or day.day != slot.day or day.hours < 1 or day.expected < self.config.min_drop_items:
            return 1.0
        ratio = day.observed / day.expected
        # Nearer the quiet level than the usual one, from the day's first hours on.
        upper = min(1.3 * quiet, (1 + quiet) / 2)
        return quiet if 0.5 * quiet <= ratio <= upper and day.opening <= upper else 1.0


def make_detector(
    *, tz: str = "UTC", sensitivity: float | None = None, config: StreamingConfig | None = None
) -> Detector:
    """A fresh detector for one source whose day follows ``tz`` (an IANA zone)."""
    config = config or StreamingConfig()
    if sensitivity is not None:
        if sensitivity <= 0:
            raise ValueError("sensitivity must be positive")
        config = replace(config, sensitivity=sensitivity)
    return StreamingDetector(tz=tz, config=config)
