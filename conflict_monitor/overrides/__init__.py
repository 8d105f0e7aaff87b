"""The project's overrides of third-party internals, one module per upstream package, and the check
that the installed packages still have what they rely on.

Each module patches what one upstream package does (a module may also name a member of the package
its upstream builds on, e.g. the autobahn protocol reads Twisted's socket buffers) and lists:

- ``RELIES_ON``: every private member it uses (read, written, overridden or called), every method it
  overrides and reaches with positional arguments, and every upstream name it replaces, as
  ``Member``\\ s with the shape it expects;
- ``CHECKED_AGAINST``: the upstream versions it was written and checked against (the locked ones,
  requirements.txt);
- ``MEASURED_GAIN``: what each of its overrides bought, as measured, or "not measured".

``check()`` verifies the members against the installed packages and raises ``OverrideMismatch``
naming every member that is missing or changed shape and the installed version of its package.
Where it runs:

- the launcher (``conflict_monitor.serve``) checks every module before it installs anything, and
  refuses to start; daphne's members only once its reactor is in (importing daphne's server
  installs one of daphne's own otherwise), still before any other override is installed;
- the monitoring app's ``ready()`` checks the modules every Django process applies (psycopg-pool's
  backoff always, the pub/sub layer when a channel layer uses it), so ``manage.py runserver``, the
  broadcaster and every other command refuse too.

Module names follow the upstream package (``twisted``, ``daphne``...): with absolute imports (the
only kind Python 3 has) ``import twisted`` inside this package still finds the real Twisted. Import
them as ``conflict_monitor.overrides.twisted`` or under another name, not as bare ``twisted``.
docs/overrides.md lists them all; ``python -m conflict_monitor.overrides`` checks and rewrites it.
"""

from __future__ import annotations

import dis
import importlib
import importlib.metadata
import inspect
import sys
import types
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Shapes a member can have.
ATTRIBUTE = "attribute"  # on the class or module: a value, not a function
INSTANCE_ATTRIBUTE = "instance attribute"  # on the class, or assigned to ``self`` in a method of it or a base
METHOD = "method"
COROUTINE = "coroutine method"  # ``async def``: the override is one too, or upstream awaits it
KINDS = (ATTRIBUTE, INSTANCE_ATTRIBUTE, METHOD, COROUTINE)

# The override modules. Importing ``daphne`` imports daphne's server, which installs an asyncio
# reactor of its own when none is installed yet: the launcher checks it once the project's reactor is
# in (``serve.prepare``), the others before.
MODULES = ("twisted", "daphne", "autobahn", "channels_redis", "psycopg_pool")
BEFORE_REACTOR = tuple(name for name in MODULES if name != "daphne")

# The distribution behind each top-level module an override names (for its installed version).
DISTRIBUTIONS = {
    "twisted": "Twisted",
    "autobahn": "autobahn",
    "txaio": "txaio",
    "daphne": "daphne",
    "channels_redis": "channels-redis",
    "psycopg_pool": "psycopg-pool",
}


