"""Scoring of forecasts and crossing warnings on one source's hours, and merging over sources and seeds.

Definitions (also in ``docs/forecasting.md``):

- **Forecast error** at horizon h: the projection issued after hour t for hour t + h against what that
  hour delivered. Rates in points, on target hours with at least :data:`MIN_RATE_SAMPLE` attempts
  (the rate alert rule's minimum sample); volume as WAPE (Σ|error| / Σ actual, in %) over every hour
  and as the median absolute % error over hours of at least 10 records. The naive baselines use only
  what was known at t: the last closed hour (``last``), the same local hour of the previous local day
  (``yesterday``) and of the same local weekday a week before (``last_week``); an undefined rate is
  carried forward from the last hour that had one.
- **Crossing** of a rate threshold: the rate pooled over the last :data:`SMOOTH_HOURS` hours (at least
  :data:`MIN_RATE_SAMPLE` attempts) is below the threshold, after at least :data:`REARM_HOURS` hours
  in which it never was (and was seen above it). A **warning** at hour t is *right* when that smoothed
  rate is below the threshold at some hour in (t, t + 24]; a crossing is *warned* when a warning was
  on in the 24 hours before it, with lead time = crossing hour − the hour that warning turned on.
"""

from __future__ import annotations

import statistics
from array import array
from collections.abc import Iterable, Sequence

SMOOTH_HOURS = 3
MIN_RATE_SAMPLE = 50
REARM_HOURS = 24
WITHIN_HOURS = 24
METHODS = ("forecast", "last", "yesterday", "last_week")


def smoothed_rate(pairs: Sequence[tuple[int, int]]) -> list[float | None]:
    """Per hour, 100 × Σ successes / Σ attempts over the last SMOOTH_HOURS hours (None under MIN_RATE_SAMPLE)."""
    out: list[float | None] = []
    for i in range(len(pairs)):
        window = pairs[max(i - SMOOTH_HOURS + 1, 0) : i + 1]
        n = sum(p[1] for p in window)
        out.append(100.0 * sum(p[0] for p in window) / n if n >= MIN_RATE_SAMPLE else None)
    return out


def crossings(smoothed: Sequence[float | None], threshold: float, *, first: int) -> list[int]:
    """Hours (≥ ``first``) at which the smoothed rate goes below ``threshold`` after REARM_HOURS clear of it."""
    out = []
    for c in range(max(first, REARM_HOURS), len(smoothed)):
        v = smoothed[c]
        if v is None or v >= threshold:
            continue
        before = smoothed[c - REARM_HOURS : c]
        if all(b is None or b >= threshold for b in before) and any(b is not None for b in before):
            out.append(c)
    return out


def below_within(smoothed: Sequence[float | None], threshold: float, t: int, hours: int = WITHIN_HOURS) -> bool:
    return any(v is not None and v < threshold for v in smoothed[t + 1 : t + 1 + hours])


def episodes(active: Sequence[int], *, first: int) -> list[tuple[int, int]]:
    """Maximal runs (start, end inclusive) of active hours at or after ``first``."""
    out, start = [], None
    for i in range(first, len(active)):
        if active[i] and start is None:
            start = i
        elif not active[i] and start is not None:
            out.append((start, i - 1))
            start = None
    if start is not None:
        out.append((start, len(active) - 1))
    return out


def score_warnings(
    *,
    active: Sequence[int],
    smoothed: Sequence[float | None],
    threshold: float,
    first: int,
    cause: dict[int, str],
) -> dict:
    """Precision of warnings (per episode and per hour), and recall and lead time over crossings.

    ``cause`` maps a crossing hour to the labelled incident kind behind it (absent: ``background``).
    Only hours whose end leaves a full 24-hour look-ahead are judged.
    """
    horizon_end = len(smoothed) - WITHIN_HOURS
    eps = [e for e in episodes(active, first=first) if e[0] < horizon_end]
    right_eps = 0
    false_by_cause: dict[str, int] = {}
    for start, end in eps:
        if below_within(smoothed, threshold, end):
            right_eps += 1
        else:  # where false warnings come from: an incident on this metric (a step extrapolated) or not
            kind = cause.get(start, "background")
            false_by_cause[kind] = false_by_cause.get(kind, 0) + 1
    hours = [t for t in range(first, horizon_end) if active[t]]
    right_hours = sum(below_within(smoothed, threshold, t) for t in hours)
    # The base rate: of the hours on the good side, how many see the threshold crossed within 24 h anyway.
    good = [t for t in range(first, horizon_end) if smoothed[t] is not None and smoothed[t] >= threshold]
    good_then_below = sum(below_within(smoothed, threshold, t) for t in good)
    start_of = {}
    for s, e in episodes(active, first=0):
        for t in range(s, e + 1):
            start_of[t] = s
    per_cause: dict[str, dict] = {}
    for c in crossings(smoothed, threshold, first=first + WITHIN_HOURS):
        kind = cause.get(c, "background")
        entry = per_cause.setdefault(kind, {"crossings": 0, "warned": 0, "leads": []})
        entry["crossings"] += 1
        warned = [t for t in range(c - WITHIN_HOURS, c) if active[t]]
        if warned:
            entry["warned"] += 1
            entry["leads"].append(c - start_of[warned[-1]])
    return {
        "episodes": len(eps),
        "right_episodes": right_eps,
        "warning_hours": len(hours),
        "right_hours": right_hours,
        "good_hours": len(good),
        "good_then_below": good_then_below,
        "per_cause": per_cause,
        "false_by_cause": false_by_cause,
    }


