"""``pip install ./clients/python`` gives an importable, typed package with the ``cm-report`` command and two
runtime dependencies, httpx and websockets, each as a range that holds the version the repository's lock pins."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement

from tests.integration.cluster import ROOT

CLIENT = ROOT / "clients" / "python"


def test_a_plain_install_from_the_source_tree_is_importable_typed_and_has_cm_report(tmp_path):
    # Built from a copy: an in-tree build would leave build/ and *.egg-info in the work tree.
    source = shutil.copytree(CLIENT, tmp_path / "source", ignore=shutil.ignore_patterns("*.egg-info", "build"))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--target", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    package = target / "conflict_monitor_client"
    assert (package / "py.typed").exists()
    assert (target / "bin" / "cm-report").exists()
    imported = subprocess.run(
        [sys.executable, "-c", "from conflict_monitor_client import Monitor, AsyncMonitor; print(Monitor.__module__)"],
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout.strip() == "conflict_monitor_client.client"
    metadata = next(target.glob("conflict_monitor_client-*.dist-info")) / "METADATA"
    requires = [
        line.split(":", 1)[1].strip() for line in metadata.read_text().splitlines() if line.startswith("Requires-Dist:")
    ]
    assert [Requirement(line).name for line in requires] == ["httpx", "websockets"]


@pytest.mark.parametrize("name", ["httpx", "websockets"])
def test_the_client_asks_for_a_range_that_holds_the_locked_version(name):
    project = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    (dependency,) = [Requirement(line) for line in project["dependencies"] if Requirement(line).name == name]
    locked = re.search(rf"^{name}==(\S+)", (ROOT / "requirements-dev.txt").read_text(), re.MULTILINE)
    assert locked, f"{name} is not in requirements-dev.txt: add it to requirements-dev.in and run make lock"
    assert dependency.specifier.contains(locked.group(1))
    assert str(dependency.specifier) != f"=={locked.group(1)}", "a library asks for a range, not a pin"


def test_every_module_of_the_client_is_small():
    for module in (CLIENT / "src" / "conflict_monitor_client").glob("*.py"):
        assert len(module.read_text().splitlines()) <= 400, f"{module.name} is over 400 lines"
