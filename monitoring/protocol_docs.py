"""Writes what ``monitoring.protocol`` defines into the docs: the message tables of
``docs/protocol.md`` (between ``<!-- protocol:NAME -->`` markers) and ``docs/protocol.schema.json``.

``python -m monitoring.protocol_docs`` rewrites both; ``monitoring/tests/test_protocol_docs.py`` fails when
either is behind the classes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from monitoring import protocol

DOCS = Path(__file__).resolve().parent.parent / "docs"
MARKDOWN = DOCS / "protocol.md"
SCHEMA = DOCS / "protocol.schema.json"


def _topic_frames() -> str:
    rows = [f"| `{c.TYPE}` | `{c.TOPIC}` | {c.DOC} |" for c in protocol.TOPIC_FRAMES]
    return "\n".join(["| type | topic | `data` |", "|---|---|---|", *rows])


def _replies() -> str:
    rows = [f"| `{c.TYPE}` | {c.DOC} | {c.AFTER} |" for c in protocol.REPLIES]
    return "\n".join(["| type | `data` | sent after |", "|---|---|---|", *rows])


def _client() -> str:
    rows = [f"| `{c.EXAMPLE}` | {c.DOC} |" for c in protocol.CLIENT_REQUESTS]
    return "\n".join(["| message | effect |", "|---|---|", *rows])


def _error_codes() -> str:
    return ", ".join(f"`{code}`" for code in protocol.ERROR_CODES)


TABLES = {"topic-frames": _topic_frames, "replies": _replies, "client": _client, "error-codes": _error_codes}


def render_markdown(text: str) -> str:
    """``text`` with every marked block replaced by what the classes say."""
    for name, render in TABLES.items():
        pattern = re.compile(rf"(<!-- protocol:{name} -->\n?).*?(\n?<!-- /protocol:{name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"docs/protocol.md has no <!-- protocol:{name} --> block")
        text = pattern.sub(lambda m, r=render: m.group(1) + r() + m.group(2), text)
    return text


def render_schema() -> str:
    return json.dumps(protocol.json_schema(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    MARKDOWN.write_text(render_markdown(MARKDOWN.read_text(encoding="utf-8")), encoding="utf-8")
    SCHEMA.write_text(render_schema(), encoding="utf-8")


if __name__ == "__main__":
    main()
