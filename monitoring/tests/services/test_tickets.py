"""Live-feed tickets in the cache (locmem and real Redis): redeemed once for their user, never after
they expire, never by two racing redeemers, and stored only as a hash."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache

from monitoring.services.tickets import _key, issue_ticket, redeem_ticket

pytestmark = pytest.mark.usefixtures("feed_backend")


def test_a_ticket_redeems_once_for_its_user():
    ticket = issue_ticket(user_id=42)
    assert redeem_ticket(ticket=ticket) == 42
    assert redeem_ticket(ticket=ticket) is None


@pytest.mark.parametrize("ticket", ["", "unknown", "x" * 129])
def test_an_empty_unknown_or_overlong_ticket_redeems_nothing(ticket):
    assert redeem_ticket(ticket=ticket) is None


def test_only_a_hash_of_the_ticket_is_stored():
    ticket = issue_ticket(user_id=42)
    assert cache.get(ticket) is None
    assert cache.get(_key(ticket)) == 42
    assert ticket not in _key(ticket)


def test_of_two_racing_redeemers_exactly_one_wins():
    for _ in range(20):
        ticket = issue_ticket(user_id=7)
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda t: redeem_ticket(ticket=t), [ticket, ticket]))
        assert sorted(results, key=str) == [7, None]


def test_an_expired_ticket_does_not_redeem(settings):
    settings.WEBSOCKET_TICKET_TTL = 1
    ticket = issue_ticket(user_id=42)
    time.sleep(1.2)
    assert redeem_ticket(ticket=ticket) is None


def test_a_ticket_of_a_read_token_redeems_once_for_the_token():
    ticket = issue_ticket(token_id=9)
    assert redeem_ticket(ticket=ticket) == "token:9"
    assert redeem_ticket(ticket=ticket) is None


@pytest.mark.parametrize("holders", [{}, {"user_id": 1, "token_id": 2}])
def test_a_ticket_has_exactly_one_holder(holders):
    with pytest.raises(ValueError, match="a user or to a token"):
        issue_ticket(**holders)
