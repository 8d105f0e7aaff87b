"""daphne on the project's reactor (``conflict_monitor.reactor``), HTTP request
(``conflict_monitor.httprequest``), WebSocket protocol (``conflict_monitor.wsprotocol``) and server
(``conflict_monitor.server``), with daphne's own arguments:

    python -m conflict_monitor.serve -b 0.0.0.0 -p 8000 conflict_monitor.asgi:application
"""

from __future__ import annotations

import gc

from conflict_monitor import httprequest, reactor, wsprotocol

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


def prepare() -> reactor.FlushingAsyncioReactor:
    """Install the reactor, the HTTP request and the WebSocket protocol, and settle the heap once the
    server runs. Call before anything imports daphne.server, which keeps an asyncio reactor already
    installed."""
    installed = reactor.install()
    httprequest.install()
    wsprotocol.install()
    # daphne imports the application before it starts the reactor: this runs after startup's imports
    # and before the first connection.
    installed.callWhenRunning(settle_heap)
    return installed


def main() -> None:
    prepare()
    from conflict_monitor.server import CommandLineInterface

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
