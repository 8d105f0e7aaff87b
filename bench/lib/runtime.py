"""Paths, the console log, SIGTERM handling and the open-file limit."""

from __future__ import annotations

import argparse
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def exit_on_sigterm(signum: int, _frame: Any) -> None:
    # The default SIGTERM action skips ``finally`` and would leave the servers running.
    raise SystemExit(128 + signum)


def raise_nofile(wanted: int | None = None) -> int:
    """Raise the soft open-file limit to ``wanted`` (the hard limit when None); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if wanted is None:
        wanted = hard
    elif hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def begin() -> float:
    """A benchmark's start: SIGTERM runs the ``finally`` blocks (servers stopped), ``bench/results`` exists.
    Returns the start time (``time.perf_counter``) for the wall time in the report."""
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    RESULTS.mkdir(parents=True, exist_ok=True)
    return time.perf_counter()


def arg_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The command line of benchmark ``module`` (run as ``python -m bench.<module>``), ``doc`` as its help."""
    return argparse.ArgumentParser(
        prog=f"python -m bench.{module}", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
