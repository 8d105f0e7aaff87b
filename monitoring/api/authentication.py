from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from monitoring.services.tokens import authenticate_ingest_token

KEYWORD = b"token"


class IngestTokenAuthentication(BaseAuthentication):
    """``Authorization: Token <key>`` for the pipeline; the token is ``request.auth``."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Invalid token header: expected 'Token <key>'.")
        try:
            raw_key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid token header: the key must be ASCII.") from None
        token = authenticate_ingest_token(raw_key=raw_key)
        if token is None:
            raise AuthenticationFailed("Invalid or revoked token.")
        return AnonymousUser(), token

    def authenticate_header(self, request) -> str:
        return "Token"
