"""The feed's session lookup: a logged-in session opens the private feed, a logged-out or unknown one
does not, an unreachable session store asks the client to reconnect, and the public feed never looks."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import OperationalError
from django.test import Client

from conflict_monitor.asgi import application
from monitoring import events
from monitoring.feed import session
from monitoring.feed.session import session_key, session_user_id

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("feed_backend")]
PATH = "/ws/monitoring/pipeline-status"


async def logged_in_cookie(settings, django_user_model) -> tuple[str, Client]:
    user = await database_sync_to_async(django_user_model.objects.create_user)("viewer", password="pw")
    browser = Client()
    await database_sync_to_async(browser.force_login)(user)
    return f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}", browser


async def first_output(cookie: str | None) -> dict:
    headers = [(b"cookie", cookie.encode())] if cookie else []
    feed = WebsocketCommunicator(application, PATH, headers=headers)
    assert (await feed.connect(timeout=5))[0]
    output = await feed.receive_output(timeout=5)
    await feed.disconnect()
    return output


async def test_the_session_key_is_read_from_the_cookie_header_by_the_configured_name(settings):
    settings.SESSION_COOKIE_NAME = "monitor_session"
    scope = {"headers": [(b"host", b"x"), (b"cookie", b"a=1; monitor_session=abc123; b=2")]}
    assert session_key(scope) == "abc123"
    assert session_key({"headers": [(b"cookie", b"sessionid=abc")]}) is None
    assert session_key({"headers": []}) is None


async def test_a_logged_in_session_resolves_to_its_user(settings, django_user_model):
    cookie, _ = await logged_in_cookie(settings, django_user_model)
    user_id = await session_user_id({"headers": [(b"cookie", cookie.encode())]})
    assert user_id == (await database_sync_to_async(django_user_model.objects.get)(username="viewer")).pk


async def test_a_logged_out_session_no_longer_opens_the_private_feed(settings, django_user_model):
    settings.MONITORING_PUBLIC_READ = False
    cookie, browser = await logged_in_cookie(settings, django_user_model)
    assert (await first_output(cookie))["type"] == "websocket.send"
    await database_sync_to_async(browser.logout)()
    closed = await first_output(cookie)
    assert (closed["type"], closed["code"]) == ("websocket.close", events.CLOSE_UNAUTHENTICATED)


async def test_an_unknown_session_key_is_refused_as_unauthenticated(settings):
    settings.MONITORING_PUBLIC_READ = False
    closed = await first_output(f"{settings.SESSION_COOKIE_NAME}=not-a-session")
    assert (closed["type"], closed["code"]) == ("websocket.close", events.CLOSE_UNAUTHENTICATED)


async def test_an_unreachable_session_store_asks_the_client_to_reconnect(settings, monkeypatch):
    settings.MONITORING_PUBLIC_READ = False

    async def store_down(scope):
        raise OperationalError("the database is down")

    monkeypatch.setattr(session, "get_user", store_down)
    closed = await first_output(f"{settings.SESSION_COOKIE_NAME}=some-session")
    assert (closed["type"], closed["code"]) == ("websocket.close", events.CLOSE_RECONNECT)


async def test_the_public_feed_never_looks_up_a_session(settings, monkeypatch):
    settings.MONITORING_PUBLIC_READ = True

    async def must_not_run(scope):
        raise AssertionError("session looked up on the public feed")

    monkeypatch.setattr(session, "get_user", must_not_run)
    assert (await first_output(f"{settings.SESSION_COOKIE_NAME}=some-session"))["type"] == "websocket.send"
