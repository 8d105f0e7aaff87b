from django.core.management.base import BaseCommand, CommandError

from monitoring.services.tokens import TokenNameTaken, create_ingest_token


class Command(BaseCommand):
    help = "Create an ingest token for a pipeline component and print its key once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Who uses the token, e.g. 'scraper-acled'.")

    def handle(self, *args, name: str, **options):
        if not name.strip() or len(name) > 100:
            raise CommandError("The name must be 1-100 characters.")
        try:
            token, key = create_ingest_token(name=name.strip())
        except TokenNameTaken as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(
            self.style.SUCCESS(f"Created ingest token {token.name!r}. Store the key now; it is not kept:")
        )
        self.stdout.write(key)
