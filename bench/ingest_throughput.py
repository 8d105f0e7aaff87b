"""Bulk ingest throughput of ``POST /api/v1/monitoring/metrics`` served by daphne, against a raw COPY.

Serves the real ASGI app with daphne (pinned to one CPU, Redis channel layer so every commit sends
its push hint as in production), POSTs batches of 1, 100, 1000 and 5000 metrics over one keep-alive
connection from this process (pinned to the other CPU), and, in the same round with the same rows,
loads them with a raw psycopg ``COPY`` into the same table: the ceiling. Both run with the database
triggers of migration 0004 in place (checked before measuring): the hourly rollups are maintained by
the rollup trigger for the API's inserts and for the COPY alike. After every measurement the database
must hold exactly the rows sent (count, sums, returned ids) and the hourly rollups must add up to them.

    .venv/bin/python -m bench.ingest_throughput [--rounds 3] [--database-url URL] [--redis-url URL]

The database (default ``conflict_monitor_bench_ingest``, name must contain "bench") is dedicated to
this bench: its metric and rollup tables are truncated before every measurement. ``DATABASE_URL`` is
not read, so the status bench's filled database is never truncated by mistake.

Writes bench/results/ingest_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis

from bench.lib.database import (
    COUNT_COLUMNS,
    METRIC_COLUMNS,
    METRICS_TABLE,
    ROLLUPS_TABLE,
    SOURCES,
    create_token,
    database_name,
    delete_token,
    prepare_schema,
    refuse_foreign_database,
    user_triggers,
)
from bench.lib.http import KeepAliveClient
from bench.lib.machine import code_state, machine_info, versions
from bench.lib.processes import (
    Service,
    as_set,
    cleanup_redis,
    cpu_plan,
    daphne_command,
    django_env,
    free_port,
    pinned_to,
    wait_for_health,
)
from bench.lib.reports import median, write_results
from bench.lib.runtime import DEFAULT_REDIS_URL, RESULTS, arg_parser, begin, log

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/conflict_monitor_bench_ingest"
INGEST_PATH = "/api/v1/monitoring/metrics"
TARGET_ROWS_PER_SECOND = 10_000
SEED = 20261202

# (label, rows per request, requests per measurement, with an Idempotency-Key). Request counts keep
# every measurement at 1-4 s on the 2-CPU VM; the keyed case is the same batch plus the idempotency
# record and request fingerprint a retrying pipeline pays for.
CASES = (
    ("1", 1, 200, False),
    ("100", 100, 80, False),
    ("1000", 1000, 24, False),
    ("5000", 5000, 8, False),
    ("5000 + Idempotency-Key", 5000, 8, True),
)
WARMUP_REQUESTS = 5


def parse_args() -> argparse.Namespace:
    parser = arg_parser("ingest_throughput", __doc__)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every case (default 3; medians need 3+)")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help=f"bench database, truncated before every measurement (default {DEFAULT_DATABASE_URL})",
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3 (the figures are medians of rounds)")
    return args


# --- Data -------------------------------------------------------------------------------------


def make_batches(size: int, count: int, rng: random.Random) -> list[list[dict[str, Any]]]:
    """``count`` batches of ``size`` valid metrics: 20 sources, timestamps in the last hour."""
    now = datetime.now(UTC)
    sources = [name for name, *_ in SOURCES]
    batches = []
    for _ in range(count):
        batch = []
        for _ in range(size):
            geocoding, validation = rng.randint(50, 2000), rng.randint(50, 2000)
            moment = now - timedelta(seconds=rng.randint(60, 3600), microseconds=rng.randint(0, 999_999))
            batch.append(
                {
                    "source": rng.choice(sources),
                    "timestamp": moment.isoformat().replace("+00:00", "Z"),
                    "geocoding_attempts": geocoding,
                    "geocoding_successes": rng.randint(0, geocoding),
                    "validation_attempts": validation,
                    "validation_passes": rng.randint(0, validation),
                }
            )
        batches.append(batch)
    return batches


def expected_totals(batches: list[list[dict[str, Any]]]) -> dict[str, int]:
    rows = [row for batch in batches for row in batch]
    return {"rows": len(rows), **{column: sum(row[column] for row in rows) for column in COUNT_COLUMNS}}


def truncate(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(f"TRUNCATE {METRICS_TABLE}, {ROLLUPS_TABLE}")


def verify(url: str, expected: dict[str, int], *, ids: list[int] | None) -> dict[str, Any]:
    """Every row committed exactly once: counts and sums match what was sent, and the hourly rollups
    (kept by the trigger, for COPY too) add up to them; for the API also every returned id exists once."""
    sums = ", ".join(f"coalesce(sum({column}), 0)" for column in COUNT_COLUMNS)
    with psycopg.connect(url) as conn:
        stored = conn.execute(f"SELECT count(*), {sums} FROM {METRICS_TABLE}").fetchone()
        found = dict(zip(["rows", *COUNT_COLUMNS], stored, strict=True))
        problems = [f"{k}: stored {found[k]}, sent {v}" for k, v in expected.items() if found[k] != v]
        if ids is not None:
            if len(ids) != expected["rows"] or len(set(ids)) != len(ids):
                problems.append(f"{len(ids)} ids returned ({len(set(ids))} distinct) for {expected['rows']} rows")
            matched = conn.execute(f"SELECT count(*) FROM {METRICS_TABLE} WHERE id = ANY(%s)", [ids]).fetchone()[0]
            if matched != expected["rows"]:
                problems.append(f"{matched} of the returned ids stored")
        rollup = conn.execute(f"SELECT coalesce(sum(reports), 0), {sums} FROM {ROLLUPS_TABLE}").fetchone()
        if list(rollup) != [expected[k] for k in ("rows", *COUNT_COLUMNS)]:
            problems.append(f"rollups hold {rollup[0]} reports and sums {list(rollup[1:])}")
    if problems:
        raise RuntimeError("ingest verification failed: " + "; ".join(problems))
    return {"rows": found["rows"], "ok": True}


# --- Measurements -----------------------------------------------------------------------------


def summarize(latencies_ms: list[float], rows: int, seconds: float, cpu_seconds: float | None) -> dict[str, Any]:
    ordered = sorted(latencies_ms)
    p99_index = min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))
    return {
        "requests": len(ordered),
        "rows": rows,
        "seconds": round(seconds, 4),
        "rows_per_second": round(rows / seconds, 1),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[p99_index], 2),
        "max_ms": round(ordered[-1], 2),
        "server_cpu_us_per_row": None if cpu_seconds is None else round(cpu_seconds * 1e6 / rows, 1),
    }


class IngestClient(KeepAliveClient):
    """One keep-alive connection POSTing with the ingest token."""

    def __init__(self, port: int, key: str) -> None:
        super().__init__(
            port, timeout=120, headers={"Authorization": f"Token {key}", "Content-Type": "application/json"}
        )

    def post(self, body: bytes, idempotency_key: str | None) -> tuple[float, list[int]]:
        headers = None if idempotency_key is None else {"Idempotency-Key": idempotency_key}
        elapsed_ms, response, payload = self.request("POST", INGEST_PATH, body=body, headers=headers)
        if response.status != 201:
            raise RuntimeError(f"POST answered {response.status}: {payload[:500]!r}")
        answer = json.loads(payload)
        if response.getheader("Idempotent-Replayed") or answer["created"] != len(answer["ids"]):
            raise RuntimeError(f"unexpected ingest answer: {payload[:300]!r}")
        return elapsed_ms, answer["ids"]


def measure_api(client: IngestClient, daphne: Service, bodies: list[bytes], rows: int, keyed: bool):
    keys = [f"bench-{secrets.token_hex(8)}" if keyed else None for _ in bodies]
    latencies, ids = [], []
    cpu_before = daphne.cpu_seconds()
    started = time.perf_counter()
    for body, key in zip(bodies, keys, strict=True):
        elapsed, created = client.post(body, key)
        latencies.append(elapsed)
        ids.extend(created)
    seconds = time.perf_counter() - started
    return summarize(latencies, rows, seconds, daphne.cpu_seconds() - cpu_before), ids


def copy_rows(batches: list[list[dict[str, Any]]]) -> list[list[tuple]]:
    """The API's rows as COPY tuples: the same values, ``ingested_at`` stamped per batch like ingest does."""
    return [
        [
            (
                datetime.fromisoformat(row["timestamp"]),
                row["source"],
                "batch",
                *(row[column] for column in COUNT_COLUMNS),
            )
            for row in batch
        ]
        for batch in batches
    ]


