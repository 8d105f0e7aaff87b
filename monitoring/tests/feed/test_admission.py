"""Who may open the live feed and whether there is room: public read, a session, a read token in the
handshake's Authorization header, a one-time ticket, and the connection caps (4029 when full), on the
in-memory backends and on Redis."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.test import Client

from monitoring import events
from monitoring.feed.admission import Admission, admit, bearer_key, release
from monitoring.services.tickets import issue_ticket
from monitoring.services.tokens import create_ingest_token, create_read_token

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("feed_backend")]


def _scope(ip: str = "203.0.113.7", cookie: str | None = None, authorization: str | None = None) -> dict:
    headers = [(b"cookie", cookie.encode())] if cookie else []
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    return {"client": (ip, 50000), "headers": headers}


@pytest.fixture
def private(settings, feed_backend):
    settings.MONITORING_PUBLIC_READ = False


async def test_public_read_admits_anyone_and_holds_a_slot_for_the_ip():
    admission = await admit(_scope(), {})
    assert admission == Admission(close_code=None, slot_ip="203.0.113.7")
    await release(admission.slot_ip)


@pytest.mark.usefixtures("private")
async def test_the_private_feed_refuses_a_socket_without_session_or_ticket_as_unauthenticated():
    assert await admit(_scope(), {}) == Admission(close_code=events.CLOSE_UNAUTHENTICATED)
    assert await admit(_scope(), {"ticket": [""]}) == Admission(close_code=events.CLOSE_UNAUTHENTICATED)


@pytest.mark.usefixtures("private")
async def test_a_ticket_opens_the_private_feed_once_then_is_forbidden():
    ticket = await sync_to_async(issue_ticket)(user_id=42)
    first = await admit(_scope(), {"ticket": [ticket]})
    assert (first.close_code, first.slot_ip) == (None, "203.0.113.7")
    assert await admit(_scope(), {"ticket": [ticket]}) == Admission(close_code=events.CLOSE_FORBIDDEN)
    assert await admit(_scope(), {"ticket": ["made-up"]}) == Admission(close_code=events.CLOSE_FORBIDDEN)
    await release(first.slot_ip)


@pytest.mark.usefixtures("private")
async def test_a_logged_in_session_opens_the_private_feed(settings, django_user_model):
    user = await database_sync_to_async(django_user_model.objects.create_user)("viewer", password="pw")
    browser = Client()
    await database_sync_to_async(browser.force_login)(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    admission = await admit(_scope(cookie=cookie), {})
    assert (admission.close_code, admission.slot_ip) == (None, "203.0.113.7")
    await release(admission.slot_ip)


async def test_sockets_over_the_total_cap_are_refused_with_4029_until_a_slot_is_released(settings):
    settings.WEBSOCKET_MAX_CONNECTIONS = 2
    held = [await admit(_scope(ip=f"198.51.100.{i}"), {}) for i in (1, 2)]
    assert [a.close_code for a in held] == [None, None]
    assert await admit(_scope(ip="198.51.100.3"), {}) == Admission(close_code=events.CLOSE_TOO_MANY_CONNECTIONS)
    await release(held[0].slot_ip)
    again = await admit(_scope(ip="198.51.100.3"), {})
    assert again.close_code is None
    for admission in (held[1], again):
        await release(admission.slot_ip)


async def test_sockets_over_the_per_ip_cap_are_refused_with_4029_while_other_ips_get_in(settings):
    settings.WEBSOCKET_MAX_CONNECTIONS_PER_IP = 1
    first = await admit(_scope(), {})
    assert await admit(_scope(), {}) == Admission(close_code=events.CLOSE_TOO_MANY_CONNECTIONS)
    other = await admit(_scope(ip="192.0.2.9"), {})
    assert other.close_code is None
    for admission in (first, other):
        await release(admission.slot_ip)


@pytest.mark.usefixtures("private")
async def test_an_unreachable_ticket_store_asks_the_client_to_reconnect(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 1},
        }
    }
    assert await admit(_scope(), {"ticket": ["some-ticket"]}) == Admission(close_code=events.CLOSE_RECONNECT)


async def test_releasing_no_slot_does_nothing(settings):
    settings.WEBSOCKET_MAX_CONNECTIONS = 1
    await release(None)
    held = await admit(_scope(), {})
    assert await admit(_scope(ip="192.0.2.9"), {}) == Admission(close_code=events.CLOSE_TOO_MANY_CONNECTIONS)
    await release(held.slot_ip)


async def _key(create) -> str:
    return (await database_sync_to_async(create)(name=f"program-{create.__name__}"))[1]


@pytest.mark.usefixtures("private")
async def test_a_read_key_in_the_authorization_header_opens_the_private_feed():
    key = await _key(create_read_token)
    for scheme in ("Bearer", "Token", "bearer"):
        admission = await admit(_scope(authorization=f"{scheme} {key}"), {})
        assert (admission.close_code, admission.slot_ip) == (None, "203.0.113.7"), scheme
        await release(admission.slot_ip)


@pytest.mark.usefixtures("private")
async def test_an_ingest_key_an_unknown_key_and_a_revoked_read_key_are_forbidden():
    from django.utils import timezone

    from monitoring.models import IngestToken

    ingest, read = await _key(create_ingest_token), await _key(create_read_token)
    unknown = read[:-4] + ("AAAA" if not read.endswith("AAAA") else "BBBB")
    for key in (ingest, unknown, "cmr_not-a-whole-key"):
        assert await admit(_scope(authorization=f"Bearer {key}"), {}) == Admission(close_code=events.CLOSE_FORBIDDEN)
    await database_sync_to_async(
        lambda: IngestToken.objects.filter(prefix=read.split("_")[1]).update(revoked_at=timezone.now())
    )()
    assert await admit(_scope(authorization=f"Bearer {read}"), {}) == Admission(close_code=events.CLOSE_FORBIDDEN)


@pytest.mark.usefixtures("private")
async def test_a_bad_key_is_refused_even_with_a_good_ticket():
    ticket = await sync_to_async(issue_ticket)(user_id=42)
    admission = await admit(_scope(authorization="Bearer cmr_unknown"), {"ticket": [ticket]})
    assert admission == Admission(close_code=events.CLOSE_FORBIDDEN)


@pytest.mark.usefixtures("private")
async def test_a_header_not_meant_for_this_server_is_passed_over():
    """A proxy's own credentials on a browser's handshake: the ticket (or cookie) still decides."""
    for header in ("Basic b3A6cHc=", "Bearer eyJhbGciOiJSUzI1NiJ9.proxy.token", "Bearer", "cmr_x"):
        assert bearer_key(_scope(authorization=header)) is None
        assert await admit(_scope(authorization=header), {}) == Admission(close_code=events.CLOSE_UNAUTHENTICATED)
        ticket = await sync_to_async(issue_ticket)(user_id=42)
        admission = await admit(_scope(authorization=header), {"ticket": [ticket]})
        assert admission.close_code is None, header
        await release(admission.slot_ip)


@pytest.mark.usefixtures("private")
async def test_a_ticket_obtained_with_a_read_token_opens_the_feed_once():
    ticket = await sync_to_async(issue_ticket)(token_id=7)
    first = await admit(_scope(), {"ticket": [ticket]})
    assert first.close_code is None
    assert await admit(_scope(), {"ticket": [ticket]}) == Admission(close_code=events.CLOSE_FORBIDDEN)
    await release(first.slot_ip)


@pytest.mark.usefixtures("private")
async def test_an_unreachable_token_store_asks_the_client_to_reconnect(monkeypatch):
    from django.db import OperationalError

    def down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("monitoring.feed.admission.authenticate_token", down)
    refused = await admit(_scope(authorization="Bearer cmr_0123456789ab_" + "x" * 43), {})
    assert refused == Admission(close_code=events.CLOSE_RECONNECT)


async def test_public_read_needs_no_key_and_ignores_a_bad_one():
    admission = await admit(_scope(authorization="Bearer cmr_unknown"), {})
    assert admission.close_code is None
    await release(admission.slot_ip)
