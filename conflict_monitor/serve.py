"""daphne on the project's reactor (``conflict_monitor.reactor``), with daphne's own arguments:

    python -m conflict_monitor.serve -b 0.0.0.0 -p 8000 conflict_monitor.asgi:application
"""

from __future__ import annotations

import gc

from conflict_monitor import reactor

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


def main() -> None:
    installed = reactor.install()
    # daphne imports the application before it starts the reactor: this runs after startup's imports
    # and before the first connection.
    installed.callWhenRunning(settle_heap)
    # daphne.server keeps an asyncio reactor that is already installed, so it must be imported after.
    from daphne.cli import CommandLineInterface

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
