from django.core.management.base import BaseCommand, CommandError

from monitoring.models import TokenScope
from monitoring.services.tokens import TokenNameTaken, create_token


class Command(BaseCommand):
    help = "Create an ingest token for a pipeline component and print its key once."
    scope = TokenScope.INGEST
    who = "Who uses the token, e.g. 'scraper-acled'."

    def add_arguments(self, parser):
        parser.add_argument("name", help=self.who)

    def handle(self, *args, name: str, **options):
        if not name.strip() or len(name) > 100:
            raise CommandError("The name must be 1-100 characters.")
        try:
            token, key = create_token(name=name.strip(), scope=self.scope)
        except TokenNameTaken as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(
            self.style.SUCCESS(f"Created {self.scope} token {token.name!r}. Store the key now; it is not kept:")
        )
        self.stdout.write(key)
