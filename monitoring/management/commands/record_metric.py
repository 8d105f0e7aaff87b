from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from monitoring.services.metrics import STAGES, MetricInput, MetricInputError, MetricLinkError, record_metrics


class Command(BaseCommand):
    help = "Record one data-quality metric, as the pipeline would through the API."

    def add_arguments(self, parser):
        parser.add_argument("--source", required=True)
        parser.add_argument("--geocoding-attempts", type=int, default=0)
        parser.add_argument("--geocoding-successes", type=int, default=0)
        parser.add_argument("--validation-attempts", type=int, default=0)
        parser.add_argument("--validation-passes", type=int, default=0)
        parser.add_argument("--metric-type", default="batch")
        parser.add_argument("--timestamp", help="ISO-8601 with a UTC offset; default now.")
        parser.add_argument("--run-id", type=int, help="The pipeline run that reported it (of the same source).")
        parser.add_argument("--stage", choices=STAGES, help="The stage that reported it (default: the run's).")

    def handle(self, *args, **options):
        timestamp = None
        if options["timestamp"]:
            try:
                timestamp = parse_datetime(options["timestamp"])
            except ValueError:
                timestamp = None
            if timestamp is None:
                raise CommandError(f"--timestamp {options['timestamp']!r} is not an ISO-8601 date-time.")
        try:
            metric = MetricInput(
                source=options["source"],
                metric_type=options["metric_type"],
                timestamp=timestamp,
                geocoding_attempts=options["geocoding_attempts"],
                geocoding_successes=options["geocoding_successes"],
                validation_attempts=options["validation_attempts"],
                validation_passes=options["validation_passes"],
                run_id=options["run_id"],
                stage=options["stage"],
            )
        except MetricInputError as exc:
            raise CommandError(f"Invalid metric: {exc}") from None
        try:
            (row,) = record_metrics(metrics=[metric])
        except MetricLinkError as exc:
            raise CommandError(f"Invalid metric: {'; '.join(exc.errors[0].values())}") from None
        self.stdout.write(
            self.style.SUCCESS(f"Recorded metric {row.pk} for {row.source} at {row.timestamp.isoformat()}")
        )
