"""The development world: deterministic, incidents where they are said to be, partial hours, samplers."""

import random
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.anomaly.detector import GEOCODING_SUCCESS_RATE, VALIDATION_PASS_RATE, VOLUME, HourCounts
from monitoring.anomaly.synthetic import (
    DEFAULT_START,
    DEGRADATION,
    KINDS,
    LEVEL_DROP,
    OUTAGE,
    RATE_DROP,
    SPIKE,
    VALIDATION_STEP,
    Incident,
    _beta_binomial,
    _binomial,
    _effect,
    _negative_binomial,
    _poisson,
    generate,
    partial_counts,
)

PROPERTIES = settings(max_examples=100, deadline=None, database=None)
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def world():
    # 45 days leave room for every kind on every source (incidents are two days apart).
    return generate(seed=7, days=45, sources=6)


def draws(sample, count=4000, seed=1):
    rng = random.Random(seed)
    return [sample(rng) for _ in range(count)]


# -- determinism ----------------------------------------------------------------------------------


def test_another_seed_gives_another_world():
    first, second = generate(seed=3, days=12, sources=2), generate(seed=4, days=12, sources=2)
    assert first.profiles != second.profiles
    assert first.series != second.series


def test_a_sources_profile_and_series_do_not_depend_on_how_many_sources_there_are():
    two, five = generate(seed=3, days=12, sources=2), generate(seed=3, days=12, sources=5)
    assert five.profiles[:2] == two.profiles
    assert {name: five.series[name] for name in two.series} == two.series


def test_the_world_describes_itself():
    world = generate(seed=3, days=12, sources=2, kinds=(OUTAGE, SPIKE))
    assert world.description == {
        "seed": 3,
        "days": 12,
        "sources": 2,
        "kinds": [OUTAGE, SPIKE],
        "incidents": len(world.incidents),
    }
    assert (world.start, world.hours, world.seed) == (DEFAULT_START, 12 * 24, 3)


def test_every_source_has_one_row_per_consecutive_utc_hour(world):
    for rows in world.series.values():
        assert [row.hour for row in rows] == [DEFAULT_START + i * HOUR for i in range(world.hours)]


def test_an_unknown_incident_kind_is_refused():
    with pytest.raises(ValueError, match="unknown incident kinds"):
        generate(seed=1, days=12, sources=1, kinds=("meteor",))


# -- incidents ------------------------------------------------------------------------------------


def test_every_source_gets_one_incident_of_every_kind(world):
    per_source = Counter((i.source, i.kind) for i in world.incidents)
    assert set(per_source.values()) == {1}
    assert len(per_source) == len(world.profiles) * len(KINDS)


def test_incidents_lie_inside_the_range_after_the_first_week(world):
    for incident in world.incidents:
        assert incident.start >= 8 * 24
        assert incident.start + incident.length < world.hours


def test_a_sources_incidents_are_at_least_two_days_apart(world):
    for profile in world.profiles:
        mine = sorted((i.start, i.start + i.length) for i in world.incidents if i.source == profile.name)
        for (_, end), (start, _) in zip(mine, mine[1:], strict=False):
            assert start - end >= 48


@pytest.mark.parametrize(
    ("kind", "metrics", "lengths", "magnitudes"),
    [
        (LEVEL_DROP, {VOLUME}, (2, 12), (0.05, 0.4)),
        (OUTAGE, {VOLUME}, (1, 12), (0.0, 0.0)),
        (SPIKE, {VOLUME}, (1, 4), (3.0, 6.0)),
        (RATE_DROP, {GEOCODING_SUCCESS_RATE, VALIDATION_PASS_RATE}, (1, 12), (5.0, 30.0)),
        (VALIDATION_STEP, {VALIDATION_PASS_RATE}, (12, 48), (5.0, 15.0)),
        (DEGRADATION, {GEOCODING_SUCCESS_RATE, VOLUME}, (24, 48), (0.25, 15.0)),
    ],
)
def test_each_kind_has_its_metric_length_and_magnitude(world, kind, metrics, lengths, magnitudes):
    mine = [i for i in world.incidents if i.kind == kind]
    assert mine
    for incident in mine:
        assert incident.metric in metrics
        assert lengths[0] <= incident.length <= lengths[1]
        assert magnitudes[0] <= incident.magnitude <= magnitudes[1]
        assert incident.direction == ("spike" if kind == SPIKE else "drop")


def test_a_source_that_never_delivers_late_has_nothing_during_an_outage(world):
    punctual = {p.name for p in world.profiles if p.late_probability == 0}
    outages = [i for i in world.incidents if i.kind == OUTAGE and i.source in punctual]
    assert outages
    for outage in outages:
        rows = world.series[outage.source][outage.start : outage.start + outage.length]
        assert {row.geocoding_attempts for row in rows} == {0}


def test_a_degradation_slides_in_over_four_hours_and_other_incidents_start_at_full_strength():
    def incident(kind):
        return Incident(source="s", kind=kind, metric=VOLUME, start=10, length=30, magnitude=0.3)

    slide = [_effect(incident(DEGRADATION), index) for index in range(9, 16)]
    assert slide == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [_effect(incident(LEVEL_DROP), index) for index in (9, 10, 39, 40)] == [0.0, 1.0, 1.0, 0.0]


@pytest.mark.xfail(
    strict=True,
    reason="generate() places incidents with 200 tries and silently drops a kind that does not fit: "
    "with 20 days (seed 3) no source gets validation_step or degradation, with 30 days one source lacks a "
    "degradation, although the docstring promises one incident of every kind per source",
)
def test_a_shorter_world_still_gets_one_incident_of_every_kind_per_source():
    world = generate(seed=3, days=20, sources=3)
    assert Counter(i.kind for i in world.incidents) == dict.fromkeys(KINDS, 3)


