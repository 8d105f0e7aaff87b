"""Send a marked test notification to the configured webhook, to prove paging works end to end."""

from django.core.management.base import BaseCommand, CommandError

from monitoring.services.notifications import send_test_notification


class Command(BaseCommand):
    help = "POST a test notification to MONITORING_WEBHOOK_URL and print the receiver's answer."

    def handle(self, *args, **options) -> None:
        result = send_test_notification()
        if not result.ok:
            status = f" (HTTP {result.status_code})" if result.status_code is not None else ""
            raise CommandError(f"Test notification to {result.url_host or 'nowhere'} failed{status}: {result.error}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Test notification delivered to {result.url_host}: HTTP {result.status_code} "
                f"in {result.elapsed_ms:.0f} ms."
            )
        )
