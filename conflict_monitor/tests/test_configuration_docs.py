"""docs/configuration.md lists every variable the settings read, so an operator never has to read the code."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_environment_variable_of_the_settings_is_documented():
    settings = (ROOT / "conflict_monitor" / "settings.py").read_text()
    read = set(re.findall(r'env_(?:str|bool|int|float|list)\("([A-Z0-9_]+)"', settings))
    assert len(read) > 40, "the pattern no longer finds the settings' variables"
    documented = set(re.findall(r"`([A-Z0-9_]+)`", (ROOT / "docs" / "configuration.md").read_text()))
    assert sorted(read - documented) == []
