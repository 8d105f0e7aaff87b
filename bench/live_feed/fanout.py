"""Scenarios 3 and 4: fan-out at N clients (connects/s, RSS, lag, CPU per message) and the rate ladder."""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
from typing import Any

from bench.lib.processes import cpu_busy_seconds
from bench.lib.runtime import log
from bench.lib.wsclient import (
    CHECK_KEYS,
    WS_PATH,
    FeedClient,
    Tracker,
    close_clients,
    open_client,
    open_clients,
    sequence_check,
    stamp_seconds,
)

from .config import (
    BACKLOG_TIMEOUT,
    BASE_RATE,
    CLIENT_BOUND_SHARE,
    CLIENT_CORE_BOUND_SHARE,
    DRAIN_SECONDS,
    FOREIGN_LIMIT_SHARE,
    LADDER_START_SHARE,
    LAG_BOUND_MS,
    LAG_GROWTH_MS,
    SETTLE_SECONDS,
)
from .latency import summarize


class Cpus:
    """The CPU plan: where the servers run, where the load generator runs."""

    def __init__(self, server_cpu: int | None, client_cpu: int | None) -> None:
        self.server_cpu, self.client_cpu = server_cpu, client_cpu
        self.server = None if server_cpu is None else {server_cpu}
        self.client = None if client_cpu is None else {client_cpu}


def readings(stack, cpus: Cpus) -> tuple:
    """(wall clock, perf_counter, servers' (user, system) CPU, servers' exact CPU, the other processes' CPU,
    server core and client core (busy, steal), this process's rusage): a window's start or end."""
    return (
        time.time(),
        time.perf_counter(),
        [server.cpu_times() for server in stack.servers],
        [server.cpu_seconds() for server in stack.servers],
        [other.cpu_seconds() for other in stack.others],
        cpu_busy_seconds(cpus.server_cpu),
        cpu_busy_seconds(cpus.client_cpu),
        resource.getrusage(resource.RUSAGE_SELF),
    )


