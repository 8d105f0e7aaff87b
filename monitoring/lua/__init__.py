"""The Redis Lua scripts, one ``.lua`` file each beside this module, read once.

Kept as files so they can be read, linted and diffed as Lua; ``script(name)`` is the source that
``redis.asyncio.Redis.register_script`` takes.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@cache
def script(name: str) -> str:
    return (_HERE / f"{name}.lua").read_text(encoding="utf-8")


def names() -> list[str]:
    return sorted(path.stem for path in _HERE.glob("*.lua"))
