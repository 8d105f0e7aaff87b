"""One builder of the HTTP error body: every module that answers an error uses monitoring.errors."""

import json
import pathlib
import re

from monitoring.errors import error_body, error_json

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_serialised_body_is_the_built_one():
    assert json.loads(error_json(code="payload_too_large", detail="Too big.")) == error_body(
        code="payload_too_large", detail="Too big."
    )


def test_no_other_module_builds_the_error_body_by_hand():
    hand_built = re.compile(r"""\{\s*["']error["']\s*:\s*[^<\s]""")  # a literal, not a `<code>` in prose
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("monitoring", "conflict_monitor")
        for path in (ROOT / folder).rglob("*.py")
        if "tests" not in path.parts and path.name != "errors.py" and hand_built.search(path.read_text())
    ]
    assert offenders == []
