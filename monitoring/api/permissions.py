from django.conf import settings
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission

from monitoring.models import IngestToken, TokenScope


class HasIngestToken(BasePermission):
    """An ingest-scope token. A read token authenticates but is refused here: 403 ``forbidden``."""

    message = "An ingest token is required: 'Authorization: Token <key>'."
    code = "forbidden"
    read_scope_message = (
        "A read token cannot write: metrics, runs and OpenLineage events take an ingest token "
        "(manage.py create_ingest_token)."
    )

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, IngestToken):
            return False
        if request.auth.scope != TokenScope.INGEST:
            # DRF makes a permission instance per request, so the message set here is this request's only.
            self.message = self.read_scope_message
            return False
        return True


class CanOpenFeed(BasePermission):
    """``POST ws-ticket``: a logged-in user, or a read token (``FeedReaderAuthentication``); 401 without either.

    An ingest token is refused (403 ``forbidden``): the pipeline writes, a reader watches, and a leaked
    ingest key should not also show everything the monitor knows in real time.
    """

    code = "forbidden"
    message = (
        "An ingest token cannot open the live feed: use a read token (manage.py create_read_token) or a "
        "logged-in session."
    )

    def has_permission(self, request, view) -> bool:
        if request.user and request.user.is_authenticated:
            return True
        if request.auth is None:
            raise NotAuthenticated(
                "Not authenticated: a ticket takes a logged-in session or 'Authorization: Bearer <read key>'."
            )
        return isinstance(request.auth, IngestToken) and request.auth.scope == TokenScope.READ


class IsOperator(BasePermission):
    """A logged-in operator (with ``OperatorAuthentication``): 401 without one, 403 ``forbidden`` for a token.

    A token (ingest or read) authenticates a program, not a person: it is refused as not allowed, not as
    missing credentials.
    """

    code = "forbidden"
    message = "A token is not allowed here: operator endpoints take a logged-in session (log in at /admin/login/)."

    def has_permission(self, request, view) -> bool:
        if request.user and request.user.is_authenticated:
            return True
        if request.auth is None:
            raise NotAuthenticated(
                "Not logged in: operator endpoints take a logged-in session (log in at /admin/login/)."
            )
        return False


class ReadOrWriteMixin:
    """Public (or logged-in) reads, writes through ``write_authenticator`` / ``write_permission``."""

    write_authenticator: type
    write_permission: type

    def get_authenticators(self):
        if self.request is not None and self.request.method == "POST":
            return [self.write_authenticator()]
        return super().get_authenticators()

    def get_permissions(self):
        return [self.write_permission()] if self.request.method == "POST" else [CanReadMonitoring()]


class CanReadMonitoring(BasePermission):
    """Public when ``MONITORING_PUBLIC_READ`` is on; otherwise a logged-in user or a token of either scope (an
    ingest token has always been able to read the status it feeds; a read token is made for it)."""

    def has_permission(self, request, view) -> bool:
        if settings.MONITORING_PUBLIC_READ:
            return True
        return bool(request.user and request.user.is_authenticated) or isinstance(request.auth, IngestToken)