@pytest.mark.xfail(
    strict=True,
    raises=ValueError,
    reason="generate() places every kind even when none is asked for, and with days <= 9 (the default first_day "
    "is 8) random.randrange(first, hours - length - 1) raises 'empty range for randrange()'",
)
def test_a_clean_world_of_nine_days_can_be_generated():
    world = generate(seed=1, days=9, sources=1, kinds=())
    assert world.incidents == ()
    assert len(world.series["source-00"]) == 9 * 24


# -- partial_counts -------------------------------------------------------------------------------


def closed_hour(records: int, successes: int, passes: int) -> HourCounts:
    return HourCounts(
        hour=datetime(2025, 3, 3, 10, tzinfo=UTC),
        geocoding_attempts=records,
        geocoding_successes=successes,
        validation_attempts=records,
        validation_passes=passes,
    )


@st.composite
def hours(draw):
    records = draw(st.integers(min_value=0, max_value=5000))
    successes = draw(st.integers(min_value=0, max_value=records))
    passes = draw(st.integers(min_value=0, max_value=records))
    return closed_hour(records, successes, passes)


FIELDS = ("geocoding_attempts", "geocoding_successes", "validation_attempts", "validation_passes")


@PROPERTIES
@given(hours(), st.floats(min_value=0.0, max_value=1.0), st.integers(min_value=0, max_value=2**32))
def test_a_partial_hour_never_holds_more_than_the_closed_hour(counts, fraction, seed):
    partial = partial_counts(counts, fraction=fraction, rng=random.Random(seed))
    assert partial.hour == counts.hour
    for name in FIELDS:
        assert 0 <= getattr(partial, name) <= getattr(counts, name), name
    assert partial.geocoding_successes <= partial.geocoding_attempts
    assert partial.validation_passes <= partial.validation_attempts


@PROPERTIES
@given(hours(), st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=2, max_size=6), st.integers(0, 2**32))
def test_with_the_same_draws_a_later_view_of_the_hour_holds_at_least_as_much(counts, fractions, seed):
    views = [partial_counts(counts, fraction=f, rng=random.Random(seed)) for f in sorted(fractions)]
    for name in FIELDS:
        values = [getattr(view, name) for view in views]
        assert values == sorted(values), name


@pytest.mark.parametrize("records", [40, 1000])  # both branches of the binomial
def test_the_whole_hour_is_the_closed_hour_and_none_of_it_is_empty(records):
    counts = closed_hour(records, round(0.9 * records), round(0.95 * records))
    assert partial_counts(counts, fraction=1.0, rng=random.Random(1)) == counts
    assert partial_counts(counts, fraction=0.0, rng=random.Random(1)) == HourCounts(hour=counts.hour)


@pytest.mark.parametrize("records", [40, 1000])
def test_on_average_the_share_elapsed_has_arrived(records):
    counts = closed_hour(records, round(0.9 * records), round(0.95 * records))
    rng = random.Random(2)
    arrived = [partial_counts(counts, fraction=0.3, rng=rng).geocoding_attempts for _ in range(2000)]
    assert statistics.mean(arrived) == pytest.approx(0.3 * records, rel=0.02)


# -- samplers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("lam", [0.0, 3.0, 40.0, 500.0])  # both branches of the Poisson sampler
def test_the_poisson_sampler_has_the_right_mean_and_variance(lam):
    values = draws(lambda rng: _poisson(rng, lam))
    assert statistics.mean(values) == pytest.approx(lam, rel=0.05, abs=1e-9)
    assert statistics.variance(values) == pytest.approx(lam, rel=0.1, abs=1e-9)


def test_the_negative_binomial_sampler_has_its_mean_and_extra_variance():
    values = draws(lambda rng: _negative_binomial(rng, 200.0, 0.05))
    assert statistics.mean(values) == pytest.approx(200, rel=0.03)
    assert statistics.variance(values) == pytest.approx(200 + 0.05 * 200**2, rel=0.1)
    assert draws(lambda rng: _negative_binomial(rng, 0.0, 0.05), count=10) == [0] * 10


@pytest.mark.parametrize(("n", "p"), [(30, 0.3), (1000, 0.9)])
def test_the_binomial_sampler_has_the_right_mean(n, p):
    values = draws(lambda rng: _binomial(rng, n, p))
    assert statistics.mean(values) == pytest.approx(n * p, rel=0.02)
    assert statistics.variance(values) == pytest.approx(n * p * (1 - p), rel=0.1)
    assert all(0 <= v <= n for v in values)


def test_the_binomial_sampler_clamps_its_probability_and_needs_trials():
    assert draws(lambda rng: _binomial(rng, 50, 1.3), count=5) == [50] * 5
    assert draws(lambda rng: _binomial(rng, 50, -0.2), count=5) == [0] * 5
    assert draws(lambda rng: _binomial(rng, 0, 0.5), count=5) == [0] * 5


def test_the_beta_binomial_sampler_has_the_binomial_mean_and_the_inflated_variance():
    n, p, rho = 1000, 0.9, 0.01
    values = draws(lambda rng: _beta_binomial(rng, n, p, rho))
    assert statistics.mean(values) == pytest.approx(n * p, rel=0.01)
    assert statistics.variance(values) == pytest.approx(n * p * (1 - p) * (1 + (n - 1) * rho), rel=0.15)
