"""The whole stack without containers (deploy/stack.py, `make stack`) as real processes: a one-shot migrate into
a database of its own, two servers behind HAProxy, two broadcasters and the retention loop.

A live-feed client connected through the balancer does what docs/protocol.md asks of a client whose socket
closes: it reconnects, through the balancer again, and resumes the status topic on the URL
(`?since_seq=<last seq>&epoch=<epoch>`). It must see one unbroken `seq` sequence in one epoch while the server
it is on is restarted (SIGTERM, started again) and while the active broadcaster is SIGKILLed (the stack's
supervisor starts it again; the standby takes over meanwhile).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis
import websockets
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from tests.integration.cluster import free_port

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]
ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 1.0
STATUS = "pipeline_status_update"
# The reconnecting client waits this long before it reconnects (a short back-off, docs/protocol.md): long
# enough that the feed moves on meanwhile, so the resume has frames to fill in.
BACKOFF = 1.5 * INTERVAL


def load_stack_module():
    spec = importlib.util.spec_from_file_location("deploy_stack", ROOT / "deploy" / "stack.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


stack_module = load_stack_module()


def require_haproxy() -> None:
    if not shutil.which("haproxy"):
        pytest.fail("haproxy is missing: .ci/run installs it (apt-get install haproxy)", pytrace=False)


def tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@pytest.fixture(scope="module")
def server_url(django_db_setup) -> Iterator[Callable[[str], str]]:
    """``url(name)``: the test database server's URL for database ``name``."""
    from django.db import connection

    db = connection.settings_dict
    auth = urllib.parse.quote(db["USER"], safe="")
    if db.get("PASSWORD"):
        auth += ":" + urllib.parse.quote(db["PASSWORD"], safe="")
    yield lambda name: f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


