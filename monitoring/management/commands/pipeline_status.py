import json

from django.core.management.base import BaseCommand, CommandError

from monitoring.selectors import MAX_WINDOW_HOURS, MIN_WINDOW_HOURS, anomalies, pipeline_status


class Command(BaseCommand):
    help = "Print the pipeline status document (the same JSON as GET /api/v1/monitoring/pipeline-status)."

    def add_arguments(self, parser):
        parser.add_argument("--window-hours", type=int, default=None)
        parser.add_argument("--compact", action="store_true", help="One line instead of indented JSON.")

    def handle(self, *args, window_hours, compact: bool, **options):
        if window_hours is not None and not MIN_WINDOW_HOURS <= window_hours <= MAX_WINDOW_HOURS:
            raise CommandError(f"--window-hours must be within {MIN_WINDOW_HOURS}..{MAX_WINDOW_HOURS}.")
        # The process ends once the document is printed: a judgement left to a thread would be lost.
        anomalies.judge_in_this_process(anomalies.CALLER)
        document = pipeline_status(window_hours=window_hours)
        self.stdout.write(json.dumps(document, indent=None if compact else 2))
