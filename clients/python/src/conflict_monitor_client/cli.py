"""``cm-report``: report runs and metrics from a shell or cron pipeline.

    RUN=$(cm-report run start --source acled --stage geocode)
    cm-report metrics --source acled --run-id "$RUN" --geocoding-attempts 120 --geocoding-successes 108
    cm-report run finish "$RUN" --items-out 118        # or: cm-report run fail "$RUN" --error "..."
    cm-report run exec --source acled --stage scrape -- ./scrape.sh   # start, run, finish or fail

The server's URL and token come from --url/--token (or --token-file) or CONFLICT_MONITOR_URL /
CONFLICT_MONITOR_TOKEN. Exit codes are in ``EXIT_CODES`` (and README.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from conflict_monitor_client.client import Monitor
from conflict_monitor_client.errors import (
    AuthenticationFailed,
    ConflictMonitorError,
    ConnectionFailed,
    InvalidReport,
    MetricsNotSent,
    PermissionDenied,
    RateLimited,
    ServerError,
    describe_fields,
)
from conflict_monitor_client.reports import COUNT_FIELDS, Metric, make_metric
from conflict_monitor_client.retry import RetryPolicy
from conflict_monitor_client.runs import STAGES, failure_message

OK, REFUSED, USAGE, UNAUTHORISED, UNAVAILABLE = 0, 1, 2, 3, 4
EXIT_CODES = {
    OK: "done",
    REFUSED: "the server refused the request (a 4xx other than 401/403), or the input is invalid",
    USAGE: "wrong arguments",
    UNAUTHORISED: "the token is missing, unknown or revoked, or not allowed (401/403)",
    UNAVAILABLE: "no answer, 429 or 5xx after every retry: try again later",
}
_METRIC_KEYS = frozenset({"source", "metric_type", "timestamp", "run_id", "stage", *COUNT_FIELDS})


def _timestamp(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date-time: {value!r}") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no UTC offset (add Z or +00:00)")
    return when


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"not a count (an integer >= 0): {value!r}")
    return int(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cm-report",
        description="Report pipeline runs and data-quality metrics to Conflict Monitor.",
        epilog="exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()),
    )
    parser.add_argument("--url", default=os.environ.get("CONFLICT_MONITOR_URL"), help="$CONFLICT_MONITOR_URL")
    parser.add_argument(
        "--token",
        default=os.environ.get("CONFLICT_MONITOR_TOKEN"),
        help="$CONFLICT_MONITOR_TOKEN (a flag's value shows in the process list: prefer the variable or --token-file)",
    )
    parser.add_argument("--token-file", type=Path, help="read the token from this file")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (10)")
    parser.add_argument("--attempts", type=int, default=5, help="tries per request, retries included (5)")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start, finish or fail a pipeline run, or wrap a command in one")
    actions = run.add_subparsers(dest="action", required=True)
    start = actions.add_parser("start", help="start a run; prints its id")
    _run_identity(start)
    start.add_argument("--started-at", type=_timestamp)
    for name, help_text in (("finish", "finish a run as succeeded"), ("fail", "finish a run as failed")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("run_id", type=int)
        action.add_argument("--error", required=name == "fail", help="what went wrong")
        action.add_argument("--finished-at", type=_timestamp)
        _items(action)
    wrap = actions.add_parser("exec", help="start a run, run COMMAND, finish the run by its exit status")
    _run_identity(wrap)
    _items(wrap)
    wrap.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG ...]")

    metrics = commands.add_parser("metrics", help="store one metric, or a file of them (--jsonl)")
    metrics.add_argument("--source")
    metrics.add_argument("--metric-type", default="batch")
    metrics.add_argument("--timestamp", type=_timestamp, help="the report's time (default now); fix it for re-runs")
    metrics.add_argument("--run-id", type=int, help="the run that reported it (`run start` printed its id)")
    metrics.add_argument("--stage", choices=STAGES, help="the stage that reported it (default: the run's)")
    for name in COUNT_FIELDS:
        metrics.add_argument(f"--{name.replace('_', '-')}", dest=name, type=_count, default=0)
    metrics.add_argument("--jsonl", help="a file ('-': standard input) of JSON objects, one metric per line")
    metrics.add_argument("--batch-size", type=int, default=500, help="metrics per request (1-5000; 500)")
    return parser


def _run_identity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True)
    parser.add_argument("--stage", required=True, choices=STAGES)


def _items(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--items-in", type=_count)
    parser.add_argument("--items-out", type=_count)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.token_file is not None:
        try:
            args.token = args.token_file.read_text().strip()
        except OSError as exc:
            parser.error(f"--token-file: {exc}")
    if not args.url or not args.token:
        parser.error("the server's URL and an ingest token are needed: --url/--token or CONFLICT_MONITOR_URL/_TOKEN")
    if args.command == "metrics" and (args.jsonl is None) == (args.source is None):
        parser.error("metrics: give either --source (one metric) or --jsonl (a file of them)")
    if args.command == "run" and args.action == "exec":
        args.argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not args.argv:
            parser.error("run exec: give the command after --")
    try:
        monitor = Monitor(
            args.url,
            args.token,
            timeout=args.timeout,
            batch_size=getattr(args, "batch_size", 500),
            retry=RetryPolicy(max_attempts=args.attempts),
        )
    except ValueError as exc:
        parser.error(str(exc))
    with monitor:
        try:
            return _dispatch(monitor, args)
        except ConflictMonitorError as exc:
            return _fail(exc)


def _dispatch(monitor: Monitor, args: argparse.Namespace) -> int:
    if args.command == "metrics":
        metrics = _read_jsonl(args.jsonl) if args.jsonl else [_one_metric(args)]
        sent = monitor.send_metrics(metrics)
        _print({"stored": sent.metrics, "replayed": sent.replayed})
        return OK
    if args.action == "start":
        print(monitor.start_run(args.source, args.stage, started_at=args.started_at).id)
        return OK
    if args.action == "exec":
        return _exec(monitor, args)
    record = monitor.finish_run(
        args.run_id,
        status="succeeded" if args.action == "finish" else "failed",
        error=args.error,
        items_in=args.items_in,
        items_out=args.items_out,
        finished_at=args.finished_at,
    )
    _print(dataclasses.asdict(record))
    return OK


def _one_metric(args: argparse.Namespace) -> Metric:
    return make_metric(
        source=args.source,
        metric_type=args.metric_type,
        timestamp=args.timestamp,
        run_id=args.run_id,
        stage=args.stage,
        **{name: getattr(args, name) for name in COUNT_FIELDS},
    )


def _read_jsonl(path: str) -> list[Metric]:
    """Every line's metric, all checked before any is sent: a bad line sends nothing."""
    try:
        stream: TextIO = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise InvalidReport({"jsonl": [str(exc)]}) from None
    metrics = []
    errors: dict[str, list[str]] = {}
    with stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                metrics.append(_metric_from_json(json.loads(line)))
            except InvalidReport as exc:
                errors[f"line {number}"] = [describe_fields(exc.fields)]
            except ValueError as exc:  # not JSON, not an object, unknown fields
                errors[f"line {number}"] = [str(exc)]
    if errors:
        raise InvalidReport(errors)
    if not metrics:
        raise InvalidReport({"jsonl": ["No metric in the file."]})
    return metrics


