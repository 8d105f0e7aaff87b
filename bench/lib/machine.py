"""Facts a result is measured on: the CPU, package versions, PostgreSQL, and the code (commit, edits)."""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.lib.runtime import ROOT


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def versions(*names: str) -> dict[str, str]:
    return {name: metadata.version(name) for name in names}


def machine_info(*, packages: tuple[str, ...] = (), system: bool = False, **extra: Any) -> dict[str, Any]:
    """CPUs and CPU model; with ``system`` the platform and Python; ``packages`` under "versions"."""
    info: dict[str, Any] = {"nproc": os.cpu_count(), "cpu_model": cpu_model()}
    if system:
        info.update(platform=platform.platform(), python=platform.python_version())
    info.update(extra)
    if packages:
        info["versions"] = versions(*packages)
    return info


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def code_state(ref: str | None = None) -> dict[str, Any]:
    """The commit measured; for the working tree also its uncommitted changes."""
    if ref:
        return {"served": f"git archive {ref}", "commit": git("rev-parse", ref)}
    return {
        "served": "working tree",
        "commit": git("rev-parse", "HEAD"),
        "uncommitted": git("status", "--porcelain").splitlines(),
    }


def code_line(code: dict[str, Any]) -> str:
    line = f"{code['served']} at {code['commit'][:10]}"
    if code.get("uncommitted"):
        line += f" with {len(code['uncommitted'])} uncommitted paths"
    return line


def code_summary() -> str:
    """One line: the short commit of the working tree, and whether tracked files have edits."""
    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"working tree at {head}" + (" (with uncommitted changes)" if dirty else "")


def export_code(ref: str, prefix: str = "bench_code_") -> Path:
    """A clean copy of ``ref`` (no uncommitted edits) to serve from; removed by the caller."""
    target = Path(tempfile.mkdtemp(prefix=prefix))
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target
