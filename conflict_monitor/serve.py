"""daphne on the project's reactor (``conflict_monitor.reactor``), with daphne's own arguments:

    python -m conflict_monitor.serve -b 0.0.0.0 -p 8000 conflict_monitor.asgi:application
"""

from __future__ import annotations

from conflict_monitor import reactor


def main() -> None:
    reactor.install()
    # daphne.server keeps an asyncio reactor that is already installed, so it must be imported after.
    from daphne.cli import CommandLineInterface

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
