"""The lock files are what the inputs ask for: every input pinned within its specifier, nothing else at the top,
every package with hashes. `make lock` regenerates them (pip-tools)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PAIRS = [
    ("requirements.txt", ["requirements.in"]),
    ("requirements-dev.txt", ["requirements-dev.in", "requirements.in"]),
]
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)")


def _inputs(name: str) -> dict[str, Requirement]:
    found = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            found[canonicalize_name(requirement.name)] = requirement
    return found


def _lock(name: str) -> tuple[dict[str, str], dict[str, set[str]], set[str]]:
    """Pinned versions, what each package is there for (pip-compile's "via" notes), and packages with hashes."""
    pins: dict[str, str] = {}
    via: dict[str, set[str]] = {}
    hashed: set[str] = set()
    current = None
    for line in (ROOT / name).read_text().splitlines():
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = match.group(2)
            via[current] = set()
        elif current and "--hash=sha256:" in line:
            hashed.add(current)
        elif current and line.strip().startswith("#"):
            note = line.strip("# ").removeprefix("via ").strip()
            if note:
                via[current].add(note)
    return pins, via, hashed


@pytest.mark.parametrize(("lock", "inputs"), PAIRS)
def test_every_input_is_locked_within_its_specifier(lock, inputs):
    pins, _, _ = _lock(lock)
    for source in inputs:
        for name, requirement in _inputs(source).items():
            assert name in pins, f"{name} ({source}) is not in {lock}: run make lock"
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"{lock} pins {name}=={pins[name]}, {source} asks for {requirement}: run make lock"
            )


@pytest.mark.parametrize(("lock", "inputs"), PAIRS)
def test_nothing_is_locked_as_an_input_that_no_input_names(lock, inputs):
    _, via, _ = _lock(lock)
    named = {name for source in inputs for name in _inputs(source)}
    top = {name for name, notes in via.items() if any(note.startswith("-r requirements") for note in notes)}
    assert top == named, f"{lock} and its inputs differ: run make lock"


@pytest.mark.parametrize("lock", [lock for lock, _ in PAIRS])
def test_every_locked_package_has_hashes(lock):
    pins, _, hashed = _lock(lock)
    assert pins and set(pins) == hashed


def test_the_runtime_pins_are_the_same_in_both_locks():
    runtime, _, _ = _lock("requirements.txt")
    dev, _, _ = _lock("requirements-dev.txt")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_the_security_floors_hold():
    pins, _, _ = _lock("requirements.txt")
    assert tuple(map(int, pins["twisted"].split(".")[:2])) >= (26, 10)  # header values with bare CR / LF refused
    assert tuple(map(int, pins["django"].split("."))) >= (5, 2, 20)  # seven CVEs fixed in 5.2.20
