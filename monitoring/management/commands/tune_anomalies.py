from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from monitoring.anomaly.tuning import DEFAULT_SENSITIVITIES, MAX_DAYS, tune


class Command(BaseCommand):
    help = (
        "Replay the stored hourly history through the anomaly detector at several sensitivities: episodes "
        "per source and week, and how many overlap alerts that operators acknowledged or resolved."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", default=None, help="Only this source.")
        parser.add_argument("--days", type=int, default=30, help=f"Days to replay, ending now (1..{MAX_DAYS}).")
        parser.add_argument(
            "--sensitivity",
            type=float,
            action="append",
            dest="sensitivities",
            help="A sensitivity to try (repeatable); default " + ", ".join(f"{s:g}" for s in DEFAULT_SENSITIVITIES),
        )

    def handle(self, *args, source, days, sensitivities, **options):
        try:
            report = tune(
                now=timezone.now(), days=days, source=source, sensitivities=sensitivities or DEFAULT_SENSITIVITIES
            )
        except (ValueError, LookupError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Replayed {report['days']} days: {report['from']:%Y-%m-%d %H:%M} to {report['to']:%Y-%m-%d %H:%M} UTC."
        )
        for result in report["results"]:
            total = sum(s["episodes"] for s in result["sources"])
            matched = sum(s["matched_resolved"] + s["matched_acknowledged"] for s in result["sources"])
            self.stdout.write(
                self.style.MIGRATE_HEADING(
                    f"sensitivity {result['sensitivity']:g}: {total} episodes, {matched} overlap alerts operators "
                    "acknowledged or resolved"
                )
            )
            for row in result["sources"]:
                self.stdout.write(
                    f"  {row['source']:<24} {row['episodes']:>4} episodes ({row['per_week']:.2f}/week)  "
                    f"resolved {row['matched_resolved']}  acknowledged {row['matched_acknowledged']}  "
                    f"unmatched {row['unmatched']}"
                )
