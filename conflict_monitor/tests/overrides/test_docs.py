"""docs/overrides.md lists every override as the modules declare them: members, versions, gains."""

from __future__ import annotations

from conflict_monitor import overrides


def test_the_overrides_tables_are_generated_from_the_modules_constants():
    documented = overrides.documented_part(overrides.DOCS.read_text())
    assert documented.strip() == overrides.markdown().strip(), (
        "docs/overrides.md is out of step: run python -m conflict_monitor.overrides --write-docs"
    )
