"""The optional profile round (``--profile``): py-spy samples by bucket, exact GC time, strace syscalls."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.lib.processes import Service
from bench.lib.runtime import RESULTS, ROOT, VENV_BIN, log
from bench.lib.wsclient import WS_PATH, FeedClient, close_clients, open_clients

from .config import SETTLE_SECONDS
from .stacks import ProjectStack

# Where daphne's samples go. A sample belongs to the first bucket (in this order: from the socket
# up to the consumer) with a frame in its stack. Markers name functions rather than files where a
# file also holds callers of everything (the middleware stack, the consumer's __call__).
PROFILE_BUCKETS = (
    (
        "Twisted write path on asyncio (add_writer/remove_writer = epoll_ctl, doWrite -> send)",
        (
            "FileDescriptor.",
            "AsyncioSelectorReactor.addWriter",
            "AsyncioSelectorReactor.removeWriter",
            "AsyncioSelectorReactor._readOrWrite",
            "writeSomeData",
            "ConnectionMixin.write",
            "untilConcludes",
            "callWithLogger",
            "_ContinuousPolling",
        ),
    ),
    ("autobahn framing", ("autobahn/",)),
    ("daphne reply handling", ("Server.handle_reply", "daphne/ws_protocol.py")),
    ("channels session wrapper on every send", ("InstanceSessionWrapper.send", "django/contrib/sessions")),
    ("channels_redis pub/sub receive, per-channel queues, msgpack", ("channels_redis/", "msgpack")),
    (
        "project consumer (dispatch, feed_frame, _deliver, _send_frame)",
        ("PipelineStatusConsumer.dispatch", "feed_frame", "_deliver", "_send_frame", "monitoring/feed/fanout.py"),
    ),
    (
        "channels consumer loop (await_many_dispatch: asyncio.wait + Queue per message)",
        (
            "await_many_dispatch",
            "AsyncConsumer.send",
            "AsyncWebsocketConsumer.send",
            "asyncio/queues.py",
            "asyncio/tasks.py",
        ),
    ),
    ("redis-py", ("redis/",)),
)


def _frame_name(frame: str) -> str:
    """``func (path/file.py:12)`` -> ``func (path/file.py)``: one entry per function, not per line."""
    return re.sub(r":\d+\)$", ")", frame)


def _bucket(frames: list[str]) -> str:
    for name, markers in PROFILE_BUCKETS:
        if any(marker in frame for frame in frames for marker in markers):
            return name
    return "event loop and the rest (select, Handle._run, call_soon, futures)"


def summarize_profile(collapsed: str, top: int = 25) -> dict[str, Any]:
    """Buckets, self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame_name(frame) for frame in stack.split(";")]
        own[frames[-1]] += count
        buckets[_bucket(frames)] += count
        for frame in set(frames):
            inclusive[frame] += count

    def share(count: int) -> float:
        return round(100 * count / total, 1) if total else 0.0

    return {
        "samples": total,
        "buckets": [(name, share(n)) for name, n in buckets.most_common()],
        "self_top": [(name, share(n)) for name, n in own.most_common(top)],
        "inclusive_top": [(name, share(n)) for name, n in inclusive.most_common(top * 2)],
    }


def is_idle_sample(frames: list[str]) -> bool:
    """Waiting, not working: the thread pool's idle workers and the loop's epoll_wait."""
    python = [frame for frame in frames if ".py" in frame]
    return bool(python) and (
        python[-1].startswith("_worker (concurrent/futures/thread.py")
        or python[-1].startswith(("EpollSelector.select", "select (selectors.py"))
    )


def busy_stacks(collapsed: str) -> str:
    kept = []
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit() and not is_idle_sample(stack.split(";")):
            kept.append(line)
    return "\n".join(kept)


