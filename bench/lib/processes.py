"""Child processes: daphne (through the project's launcher), the broadcaster, anything with a log.

``Service`` starts one process (optionally pinned with ``taskset``) with its output appended to a log
file, and reads its CPU time and RSS from /proc; ``wait_for_health`` / ``wait_for_http`` /
``wait_for_port`` wait until it serves. The benchmarks and the multi-process tests
(``tests/integration/cluster.py``) start their servers through these.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import redis

from bench.lib.runtime import PYTHON, ROOT, VENV_BIN, log

HEALTH_PATH = "/api/v1/monitoring/health"
QUERY_PROBE = ROOT / "bench" / "query_probe"

# Settings read from the environment; the developer's own values must not leak into the servers.
_PROJECT_ENV_PREFIXES = (
    "DATABASE_",
    "REDIS_",
    "MONITORING_",
    "WEBSOCKET_",
    "CHANNEL_LAYER_",
    "SECURE_",
    "SESSION_",
    "CSRF_",
)
_PROJECT_ENV_NAMES = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "LOG_LEVEL",
    "SQLITE_PATH",
    "STATIC_ROOT",
    "DJANGO_SETTINGS_MODULE",
}


def django_env(url: str) -> dict[str, str]:
    """The environment of a bench process on database ``url``: none of the developer's project settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _PROJECT_ENV_NAMES and not key.startswith(_PROJECT_ENV_PREFIXES)
    }
    env.update(
        DATABASE_URL=url,
        # Throwaway key for a throwaway local server that only serves generated data.
        SECRET_KEY="bench-only",  # noqa: S106
        ALLOWED_HOSTS="127.0.0.1",
        MONITORING_PUBLIC_READ="1",
        DJANGO_SETTINGS_MODULE="conflict_monitor.settings",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def service_env(db_url: str, redis_url: str, *, prefix: str, interval: float) -> dict[str, str]:
    """``django_env`` plus the Redis channel layer under ``prefix`` and the live feed's limits lifted."""
    env = django_env(db_url)
    env.update(
        REDIS_URL=redis_url,
        CHANNEL_LAYER_PREFIX=prefix,
        WEBSOCKET_BROADCAST_INTERVAL=str(interval),
        WEBSOCKET_MAX_CONNECTIONS="20000",
        WEBSOCKET_MAX_CONNECTIONS_PER_IP="20000",
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    return env


def launcher(app_root: Path = ROOT) -> list[str]:
    """How production starts the ASGI server (the Dockerfile): ``python -m conflict_monitor.serve`` (daphne's
    arguments on the project's reactor); plain daphne for code without the launcher (an old ``--code``)."""
    if (Path(app_root) / "conflict_monitor" / "serve.py").exists():
        return [str(PYTHON), "-m", "conflict_monitor.serve"]
    return [str(VENV_BIN / "daphne")]


def server_command(
    port: int, application: str = "conflict_monitor.asgi:application", *extra: str, app_root: Path = ROOT
) -> list[str]:
    """The launcher serving ``application`` on 127.0.0.1:``port``; ``extra``: more daphne arguments."""
    return [*launcher(app_root), "-b", "127.0.0.1", "-p", str(port), *extra, application]


def daphne_command(port: int, application: str, *extra: str) -> list[str]:
    """Plain daphne, without the project's launcher."""
    return [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), *extra, application]


BROADCASTER_COMMAND = [str(PYTHON), "manage.py", "run_broadcaster"]


class Service:
    """A child process with its own log; CPU and RSS from /proc, SQL statements from the query probe.

    ``count_queries`` puts ``bench/query_probe`` on the process's PYTHONPATH: it answers SIGUSR1 with the
    number of SQL statements run so far (``queries``)."""

    def __init__(
        self,
        name: str,
        command: list[str],
        *,
        env: dict[str, str],
        log_path: Path,
        cpus: set[int] | None = None,
        cwd: Path = ROOT,
        count_queries: bool = False,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self.probe_path: Path | None = None
        if count_queries:
            self.probe_path = log_path.with_name(log_path.name.replace(".log.tmp", ".queries.tmp"))
            self.probe_path.unlink(missing_ok=True)
            env = {
                **env,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(QUERY_PROBE), env.get("PYTHONPATH")])),
                "BENCH_QUERY_PROBE": str(self.probe_path),
            }
        if cpus is not None:
            command = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *command]
        with log_path.open("ab") as log_file:
            log_file.write(f"\n--- {datetime.now(UTC).isoformat()} {' '.join(command)}\n".encode())
            log_file.flush()
            self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        self.pid = self.process.pid  # taskset execs the command: same pid

    # The Popen calls tests use on a server (poll, send_signal).
    def poll(self) -> int | None:
        return self.process.poll()

    def send_signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def cpu_times(self) -> tuple[float, float]:
        """(utime, stime) of the whole process (all threads) in seconds, from /proc/<pid>/stat."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    def cpu_seconds(self) -> float:
        """CPU time of the whole process (all threads) with ns resolution: the process's CPU clock
        (clock_getcpuclockid), so a window of a few seconds is not counted in 10 ms ticks."""
        try:
            return time.clock_gettime(((~self.pid) << 3) | 2)  # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
        except OSError:
            return sum(self.cpu_times())

    def rss_bytes(self) -> int:
        return rss_kb(self.pid) * 1024

    def queries(self, timeout: float = 5.0) -> int:
        """SQL statements the process has run so far (the probe answers SIGUSR1 with a fresh file)."""
        if self.probe_path is None:
            raise RuntimeError(f"{self.name} runs without the query probe")
        asked = time.time()
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                answer = json.loads(self.probe_path.read_text())
                if answer["at"] >= asked:
                    return answer["statements"]
            except (OSError, ValueError):
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{self.name}'s query probe did not answer:\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0, *, sig: int = signal.SIGTERM) -> None:
        """``sig`` (SIGTERM), then SIGKILL after ``timeout`` s."""
        self.signal_if_running(sig)
        self.wait_stopped(timeout)

    def signal_if_running(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def wait_stopped(self, timeout: float = 20.0) -> None:
        """Wait for the exit (SIGKILL after ``timeout`` s), then remove the query probe's file."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.name} did not exit within {timeout} s; killing it")
            self.process.kill()
            self.process.wait()
        if self.probe_path is not None:
            self.probe_path.unlink(missing_ok=True)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def answers(port: int, path: str = HEALTH_PATH) -> bool:
    """``GET path`` on 127.0.0.1:``port`` answers 200."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except OSError:
        return False


def wait_for_health(service: Service, port: int, path: str = HEALTH_PATH, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.alive()
        if answers(port, path):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{service.name} did not answer {path} within {timeout} s:\n{service.log_tail()}")


async def wait_for_http(service: Service, port: int, path: str = HEALTH_PATH, timeout: float = 60.0) -> None:
    """``wait_for_health`` for an event loop (the check runs in a thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.alive()
        if await asyncio.to_thread(answers, port, path):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{service.name} did not answer {path} within {timeout} s:\n{service.log_tail()}")


async def wait_for_port(service: Service, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.alive()
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{service.name} did not listen on {port} within {timeout} s:\n{service.log_tail()}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- CPUs -------------------------------------------------------------------------------------


def cpu_plan() -> tuple[int | None, int | None]:
    """(server CPU, client CPU) when both can be pinned apart, else (None, None)."""
    cpus = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") is None or len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


def as_set(cpu: int | None) -> set[int] | None:
    return None if cpu is None else {cpu}


@contextmanager
def pinned_to(cpu: int | None) -> Iterator[None]:
    """This process on ``cpu`` for the block (nothing when None)."""
    if cpu is None:
        yield
        return
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


def cpu_busy_seconds(cpu: int | None) -> tuple[float, float] | None:
    """(busy, steal) seconds of one CPU from /proc/stat: how much else ran on it, and how long the
    hypervisor kept it from running (a VM's noisy neighbours)."""
    if cpu is None:
        return None
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            values = [int(v) for v in line.split()[1:9]]  # user nice system idle iowait irq softirq steal
            tick = os.sysconf("SC_CLK_TCK")
            return (sum(values[:7]) - values[3] - values[4]) / tick, values[7] / tick
    return None


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of any process (e.g. a PostgreSQL backend) from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- Redis ------------------------------------------------------------------------------------


def cleanup_redis(redis_url: str, prefix: str) -> int:
    """Delete every key under ``prefix`` (a run's channel layer); returns how many there were."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()
