import time
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from monitoring.selectors import pipeline_status
from monitoring.services.alerts import evaluate_alerts
from monitoring.services.feed import publish_alert_changes_sync
from monitoring.simulation import SCENARIOS, check_arguments, simulate, simulate_phases


class Command(BaseCommand):
    help = "Feed realistic pipeline traffic (runs and metrics) through the ingest services."

    def add_arguments(self, parser):
        parser.add_argument("--scenario", choices=SCENARIOS, default="normal")
        parser.add_argument("--hours", type=float, default=48, help="History to backfill, ending now.")
        parser.add_argument("--step-minutes", type=float, default=60, help="Minutes between scrapes.")
        parser.add_argument("--seed", type=int, default=None, help="Seed for repeatable traffic.")
        parser.add_argument(
            "--recover-hours",
            type=float,
            default=0,
            metavar="HOURS",
            help="End the incident this long before now (at least 1 for the 1-hour rules to clear): "
            "its alerts fire, then resolve.",
        )
        parser.add_argument(
            "--follow", type=float, default=0, metavar="SECONDS", help="Then keep writing one tick every SECONDS."
        )

    def handle(self, *args, scenario: str, hours: float, step_minutes: float, seed, recover_hours, follow, **options):
        if not (0 < hours <= 24 * 366 and 0.1 <= step_minutes <= 24 * 60 and 0 <= follow <= 3600):
            raise CommandError("Use 0 < --hours <= 8784, 0.1 <= --step-minutes <= 1440, 0 <= --follow <= 3600.")
        try:
            check_arguments(scenario=scenario, hours=hours, recover_hours=recover_hours)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        phases = simulate_phases(
            scenario=scenario,
            now=timezone.now(),
            hours=hours,
            step_minutes=step_minutes,
            seed=seed,
            recover_hours=recover_hours,
        )
        for phase in phases:
            self.stdout.write(
                self.style.SUCCESS(
                    f"{scenario} ({phase.name}): wrote {phase.runs} runs and {phase.metrics} metrics "
                    f"up to {phase.ends_at:%Y-%m-%d %H:%M}."
                )
            )
            self._show_alerts(now=phase.ends_at)
        # Once the incident is over, live ticks carry normal traffic.
        live_scenario = "normal" if recover_hours else scenario
        tick = 0
        while follow:
            time.sleep(follow)
            tick += 1
            written = simulate(
                scenario=live_scenario,
                now=timezone.now(),
                hours=follow / 3600,
                step_minutes=follow / 60,
                seed=None if seed is None else seed + tick,
            )
            self.stdout.write(f"tick {tick}: {written['runs']} runs, {written['metrics']} metrics")
            self._show_alerts(now=timezone.now())

    def _show_alerts(self, *, now: datetime) -> None:
        """Run the alert rules as the broadcaster would at ``now``; push and show what changed."""
        changes = evaluate_alerts(document=pipeline_status(now=now), now=now)
        transaction.on_commit(lambda: publish_alert_changes_sync(changes=changes))
        for change in changes:
            alert = change.alert
            style = self.style.ERROR if change.kind == "fired" else self.style.WARNING
            self.stdout.write(style(f"  alert {change.kind}: [{alert.severity}] {alert.summary}"))