def measure_copy(url: str, batches: list[list[tuple]], rows: int) -> dict[str, Any]:
    """One COPY and one commit per batch over one connection: the least a batch can cost."""
    statement = f"COPY {METRICS_TABLE} ({', '.join(METRIC_COLUMNS)}) FROM STDIN"
    latencies = []
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for batch in batches:
            began = time.perf_counter()
            now = datetime.now(UTC)
            with conn.cursor() as cursor, cursor.copy(statement) as copy:
                for row in batch:
                    copy.write_row((*row, now))
            conn.commit()
            latencies.append((time.perf_counter() - began) * 1000)
        seconds = time.perf_counter() - started
    return summarize(latencies, rows, seconds, None)


def run_rounds(args: argparse.Namespace, url: str, key: str, daphne: Service, port: int) -> dict[str, Any]:
    rng = random.Random(SEED)
    data = {}
    for label, size, requests, keyed in CASES:
        batches = make_batches(size, requests, rng)
        data[label] = {
            "batches": batches,
            "bodies": [json.dumps(batch).encode() for batch in batches],
            "copy": copy_rows(batches),
            "expected": expected_totals(batches),
            "keyed": keyed,
        }
    client = IngestClient(port, key)
    try:
        # Imports, DRF, the pool and the first plans, outside the timed requests.
        truncate(url)
        for label, *_ in CASES:
            for body in data[label]["bodies"][:WARMUP_REQUESTS]:
                client.post(body, None)
        results: dict[str, dict[str, list]] = {label: {"api": [], "copy": [], "verified": []} for label, *_ in CASES}
        for round_number in range(1, args.rounds + 1):
            for label, *_ in CASES:
                case = data[label]
                truncate(url)
                api, ids = measure_api(client, daphne, case["bodies"], case["expected"]["rows"], case["keyed"])
                api["verified"] = verify(url, case["expected"], ids=ids)
                truncate(url)
                ceiling = measure_copy(url, case["copy"], case["expected"]["rows"])
                ceiling["verified"] = verify(url, case["expected"], ids=None)
                results[label]["api"].append(api)
                results[label]["copy"].append(ceiling)
                log(
                    f"round {round_number} {label:>22}: API {api['rows_per_second']:>9,.0f} rows/s "
                    f"(p50 {api['p50_ms']} ms), COPY {ceiling['rows_per_second']:>9,.0f} rows/s"
                )
        truncate(url)
    finally:
        client.close()
    cases = {}
    for label, size, requests, keyed in CASES:
        api_rounds, copy_rounds = results[label]["api"], results[label]["copy"]
        per_round_ratio = [
            round(a["rows_per_second"] / c["rows_per_second"], 3) for a, c in zip(api_rounds, copy_rounds, strict=True)
        ]
        cases[label] = {
            "batch_size": size,
            "requests_per_round": requests,
            "idempotency_key": keyed,
            "api_rounds": api_rounds,
            "copy_rounds": copy_rounds,
            "api_rows_per_second": median(a["rows_per_second"] for a in api_rounds),
            "api_p50_ms": median(a["p50_ms"] for a in api_rounds),
            "api_p99_ms": median(a["p99_ms"] for a in api_rounds),
            "server_cpu_us_per_row": median(a["server_cpu_us_per_row"] for a in api_rounds),
            "copy_rows_per_second": median(c["rows_per_second"] for c in copy_rounds),
            "copy_p50_ms": median(c["p50_ms"] for c in copy_rounds),
            "ratio_api_to_copy_per_round": per_round_ratio,
            "ratio_api_to_copy": median(per_round_ratio),
        }
    return {"cases": cases, "client": {"requests": client.requests, "reconnects": client.reconnects}}