def merge_warning_scores(scores: Iterable[dict]) -> dict:
    counts = ("episodes", "right_episodes", "warning_hours", "right_hours", "good_hours", "good_then_below")
    out: dict = dict.fromkeys(counts, 0) | {"per_cause": {}, "false_by_cause": {}}
    for s in scores:
        for k in counts:
            out[k] += s[k]
        for kind, n in s["false_by_cause"].items():
            out["false_by_cause"][kind] = out["false_by_cause"].get(kind, 0) + n
        for kind, e in s["per_cause"].items():
            m = out["per_cause"].setdefault(kind, {"crossings": 0, "warned": 0, "leads": []})
            m["crossings"] += e["crossings"]
            m["warned"] += e["warned"]
            m["leads"] += e["leads"]
    return out


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def summarise_warnings(merged: dict, *, source_weeks: float) -> dict:
    crossings_total = sum(e["crossings"] for e in merged["per_cause"].values())
    warned = sum(e["warned"] for e in merged["per_cause"].values())
    leads = [v for e in merged["per_cause"].values() for v in e["leads"]]
    false_eps = merged["episodes"] - merged["right_episodes"]

    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 3) if b else None

    return {
        "episodes": merged["episodes"],
        "precision_episodes": ratio(merged["right_episodes"], merged["episodes"]),
        "precision_hours": ratio(merged["right_hours"], merged["warning_hours"]),
        "base_rate": ratio(merged["good_then_below"], merged["good_hours"]),
        "false_episodes_per_source_week": round(false_eps / source_weeks, 3) if source_weeks else None,
        "crossings": crossings_total,
        "warned": warned,
        "recall": ratio(warned, crossings_total),
        "lead_median_h": _quantile(leads, 0.5),
        "lead_p90_h": _quantile(leads, 0.9),
        "false_episodes_by_cause": dict(sorted(merged["false_by_cause"].items())),
        "per_cause": {
            kind: {
                "crossings": e["crossings"],
                "warned": e["warned"],
                "recall": ratio(e["warned"], e["crossings"]),
                "lead_median_h": _quantile(e["leads"], 0.5),
                "lead_p90_h": _quantile(e["leads"], 0.9),
            }
            for kind, e in sorted(merged["per_cause"].items())
        },
    }


class ErrorTally:
    """Absolute errors of the forecaster and the naive baselines on the same target hours, and band coverage."""

    def __init__(self) -> None:
        self.abs = {m: array("d") for m in METHODS}
        self.pct = {m: array("d") for m in METHODS}  # volume: |error| / actual on hours of ≥ 10 records
        self.actual_sum = 0.0
        self.inside = 0
        self.widths = array("d")

    @property
    def n(self) -> int:
        return len(self.abs["forecast"])

    def add(self, *, actual: float, predictions: dict[str, float], low: float, high: float, volume: bool) -> None:
        for method, value in predictions.items():
            self.abs[method].append(abs(value - actual))
            if volume and actual >= 10:
                self.pct[method].append(100.0 * abs(value - actual) / actual)
        self.actual_sum += actual
        self.inside += low <= actual <= high
        self.widths.append(high - low if not volume else 100.0 * (high - low) / max(predictions["forecast"], 1.0))

    def merge(self, other: ErrorTally) -> None:
        for m in METHODS:
            self.abs[m].extend(other.abs[m])
            self.pct[m].extend(other.pct[m])
        self.actual_sum += other.actual_sum
        self.inside += other.inside
        self.widths.extend(other.widths)

    def summary(self, *, volume: bool) -> dict:
        if not self.n:
            return {"n": 0}
        out: dict = {"n": self.n, "coverage": round(self.inside / self.n, 3)}
        out["band_width_median"] = round(statistics.median(self.widths), 2)
        for m in METHODS:
            errors = self.abs[m]
            if volume:
                out[m] = {
                    "wape_pct": round(100.0 * sum(errors) / max(self.actual_sum, 1.0), 2),
                    "median_ape_pct": round(statistics.median(self.pct[m]), 2) if self.pct[m] else None,
                }
            else:
                out[m] = {
                    "mae_points": round(sum(errors) / len(errors), 3),
                    "median_ae_points": round(statistics.median(errors), 3),
                }
        key = "wape_pct" if volume else "mae_points"
        for m in METHODS[1:]:
            base = out[m][key]
            out[f"ratio_to_{m}"] = round(out["forecast"][key] / base, 3) if base else None
        return out
