"""The servers under test: the project (daphne + broadcaster) and the reference fan-out server."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis

from bench.lib.processes import (
    BROADCASTER_COMMAND,
    HEALTH_PATH,
    Service,
    cleanup_redis,
    free_port,
    server_command,
    service_env,
    wait_for_http,
    wait_for_port,
)
from bench.lib.runtime import PYTHON, RESULTS, ROOT
from bench.lib.wsclient import WS_PATH

from .config import BASE_RATE

RUN_ID = f"{int(time.time())}{secrets.token_hex(2)}"


def live_service(name: str, command: list[str], *, env: dict[str, str], cpus, app_root: Path = ROOT) -> Service:
    """A process of this bench, logging to ``bench/results/live_feed_<name>.log.tmp``."""
    return Service(name, command, env=env, cpus=cpus, log_path=RESULTS / f"live_feed_{name}.log.tmp", cwd=app_root)


async def wait_for_first_frame(redis_url: str, prefix: str, service: Service, timeout: float = 30.0) -> None:
    """The broadcaster's first publish (it publishes at once when it takes the lease)."""
    client = aioredis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            service.alive()
            if await client.exists(f"{prefix}:feed:status:state"):
                return
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()
    raise RuntimeError(f"no status frame published within {timeout} s:\n{service.log_tail()}")


