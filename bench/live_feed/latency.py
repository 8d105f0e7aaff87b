"""Scenarios 1 and 2: snapshot latency (handshake -> first frame) and ingest -> receipt at N clients."""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections import Counter
from datetime import datetime
from typing import Any

from websockets.asyncio.client import connect

from bench.lib.http import http_request
from bench.lib.reports import percentiles
from bench.lib.runtime import log
from bench.lib.wsclient import (
    CHECK_KEYS,
    FRAME_HEAD,
    STATUS_TYPE,
    WS_PATH,
    FeedClient,
    close_clients,
    open_clients,
    sequence_check,
    stamp_seconds,
)

from .config import INGEST_BODY, INGEST_PATH, RECEIPT_TIMEOUT, SETTLE_SECONDS
from .stacks import ProjectStack


def summarize(samples: list[float]) -> dict[str, float]:
    if len(samples) < 2:
        return {"n": len(samples)}
    return percentiles(samples, ("n", "p50", "p90", "p99", "max", "min"))


async def snapshot_latency(url: str, connects: int) -> dict[str, Any]:
    first_frame, handshake, sizes = [], [], Counter()
    for _ in range(connects):
        started = time.perf_counter()
        async with connect(url, compression=None, ping_interval=None, open_timeout=30, close_timeout=10) as ws:
            opened = time.perf_counter()
            text = await asyncio.wait_for(ws.recv(), 30)
            received = time.perf_counter()
        match = FRAME_HEAD.match(text.encode())
        if match is None or match[1] != STATUS_TYPE.encode():
            raise RuntimeError(f"first frame is not a status frame: {text[:200]!r}")
        first_frame.append((received - started) * 1000)
        handshake.append((opened - started) * 1000)
        sizes[len(text.encode())] += 1
    return {"first_frame_ms": summarize(first_frame), "handshake_ms": summarize(handshake), "frame_bytes": dict(sizes)}


def frame_newest(text: str) -> datetime:
    """The newest report a status frame counts. Each POST's metric is newer than any before it,
    whereas the reports count can stand still while old rows leave the window."""
    return datetime.fromisoformat(json.loads(text)["data"]["data_quality"]["last_updated"].replace("Z", "+00:00"))


async def ingest_receipt(
    clients: list[FeedClient], port: int, key: str, args: argparse.Namespace, metric_ids: list[int]
) -> dict[str, Any]:
    """``metric_ids`` collects the ids of the rows written, for the cleanup (also when this fails)."""
    probe = clients[0]
    # Frames from before this round stay: the probe's latest one is the count before the first POST.
    offsets = [len(client.frames) for client in clients]
    checks_before = sequence_check(clients)
    conn = await asyncio.open_connection("127.0.0.1", port)
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
    body = json.dumps(INGEST_BODY).encode()
    ingests: list[dict[str, Any]] = []
    last_newest = probe_newest = None
    try:
        own_start, wall_start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for _ in range(args.ingests):
            before = probe_newest if probe_newest is not None else await latest_newest(probe)
            started = time.perf_counter()
            status, answer = await http_request(port, "POST", INGEST_PATH, body=body, headers=headers, conn=conn)
            committed, committed_wall = time.perf_counter(), time.time()
            if status != 201:
                raise RuntimeError(f"ingest answered {status}: {answer[:300]!r}")
            metric_ids.extend(json.loads(answer)["ids"])
            ingests.append(
                {"started": started, "committed": committed, "committed_wall": committed_wall, "newest_before": before}
            )
            # The next POST needs the probe to have seen this one, or it would take a stale "before".
            deadline = started + RECEIPT_TIMEOUT
            while time.perf_counter() < deadline:
                if probe.texts and (last_newest := frame_newest(probe.texts[-1])) > before:
                    break
                await asyncio.sleep(0.01)
            probe_newest = last_newest
            await asyncio.sleep(max(0.0, started + args.ingest_gap - time.perf_counter()))
        await asyncio.sleep(0.5)
        own_end, wall_end = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    finally:
        conn[1].close()

    from_commit, from_request, missed, early = [], [], 0, 0
    # The frame's own timestamp (taken when the broadcaster built it) splits the wait in two: until the
    # status went out, and the fan-out to this client (same clock: one machine).
    to_stamp: dict[int, float] = {}
    from_stamp = []
    for client, offset in zip(clients, offsets, strict=True):
        frames, texts = client.frames[offset:], client.texts[offset:]
        parsed = [(frame[0], frame_newest(text), text) for frame, text in zip(frames, texts, strict=True)]
        for number, ingest in enumerate(ingests):
            hit = next(
                (
                    (perf, text)
                    for perf, newest, text in parsed
                    if perf > ingest["started"] and newest > ingest["newest_before"]
                ),
                None,
            )
            if hit is None or hit[0] - ingest["started"] > RECEIPT_TIMEOUT:
                missed += 1
                continue
            perf, text = hit
            early += perf < ingest["committed"]
            from_commit.append((perf - ingest["committed"]) * 1000)
            from_request.append((perf - ingest["started"]) * 1000)
            stamped = stamp_seconds(FRAME_HEAD.match(text.encode())[4])
            to_stamp[number] = (stamped - ingest["committed_wall"]) * 1000
            from_stamp.append((ingest["committed_wall"] + (perf - ingest["committed"]) - stamped) * 1000)
    post_ms = [(i["committed"] - i["started"]) * 1000 for i in ingests]
    checks = sequence_check(clients)
    own_cpu = (own_end.ru_utime + own_end.ru_stime) - (own_start.ru_utime + own_start.ru_stime)
    return {
        "clients": len(clients),
        "ingests": len(ingests),
        "pairs": len(clients) * len(ingests),
        "missed_pairs": missed,
        "received_before_response": early,
        "from_commit_ms": summarize(from_commit),
        "from_request_ms": summarize(from_request),
        "commit_to_frame_stamp_ms": summarize(list(to_stamp.values())),
        "frame_stamp_to_receipt_ms": summarize(from_stamp),
        "post_ms": summarize(post_ms),
        "client_cpu_share": round(own_cpu / (wall_end - wall_start), 3),
        "sequence": {key: checks[key] - checks_before[key] for key in CHECK_KEYS},
    }


async def latest_newest(probe: FeedClient) -> datetime:
    """The newest report of the status the probe holds."""
    await asyncio.wait_for(asyncio.shield(probe.first), 10)
    if probe.texts:
        return frame_newest(probe.texts[-1])
    raise RuntimeError("the ingest probe has no status frame")


async def ingest_scenario(args, stack: ProjectStack, key: str, metric_ids: list[int]) -> list[dict[str, Any]]:
    clients, failures = await open_clients(stack.ports[0], WS_PATH, args.ingest_clients, tracker=None, keep_text=True)
    try:
        await asyncio.sleep(SETTLE_SECONDS)
        rounds = []
        for number in range(1, args.rounds + 1):
            result = await ingest_receipt(clients, stack.ports[0], key, args, metric_ids)
            result["connect_failures"] = failures
            rounds.append(result)
            log(
                f"ingest round {number} ({len(clients)} clients): from commit p50 "
                f"{result['from_commit_ms'].get('p50')} ms, p99 {result['from_commit_ms'].get('p99')} ms, "
                f"missed {result['missed_pairs']}, client CPU {result['client_cpu_share']:.0%}"
            )
        return rounds
    finally:
        await close_clients(clients)
