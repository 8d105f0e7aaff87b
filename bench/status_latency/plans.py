"""The SQL the status selector issues (captured in a Django subprocess), EXPLAIN ANALYZEd, and timings of
``pipeline_status`` in-process (no HTTP)."""

from __future__ import annotations

from typing import Any

import psycopg

from bench.lib.database import ALERTS_TABLE, METRICS_TABLE, ROLLUPS_TABLE, RUNS_TABLE, SOURCES_TABLE, run_django

from .config import EXPLAIN_WINDOWS, status_env

CAPTURE_CODE = """
import json, sys, time
from functools import partial
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from monitoring.anomaly.series import recent_anomalies
from monitoring.selectors import pipeline_status

def timed(function, repeat, *, clear=False):
    samples = []
    for _ in range(repeat):
        if clear:
            cache.clear()
        started = time.perf_counter()
        function()
        samples.append(round((time.perf_counter() - started) * 1000, 3))
    return samples

result = {"queries": {}, "timings": {}}
for window in map(int, sys.argv[1:]):
    status = partial(pipeline_status, window_hours=window)
    status()  # the connection and the imports
    cache.clear()  # so that the anomaly query is issued and captured too
    with CaptureQueriesContext(connection) as context:
        status()
    result["queries"][window] = [query["sql"] for query in context.captured_queries]
    result["timings"][window] = {"cold_ms": timed(status, 3, clear=True), "warm_ms": timed(status, 10)}
result["timings"]["recent_anomalies_ms"] = timed(lambda: recent_anomalies(now=timezone.now()), 3)
print("CAPTURED " + json.dumps(result))
"""


def capture_status_sql(url: str) -> tuple[dict[int, list[str]], dict[str, Any]]:
    """The SQL the selector really issues (bound client-side the way Django's psycopg backend does it),
    with an empty anomaly cache, and in-process timings of ``pipeline_status`` without HTTP."""
    captured = run_django(url, CAPTURE_CODE, *map(str, EXPLAIN_WINDOWS), marker="CAPTURED", env=status_env(url))
    queries = {
        int(window): [q for q in queries if q.lstrip(" (").upper().startswith("SELECT")]
        for window, queries in captured["queries"].items()
    }
    return queries, captured["timings"]


def scan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = []
    # Table and index scans only: a Subquery Scan reads its child's rows, not a relation.
    if "Scan" in plan["Node Type"] and plan["Node Type"] != "Subquery Scan":
        nodes.append(
            {
                "node": plan["Node Type"],
                "relation": plan.get("Relation Name"),
                "index": plan.get("Index Name"),
                "index_cond": plan.get("Index Cond"),
                "filter": plan.get("Filter"),
                "rows": plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1),
                "rows_removed_by_filter": plan.get("Rows Removed by Filter", 0),
                "heap_fetches": plan.get("Heap Fetches"),
                "shared_buffers": plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0),
            }
        )
    for child in plan.get("Plans", []):
        nodes.extend(scan_nodes(child))
    return nodes


def explain_query(conn: psycopg.Connection, query: str) -> tuple[str, dict[str, Any]]:
    # First run only warms the cache the same way the benchmark calls did.
    conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query)
    text = "\n".join(row[0] for row in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query))
    document = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query).fetchone()[0][0]
    scans = scan_nodes(document["Plan"])
    summary = {
        "execution_ms": round(document["Execution Time"], 3),
        "planning_ms": round(document["Planning Time"], 3),
        "jit": "JIT" in document,
        "top_node": document["Plan"]["Node Type"],
        "shared_buffers": document["Plan"].get("Shared Hit Blocks", 0) + document["Plan"].get("Shared Read Blocks", 0),
        "scans": scans,
        "index_only": bool(scans) and all(s["node"] == "Index Only Scan" for s in scans),
    }
    return text, summary


def label(query: str) -> str:
    if SOURCES_TABLE in query:
        return "scraping: sources with finished / failed / running / stuck runs"
    if METRICS_TABLE in query and ROLLUPS_TABLE in query:
        return "data_quality: window sums (rollups, edge metrics)"
    if ROLLUPS_TABLE in query:
        return "anomalies: rollups (cache miss only)"
    if ALERTS_TABLE in query:
        return "alerts: active"
    if METRICS_TABLE in query:
        if "GROUP BY" in query.upper():
            return "data_quality: window sums (edge metrics only)"
        return "data_quality newest"
    if RUNS_TABLE in query:
        return "scraping: runs"
    return "other"


def explain_status(url: str) -> tuple[str, dict[str, list[dict[str, Any]]], dict[str, Any]]:
    captured, timings = capture_status_sql(url)
    sections, summaries = [], {}
    with psycopg.connect(url, autocommit=True) as conn:
        for window, queries in captured.items():
            summaries[f"{window}h"] = []
            for query in queries:
                text, summary = explain_query(conn, query)
                summaries[f"{window}h"].append({"query": label(query), "sql": query, **summary})
                sections.append(f"-- window {window} h: {label(query)}\n{query}\n\n{text}\n")
    return "\n".join(sections), summaries, timings


# --- Report -----------------------------------------------------------------------------------