def _metric_from_json(item: Any) -> Metric:
    if not isinstance(item, dict):
        raise ValueError("Not a JSON object.")
    unknown = sorted(set(item) - _METRIC_KEYS)
    if unknown:
        raise ValueError(f"Unknown field(s): {', '.join(unknown)}.")
    if "source" not in item:
        raise ValueError("source: required.")
    fields = dict(item)
    if isinstance(fields.get("timestamp"), str):
        try:
            fields["timestamp"] = _timestamp(fields["timestamp"])
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"timestamp: {exc}") from None
    return make_metric(**fields)


def _exec(monitor: Monitor, args: argparse.Namespace) -> int:
    """Run the command inside a run; exits with the command's status (the reporting error's code when the
    command succeeded and the reporting did not)."""
    record = monitor.start_run(args.source, args.stage)
    error: str | None
    try:
        returncode = subprocess.run(args.argv, check=False).returncode  # noqa: S603 (the user's own command)
        error = _status_message(args.argv[0], returncode) if returncode else None
        # A shell reports a command killed by signal N as 128 + N.
        status = 128 - returncode if returncode < 0 else returncode
    except OSError as exc:  # not found, not executable
        status, error = 127, failure_message(exc)
    except KeyboardInterrupt:
        status, error = 130, "interrupted (KeyboardInterrupt)"
    try:
        monitor.finish_run(
            record.id,
            status="failed" if error else "succeeded",
            error=error,
            items_in=args.items_in,
            items_out=args.items_out,
        )
    except ConflictMonitorError as exc:
        code = _fail(exc)
        return status or code
    return status


def _status_message(command: str, status: int) -> str:
    if status < 0:
        return f"{command} was killed by {signal.Signals(-status).name}"
    return f"{command} exited with status {status}"


def _fail(exc: ConflictMonitorError) -> int:
    message = f"cm-report: {exc}"
    if exc.request_id:
        message += f" (request id {exc.request_id})"
    for note in getattr(exc, "__notes__", ()):
        message += f"\n  {note}"
    print(message, file=sys.stderr)
    cause = exc.__cause__ if isinstance(exc, MetricsNotSent) else exc
    if isinstance(cause, AuthenticationFailed | PermissionDenied):
        return UNAUTHORISED
    if isinstance(cause, ConnectionFailed | RateLimited | ServerError):
        return UNAVAILABLE
    return REFUSED


def _print(value: Any) -> None:
    print(json.dumps(value, separators=(",", ":")))


if __name__ == "__main__":
    sys.exit(main())