async def measure_window(
    stack,
    clients: list[FeedClient],
    tracker: Tracker,
    *,
    rate: float,
    seconds: float,
    cpus: Cpus,
    published_after: float,
) -> dict[str, Any]:
    """One window at ``rate``: starts right after a fan-out, published since ``published_after`` (the
    publisher's start), that every client received; frames published in the window must reach every
    client within DRAIN_SECONDS after it."""
    count = len(clients)
    # A new broadcaster boots Django first: a few seconds when the machine is busy.
    aligned = await tracker.wait_new_complete(timeout=max(15.0, 3.0 / rate), published_after=published_after)
    for client in clients:
        client.frames.clear()
    checks_before = sequence_check(clients)
    (wall_start, perf_start, cpu_start, exact_start, others_start, server_core_start, client_core_start, own_start) = (
        readings(stack, cpus)
    )
    await asyncio.sleep(seconds)
    (wall_end, perf_end, cpu_end, exact_end, others_end, server_core_end, client_core_end, own_end) = readings(
        stack, cpus
    )
    for server in stack.servers:
        server.alive()

    def window_seqs() -> list[int]:
        return sorted(s for s, stamp in tracker.stamps.items() if wall_start <= stamp_seconds(stamp) <= wall_end)

    drain_deadline = perf_end + DRAIN_SECONDS
    while any(tracker.counts.get(seq, 0) < count for seq in window_seqs()) and time.perf_counter() < drain_deadline:
        await asyncio.sleep(0.05)
    drained = time.perf_counter() - perf_end
    seen = window_seqs()
    # Seqs of the status topic are consecutive: one that no client got at all is still in the range.
    seqs = list(range(seen[0], seen[-1] + 1)) if seen else []
    wanted = set(seqs)
    third = max(1, len(seqs) // 3)
    early_seqs, late_seqs = set(seqs[:third]), set(seqs[-third:])
    delivered, lags, early, late = 0, [], [], []
    for client in clients:
        for perf, wall, seq, stamp in client.frames:
            if perf_start < perf <= perf_end:
                delivered += 1
            if seq in wanted:
                lag = (wall - stamp_seconds(stamp)) * 1000
                lags.append(lag)
                if seq in early_seqs:
                    early.append(lag)
                if seq in late_seqs:
                    late.append(lag)
    growth = statistics.median(late) - statistics.median(early) if early and late else 0.0
    checks = sequence_check(clients)
    wall = wall_end - wall_start
    user = sum(end[0] - start[0] for start, end in zip(cpu_start, cpu_end, strict=True))
    system = sum(end[1] - start[1] for start, end in zip(cpu_start, cpu_end, strict=True))
    cpu = sum(end - start for start, end in zip(exact_start, exact_end, strict=True))
    own_cpu = (own_end.ru_utime + own_end.ru_stime) - (own_start.ru_utime + own_start.ru_stime)
    span = stamp_seconds(tracker.stamps[seen[-1]]) - stamp_seconds(tracker.stamps[seen[0]]) if seen else 0.0
    achieved = (seen[-1] - seen[0]) / span if span > 0 else 0.0
    latency = summarize(lags)
    result = {
        "rate": rate,
        "rate_achieved": round(achieved, 2),
        "publishes": len(seqs),
        "clients": count,
        "aligned": aligned is not None,
        "window_seconds": round(wall, 3),
        "frames_delivered": delivered,
        "frames_per_second": round(delivered / wall, 1),
        "lost_pairs": len(seqs) * count - len(lags),
        "drain_seconds": round(drained, 2),
        "latency_ms": latency,
        "lag_growth_ms": round(growth, 1),
        "server_cpu_seconds": round(cpu, 3),
        "server_cpu_share": round(cpu / wall, 3),
        "server_cpu_us_per_frame": round(cpu / delivered * 1e6, 2) if delivered else None,
        "server_user_us_per_frame": round(user / delivered * 1e6, 2) if delivered else None,
        "server_system_us_per_frame": round(system / delivered * 1e6, 2) if delivered else None,
        "other_cpu_seconds": {
            s.name: round(end - start, 3) for s, start, end in zip(stack.others, others_start, others_end, strict=True)
        },
        "client_cpu_share": round(own_cpu / wall, 3),
        "client_core_busy_share": None
        if client_core_start is None
        else round((client_core_end[0] - client_core_start[0]) / wall, 3),
        # Everything else that ran on the server's CPU in the window (other processes, interrupts):
        # when this is high the machine was busy and the figures are pessimistic.
        "server_cpu_foreign_share": None
        if server_core_start is None
        else round((server_core_end[0] - server_core_start[0] - cpu) / wall, 3),
        "server_cpu_steal_share": None
        if server_core_start is None
        else round((server_core_end[1] - server_core_start[1]) / wall, 3),
        "sequence": {key: checks[key] - checks_before[key] for key in CHECK_KEYS},
    }
    result["client_bound"] = result["client_cpu_share"] >= CLIENT_BOUND_SHARE
    result["client_core_saturated"] = (result["client_core_busy_share"] or 0.0) >= CLIENT_CORE_BOUND_SHARE
    result["publisher_bound"] = len(seqs) >= 2 and achieved < 0.9 * rate
    broken = sum(result["sequence"][key] for key in ("gaps", "repeats", "out_of_order", "epoch_changes", "resyncs"))
    reasons = []
    if len(seqs) < 2:
        reasons.append(f"fewer than 2 of the window's publishes reached any client within {DRAIN_SECONDS:g} s")
    if result["lost_pairs"]:
        reasons.append(f"{result['lost_pairs']} (client, frame) pairs not delivered within {DRAIN_SECONDS:g} s")
    if broken:
        reasons.append(f"{broken} sequence faults")
    if latency.get("p99", 0.0) > LAG_BOUND_MS:
        reasons.append(f"p99 lag {latency.get('p99', float('nan')):.0f} ms > {LAG_BOUND_MS:.0f} ms")
    if growth > LAG_GROWTH_MS:
        reasons.append(f"lag grew by {growth:.0f} ms over the window")
    if result["publisher_bound"]:
        reasons.append(f"publisher reached {achieved:.2f}/s of {rate:g}/s")
    result["kept_up"] = not reasons
    result["failed_because"] = reasons
    return result


async def wait_backlog(tracker: Tracker, timeout: float = BACKLOG_TIMEOUT) -> float | None:
    """With the publisher paused: seconds until every client holds the newest frame (None: timeout)."""
    started = time.perf_counter()
    while tracker.backlog():
        if time.perf_counter() - started > timeout:
            return None
        await asyncio.sleep(0.1)
    return round(time.perf_counter() - started, 2)


async def ladder(stack, clients, tracker, *, args, cpus: Cpus, base: dict[str, Any]) -> dict[str, Any]:
    """Sustained broadcasts/s at this N: the highest ladder rate whose window keeps up (every frame to
    every client, no sequence fault, p99 lag <= LAG_BOUND_MS) while the next rate up does not, or is
    the ladder's top. The base window is the step at BASE_RATE. The first step tried is the highest
    rate whose CPU, extrapolated from the base window, stays under LADDER_START_SHARE of a core; from
    there the ladder goes up while steps keep up, or down until one does."""
    rates = args.rates
    steps: dict[float, dict[str, Any]] = {BASE_RATE: base}
    rate = BASE_RATE
    if base["kept_up"]:
        us = base["server_cpu_us_per_frame"] or 0.0
        rate = max((r for r in rates if r * len(clients) * us / 1e6 <= LADDER_START_SHARE), default=BASE_RATE)
    while True:
        if rate not in steps:
            since = time.time()
            await stack.set_rate(rate)
            # At least 3 publishes per window, or the lag-growth check has nothing to compare.
            seconds = max(args.window_seconds, 3.0 / rate)
            steps[rate] = await measure_window(
                stack, clients, tracker, rate=rate, seconds=seconds, cpus=cpus, published_after=since
            )
            step = steps[rate]
            log(
                f"  {stack.kind} N={len(clients)} {rate:g}/s: "
                f"{'kept up' if step['kept_up'] else 'failed: ' + '; '.join(step['failed_because'])}, "
                f"p99 {step['latency_ms'].get('p99')} ms, CPU {step['server_cpu_share']:.0%}, "
                f"client CPU {step['client_cpu_share']:.0%}"
            )
            if not step["kept_up"]:
                stack.pause()
                await wait_backlog(tracker)
        index = rates.index(rate)
        if steps[rate]["kept_up"]:
            if index + 1 == len(rates) or rates[index + 1] in steps:
                break
            rate = rates[index + 1]
        else:
            if index == 0 or rates[index - 1] in steps:
                break
            rate = rates[index - 1]
    passing = [r for r, step in steps.items() if step["kept_up"]]
    best = max(passing, default=0.0)
    above = [r for r in rates if r > best]
    failed_above = steps.get(above[0]) if above else None
    if not above:
        limit = "ladder top"
    elif failed_above is None:
        limit = "not measured"
    elif failed_above["publisher_bound"]:
        limit = "publisher"
    elif failed_above["client_bound"]:
        limit = "client-bound"
    elif failed_above["client_core_saturated"]:
        limit = "load generator's core saturated"
    elif (failed_above["server_cpu_foreign_share"] or 0.0) > FOREIGN_LIMIT_SHARE:
        limit = "other load on the server's core"
    else:
        limit = "server"
    stack.pause()
    return {
        "sustained_per_second": best,
        "limited_by": limit,
        "steps": [steps[r] for r in sorted(steps)],
    }


async def grow(stack, clients: list[FeedClient], tracker: Tracker, *, server: int, count: int) -> dict[str, Any]:
    """Connect up to ``count`` clients on server ``server`` with the publisher paused."""
    new = count - len(clients)
    started = time.perf_counter()
    path = WS_PATH if stack.kind == "project" else "/"
    added, failures = await open_clients(stack.ports[server], path, new, tracker=tracker, keep_text=False)
    seconds = time.perf_counter() - started
    clients.extend(added)
    return {
        "new": new,
        "failures": failures,
        "seconds": round(seconds, 2),
        "per_second": round(len(added) / seconds, 1) if seconds else None,
    }


def combined_cpu(windows: list[dict[str, Any]]) -> float | None:
    """µs of server CPU per delivered frame over several windows (short windows alone are coarse)."""
    kept = [w for w in windows if w["frames_delivered"]]
    frames = sum(w["frames_delivered"] for w in kept)
    return round(sum(w["server_cpu_seconds"] for w in kept) / frames * 1e6, 2) if frames else None


async def fanout_round(stack, args, cpus: Cpus, *, full_ladder: bool) -> list[dict[str, Any]]:
    """One round on one server kind: N grows over args.clients (one process), then to
    args.two_process_clients over two; then the ladder runs at the largest single-process N and, with
    ``full_ladder``, at every smaller one too, largest first."""
    tracker = Tracker()
    clients: list[FeedClient] = []
    second: list[FeedClient] = []
    stages: list[dict[str, Any]] = []
    await stack.start(BASE_RATE)
    try:
        for number in range(len(stack.servers)):
            path = WS_PATH if stack.kind == "project" else "/"
            warm = await open_client(stack.ports[number], path, tracker=None, keep_text=False)
            await asyncio.wait_for(asyncio.shield(warm.first), 30)
            await warm.close()
        stack.pause()
        await asyncio.sleep(0.5)
        rss_base = [server.rss_bytes() for server in stack.servers]
        plan = [(n, 0) for n in args.clients]
        if args.two_process_clients:
            plan.append((args.two_process_clients, 1))
        for count, server in plan:
            stack.pause()
            if server == 0:
                connect = await grow(stack, clients, tracker, server=0, count=count)
            else:
                connect = await grow(stack, second, tracker, server=1, count=count - len(clients))
            everyone = clients + second
            tracker.expected = len(everyone)
            await asyncio.sleep(SETTLE_SECONDS)
            rss = [server.rss_bytes() for server in stack.servers]
            since = time.time()
            stack.resume()
            window = await measure_window(
                stack,
                everyone,
                tracker,
                rate=BASE_RATE,
                seconds=args.window_seconds,
                cpus=cpus,
                published_after=since,
            )
            stack.pause()
            backlog = await wait_backlog(tracker) if not window["kept_up"] else 0.0
            used = [0] if server == 0 else [0, 1]
            rss_delta = sum(rss[i] - rss_base[i] for i in used)
            stage = {
                "clients": len(everyone),
                "processes": len(used),
                "connect": connect,
                "rss_mb": [round(value / 2**20, 1) for value in rss],
                "rss_base_mb": [round(value / 2**20, 1) for value in rss_base],
                "rss_per_connection_kb": round(rss_delta / len(everyone) / 1024, 1),
                "base": window,
                "backlog_drained_seconds": backlog,
            }
            stages.append(stage)
            log(
                f"{stack.kind} N={len(everyone)} ({len(used)} proc): {connect['per_second']} connects/s, "
                f"{stage['rss_per_connection_kb']} KB/conn, p99 {window['latency_ms'].get('p99')} ms at "
                f"{BASE_RATE:g}/s, {window['server_cpu_us_per_frame']} µs CPU/frame, "
                f"{'kept up' if window['kept_up'] else 'failed: ' + '; '.join(window['failed_because'])}, "
                f"client CPU {window['client_cpu_share']:.0%}"
            )
        if second:
            await close_clients(second)
            second.clear()
            tracker.expected = len(clients)
            await wait_backlog(tracker)
        single = [s for s in stages if s["processes"] == 1]
        for stage in reversed(single if full_ladder else single[-1:]):
            count = stage["clients"]
            if len(clients) > count:
                await close_clients(clients[count:])
                del clients[count:]
                tracker.expected = len(clients)
            stage["ladder"] = await ladder(stack, clients, tracker, args=args, cpus=cpus, base=stage["base"])
            stage["server_cpu_us_per_frame_all_windows"] = combined_cpu(stage["ladder"]["steps"])
            log(
                f"{stack.kind} N={count}: sustained {stage['ladder']['sustained_per_second']:g}/s "
                f"({stage['ladder']['limited_by']}), {stage['server_cpu_us_per_frame_all_windows']} µs CPU/frame "
                "over all windows"
            )
        for stage in stages:
            # One rate for every round and N, so the figure and its ratio compare like with like.
            stage["server_cpu_us_per_frame"] = stage["base"]["server_cpu_us_per_frame"]
        await close_clients(clients)
        released = await stack.slots_released(timeout=5.0)
        stages[-1]["slots_released_seconds"] = released
        return stages
    finally:
        await close_clients(clients + second)
        stack.stop()


# Where daphne's samples go. A sample belongs to the first bucket (in this order: from the socket
