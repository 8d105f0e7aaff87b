"""Memory per open live-feed socket, and where it goes.

Starts the production server (``python -m conflict_monitor.serve``, Redis channel layer, a throwaway
migrated SQLite database), opens ``--warmup`` sockets, measures, opens ``--clients`` more, measures
again, and divides. Two passes over fresh servers: one untraced (RSS per socket, as the operating
system sees it) and one under ``tracemalloc`` (Python heap per socket, grouped by the package and the
line that allocated it). Writes ``bench/results/connection_memory.{json,md}``.

    .venv/bin/python -m bench.connection_memory [--clients 1000] [--warmup 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import tracemalloc
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from bench.lib.machine import code_summary
from bench.lib.processes import Service, cleanup_redis, free_port, rss_kb, wait_for_health
from bench.lib.reports import write_results
from bench.lib.runtime import DEFAULT_REDIS_URL, PYTHON, RESULTS, ROOT, arg_parser, begin, raise_nofile

FEED_PATH = "/ws/monitoring/pipeline-status"
SERVER_LOG = RESULTS / "connection_memory.server.log.tmp"


# --- the server side (a child process) --------------------------------------------------------
def serve(port: int, snapshot_dir: str | None) -> None:
    """daphne prepared as ``conflict_monitor.serve`` prepares it (reactor, WebSocket protocol, heap
    settling); with ``snapshot_dir``, SIGUSR1 dumps a tracemalloc snapshot."""
    from conflict_monitor import serve as project_serve

    project_serve.prepare()
    from twisted.internet import reactor

    from conflict_monitor.asgi import application
    from conflict_monitor.overrides.daphne import Server

    if snapshot_dir:
        tracemalloc.start(1)
        taken = iter(range(1_000))

        def dump() -> None:
            path = Path(snapshot_dir) / f"snapshot-{next(taken)}.tmp"
            tracemalloc.take_snapshot().dump(str(path))
            path.rename(path.with_suffix(".pickle"))

        signal.signal(signal.SIGUSR1, lambda *_: reactor.callFromThread(dump))
    endpoint = f"tcp:port={port}:interface=127.0.0.1"
    Server(application, endpoints=[endpoint], signal_handlers=True, action_logger=None).run()


# --- the driver -------------------------------------------------------------------------------
async def open_sockets(port: int, count: int, *, batch: int, held: list) -> None:
    import websockets

    async def one():
        socket_ = await websockets.connect(f"ws://127.0.0.1:{port}{FEED_PATH}", max_size=None, open_timeout=60)
        await socket_.recv()  # the snapshot: the socket is fully set up on the server
        return socket_

    for start in range(0, count, batch):
        held.extend(await asyncio.gather(*(one() for _ in range(min(batch, count - start)))))


def take_snapshot(process: Service, directory: Path, index: int) -> tracemalloc.Snapshot:
    process.send_signal(signal.SIGUSR1)
    path = directory / f"snapshot-{index}.pickle"
    deadline = time.monotonic() + 60
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the server wrote no snapshot")
        time.sleep(0.1)
    return tracemalloc.Snapshot.load(str(path))


def origin(filename: str) -> str:
    """The package (or standard-library module) that allocated: what a fix would have to change."""
    found = re.search(r"site-packages/([^/]+)/", filename)
    if found:
        return found.group(1)
    if str(ROOT) in filename:
        return "project (" + Path(filename).relative_to(ROOT).parts[0] + ")"
    return "stdlib " + Path(filename).stem


def short(filename: str) -> str:
    return filename.split("site-packages/")[-1].split("lib/python3.11/")[-1].replace(str(ROOT) + "/", "")


async def measure(args: argparse.Namespace, env: dict[str, str], *, traced: bool) -> dict:
    port = free_port()
    snapshots = Path(tempfile.mkdtemp(prefix="conn-mem-"))
    command = [str(PYTHON), "-m", "bench.connection_memory", "--serve", str(port)]
    if traced:
        command += ["--snapshot-dir", str(snapshots)]
    cpus = None if args.server_cpu is None else {args.server_cpu}
    process = Service("server", command, env=env, cpus=cpus, log_path=SERVER_LOG)
    held: list = []
    try:
        wait_for_health(process, port)
        await open_sockets(port, args.warmup, batch=args.warmup, held=held)
        await asyncio.sleep(1)
        before_rss = rss_kb(process.pid)
        before = take_snapshot(process, snapshots, 0) if traced else None
        started = time.monotonic()
        await open_sockets(port, args.clients, batch=5 if traced else 50, held=held)
        connect_seconds = time.monotonic() - started
        await asyncio.sleep(2)
        after_rss = rss_kb(process.pid)
        result = {
            "traced": traced,
            "sockets": len(held),
            "rss_kb_before": before_rss,
            "rss_kb_after": after_rss,
            "rss_kb_per_socket": (after_rss - before_rss) / args.clients,
            "connect_seconds": connect_seconds,
        }
        if traced:
            after = take_snapshot(process, snapshots, 1)
            stats = after.compare_to(before, "lineno")
            by_origin: dict[str, float] = defaultdict(float)
            for stat in stats:
                by_origin[origin(stat.traceback[0].filename)] += stat.size_diff
            result["heap_bytes_per_socket"] = sum(by_origin.values()) / args.clients
            result["by_origin"] = sorted(
                ((name, size / args.clients) for name, size in by_origin.items() if size > 0),
                key=lambda item: -item[1],
            )
            result["top_lines"] = [
                {
                    "line": f"{short(stat.traceback[0].filename)}:{stat.traceback[0].lineno}",
                    "bytes_per_socket": stat.size_diff / args.clients,
                    "blocks_per_socket": stat.count_diff / args.clients,
                }
                for stat in stats[: args.top]
            ]
        return result
    finally:
        for socket_ in held:
            socket_.transport.abort()
        process.stop(10)
        for path in snapshots.iterdir():
            path.unlink()
        snapshots.rmdir()


def render(report: dict) -> str:
    plain, traced = report["untraced"], report["traced"]
    lines = [
        f"# Memory per open live-feed socket ({report['finished']})",
        "",
        f"`python -m conflict_monitor.serve` (daphne on the project's reactor), Redis channel layer; "
        f"{report['warmup']} sockets opened first, then {report['clients']:,} more, each waiting for its snapshot "
        f"frame. Code: {report['code']}.",
        "",
        "| pass | sockets | RSS before -> after MB | **RSS KB / socket** | Python heap KB / socket |",
        "|---|---:|---:|---:|---:|",
        f"| untraced | {plain['sockets']:,} | {plain['rss_kb_before'] / 1024:.0f} -> "
        f"{plain['rss_kb_after'] / 1024:.0f} | **{plain['rss_kb_per_socket']:.1f}** | |",
        f"| tracemalloc | {traced['sockets']:,} | {traced['rss_kb_before'] / 1024:.0f} -> "
        f"{traced['rss_kb_after'] / 1024:.0f} | (inflated by tracing) | {traced['heap_bytes_per_socket'] / 1024:.1f} |",
        "",
        "## Python heap per socket, by the package that allocated it",
        "",
        "| package | bytes / socket | share |",
        "|---|---:|---:|",
    ]
    total = traced["heap_bytes_per_socket"]
    lines += [f"| {name} | {size:,.0f} | {100 * size / total:.0f}% |" for name, size in traced["by_origin"][:15]]
    lines += ["", "## Largest allocating lines", "", "| line | bytes / socket | blocks / socket |", "|---|---:|---:|"]
    lines += [
        f"| `{row['line']}` | {row['bytes_per_socket']:,.0f} | {row['blocks_per_socket']:.1f} |"
        for row in traced["top_lines"]
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = arg_parser("connection_memory", __doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--top", type=int, default=20, help="allocating lines listed")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--snapshot-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.snapshot_dir)
        return
    begin()
    raise_nofile()
    args.server_cpu = 0 if (os.cpu_count() or 1) >= 2 and shutil.which("taskset") else None
    workdir = Path(tempfile.mkdtemp(prefix="conn-mem-db-"))
    prefix = f"bench-mem-{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MONITORING_", "WEBSOCKET_", "DATABASE_"))},
        "DJANGO_SETTINGS_MODULE": "conflict_monitor.settings",
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "REDIS_URL": args.redis_url,
        "CHANNEL_LAYER_PREFIX": prefix,
        "SECRET_KEY": "connection-memory-bench-only",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "MONITORING_PUBLIC_READ": "1",
        "WEBSOCKET_MAX_CONNECTIONS": str(10 * (args.clients + args.warmup)),
        "WEBSOCKET_MAX_CONNECTIONS_PER_IP": str(10 * (args.clients + args.warmup)),
    }
    migrate = [str(PYTHON), "manage.py", "migrate", "--noinput"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, capture_output=True)
    try:
        untraced = asyncio.run(measure(args, env, traced=False))
        print(f"[bench] untraced: {untraced['rss_kb_per_socket']:.1f} KB RSS per socket", flush=True)
        traced = asyncio.run(measure(args, env, traced=True))
        print(f"[bench] traced: {traced['heap_bytes_per_socket'] / 1024:.1f} KB Python heap per socket", flush=True)
    finally:
        cleanup_redis(args.redis_url, prefix)
        for path in sorted(workdir.iterdir()):
            path.unlink()
        workdir.rmdir()
    report = {
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "clients": args.clients,
        "warmup": args.warmup,
        "code": code_summary(),
        "untraced": untraced,
        "traced": traced,
    }
    SERVER_LOG.unlink(missing_ok=True)
    write_results("connection_memory", report, render(report))


if __name__ == "__main__":
    main()
