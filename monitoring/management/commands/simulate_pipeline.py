import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from monitoring.selectors import pipeline_status
from monitoring.services.alerts import evaluate_alerts
from monitoring.simulation import SCENARIOS, simulate


class Command(BaseCommand):
    help = "Feed realistic pipeline traffic (runs and metrics) through the ingest services."

    def add_arguments(self, parser):
        parser.add_argument("--scenario", choices=SCENARIOS, default="normal")
        parser.add_argument("--hours", type=float, default=48, help="History to backfill, ending now.")
        parser.add_argument("--step-minutes", type=float, default=60, help="Minutes between scrapes.")
        parser.add_argument("--seed", type=int, default=None, help="Seed for repeatable traffic.")
        parser.add_argument(
            "--follow", type=float, default=0, metavar="SECONDS", help="Then keep writing one tick every SECONDS."
        )

    def handle(self, *args, scenario: str, hours: float, step_minutes: float, seed, follow: float, **options):
        if not (0 < hours <= 24 * 366 and 0.1 <= step_minutes <= 24 * 60 and 0 <= follow <= 3600):
            raise CommandError("Use 0 < --hours <= 8784, 0.1 <= --step-minutes <= 1440, 0 <= --follow <= 3600.")
        written = simulate(scenario=scenario, now=timezone.now(), hours=hours, step_minutes=step_minutes, seed=seed)
        self.stdout.write(
            self.style.SUCCESS(f"{scenario}: wrote {written['runs']} runs and {written['metrics']} metrics.")
        )
        self._show_alerts()
        tick = 0
        while follow:
            time.sleep(follow)
            tick += 1
            written = simulate(
                scenario=scenario,
                now=timezone.now(),
                hours=follow / 3600,
                step_minutes=follow / 60,
                seed=None if seed is None else seed + tick,
            )
            self.stdout.write(f"tick {tick}: {written['runs']} runs, {written['metrics']} metrics")
            self._show_alerts()

    def _show_alerts(self) -> None:
        """Run the alert rules now, as the broadcaster would, and show what fired or resolved."""
        for change in evaluate_alerts(document=pipeline_status()):
            alert = change.alert
            style = self.style.ERROR if change.kind == "fired" else self.style.WARNING
            self.stdout.write(style(f"  alert {change.kind}: [{alert.severity}] {alert.summary}"))