@dataclass(frozen=True)
class Member:
    """``owner.name`` as an override relies on it.

    ``owner`` is ``"module:Qualname"`` for a class, ``"module"`` for a module. ``signature``, for a
    method, is its parameters after ``self`` without annotations or defaults, as ``str(signature)``
    writes them: ``"(selectable, read)"``, ``"(*args, **kwargs)"``. ``contains``: items the attribute
    (a collection) must hold. ``read_by``: an upstream function (relative to ``owner``) that must look
    the member up by name when it runs, so that replacing the member takes effect.
    """

    owner: str
    name: str
    kind: str = ATTRIBUTE
    signature: str | None = None
    contains: tuple[str, ...] = ()
    read_by: str | None = None
    why: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.path}: unknown kind {self.kind!r}")
        if self.signature is not None and self.kind not in (METHOD, COROUTINE):
            raise ValueError(f"{self.path}: only a method has a signature")

    @property
    def module(self) -> str:
        return self.owner.partition(":")[0]

    @property
    def path(self) -> str:
        """The member's dotted path: ``twisted.web.http.Request.__init__``."""
        return f"{self.owner.replace(':', '.')}.{self.name}"

    @property
    def distribution(self) -> str:
        top = self.module.partition(".")[0]
        return DISTRIBUTIONS.get(top, top)

    @property
    def shape(self) -> str:
        """The expected shape, in words (for messages and docs/overrides.md)."""
        text = self.kind
        if self.signature is not None:
            text += f" `{self.signature}`"
        if self.contains:
            text += ", holding " + ", ".join(f"`{item}`" for item in self.contains)
        if self.read_by:
            text += f", looked up by `{self._read_by_path}`"
        return text

    @property
    def _read_by_path(self) -> str:
        qualname = self.owner.partition(":")[2]
        return f"{qualname}.{self.read_by}" if qualname else self.read_by or ""

    def problem(self) -> str | None:
        """What does not fit in the installed package, or None."""
        module_name, _, qualname = self.owner.partition(":")
        try:
            owner = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is None or not (module_name == error.name or module_name.startswith(error.name + ".")):
                raise  # one of the module's own imports is missing: not this member's problem
            return f"module {module_name} is missing"
        for part in qualname.split(".") if qualname else ():
            owner = getattr(owner, part, _MISSING)
            if owner is _MISSING:
                return f"{self.owner.replace(':', '.')} is missing"
        return self._shape_problem(owner)

    def _shape_problem(self, owner) -> str | None:
        value = inspect.getattr_static(owner, self.name, _MISSING)
        if self.kind == INSTANCE_ATTRIBUTE:
            if value is _MISSING and not (inspect.isclass(owner) and _assigned_to_instances(owner, self.name)):
                return "missing: neither on the class nor assigned to self by it or a base"
        elif value is _MISSING:
            return "missing"
        elif self.kind == ATTRIBUTE:
            if _is_function(value):
                return "is a method, not an attribute"
            if self.contains:
                held = getattr(owner, self.name)
                absent = [item for item in self.contains if item not in held]
                if absent:
                    return f"does not hold {', '.join(absent)}"
        else:
            if not _is_function(value):
                return f"is {type(value).__name__}, not a method"
            function = getattr(owner, self.name)
            if self.kind == COROUTINE and not inspect.iscoroutinefunction(inspect.unwrap(function)):
                return "is not a coroutine method (async def)"
            if self.kind == METHOD and inspect.iscoroutinefunction(inspect.unwrap(function)):
                return "is a coroutine method (async def)"
            if self.signature is not None:
                found = _parameters(owner, value, function)
                if found != self.signature:
                    return f"has parameters {found}, expected {self.signature}"
        if self.read_by:
            return self._lookup_problem(owner)
        return None

    def _lookup_problem(self, owner) -> str | None:
        reader = owner
        for part in self.read_by.split("."):
            reader = getattr(reader, part, _MISSING)
            if reader is _MISSING:
                return f"{self._read_by_path}, which should look it up, is missing"
        code = getattr(inspect.unwrap(reader), "__code__", None)
        if code is None or self.name not in _names_used(code):
            return f"{self._read_by_path} no longer looks it up by name: replacing it would change nothing"
        return None


_MISSING = object()


