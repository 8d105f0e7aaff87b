"""The whole stack of compose.yaml without containers: `make stack`.

    python deploy/stack.py [--port 8000] [--stats-port 8404] [--app-ports 8001 8002]
                           [--broadcaster-metrics-ports 9101 9102] [--retention-days 90]

A one-shot `migrate`, then two app servers (the production launcher, `--proxy-headers`) on 127.0.0.1, HAProxy
in front of them with deploy/haproxy/haproxy.cfg (the file compose.yaml mounts), two broadcasters (one
active through the Redis lease) and the retention loop (deploy/retention.sh), on PostgreSQL and Redis as
they already run here: DATABASE_URL and REDIS_URL, the local servers by default (the database is created
when it does not exist). Everything listens on 127.0.0.1 only. Every line a process prints is prefixed with
its name.

A process that exits on its own is started again after 2 s, like compose.yaml's `restart: unless-stopped`;
one that exits 5 times within a minute stops everything. Ctrl-C or SIGTERM stops them all, the balancer
first. SECRET_KEY comes from the environment; unset, a random key lives as long as this run. ALLOWED_HOSTS
defaults to 127.0.0.1,localhost; every other setting passes through (docs/configuration.md).

The test suite drives the same class, `Stack` (tests/integration/test_stack.py).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import io
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
RETENTION_SCRIPT = ROOT / "deploy" / "retention.sh"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/conflict_monitor"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
APPS = ("app1", "app2")
BROADCASTERS = ("broadcaster1", "broadcaster2")
# Started in this order (the balancer once the servers are ready: see Stack.start); stopped balancer first.
SERVICES = (*APPS, *BROADCASTERS, "retention", "lb")
RESTART_DELAY = 2.0
# A process that exits this often within RESTART_WINDOW seconds is not started again: everything stops.
MAX_EXITS, RESTART_WINDOW = 5, 60.0
STOP_TIMEOUT = 10.0


class StackError(RuntimeError):
    """The stack cannot start or keep running; the message says why."""


@dataclass(frozen=True)
class Ports:
    lb: int = 8000
    stats: int = 8404
    apps: tuple[int, int] = (8001, 8002)
    broadcaster_metrics: tuple[int, int] = (9101, 9102)

    def all(self) -> dict[str, int]:
        return {
            "lb": self.lb,
            "lb stats": self.stats,
            **dict(zip(APPS, self.apps, strict=True)),
            **{f"{name} metrics": port for name, port in zip(BROADCASTERS, self.broadcaster_metrics, strict=True)},
        }


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    # Should be running: the supervisor starts it again when it exits on its own.
    wanted: bool = False
    restart_at: float | None = None
    exits: collections.deque = field(default_factory=lambda: collections.deque(maxlen=MAX_EXITS))
    starts: int = 0


def check_host(allowed_hosts: str) -> str:
    """The Host header for health checks: the first allowed host name, as the Dockerfile's HEALTHCHECK picks it."""
    hosts = [host.strip() for host in allowed_hosts.split(",") if host.strip()]
    host = hosts[0].lstrip(".") if hosts else "127.0.0.1"
    return "127.0.0.1" if host in ("", "*") else host