async def gc_totals(service: Service, path: Path, timeout: float = 5.0) -> dict[str, Any]:
    """Ask the GC probe in ``service`` for its totals (SIGUSR1) and read them."""
    previous = path.stat().st_mtime_ns if path.exists() else 0
    os.kill(service.pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_mtime_ns != previous:
            return json.loads(path.read_text())
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the GC probe in {service.name} did not answer")


def parse_strace_summary(text: str) -> dict[str, int]:
    calls = {}
    for line in text.splitlines():
        parts = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total" and parts[3].isdigit():
            calls[parts[-1]] = int(parts[3])
    return calls


def frames_received(clients: list[FeedClient]) -> int:
    return sum(client.received for client in clients)


async def profile_round(args, server_cpus, other_cpus) -> dict[str, Any] | None:
    """A separate, unmeasured fan-out round: py-spy (samples), a GC probe (exact GC time) and strace -c
    (syscalls per delivered frame) on daphne. Not part of the figures above: the probes perturb it."""
    spy = VENV_BIN / "py-spy"
    if not spy.exists():
        log("py-spy is not installed in .venv; skipping the profile")
        return None
    gc_path = RESULTS / "live_feed_gc_probe.json.tmp"
    gc_path.unlink(missing_ok=True)
    probe_env = {"PYTHONPATH": str(ROOT / "bench" / "gc_probe"), "LIVE_FEED_GC_PROBE": str(gc_path)}
    stack = ProjectStack(
        args,
        label="profile",
        processes=1,
        interval=1.0 / args.profile_rate,
        server_cpus=server_cpus,
        other_cpus=other_cpus,
        daphne_env=probe_env,
    )
    output = RESULTS / "live_feed_profile.collapsed.tmp"
    result: dict[str, Any] = {}
    try:
        await stack.start()
        clients, _failures = await open_clients(
            stack.ports[0], WS_PATH, args.profile_clients, tracker=None, keep_text=False
        )
        try:
            await asyncio.sleep(SETTLE_SECONDS)
            gc_start, cpu_start, frames_start = (
                await gc_totals(stack.servers[0], gc_path),
                stack.servers[0].cpu_seconds(),
                frames_received(clients),
            )
            command = [str(spy), "record", "--pid", str(stack.servers[0].pid)]
            command += ["--duration", str(int(args.profile_seconds))]
            command += ["--rate", "500", "--format", "raw", "--output", str(output), "--nonblocking"]
            process = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            spy_log, _ = await process.communicate()
            gc_end, cpu_end, frames_end = (
                await gc_totals(stack.servers[0], gc_path),
                stack.servers[0].cpu_seconds(),
                frames_received(clients),
            )
            if process.returncode != 0:
                log(f"py-spy failed: {spy_log.decode(errors='replace')[-2000:]}")
                return None
            frames = frames_end - frames_start
            cpu = cpu_end - cpu_start
            gc_seconds = [end - start for start, end in zip(gc_start["seconds"], gc_end["seconds"], strict=True)]
            result["window"] = {
                "frames_delivered": frames,
                "server_cpu_us_per_frame": round(cpu / frames * 1e6, 1),
                "gc_us_per_frame": round(sum(gc_seconds) / frames * 1e6, 1),
                "gc_share_of_cpu": round(sum(gc_seconds) / cpu, 3),
                "gc_collections": [
                    end - start for start, end in zip(gc_start["collections"], gc_end["collections"], strict=True)
                ],
                "gc_seconds_by_generation": [round(value, 3) for value in gc_seconds],
            }
            result["syscalls_per_frame"] = await strace_counts(stack.servers[0], clients)
        finally:
            await close_clients(clients)
    finally:
        stack.stop()
    result.update(summarize_profile(busy_stacks(output.read_text())))
    result["clients"] = args.profile_clients
    result["rate"] = args.profile_rate
    return result


async def strace_counts(service: Service, clients: list[FeedClient], seconds: float = 10.0) -> dict[str, float] | None:
    """Syscalls per delivered frame (strace slows daphne down a lot; the counts per frame still hold)."""
    if shutil.which("strace") is None:
        return None
    path = RESULTS / "live_feed_strace.txt.tmp"
    start = frames_received(clients)
    process = await asyncio.create_subprocess_exec(
        "strace",
        "-c",
        "-f",
        "-o",
        str(path),
        "-p",
        str(service.pid),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(seconds)
    process.send_signal(signal.SIGINT)
    await process.wait()
    frames = frames_received(clients) - start
    if not path.exists() or frames == 0:
        return None
    calls = parse_strace_summary(path.read_text())
    per_frame = {name: round(count / frames, 2) for name, count in sorted(calls.items(), key=lambda kv: -kv[1])}
    return {"frames": frames, **{name: value for name, value in per_frame.items() if value >= 0.01}}