@pytest.fixture(scope="module")
def stack_database(server_url) -> Iterator[str]:
    """A database of the stack's own, empty: the stack's migrate step builds its schema. Dropped after."""
    name = f"conflict_monitor_stack_test_{uuid.uuid4().hex[:8]}"
    admin = server_url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server_url(name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def stack_env(database_url: str, prefix: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MONITORING_", "WEBSOCKET_"))},
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ["REDIS_URL"],
        "CHANNEL_LAYER_PREFIX": prefix,
        "SECRET_KEY": "stack-test-only",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": "conflict_monitor.settings",
        "MONITORING_PUBLIC_READ": "1",
        "DATABASE_POOL_MAX_SIZE": "4",
        "WEBSOCKET_BROADCAST_INTERVAL": str(INTERVAL),
    }


def forget_redis_keys(prefix: str) -> None:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


def free_ports():
    apps, metrics = (free_port(), free_port()), (free_port(), free_port())
    return stack_module.Ports(lb=free_port(), stats=free_port(), apps=apps, broadcaster_metrics=metrics)


@pytest.fixture
def stack(stack_database, tmp_path):
    require_haproxy()
    prefix = f"stack-{uuid.uuid4().hex[:10]}"
    log_path = tmp_path / "stack.log"
    with open(log_path, "w") as log:
        running = stack_module.Stack(
            env=stack_env(stack_database, prefix), ports=free_ports(), output=log, retention_interval=3600
        )
        running.log_path = log_path
        try:
            running.preflight()
            started = time.monotonic()
            running.migrate()
            running.start()
            running.wait_for_balancer()
            running.startup_seconds = time.monotonic() - started
            yield running
        except stack_module.StackError as error:
            pytest.fail(f"{error}\n{tail(log_path)}")
        finally:
            running.close()
            forget_redis_keys(prefix)


@dataclass
class FeedClient:
    """A live-feed client as docs/protocol.md describes one: it keeps the last status seq and epoch, ignores
    what it already has, and when its socket closes it reconnects after a short back-off and resumes."""

    url: str
    statuses: list[tuple[float, str, int]] = field(default_factory=list)  # (received at, epoch, seq)
    gaps: list[str] = field(default_factory=list)
    resyncs: list[dict] = field(default_factory=list)
    closes: list[str] = field(default_factory=list)
    reconnects: int = 0
    resumes: int = 0
    replayed: int = 0
    duplicates: int = 0
    stale: int = 0

    @property
    def last(self) -> tuple[float, str, int] | None:
        return self.statuses[-1] if self.statuses else None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            last = self.last
            query = "" if last is None else f"?since_seq={last[2]}&epoch={last[1]}"
            try:
                async with websockets.connect(self.url + query, open_timeout=10) as ws:
                    while not stop.is_set():
                        try:
                            raw = await asyncio.wait_for(ws.recv(), 0.5)
                        except TimeoutError:
                            continue
                        self.handle(json.loads(raw))
                    return
            except websockets.ConnectionClosed as closed:
                self.closes.append(str(closed.rcvd.code if closed.rcvd else 1006))
            except (websockets.exceptions.WebSocketException, OSError, TimeoutError) as error:
                self.closes.append(type(error).__name__)
            if stop.is_set():
                return
            await asyncio.sleep(BACKOFF)
            self.reconnects += 1

    def handle(self, frame: dict) -> None:
        kind = frame["type"]
        if kind == "resumed":
            self.resumes += 1
            self.replayed += frame["data"]["replayed"]
        elif kind == "resync":
            self.resyncs.append(frame["data"])
        elif kind == "status_stale":
            self.stale += 1
        elif kind == STATUS:
            last = self.last
            if last is not None and frame["epoch"] == last[1] and frame["seq"] <= last[2]:
                self.duplicates += 1
                return
            if last is not None and not self.resyncs and (frame["epoch"], frame["seq"]) != (last[1], last[2] + 1):
                self.gaps.append(f"{last[1]}:{last[2]} -> {frame['epoch']}:{frame['seq']}")
            self.statuses.append((time.monotonic(), frame["epoch"], frame["seq"]))


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``condition()`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"not within {timeout:g} s: {what}"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def open_sockets(stack, name: str) -> float:
    port = stack.ports.apps[stack_module.APPS.index(name)]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "conflict_monitor_ws_connections"
    )


def lease_holder(stack) -> int | None:
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    owner = client.get(f"{stack.env['CHANNEL_LAYER_PREFIX']}:broadcaster:lease")
    client.close()
    return int(owner.decode().split(":")[1]) if owner else None


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_a_client_through_the_balancer_sees_one_unbroken_sequence_across_a_server_restart_and_a_broadcaster_kill(
    stack,
):
    url = f"ws://127.0.0.1:{stack.ports.lb}/ws/monitoring/pipeline-status"
    clients = [FeedClient(url), FeedClient(url)]
    stop = asyncio.Event()
    tasks = [asyncio.ensure_future(client.run(stop)) for client in clients]
    try:
        await wait_until(lambda: all(len(c.statuses) >= 3 for c in clients), 15, "3 statuses on every client")
        # leastconn spreads the two sockets over both servers: restart one that carries a client.
        carried = {name: await asyncio.to_thread(open_sockets, stack, name) for name in stack_module.APPS}
        assert sum(carried.values()) == 2, carried
        restarted = "app1" if carried["app1"] else "app2"

        # (a) The server is stopped (SIGTERM). Its client reconnects through the balancer, which may still count the
        # server up and try it first (leastconn: it has no socket left), is refused and redispatches the client to
        # the other server; there it resumes. Then the server is started again and the balancer takes it back.
        other = next(name for name in stack_module.APPS if name != restarted)
        before = [len(c.statuses) for c in clients]
        began = time.monotonic()
        exit_status = (await asyncio.to_thread(stack.stop, restarted))[restarted]
        await wait_until(
            lambda: sum(c.resumes for c in clients) >= carried[restarted], 15, "the clients of that server resumed"
        )
        resumed = [len(c.statuses) for c in clients]
        assert await asyncio.to_thread(open_sockets, stack, other) == 2
        await asyncio.to_thread(stack.start, restarted)
        await asyncio.to_thread(stack.wait_for_apps, [restarted])
        await asyncio.to_thread(stack.wait_for_balancer)
        back_up = time.monotonic() - began
        await wait_until(
            lambda: all(len(c.statuses) >= n + 2 for c, n in zip(clients, resumed, strict=True)),
            5 * INTERVAL,
            "two live statuses on every client after the resume",
        )
        after_restart = [len(c.statuses) - n for c, n in zip(clients, before, strict=True)]

        # (b) The active broadcaster is SIGKILLed; the stack's supervisor starts it again.
        holder = lease_holder(stack)
        names = {stack.pid(name): name for name in stack_module.BROADCASTERS}
        assert holder in names, (holder, names)
        seqs = [c.last[2] for c in clients]
        closes_before_kill = [c.closes[:] for c in clients]
        os.kill(holder, signal.SIGKILL)
        killed = time.monotonic()
        handover = await wait_until(
            lambda: all(c.last[2] > seq for c, seq in zip(clients, seqs, strict=True)),
            4 * INTERVAL + 2,
            "a status from the standby broadcaster",
        )
        await wait_until(lambda: stack.pid(names[holder]) not in (None, holder), 10, f"{names[holder]} started again")
        respawned = time.monotonic() - killed
        settled = [len(c.statuses) for c in clients]
        await wait_until(
            lambda: all(len(c.statuses) >= n + 3 for c, n in zip(clients, settled, strict=True)),
            6 * INTERVAL,
            "three more statuses on every client",
        )
        new_holder = lease_holder(stack)
        assert new_holder in {stack.pid(name) for name in stack_module.BROADCASTERS} and new_holder != holder
        stale = sum(c.stale for c in clients)
        closes_after_kill = [c.closes[:] for c in clients]
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    log = stack.log_path.read_text(errors="replace")
    for client in clients:
        seqs = [seq for _, _, seq in client.statuses]
        assert not client.gaps and not client.resyncs, (client.gaps, client.resyncs, client.closes)
        assert len({epoch for _, epoch, _ in client.statuses}) == 1
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    # Only the clients of the restarted server reconnected (the broadcaster kill closes no socket), and their
    # resumes filled what they missed while away.
    assert sum(1 for c in clients if c.reconnects) == carried[restarted], [c.closes for c in clients]
    assert closes_after_kill == closes_before_kill
    assert sum(c.replayed for c in clients) >= 1
    assert all(n >= 3 for n in after_restart), after_restart
    assert handover <= 2 * INTERVAL + 2, handover
    assert f"{names[holder]:<12} | Metrics at" in log  # the restarted broadcaster's own output

    # HAProxy's log of the resuming handshake (written when that socket closed): on the other server, and how
    # many connection attempts it retried ("+1": one, redispatched, since the stopped server refused it).
    def resume_lines() -> list[list[str]]:
        text = stack.log_path.read_text(errors="replace")
        return [line.split() for line in text.splitlines() if line.startswith("lb ") and "?since_seq=" in line]

    await wait_until(lambda: len(resume_lines()) == carried[restarted], 5, "the balancer logged the resumes")
    # lb | client [date] frontend backend/server timers status bytes - - flags conns/.../retries queues "request"
    resumes = resume_lines()
    assert all(words[5] == f"app/{other}" and words[7] == "101" for words in resumes), resumes
    retries = [words[12].split("/")[-1] for words in resumes]
    assert "retention    | Deleted 0 metric(s)" in log

    print(
        f"\nstack up in {stack.startup_seconds:.1f} s (migrate into an empty database, 2 servers, balancer); "
        f"{restarted} SIGTERMed (exit {exit_status}), its client resumed on {other} (balancer retries: "
        f"{', '.join(retries)}), {restarted} back in the balancer {back_up:.1f} s after the SIGTERM; active "
        f"broadcaster SIGKILLed: next status {handover:.2f} s later (interval {INTERVAL:g} s; {stale} status_stale), "
        f"started again by the supervisor {respawned:.1f} s after the kill.\n"
        + "\n".join(
            f"client {i}: {len(c.statuses)} statuses, seq {c.statuses[0][2]}-{c.statuses[-1][2]} in one epoch, "
            f"no gap; {c.reconnects} reconnect(s) (closes: {', '.join(c.closes) or 'none'}), {c.resumes} resume(s) "
            f"replaying {c.replayed} frame(s), {c.duplicates} duplicate(s) dropped; longest wait between statuses "
            f"{max(b[0] - a[0] for a, b in zip(c.statuses, c.statuses[1:], strict=False)):.2f} s"
            for i, c in enumerate(clients, 1)
        )
    )


@pytest.mark.timeout(120)
def test_make_stack_serves_through_the_balancer_and_stops_everything_on_sigterm(stack_database, tmp_path):
    """The command line as `make stack` runs it: prefixed output, ready through the balancer, and SIGTERM
    stops every process it started (the retention loop's sleep included)."""
    require_haproxy()
    prefix = f"stack-cli-{uuid.uuid4().hex[:10]}"
    ports = free_ports()
    interval = 86_000 + int(uuid.uuid4().int % 399)  # names this run's retention sleep among processes
    argv = [sys.executable, "deploy/stack.py", "--port", str(ports.lb), "--stats-port", str(ports.stats)]
    argv += ["--app-ports", *map(str, ports.apps), "--broadcaster-metrics-ports", *map(str, ports.broadcaster_metrics)]
    argv += ["--retention-interval", str(interval)]
    log_path = tmp_path / "make-stack.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=stack_env(stack_database, prefix), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while "| ready: " not in log_path.read_text(errors="replace"):
            assert process.poll() is None, f"deploy/stack.py exited with {process.returncode}:\n{tail(log_path)}"
            assert time.monotonic() < deadline, f"deploy/stack.py not ready within 60 s:\n{tail(log_path)}"
            time.sleep(0.2)
        request = urllib.request.Request(f"http://127.0.0.1:{ports.lb}/api/v1/monitoring/ready")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["status"] == "ready"
        assert any(f"sleep {interval}" in cmdline for cmdline in command_lines())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, tail(log_path)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        forget_redis_keys(prefix)
    output = log_path.read_text(errors="replace")
    for name in ("migrate", *stack_module.SERVICES):
        assert f"\n{name:<12} | " in output, name
    assert output.rstrip().endswith("stack        | stopped"), tail(log_path)
    left = [c for c in command_lines() if f"sleep {interval}" in c or any(f"-p {p} " in c for p in ports.apps)]
    assert not left, left
    for port in ports.all().values():
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)


def command_lines() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return found