def lb_maxconn(limit: int = 20000) -> int:
    """HAProxy's maxconn within this machine's hard open-files limit (two descriptors per connection)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return limit if hard == resource.RLIM_INFINITY else max(min(limit, (hard - 200) // 2), 100)


def redact(url: str) -> str:
    """``url`` without its password."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class Stack:
    """The stack's processes, their output (prefixed, on ``output``) and their supervision."""

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        ports: Ports = Ports(),  # noqa: B008 (frozen)
        output: TextIO = sys.stdout,
        python: str = sys.executable,
        haproxy: str | None = None,
        retention_days: int = 90,
        retention_interval: int = 86400,
        restart_delay: float = RESTART_DELAY,
    ) -> None:
        base = dict(os.environ if env is None else env)
        base.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
        base.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
        base.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
        base.setdefault("DJANGO_SETTINGS_MODULE", "conflict_monitor.settings")
        self.secret_generated = not base.get("SECRET_KEY")
        if self.secret_generated:
            base["SECRET_KEY"] = secrets.token_urlsafe(50)
        base["PYTHONUNBUFFERED"] = "1"
        self.env = base
        self.ports = ports
        self.output = output
        self.python = python
        self.haproxy = haproxy or shutil.which("haproxy")
        self.restart_delay = restart_delay
        self.check_host = check_host(base["ALLOWED_HOSTS"])
        self.failure: str | None = None
        self._lock = threading.RLock()
        self._output_lock = threading.Lock()
        self._pumps: list[threading.Thread] = []
        self._closing = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._width = max(len(name) for name in (*SERVICES, "migrate", "stack"))

        serve = [python, "-m", "conflict_monitor.serve", "-b", "127.0.0.1"]
        self.services: dict[str, Service] = {}
        for name, port in zip(APPS, ports.apps, strict=True):
            argv = [*serve, "-p", str(port), "--proxy-headers", "conflict_monitor.asgi:application"]
            self.services[name] = Service(name, argv, {})
        for name, port in zip(BROADCASTERS, ports.broadcaster_metrics, strict=True):
            self.services[name] = Service(
                name,
                [python, "manage.py", "run_broadcaster"],
                {"MONITORING_BROADCASTER_METRICS_ADDR": "127.0.0.1", "MONITORING_BROADCASTER_METRICS_PORT": str(port)},
            )
        self.services["retention"] = Service(
            "retention",
            ["sh", str(RETENTION_SCRIPT)],
            {"PYTHON": python, "RETENTION_DAYS": str(retention_days), "RETENTION_INTERVAL": str(retention_interval)},
        )
        self.services["lb"] = Service(
            "lb",
            [self.haproxy or "haproxy", "-db", "-f", str(HAPROXY_CONFIG)],
            {
                "LB_BIND": f"127.0.0.1:{ports.lb}",
                "LB_STATS_BIND": f"127.0.0.1:{ports.stats}",
                "APP1_ADDR": f"127.0.0.1:{ports.apps[0]}",
                "APP2_ADDR": f"127.0.0.1:{ports.apps[1]}",
                "LB_CHECK_HOST": self.check_host,
                "LB_MAXCONN": str(lb_maxconn()),
            },
        )

    # Output -------------------------------------------------------------------------------------------------

    def say(self, message: str, *, name: str = "stack") -> None:
        with self._output_lock:
            for line in message.splitlines() or [""]:
                self.output.write(f"{name:<{self._width}} | {line}\n")
            self.output.flush()

    def _pump(self, name: str, stream: io.BufferedReader) -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                self.say(raw.decode(errors="replace").rstrip("\r\n"), name=name)

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str]) -> subprocess.Popen:
        # Each process leads its own process group: Ctrl-C reaches only this runner, which stops them in order,
        # and a stop reaches a process's children too (the retention loop's sleep).
        process = subprocess.Popen(  # noqa: S603 (argv built above, no shell)
            argv,
            cwd=ROOT,
            env={**self.env, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        pump = threading.Thread(target=self._pump, args=(name, process.stdout), name=f"stack-{name}", daemon=True)
        pump.start()
        self._pumps.append(pump)
        return process

    # Lifecycle ----------------------------------------------------------------------------------------------

    def preflight(self) -> None:
        """Refuse to start when haproxy is missing or a port is taken."""
        if not self.haproxy:
            raise StackError("haproxy is not installed: apt-get install haproxy (.ci/run installs it)")
        busy = []
        for what, port in self.ports.all().items():
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    busy.append(f"{what} {port}")
        if busy:
            raise StackError(f"ports in use on 127.0.0.1: {', '.join(busy)} (see --help for other ports)")
        import redis

        client = redis.Redis.from_url(self.env["REDIS_URL"], socket_connect_timeout=5)
        try:
            client.ping()
        except redis.RedisError as error:
            raise StackError(f"Redis is not answering at {redact(self.env['REDIS_URL'])}: {error}") from None
        finally:
            client.close()

    def ensure_database(self) -> None:
        """Create DATABASE_URL's PostgreSQL database when it does not exist yet (as compose's postgres image
        creates POSTGRES_DB); the migrate step fills it."""
        url = self.env["DATABASE_URL"]
        if not url.startswith(("postgres://", "postgresql://")):
            return
        import psycopg
        from psycopg import sql

        try:
            psycopg.connect(url, connect_timeout=5).close()
            return
        except psycopg.OperationalError as error:
            if "does not exist" not in str(error):
                raise StackError(f"PostgreSQL is not answering at {redact(url)}: {error}") from None
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        maintenance = psycopg.conninfo.make_conninfo(url, dbname="postgres")
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.say(f"created database {name}")

    def migrate(self, timeout: float = 300) -> None:
        """The one-shot `migrate --noinput`, before anything else starts; raises StackError when it fails."""
        process = self._spawn("migrate", [self.python, "manage.py", "migrate", "--noinput"], {})
        try:
            status = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise StackError(f"migrate did not finish within {timeout:g} s") from None
        if status != 0:
            raise StackError(f"migrate failed (exit {status}): nothing started")

    def start(self, *names: str, ready_timeout: float = 60) -> None:
        """Start ``names`` (default: all, the balancer once both servers are ready) and supervise them."""
        if not names:
            self.start(*(name for name in SERVICES if name != "lb"))
            self.wait_for_apps(timeout=ready_timeout)
            names = ("lb",)
        with self._lock:
            for name in names:
                service = self.services[name]
                if service.process is not None and service.process.poll() is None:
                    continue
                service.wanted = True
                service.restart_at = None
                self._start(service)
        if self._supervisor is None:
            self._supervisor = threading.Thread(target=self._supervise, name="stack-supervisor", daemon=True)
            self._supervisor.start()

    def _start(self, service: Service) -> None:
        service.process = self._spawn(service.name, service.argv, service.env)
        service.starts += 1

    def stop(self, *names: str, sig: signal.Signals = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> dict[str, int]:
        """Stop ``names`` (default: all, the balancer first) with ``sig``, SIGKILL after ``timeout``; they stay
        stopped until ``start``. Returns each one's exit status."""
        if not names:
            statuses = self.stop("lb", sig=sig, timeout=timeout)
            return statuses | self.stop(*(name for name in SERVICES if name != "lb"), sig=sig, timeout=timeout)
        with self._lock:
            running = []
            for name in names:
                service = self.services[name]
                service.wanted = False
                service.restart_at = None
                if service.process is not None:
                    running.append(service)
                    if service.process.poll() is None:
                        self._signal(service.process, sig)
        deadline = time.monotonic() + timeout
        statuses = {}
        for service in running:
            try:
                statuses[service.name] = service.process.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                self.say(f"{service.name} did not stop within {timeout:g} s: SIGKILL")
                self._signal(service.process, signal.SIGKILL)
                statuses[service.name] = service.process.wait()
            # Whatever its group left behind (the retention loop's sleep) goes with it.
            self._signal(service.process, signal.SIGKILL)
        return statuses

    @staticmethod
    def _signal(process: subprocess.Popen, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)

    def restart(self, name: str, *, sig: signal.Signals = signal.SIGTERM) -> int:
        """Stop ``name`` with ``sig`` and start it again; returns the exit status it stopped with."""
        status = self.stop(name, sig=sig)[name]
        self.start(name)
        return status

    def close(self) -> None:
        """Stop everything and the supervisor."""
        self._closing.set()
        self.stop()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        for pump in self._pumps:
            pump.join(timeout=5)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _supervise(self) -> None:
        while not self._closing.wait(0.2):
            with self._lock:
                now = time.monotonic()
                for service in self.services.values():
                    if not service.wanted or service.process is None:
                        continue
                    if service.restart_at is not None:
                        if now >= service.restart_at:
                            service.restart_at = None
                            self._start(service)
                        continue
                    status = service.process.poll()
                    if status is None:
                        continue
                    self._signal(service.process, signal.SIGKILL)  # its group's leftovers
                    service.exits.append(now)
                    if len(service.exits) == MAX_EXITS and now - service.exits[0] < RESTART_WINDOW:
                        self.failure = f"{service.name} exited {MAX_EXITS} times within {RESTART_WINDOW:g} s"
                        self.say(f"{self.failure}: stopping everything")
                        service.wanted = False
                        continue
                    self.say(f"{service.name} exited with status {status}; starting again in {self.restart_delay:g} s")
                    service.restart_at = now + self.restart_delay

    # State --------------------------------------------------------------------------------------------------

    def pid(self, name: str) -> int | None:
        process = self.services[name].process
        return process.pid if process is not None and process.poll() is None else None

    def ready(self, port: int) -> bool:
        """``GET /api/v1/monitoring/ready`` on 127.0.0.1:``port`` answers 200."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/monitoring/ready", headers={"Host": self.check_host}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 (http://127.0.0.1 only)
                return response.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def backends(self) -> dict[str, str]:
        """The balancer's view of the app servers (``{"app1": "UP", "app2": "DOWN", ...}``), from its stats."""
        url = f"http://127.0.0.1:{self.ports.stats}/stats;csv"
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (http://127.0.0.1 only)
            rows = csv.DictReader(io.StringIO(response.read().decode().lstrip("# ")))
            return {row["svname"]: row["status"] for row in rows if row["pxname"] == "app" and row["svname"] in APPS}

    def wait_for_apps(self, names: Iterable[str] = APPS, *, timeout: float = 60) -> None:
        """Wait until the servers ``names`` answer ready on their own ports."""
        deadline = time.monotonic() + timeout
        for name in names:
            port = self.ports.apps[APPS.index(name)]
            while not self.ready(port):
                if self.failure:
                    raise StackError(self.failure)
                if time.monotonic() > deadline:
                    raise StackError(f"{name} was not ready on 127.0.0.1:{port} within {timeout:g} s")
                time.sleep(0.2)

    def wait_for_balancer(self, up: Iterable[str] = APPS, *, timeout: float = 30) -> None:
        """Wait until the balancer counts the servers ``up`` as UP and answers ready itself."""
        deadline = time.monotonic() + timeout
        up = set(up)
        while True:
            try:
                states = self.backends()
            except OSError:
                states = {}
            if all(states.get(name) == "UP" for name in up) and self.ready(self.ports.lb):
                return
            if self.failure:
                raise StackError(self.failure)
            if time.monotonic() > deadline:
                raise StackError(f"the balancer did not count {sorted(up)} as up within {timeout:g} s: {states}")
            time.sleep(0.2)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See the module docstring.")
    defaults = Ports()
    parser.add_argument("--port", type=int, default=defaults.lb, help="the balancer's port (default 8000)")
    parser.add_argument("--stats-port", type=int, default=defaults.stats, help="HAProxy's /stats (default 8404)")
    parser.add_argument("--app-ports", type=int, nargs=2, default=defaults.apps, metavar="PORT")
    parser.add_argument("--broadcaster-metrics-ports", type=int, nargs=2, default=defaults.broadcaster_metrics)
    parser.add_argument("--retention-days", type=int, default=90, help="prune_metrics --days (default 90)")
    parser.add_argument("--retention-interval", type=int, default=86400, help="seconds between prunes (86400)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ports = Ports(
        lb=args.port,
        stats=args.stats_port,
        apps=tuple(args.app_ports),
        broadcaster_metrics=tuple(args.broadcaster_metrics_ports),
    )
    stack = Stack(ports=ports, retention_days=args.retention_days, retention_interval=args.retention_interval)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Also SIGINT: a shell that starts this in the background hands it over ignored.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    status = 0
    try:
        stack.preflight()
        stack.say(f"database {redact(stack.env['DATABASE_URL'])}, Redis {redact(stack.env['REDIS_URL'])}")
        if stack.secret_generated:
            stack.say("SECRET_KEY is not set: using a random key for this run (sessions end with it)")
        stack.ensure_database()
        stack.migrate()
        stack.start()
        stack.wait_for_balancer()
        stack.say(
            f"ready: http://127.0.0.1:{ports.lb}/ through HAProxy (stats: http://127.0.0.1:{ports.stats}/stats); "
            "Ctrl-C stops everything"
        )
        while stack.failure is None:
            time.sleep(0.5)
        status = 1
    except StackError as error:
        stack.say(f"error: {error}")
        status = 1
    except KeyboardInterrupt:
        stack.say("stopping")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.close()
        stack.say("stopped")
    return status


if __name__ == "__main__":
    sys.exit(main())
