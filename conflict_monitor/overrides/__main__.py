"""``python -m conflict_monitor.overrides [--write-docs]``: check every override against the installed
packages (exit status 1 and the mismatches on stderr when one does not fit); ``--write-docs`` rewrites
the generated part of docs/overrides.md."""

from __future__ import annotations

import sys

from conflict_monitor.overrides import _main

sys.exit(_main(sys.argv[1:]))
