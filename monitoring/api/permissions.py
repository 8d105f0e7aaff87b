from django.conf import settings
from rest_framework.permissions import BasePermission

from monitoring.models import IngestToken


class HasIngestToken(BasePermission):
    message = "An ingest token is required: 'Authorization: Token <key>'."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, IngestToken)


class CanReadMonitoring(BasePermission):
    """Public when ``MONITORING_PUBLIC_READ`` is on; otherwise a logged-in user or an ingest token."""

    def has_permission(self, request, view) -> bool:
        if settings.MONITORING_PUBLIC_READ:
            return True
        return bool(request.user and request.user.is_authenticated) or isinstance(request.auth, IngestToken)
