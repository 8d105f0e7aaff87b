import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from prometheus_client import start_http_server

from monitoring.broadcaster import build_broadcaster


class Command(BaseCommand):
    help = "Publish the pipeline status to the live feed every WEBSOCKET_BROADCAST_INTERVAL s (HA via a lease)."

    def handle(self, *args, **options):
        if not settings.REDIS_URL:
            raise CommandError(
                "REDIS_URL is not set: without Redis the broadcaster runs inside the server process (make run)."
            )
        port, addr = settings.MONITORING_BROADCASTER_METRICS_PORT, settings.MONITORING_BROADCASTER_METRICS_ADDR
        if port:
            try:
                start_http_server(port, addr=addr)
            except OSError as exc:
                raise CommandError(f"cannot serve metrics on {addr}:{port}: {exc}") from exc
            self.stdout.write(f"Metrics at http://{addr}:{port}/metrics")
        self.stdout.write(
            f"Broadcasting every {settings.WEBSOCKET_BROADCAST_INTERVAL:g} s "
            f"(early pushes at most {settings.WEBSOCKET_MAX_PUSH_RATE:g}/s); Ctrl-C stops."
        )
        asyncio.run(self._run())
        self.stdout.write(self.style.SUCCESS("Broadcaster stopped; lease released."))

    async def _run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await build_broadcaster().run(stop)
