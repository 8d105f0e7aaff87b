from django.conf import settings
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission

from monitoring.models import IngestToken


class HasIngestToken(BasePermission):
    message = "An ingest token is required: 'Authorization: Token <key>'."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, IngestToken)


class IsOperator(BasePermission):
    """A logged-in operator (with ``OperatorAuthentication``): 401 without one, 403 ``forbidden`` for a token.

    An ingest token authenticates the pipeline, not a person: it is refused as not allowed, not as
    missing credentials.
    """

    code = "forbidden"
    message = (
        "An ingest token is not allowed here: operator endpoints take a logged-in session (log in at /admin/login/)."
    )

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
    """Public when ``MONITORING_PUBLIC_READ`` is on; otherwise a logged-in user or an ingest token."""

    def has_permission(self, request, view) -> bool:
        if settings.MONITORING_PUBLIC_READ:
            return True
        return bool(request.user and request.user.is_authenticated) or isinstance(request.auth, IngestToken)