class OverrideMismatch(RuntimeError):
    """Installed packages lack members the overrides rely on, or those changed shape."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "The installed packages do not have what the project's overrides rely on:\n"
            + "\n".join(f"- {line}" for line in problems)
            + "\nInstall the locked versions (requirements.txt), or fix the override and its RELIES_ON and "
            "CHECKED_AGAINST (docs/overrides.md)."
        )


def installed_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def mismatches(members: Iterable[Member], checked_against: dict[str, str] | None = None, by: str = "") -> list[str]:
    """One line per member that does not fit: its path and shape, what is wrong, and the installed
    version of its package (with the version the override was checked against)."""
    lines = []
    for member in members:
        problem = member.problem()
        if problem is None:
            continue
        version = f"{member.distribution} {installed_version(member.distribution)} installed"
        checked = (checked_against or {}).get(member.distribution)
        if checked:
            version += f", checked against {checked}"
        user = f", relied on by {by}" if by else ""
        shape = member.shape.replace("`", "")
        lines.append(f"{member.path} ({shape}{user}): {problem} ({version})")
    return lines


def load(module: str | types.ModuleType) -> types.ModuleType:
    """An override module, by its name in this package."""
    if isinstance(module, types.ModuleType):
        return module
    return importlib.import_module(f"{__name__}.{module}")


def check(*modules: str | types.ModuleType) -> None:
    """Raise ``OverrideMismatch`` unless every member the given override modules (all by default)
    rely on is installed with the shape they expect."""
    problems = []
    for module in map(load, modules or MODULES):
        problems += mismatches(module.RELIES_ON, module.CHECKED_AGAINST, by=module.__name__)
    if problems:
        raise OverrideMismatch(problems)


_FUNCTIONS = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
    staticmethod,
    classmethod,
)


def _is_function(value) -> bool:
    """A method as a class holds it (``inspect.isroutine`` would also take any descriptor, such as
    Twisted's ``Logger``)."""
    return isinstance(value, _FUNCTIONS)


def _parameters(owner, static, function) -> str:
    """The parameters of a method after ``self``/``cls``, without annotations or defaults."""
    parameters = list(inspect.signature(function).parameters.values())
    # Taken from a class, a plain function still has ``self`` (a classmethod comes bound).
    if inspect.isclass(owner) and isinstance(static, types.FunctionType):
        parameters = parameters[1:]
    empty = inspect.Parameter.empty
    return str(inspect.Signature([p.replace(annotation=empty, default=empty) for p in parameters]))


def _names_used(code: types.CodeType) -> set[str]:
    """Global and attribute names a function's code looks up, nested functions included."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _names_used(constant)
    return names


def _assigned_to_instances(cls: type, name: str) -> bool:
    return any(_assigns_to_self(klass, name) for klass in cls.__mro__ if klass is not object)


def _assigns_to_self(klass: type, name: str) -> bool:
    """Whether a method the class defines assigns ``self.<name>`` (plainly, annotated or in a tuple
    target), read from its bytecode without running it."""
    for value in vars(klass).values():
        if isinstance(value, staticmethod | classmethod):
            value = value.__func__
        elif isinstance(value, property):
            value = value.fset
        code = getattr(inspect.unwrap(value), "__code__", None) if callable(value) else None
        if code is None or not code.co_argcount or name not in code.co_names:
            continue
        previous = None
        for instruction in dis.get_instructions(code):
            if (
                instruction.opname == "STORE_ATTR"
                and instruction.argval == name
                and _loads(previous, code.co_varnames[0])
            ):
                return True
            previous = instruction
    return False


def _loads(instruction: dis.Instruction | None, variable: str) -> bool:
    """Whether the instruction pushes ``variable`` last: ``LOAD_FAST`` (and the combined forms of
    later Pythons), or ``LOAD_DEREF`` when a comprehension or nested function uses it."""
    if instruction is None or not instruction.opname.startswith(("LOAD_FAST", "LOAD_DEREF")):
        return False
    pushed = instruction.argval
    return (pushed[-1] if isinstance(pushed, tuple) else pushed) == variable


def markdown() -> str:
    """docs/overrides.md's generated part: each module's overrides, gains, versions and members."""
    out = []
    for module in map(load, MODULES):
        path = module.__name__.replace(".", "/") + ".py"
        versions = ", ".join(f"{name} {version}" for name, version in module.CHECKED_AGAINST.items())
        out += [f"### `{path}`", "", f"Checked against {versions}.", ""]
        out += ["| override | measured gain |", "|---|---|"]
        out += [f"| {name} | {gain} |" for name, gain in module.MEASURED_GAIN.items()]
        out += ["", "| relies on | shape | for |", "|---|---|---|"]
        out += [f"| `{member.path}` | {member.shape} | {member.why} |" for member in module.RELIES_ON]
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _main(argv: list[str]) -> int:
    """``python -m conflict_monitor.overrides``: check every module; ``--write-docs`` also rewrites
    docs/overrides.md's generated part."""
    try:
        check()
    except OverrideMismatch as mismatch:
        print(mismatch, file=sys.stderr)
        return 1
    count = sum(len(load(name).RELIES_ON) for name in MODULES)
    print(f"{count} members of {len(MODULES)} override modules fit the installed packages.")
    if "--write-docs" in argv:
        write_docs()
    return 0


DOCS = Path(__file__).resolve().parents[2] / "docs" / "overrides.md"
BEGIN = "<!-- generated: python -m conflict_monitor.overrides --write-docs -->\n"
END = "<!-- end of generated part -->\n"


def documented_part(text: str) -> str:
    """The generated part of docs/overrides.md."""
    start = text.index(BEGIN) + len(BEGIN)
    return text[start : text.index(END, start)]


def write_docs() -> None:
    text = DOCS.read_text()
    start = text.index(BEGIN) + len(BEGIN)
    DOCS.write_text(text[:start] + "\n" + markdown() + "\n" + text[text.index(END, start) :])
