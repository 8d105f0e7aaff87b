"""The anomaly-tick bench (bench/anomaly_tick) end to end in a tiny configuration on the test database.

3 sources x 2 days and 2 of each: the fill (rollups derived by the triggers), every case's own checks
(a fresh judgement read; a stale one, the hour turn and the first tick each starting the judging thread
and answering what was shown before; ticks beside the thread; one hour fed or a rebuild), the direct
judgements, the profiled rebuild and the results files. Judging runs in the background as in
production, in a thread with its own database connection, hence committed rows (a transactional
test). No timing is asserted: the figures of a loaded test machine say nothing about the budget.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bench.anomaly_tick.measure import DURING, JUDGING, TICK_CASES, Plan, run
from bench.anomaly_tick.report import STEM, build_report, machine_facts, render_markdown, uptime
from bench.lib import reports
from monitoring.selectors import anomalies

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TINY = Plan(sources=3, days=2, ticks=2, turns=2, firsts=2, lived_hours=1)


@pytest.fixture
def background(settings):
    settings.MONITORING_ANOMALY_BACKGROUND = True
    anomalies._worker = None
    yield
    assert anomalies.wait_for_judgement(timeout=60)
    anomalies._worker = None


def test_tiny_run_writes_every_case(background, tmp_path, monkeypatch):
    monkeypatch.setattr(reports, "RESULTS", tmp_path)  # never the committed bench/results
    started = datetime.now(UTC)
    report = build_report(run(TINY), machine=machine_facts(uptime_start=uptime()), started=started)
    reports.write_results(STEM, report, render_markdown(report))

    written = json.loads((tmp_path / f"{STEM}.json").read_text())
    assert written["plan"]["sources"] == 3
    assert written["data"]["metric_rows"] > 0 and written["data"]["rollup_rows"] > 0
    assert written["data"]["written_while_ticking"]["metrics"] > 0
    assert written["context"]["background"] is True
    cases = written["cases"]
    assert list(cases) == list(TICK_CASES)
    single = {"fresh": TINY.ticks, "refresh_notice": TINY.ticks, "hour_turn_notice": TINY.turns}
    for case, pairs in (single | {"first_tick": TINY.firsts}).items():
        for side in ("on_ms", "off_ms"):
            assert cases[case][side]["n"] == pairs
            assert cases[case][side]["p50"] > 0
        assert set(cases[case]["added_ms"]) == set(cases[case]["budget_ratio"]) == {"p50", "p90"}
        assert isinstance(cases[case]["within_budget"], bool)
        assert len(cases[case]["samples"]["paired"]) == pairs
    for case in DURING.values():
        # As many ticks with nothing running as beside the thread (up to --ticks per judgement).
        beside = cases[case]["on_ms"]["n"]
        assert cases[case]["quiet_ms"]["n"] == cases[case]["off_ms"]["n"] <= beside
        assert (cases[case]["contention_ms"] is None) == (beside == 0)
    assert cases["first_tick"]["ready_sources"] == 0  # every source "starting" on the first tick
    assert cases["fresh"]["ready_sources"] == 3  # 2 days are more than the 24 hours a detector needs

    judging = written["judging"]
    assert list(judging) == list(JUDGING)
    counts = {"within_hour": TINY.ticks, "hour_turn": TINY.turns, "rebuild": TINY.firsts}
    for kind, count in counts.items():
        assert judging[kind]["direct"]["wall"]["n"] == count
        assert judging[kind]["direct"]["statements"]["p50"] >= 1
        assert judging[kind]["background"]["wall"]["n"] == count
    profile = written["rebuild_profile"]
    assert profile["profiled_ms"] > 0 and profile["modules"] and profile["functions"]
    assert written["context"]["budget_ms"] == 20.0
    assert len(written["context"]["loadavg_before"]) == 3
    assert written["steady_state"]["ticks_per_refresh"] >= 1
    assert written["machine"]["uptime_start"] and written["machine"]["uptime_end"]

    markdown = (tmp_path / f"{STEM}.md").read_text()
    assert markdown.startswith("# Anomaly detection in a broadcaster tick at 3 sources")
    for title in ("first tick of a process", "during the rebuild", "What judging costs"):
        assert title in markdown
