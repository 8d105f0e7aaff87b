from monitoring.management.commands import create_ingest_token
from monitoring.models import TokenScope


class Command(create_ingest_token.Command):
    help = (
        "Create a read token for a program that follows the status (the API's reads and the private live "
        "feed; it cannot write) and print its key once."
    )
    scope = TokenScope.READ
    who = "Who uses the token, e.g. 'ops-dashboard'."
