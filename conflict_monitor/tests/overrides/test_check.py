"""The overrides' check: every member the modules list fits the installed packages; a member that is
missing or changed shape is named with the installed version of its package; the versions the
modules were checked against are the locked ones."""

from __future__ import annotations

import re
import types
from importlib.metadata import version
from pathlib import Path

import pytest

from conflict_monitor import overrides
from conflict_monitor.overrides import ATTRIBUTE, COROUTINE, INSTANCE_ATTRIBUTE, METHOD, Member, OverrideMismatch

ROOT = Path(__file__).resolve().parents[3]
HERE = __name__


class Upstream:
    """A stand-in for an upstream class."""

    LIMIT = 3
    OPTIONS = ("a", "b")

    def __init__(self, loop):
        self._loop = loop
        self._first, self._second = [loop for _ in range(2)]

    def write(self, data, flush=False):
        return data

    def keyword_only(self, *, timeout):
        return timeout

    async def receive(self):
        return None

    def run(self):
        return self.LIMIT

    def idle(self):
        return None


class Derived(Upstream):
    pass


def problem(name: str, kind: str = ATTRIBUTE, owner: str = f"{HERE}:Derived", **shape) -> str | None:
    return Member(owner, name, kind, **shape).problem()


def test_every_member_the_overrides_rely_on_fits_the_installed_packages():
    overrides.check()  # raises OverrideMismatch naming what does not fit


@pytest.mark.parametrize(
    ("name", "kind", "shape"),
    [
        ("LIMIT", ATTRIBUTE, {}),
        ("OPTIONS", ATTRIBUTE, {"contains": ("a", "b")}),
        ("LIMIT", ATTRIBUTE, {"read_by": "run"}),
        ("_loop", INSTANCE_ATTRIBUTE, {}),
        ("_second", INSTANCE_ATTRIBUTE, {}),  # from a tuple target, assigned in a base
        ("LIMIT", INSTANCE_ATTRIBUTE, {}),  # a default on the class
        ("write", METHOD, {"signature": "(data, flush)"}),
        ("keyword_only", METHOD, {"signature": "(*, timeout)"}),
        ("receive", COROUTINE, {"signature": "()"}),
    ],
)
def test_a_member_with_the_expected_shape_fits(name, kind, shape):
    assert problem(name, kind, **shape) is None


@pytest.mark.parametrize(
    ("name", "kind", "shape", "expected"),
    [
        ("MISSING", ATTRIBUTE, {}, "missing"),
        ("_gone", INSTANCE_ATTRIBUTE, {}, "missing: neither on the class nor assigned to self by it or a base"),
        ("missing", METHOD, {}, "missing"),
        ("write", ATTRIBUTE, {}, "is a method, not an attribute"),
        ("LIMIT", METHOD, {}, "is int, not a method"),
        ("OPTIONS", ATTRIBUTE, {"contains": ("a", "c")}, "does not hold c"),
        ("write", METHOD, {"signature": "(data)"}, "has parameters (data, flush), expected (data)"),
        ("keyword_only", METHOD, {"signature": "(timeout)"}, "has parameters (*, timeout), expected (timeout)"),
        ("receive", METHOD, {}, "is a coroutine method (async def)"),
        ("run", COROUTINE, {}, "is not a coroutine method (async def)"),
        ("LIMIT", ATTRIBUTE, {"read_by": "idle"}, "Derived.idle no longer looks it up by name"),
        ("LIMIT", ATTRIBUTE, {"read_by": "gone"}, "Derived.gone, which should look it up, is missing"),
    ],
)
def test_a_member_that_is_missing_or_changed_shape_says_how(name, kind, shape, expected):
    assert expected in problem(name, kind, **shape)


def test_a_missing_owner_or_module_is_named():
    assert problem("LIMIT", owner=f"{HERE}:Gone") == f"{HERE}.Gone is missing"
    assert problem("LIMIT", owner="conflict_monitor.no_such_module:Upstream") == (
        "module conflict_monitor.no_such_module is missing"
    )


