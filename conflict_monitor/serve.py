"""daphne with the project's overrides (``conflict_monitor.overrides``: the reactor, the HTTP request,
the WebSocket protocol and the server), with daphne's own arguments:

    python -m conflict_monitor.serve -b 0.0.0.0 -p 8000 conflict_monitor.asgi:application

It refuses to start (exit status 1, the reason on stderr) when an installed package lacks a member an
override relies on, or the member changed shape (``conflict_monitor.overrides.check``).
"""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING

from conflict_monitor import overrides

if TYPE_CHECKING:
    from conflict_monitor.overrides.twisted import FlushingAsyncioReactor

# Young-generation collections every 50,000 net allocations instead of 700: a server with thousands
# of sockets otherwise runs a collection every few deliveries, and the full ones that follow walk
# every socket's objects (50-165 ms pauses at 1,000 sockets, measured).
GC_THRESHOLDS = (50_000, 20, 10)


def settle_heap() -> None:
    """Leave the objects of startup (Django, the app, every module) out of later full collections:
    they live as long as the process, and were most of what a full collection walked."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def prepare() -> FlushingAsyncioReactor:
    """Check the overrides, then install the reactor, the HTTP request and the WebSocket protocol, and
    settle the heap once the server runs; return the reactor. Call before anything imports
    daphne.server, which keeps an asyncio reactor already installed.

    Raises ``overrides.OverrideMismatch`` when an override does not fit the installed packages: before
    anything is installed, or, for daphne's members, once the reactor is and before anything else."""
    overrides.check(*overrides.BEFORE_REACTOR)
    from conflict_monitor.overrides import twisted as twisted_overrides

    installed = twisted_overrides.install()
    # Importing daphne's server installs an asyncio reactor unless one is installed: what the daphne
    # overrides rely on can only be checked now, still before any of them is installed.
    overrides.check("daphne")
    from conflict_monitor.overrides import autobahn as autobahn_overrides
    from conflict_monitor.overrides import daphne as daphne_overrides

    daphne_overrides.install()
    autobahn_overrides.install()
    # daphne imports the application before it starts the reactor: this runs after startup's imports
    # and before the first connection.
    installed.callWhenRunning(settle_heap)
    return installed


def main() -> None:
    try:
        prepare()
    except overrides.OverrideMismatch as mismatch:
        sys.exit(f"conflict_monitor.serve: refusing to start.\n{mismatch}")
    from conflict_monitor.overrides.daphne import CommandLineInterface

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