# --- Report -----------------------------------------------------------------------------------


def render_markdown(report: dict[str, Any]) -> str:
    config, cases = report["config"], report["cases"]
    pinning = config["pinning"]
    server = "not pinned" if pinning["server_cpu"] is None else f"CPU {pinning['server_cpu']}"
    client = "not pinned" if pinning["client_cpu"] is None else f"CPU {pinning['client_cpu']}"
    lines = [
        "# Bulk ingest throughput",
        "",
        f"{report['date']} · `POST {INGEST_PATH}` served by daphne "
        f"({server}), one keep-alive client ({client}), "
        f"PostgreSQL {report['machine']['postgres']} (not pinned), Redis channel layer; "
        f"{config['rounds']} rounds, tables truncated before every measurement. "
        f"Ceiling: raw psycopg `COPY` of the same rows into the same table, one transaction per batch, "
        f"same round. Target: {TARGET_ROWS_PER_SECOND:,} rows/s at 5000-row batches.",
        "",
        "Median of the rounds (rows/s over the whole sequence of requests; p50/p99 per request):",
        "",
        "| batch | requests/round | API rows/s | p50 ms | p99 ms | daphne CPU µs/row | COPY rows/s | COPY p50 ms "
        "| API / COPY |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, case in cases.items():
        lines.append(
            f"| {label} | {case['requests_per_round']} | **{case['api_rows_per_second']:,.0f}** | "
            f"{case['api_p50_ms']:.1f} | {case['api_p99_ms']:.1f} | {case['server_cpu_us_per_row']:,.0f} | "
            f"{case['copy_rows_per_second']:,.0f} | {case['copy_p50_ms']:.1f} | {case['ratio_api_to_copy']:.2f} |"
        )
    lines += [
        "",
        "Every round (API rows/s · COPY rows/s · ratio):",
        "",
        "| batch | " + " | ".join(f"round {i + 1}" for i in range(config["rounds"])) + " |",
        "|---|" + "---:|" * config["rounds"],
    ]
    for label, case in cases.items():
        rounds = zip(case["api_rounds"], case["copy_rounds"], case["ratio_api_to_copy_per_round"], strict=True)
        cells = [f"{a['rows_per_second']:,.0f} · {c['rows_per_second']:,.0f} · {r:.2f}" for a, c, r in rounds]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    target = cases["5000"]["api_rows_per_second"]
    lines += [
        "",
        f"Target at 5000-row batches: {target:,.0f} rows/s "
        f"({'met' if target >= TARGET_ROWS_PER_SECOND else 'NOT met'}; target {TARGET_ROWS_PER_SECOND:,}).",
        "",
        "Every measurement was verified: the table held exactly the rows sent (count and the sums of the four "
        "counts), every returned id once (API), and the hourly rollups added up to the rows (API and COPY). "
        "Both pay the rollup maintenance: the statement-level trigger of migration 0004 "
        f"({', '.join(report['triggers'])}) fires for the API's insert and for the COPY alike. "
        "The API also validates, serialises and sends a push hint per commit.",
        f"Client: {report['client']['requests']} requests, {report['client']['reconnects']} reconnects. "
        f"Wall time {report['wall_time_seconds']} s.",
        "",
    ]
    return "\n".join(lines)


def ingest_machine_info(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
        synchronous_commit = conn.execute("SHOW synchronous_commit").fetchone()[0]
    return machine_info(
        postgres=server,
        synchronous_commit=synchronous_commit,
        versions=versions("django", "djangorestframework", "daphne", "psycopg"),
    )


def main() -> None:
    started = begin()
    args = parse_args()
    url = args.database_url
    refuse_foreign_database(url, "--database-url")
    redis.Redis.from_url(args.redis_url).ping()
    schema = prepare_schema(url, by="bench/ingest_throughput")
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        triggers = [name.split(".", 1)[1] for name in user_triggers(cursor) if name.startswith(METRICS_TABLE + ".")]
    if "monitoring_rollups_insert" not in triggers:
        raise SystemExit(f"the rollup triggers of migration 0004 are not installed on {METRICS_TABLE}: {triggers}")
    run_id = secrets.token_hex(4)
    token_name = f"bench-ingest-{run_id}"
    key = create_token(url, token_name)
    prefix = f"bench-ingest-{run_id}"
    server_cpu, client_cpu = cpu_plan()
    port = free_port()
    env = {
        **django_env(url),
        "REDIS_URL": args.redis_url,
        "CHANNEL_LAYER_PREFIX": prefix,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    daphne = Service(
        "daphne",
        daphne_command(port, "conflict_monitor.asgi:application"),
        env=env,
        cpus=as_set(server_cpu),
        log_path=RESULTS / "ingest_throughput_daphne.log.tmp",
    )
    try:
        wait_for_health(daphne, port)
        with pinned_to(client_cpu):
            measured = run_rounds(args, url, key, daphne, port)
    finally:
        daphne.stop()
        cleanup_redis(args.redis_url, prefix)
        with psycopg.connect(url) as conn:
            conn.execute("DELETE FROM monitoring_idempotencyrecord")
        delete_token(url, token_name)
    report = {
        "benchmark": "ingest_throughput",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "rounds": args.rounds,
            "database": database_name(url),
            "pinning": {"server_cpu": server_cpu, "client_cpu": client_cpu},
            "warmup_requests_per_case": WARMUP_REQUESTS,
            "target_rows_per_second": TARGET_ROWS_PER_SECOND,
        },
        "schema": schema,
        "triggers": triggers,
        **measured,
        "machine": ingest_machine_info(url),
        "code": code_state(None),
    }
    report["wall_time_seconds"] = round(time.perf_counter() - started, 1)
    write_results("ingest_throughput", report, render_markdown(report))


if __name__ == "__main__":
    main()