def test_a_mismatch_names_the_member_and_the_installed_version_of_its_package():
    members = [
        Member("psycopg_pool.base:AttemptWithBackoff", "DELAY_FACTOR"),
        Member("psycopg_pool.base:AttemptWithBackoff", "update_delay", METHOD, "(now, later)"),
        Member("psycopg_pool.base:AttemptWithBackoff", "DELAY_BACKOFF"),  # fits: not listed
    ]
    lines = overrides.mismatches(members, {"psycopg-pool": "3.3.3"}, by="a test")
    installed = version("psycopg-pool")
    assert lines == [
        "psycopg_pool.base.AttemptWithBackoff.DELAY_FACTOR (attribute, relied on by a test): missing "
        f"(psycopg-pool {installed} installed, checked against 3.3.3)",
        "psycopg_pool.base.AttemptWithBackoff.update_delay (method (now, later), relied on by a test): "
        f"has parameters (now), expected (now, later) (psycopg-pool {installed} installed, checked against 3.3.3)",
    ]


def test_check_raises_one_error_listing_every_mismatch_of_every_module():
    first = types.ModuleType("first")
    first.RELIES_ON, first.CHECKED_AGAINST = [Member(f"{HERE}:Upstream", "GONE")], {}
    second = types.ModuleType("second")
    second.RELIES_ON = [Member(f"{HERE}:Upstream", "LIMIT"), Member(f"{HERE}:Upstream", "write", METHOD, "()")]
    second.CHECKED_AGAINST = {}
    with pytest.raises(OverrideMismatch) as raised:
        overrides.check(first, second)
    assert [line.split(" (")[0] for line in raised.value.problems] == [
        f"{HERE}.Upstream.GONE",
        f"{HERE}.Upstream.write",
    ]
    assert "relied on by first" in str(raised.value) and "relied on by second" in str(raised.value)


def test_a_member_of_daphnes_server_that_is_gone_is_refused(monkeypatch):
    """What the launcher checks once its reactor is in: daphne's server installs one when imported."""
    from daphne.server import Server

    monkeypatch.delattr(Server, "create_application")
    with pytest.raises(OverrideMismatch) as raised:
        overrides.check("daphne")
    (line,) = raised.value.problems
    assert line.startswith("daphne.server.Server.create_application (method (protocol, scope), ")
    assert f"daphne {version('daphne')} installed, checked against 4.2.3" in line


def test_a_member_shape_is_validated_when_declared():
    with pytest.raises(ValueError, match="only a method has a signature"):
        Member(f"{HERE}:Upstream", "LIMIT", ATTRIBUTE, "()")
    with pytest.raises(ValueError, match="unknown kind"):
        Member(f"{HERE}:Upstream", "LIMIT", "property")


def test_the_versions_checked_against_are_the_locked_ones():
    pins = dict(re.findall(r"^([a-z0-9_.-]+)==(\S+)", (ROOT / "requirements.txt").read_text(), re.MULTILINE))

    def normal(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    locked = {normal(name): pinned for name, pinned in pins.items()}
    for name in overrides.MODULES:
        module = overrides.load(name)
        for distribution, checked in module.CHECKED_AGAINST.items():
            assert locked.get(normal(distribution)) == checked, (module.__name__, distribution)
        # Every member's package is one it was checked against.
        assert {member.distribution for member in module.RELIES_ON} <= set(module.CHECKED_AGAINST)


def test_every_module_lists_members_and_a_measured_gain_or_says_it_was_not_measured():
    for name in overrides.MODULES:
        module = overrides.load(name)
        assert module.RELIES_ON and module.MEASURED_GAIN, module.__name__
        for gain in module.MEASURED_GAIN.values():
            assert re.search(r"\d", gain) or gain.startswith("not measured"), gain
