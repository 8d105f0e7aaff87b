from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from monitoring.services.tokens import authenticate_token

KEYWORD = b"token"
BEARER = b"bearer"


def token_from_header(parts: list[bytes], *, expected: str):
    """``(AnonymousUser(), token)`` for ``<scheme> <key>`` split into ``parts`` (the scheme already
    accepted by the caller); a malformed, unknown or revoked key is a 401 naming the ``expected`` form.
    The one place that reads a key from a header: ingest, OpenLineage and the feed's ticket endpoint."""
    if len(parts) != 2:
        raise AuthenticationFailed(f"Invalid authorization header: expected {expected}.")
    try:
        raw_key = parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise AuthenticationFailed("Invalid authorization header: the key must be ASCII.") from None
    token = authenticate_token(raw_key=raw_key)
    if token is None:
        raise AuthenticationFailed("Invalid or revoked token.")
    return AnonymousUser(), token


class IngestTokenAuthentication(BaseAuthentication):
    """``Authorization: Token <key>`` for the pipeline; the token is ``request.auth``."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD:
            return None
        return token_from_header(parts, expected="'Token <key>'")

    def authenticate_header(self, request) -> str:
        return "Token"


# The challenge operator endpoints answer a 401 with: they take a logged-in session, not a header.
OPERATOR_CHALLENGE = 'Session realm="operator"'


class OperatorAuthentication(BaseAuthentication):
    """Operator endpoints: a logged-in session (with CSRF); a header only to be told what is wrong.

    A logged-in session wins. Without one, ``Authorization: Token <key>`` is checked as an ingest token
    (a bad one is a 401; a good one authenticates the pipeline, which ``IsOperator`` then refuses with a
    403), and any other scheme is a 401 saying so. No credentials at all leave the request anonymous
    (``IsOperator``: 401). Every 401 carries ``WWW-Authenticate: Session realm="operator"``.
    """

    def authenticate(self, request):
        session = SessionAuthentication().authenticate(request)  # enforces CSRF for a logged-in user
        if session is not None:
            return session
        parts = get_authorization_header(request).split()
        if not parts:
            return None
        if parts[0].lower() == KEYWORD:
            return IngestTokenAuthentication().authenticate(request)
        scheme = parts[0].decode("ascii", errors="replace")[:40]
        raise AuthenticationFailed(
            f"Unsupported authorization scheme {scheme!r}: operator endpoints take a logged-in session "
            "(log in at /admin/login/), not an Authorization header."
        )

    def authenticate_header(self, request) -> str:
        return OPERATOR_CHALLENGE


# The challenge ``POST ws-ticket`` answers a 401 with: a logged-in session, or a read key as a bearer token.
FEED_CHALLENGE = f'{OPERATOR_CHALLENGE}, Bearer realm="feed"'


class FeedReaderAuthentication(BaseAuthentication):
    """``POST ws-ticket``: a logged-in session (with CSRF), or ``Authorization: Bearer <key>`` (or ``Token <key>``).

    The token is ``request.auth`` whatever its scope; ``permissions.CanOpenFeed`` lets a read token through
    and refuses an ingest token (403). A malformed, unknown or revoked key, or another scheme, is a 401.
    """

    def authenticate(self, request):
        session = SessionAuthentication().authenticate(request)
        if session is not None:
            return session
        parts = get_authorization_header(request).split()
        if not parts:
            return None
        if parts[0].lower() not in (BEARER, KEYWORD):
            scheme = parts[0].decode("ascii", errors="replace")[:40]
            raise AuthenticationFailed(
                f"Unsupported authorization scheme {scheme!r}: take 'Bearer <read key>' or a logged-in session."
            )
        return token_from_header(parts, expected="'Bearer <key>'")

    def authenticate_header(self, request) -> str:
        return FEED_CHALLENGE