class ProjectStack:
    """daphne (one or two processes) + run_broadcaster sharing one fresh channel-layer prefix.

    The publish rate is the broadcaster's interval, so a new rate is a new broadcaster (the old one
    releases its lease on SIGTERM and the new one publishes as soon as it holds it). ``pause`` stops the
    broadcaster with SIGSTOP, so connects are measured on a quiet feed; after SIGCONT it takes its lapsed
    lease back and publishes at once."""

    kind = "project"

    def __init__(
        self,
        args: argparse.Namespace,
        *,
        label: str,
        processes: int,
        server_cpus,
        other_cpus,
        interval: float | None = None,
        daphne_env: dict[str, str] | None = None,
    ) -> None:
        self.args = args
        self.prefix = f"bench-live-{RUN_ID}-{label}"
        self.other_cpus = other_cpus
        self.fixed_interval = interval
        self.ports = [free_port() for _ in range(processes)]
        self.env = service_env(
            args.database_url, args.redis_url, prefix=self.prefix, interval=interval or 1.0 / BASE_RATE
        )
        self.servers = []
        for number, port in enumerate(self.ports):
            command = server_command(port, app_root=args.app_root)
            name = "daphne" if number == 0 else f"daphne{number + 1}"
            env = {**self.env, **(daphne_env or {})}
            self.servers.append(live_service(name, command, env=env, cpus=server_cpus, app_root=args.app_root))
        self.broadcaster: Service | None = None
        self.rate: float | None = None
        self.paused = False

    @property
    def others(self) -> list[Service]:
        return [self.broadcaster] if self.broadcaster is not None else []

    def ws_url(self, number: int = 0) -> str:
        return f"ws://127.0.0.1:{self.ports[number]}{WS_PATH}"

    def _start_broadcaster(self, interval: float) -> None:
        env = {**self.env, "WEBSOCKET_BROADCAST_INTERVAL": f"{interval:g}"}
        self.broadcaster = live_service(
            "broadcaster", BROADCASTER_COMMAND, env=env, cpus=self.other_cpus, app_root=self.args.app_root
        )

    async def start(self, rate: float | None = None) -> None:
        self.rate = rate or BASE_RATE
        self._start_broadcaster(self.fixed_interval or 1.0 / self.rate)
        await wait_for_first_frame(self.args.redis_url, self.prefix, self.broadcaster)
        for server, port in zip(self.servers, self.ports, strict=True):
            await wait_for_http(server, port, HEALTH_PATH)

    async def set_rate(self, rate: float) -> None:
        if rate == self.rate and self.broadcaster is not None:
            self.resume()
            return
        self._stop_broadcaster()
        self.rate = rate
        self._start_broadcaster(1.0 / rate)

    def pause(self) -> None:
        if self.broadcaster is not None and not self.paused:
            os.kill(self.broadcaster.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.broadcaster is not None and self.paused:
            os.kill(self.broadcaster.pid, signal.SIGCONT)
            self.paused = False

    def _stop_broadcaster(self) -> None:
        if self.broadcaster is not None:
            self.resume()
            self.broadcaster.stop()
            self.broadcaster = None

    async def slots_released(self, timeout: float = 20.0) -> float | None:
        """Seconds until the connection registry counts no connection again (disconnects processed)."""
        client = aioredis.from_url(self.args.redis_url)
        started = time.perf_counter()
        try:
            while time.perf_counter() - started < timeout:
                counts = await client.hgetall(f"{self.prefix}:ws:connections")
                if sum(int(value) for value in counts.values()) == 0:
                    return round(time.perf_counter() - started, 2)
                await asyncio.sleep(0.1)
        finally:
            await client.aclose()
        return None

    def stop(self) -> None:
        self._stop_broadcaster()
        for service in self.servers:
            service.stop()
        cleanup_redis(self.args.redis_url, self.prefix)


class ReferenceStack:
    """``bench/reference_server.py`` processes on one Redis channel; this script publishes to it."""

    kind = "reference"

    def __init__(self, args: argparse.Namespace, *, label: str, processes: int, server_cpus, template) -> None:
        self.args = args
        self.channel = f"bench-live-{RUN_ID}-{label}"
        self.template = template
        self.ports = [free_port() for _ in range(processes)]
        self.servers = []
        for port in self.ports:
            command = [str(PYTHON), str(ROOT / "bench" / "reference_server.py"), "--port", str(port)]
            command += ["--redis-url", args.redis_url, "--channel", self.channel]
            env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
            self.servers.append(live_service("reference", command, env=env, cpus=server_cpus))
        self.others: list[Service] = []
        self.rate: float | None = None
        self.seq = 0
        self.publisher: asyncio.Future | None = None
        self.stopping: asyncio.Future | None = None
        self.stop_event = asyncio.Event()

    def ws_url(self, number: int = 0) -> str:
        return f"ws://127.0.0.1:{self.ports[number]}/"

    async def start(self, rate: float | None = None) -> None:
        for server, port in zip(self.servers, self.ports, strict=True):
            await wait_for_port(server, port)
        await asyncio.sleep(0.5)  # subscribed before listening, but give the relay a moment
        await self.set_rate(rate or BASE_RATE)

    async def set_rate(self, rate: float) -> None:
        self.pause()
        self.rate = rate
        self.resume()

    def pause(self) -> None:
        """Ask the publisher to stop after the publish in flight. Not a cancel: redis-py shields a
        command from cancellation, so a cancelled publisher could still deliver its last seq after its
        successor's first one (out of order for every client)."""
        if self.publisher is not None:
            self.stop_event.set()
            self.stopping = self.publisher
            self.publisher = None

    def resume(self) -> None:
        if self.publisher is None and self.rate is not None:
            self.stop_event = asyncio.Event()
            self.publisher = asyncio.ensure_future(self._publish(1.0 / self.rate, self.stopping, self.stop_event))

    async def _publish(self, interval: float, previous: asyncio.Future | None, stop: asyncio.Event) -> None:
        if previous is not None:
            await previous  # one publisher at a time, so seqs reach Redis in order
        client = aioredis.from_url(self.args.redis_url)
        loop = asyncio.get_running_loop()
        head, middle, tail = self.template
        due = loop.time()
        try:
            while not stop.is_set():
                self.seq += 1
                stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
                await client.publish(self.channel, f"{head}{self.seq}{middle}{stamp}{tail}")
                # A late publisher does not catch up in a burst: it shows as publishing below its rate.
                due = max(due + interval, loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), due - loop.time())
        finally:
            await client.aclose()

    async def slots_released(self, timeout: float) -> None:
        return None

    def stop(self) -> None:
        self.pause()
        if self.stopping is not None:
            self.stopping.cancel()  # the servers go away now; a last publish does not matter any more
        for service in self.servers:
            service.stop()


def reference_template(real_frame: str) -> tuple[str, str, str]:
    """(before seq, between seq and timestamp, after timestamp) of a frame shaped like the real one."""
    data = json.dumps(json.loads(real_frame)["data"], separators=(",", ":"), ensure_ascii=False)
    epoch = secrets.token_hex(8)
    return '{"type":"reference","topic":"status","seq":', f',"epoch":"{epoch}","timestamp":"', '","data":' + data + "}"
