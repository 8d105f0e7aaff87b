"""Process helpers shared by ``ingest_throughput.py`` and ``db_per_tick.py``.

``live_feed.Service`` names its log after the live-feed bench; these benches need their own logs
(and a per-process statement counter), so the child-process wrapper lives here.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from status_latency import log

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
VENV_BIN = ROOT / ".venv" / "bin"
QUERY_PROBE = ROOT / "bench" / "query_probe"


class Service:
    """A child process with its own log; CPU read from /proc, SQL statements from the query probe."""

    def __init__(
        self,
        name: str,
        command: list[str],
        *,
        env: dict[str, str],
        cpus: set[int] | None,
        log_path: Path,
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
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        self.pid = self.process.pid  # taskset execs the command: same pid

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """utime + stime of the whole process (all threads), from /proc/<pid>/stat."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} ignored SIGTERM for {timeout} s; killing it")
                self.process.kill()
                self.process.wait()
        if self.probe_path is not None:
            self.probe_path.unlink(missing_ok=True)


def wait_for_health(service: Service, port: int, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.alive()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            ok = conn.getresponse().status == 200
            conn.close()
            if ok:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{service.name} did not answer {path} within {timeout} s:\n{service.log_tail()}")
