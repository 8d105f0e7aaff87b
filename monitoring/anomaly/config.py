"""The streaming detector's constants (``make_detector(config=…)`` overrides them; see
docs/anomaly-detection.md for what each rule does with them)."""

from __future__ import annotations

from dataclasses import dataclass

# Spreads beyond expected. One source is tested thousands of times a week (three metrics, several
# windows, four calls an hour), so a false alarm per source-month needs a tail near 1e-5: 4.5 spreads.
DEFAULT_SENSITIVITY = 4.5


@dataclass(frozen=True, kw_only=True)
class StreamingConfig:
    # Spreads beyond expected before a window is abnormal; the evidence rules scale with it.
    sensitivity: float = DEFAULT_SENSITIVITY
    history_days: int = 28
    # Learning until this many closed hours were seen; wider bands (the score threshold) until ``mature_hours``.
    hours_needed: int = 24
    mature_hours: int = 7 * 24
    young_widening: float = 1.5
    # Trailing windows: the current hour plus up to ``max_window_hours`` closed ones for every rule,
    # and for rates also the last ``long_windows`` hours, where a small shift on a small source adds up.
    max_window_hours: int = 5
    long_windows: tuple[int, ...] = (8, 12, 24)
    # Volume: a drop is at most this share of expected (holidays and quiet news days stay above it).
    drop_ratio: float = 0.45
    young_drop_ratio: float = 0.25
    outage_ratio: float = 0.05
    min_drop_items: float = 25.0
    # Volume spikes: a flood, not a news day and not a catch-up.
    spike_ratio: float = 2.7
    # Floods are judged from the third day: two days of history say little about a busy hour.
    flood_after_hours: int = 72
    min_spike_items: float = 30.0
    # Rates: a drop of at least this many points and this many missing successes.
    min_rate_points: float = 4.0
    min_rate_items: float = 4.0
    # Rates only (for volume one short hour alone is what a late report looks like, never enough):
    # one hour alone (no closed hour behind it was low) needs this much more evidence.
    single_hour_factor: float = 1.5
    # ... and a rate this many points down (a glitch costs a few points for an hour).
    single_hour_points: float = 12.0
    # Fewer attempts than this in the current hour so far: it need not be significantly low on its own.
    small_sample: int = 50
    # Rates are judged at this multiple of the sensitivity (their noise model is the tighter one).
    rate_factor: float = 1.125
    # The current hour (so far) must be at least this many spreads short before a window with it is judged.
    now_low_score: float = 2.0
    # One hour's rate alone is never enough before this share of it has elapsed.
    single_hour_fraction: float = 0.75
    cusum_slack: float = 1.0
    cusum_threshold: float = 10.0
    # An hour this many spreads out (and past the absolute floors' halves) does not train the baseline.
    clean_score: float = 3.0
    adapt_hours: int = 36
