"""``cm-report`` as a shell or cron pipeline runs it: a process, its output, its exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clients.python.helpers import on_server, stored_links, stored_metrics
from tests.integration.cluster import free_port

CM_REPORT = Path(sys.executable).with_name("cm-report")


def cm_report(*args: str, url: str | None, key: str | None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    assert CM_REPORT.exists(), f"{CM_REPORT} is missing: make .venv/.installed installs the client"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFLICT_MONITOR_")}
    env.update({"CONFLICT_MONITOR_URL": url or "", "CONFLICT_MONITOR_TOKEN": key or ""})
    return subprocess.run(
        [str(CM_REPORT), "--attempts", "2", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def _run(run_id: int) -> tuple[str, str, int, int]:
    from monitoring.models import PipelineRun

    run = PipelineRun.objects.get(pk=run_id)
    return run.status, run.error, run.items_in, run.items_out


@on_server
def test_a_shell_pipeline_starts_a_run_reports_and_finishes_it(server_url, server_key):
    started = cm_report("run", "start", "--source", "acled", "--stage", "scrape", url=server_url, key=server_key)
    assert started.returncode == 0, started.stderr
    run_id = int(started.stdout)
    assert _run(run_id)[0] == "running"
    metric = ["metrics", "--source", "acled", "--run-id", str(run_id), "--geocoding-attempts", "120"]
    metric += ["--geocoding-successes", "108"]
    reported = cm_report(*metric, url=server_url, key=server_key)
    assert (reported.returncode, json.loads(reported.stdout)) == (0, {"stored": 1, "replayed": 0}), reported.stderr
    finished = cm_report(
        "run", "finish", str(run_id), "--items-in", "120", "--items-out", "118", url=server_url, key=server_key
    )
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["status"] == "succeeded"
    assert _run(run_id) == ("succeeded", "", 120, 118)
    assert stored_metrics() == [("acled", "batch", 120, 108, 0, 0)]
    assert stored_links() == [(run_id, "scrape")], "linked to the run, of its stage"


@on_server
def test_run_exec_runs_the_command_in_a_run_and_exits_with_its_status(server_url, server_key):
    from monitoring.models import PipelineRun

    wrap = ["run", "exec", "--source", "acled", "--stage", "geocode", "--"]
    ok = cm_report(*wrap, "sh", "-c", "echo geocoded", url=server_url, key=server_key)
    failed = cm_report(*wrap, "sh", "-c", "exit 3", url=server_url, key=server_key)
    missing = cm_report(*wrap, "/nonexistent/geocode.sh", url=server_url, key=server_key)
    assert (ok.returncode, ok.stdout) == (0, "geocoded\n"), ok.stderr
    assert (failed.returncode, missing.returncode) == (3, 127)
    runs = list(PipelineRun.objects.order_by("id").values_list("stage", "status", "error"))
    assert runs[:2] == [("geocode", "succeeded", ""), ("geocode", "failed", "sh exited with status 3")]
    assert runs[2][1] == "failed" and runs[2][2].startswith("FileNotFoundError")


@on_server
def test_a_file_of_metrics_is_stored_in_batches_and_a_re_run_stores_nothing_twice(server_url, server_key):
    lines = [
        json.dumps({"source": "acled", "timestamp": f"2026-12-07T0{n}:00:00Z", "geocoding_attempts": 10 * n})
        for n in range(5)
    ]
    stdin = "\n".join(lines) + "\n"
    answers = []
    for _ in range(2):  # cron ran the same job twice
        result = cm_report("metrics", "--jsonl", "-", "--batch-size", "2", url=server_url, key=server_key, stdin=stdin)
        assert result.returncode == 0, result.stderr
        answers.append(json.loads(result.stdout))
    assert answers == [{"stored": 5, "replayed": 0}, {"stored": 5, "replayed": 5}]
    assert stored_metrics() == [("acled", "batch", 10 * n, 0, 0, 0) for n in range(5)]


@on_server
def test_the_servers_refusal_is_printed_with_its_message_and_exits_1(server_url, server_key):
    run_id = cm_report("run", "start", "--source", "acled", "--stage", "scrape", url=server_url, key=server_key).stdout
    assert cm_report("run", "fail", run_id.strip(), "--error", "boom", url=server_url, key=server_key).returncode == 0
    again = cm_report("run", "finish", run_id.strip(), url=server_url, key=server_key)
    assert again.returncode == 1 and again.stdout == ""
    assert f"run_already_finished (HTTP 409): Run {run_id.strip()} already finished as failed." in again.stderr


def test_a_token_the_server_does_not_know_exits_3(server_url):
    result = cm_report("metrics", "--source", "acled", url=server_url, key="cm_000000000000_" + "x" * 43)
    assert result.returncode == 3
    assert "authentication_failed (HTTP 401): 1 metric(s) not sent: Invalid or revoked token." in result.stderr


def test_no_server_exits_4_after_its_attempts():
    result = cm_report("metrics", "--source", "acled", url=f"http://127.0.0.1:{free_port()}", key="cm_x")
    assert result.returncode == 4
    assert "connection_failed" in result.stderr and "(attempt 2)" in result.stderr


def test_an_invalid_line_sends_nothing_and_is_named():
    stdin = '{"source": "acled"}\n{"source": "acled", "geocoding_attempts": 1, "geocoding_successes": 2}\n[]\n'
    result = cm_report("metrics", "--jsonl", "-", url=f"http://127.0.0.1:{free_port()}", key="cm_x", stdin=stdin)
    assert result.returncode == 1
    assert "line 2: geocoding_successes: Cannot exceed geocoding_attempts." in result.stderr
    assert "line 3: Not a JSON object." in result.stderr and "connection_failed" not in result.stderr


@pytest.mark.parametrize(
    ("args", "url", "message"),
    [
        (["metrics", "--source", "acled"], None, "the server's URL and an ingest token are needed"),
        (["metrics"], "http://127.0.0.1:9", "give either --source"),
        (["run", "exec", "--source", "a", "--stage", "scrape"], "http://127.0.0.1:9", "give the command after --"),
        (["run", "start", "--source", "a", "--stage", "load"], "http://127.0.0.1:9", "invalid choice: 'load'"),
        (["metrics", "--source", "a", "--timestamp", "2026-12-07T12:00"], "http://127.0.0.1:9", "has no UTC offset"),
    ],
    ids=["no-url", "no-source", "no-command", "bad-stage", "naive-time"],
)
def test_wrong_arguments_exit_2_and_say_why(args, url, message):
    result = cm_report(*args, url=url, key="cm_x")
    assert result.returncode == 2 and message in result.stderr
