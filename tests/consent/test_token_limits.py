"""A public client id and a wrong secret cannot spend a vendor's token allowance (#13 item 4)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from tests.consent.conftest import Flow, basic

ATTACKER = "203.0.113.9"
VENDOR = "198.51.100.7"
BOGUS_CODE = {"grant_type": "authorization_code", "code": "nope"}


@pytest.fixture(autouse=True)
def _fresh_cache(time_machine: Any) -> Iterator[None]:
    # Fixed windows: a frozen clock keeps a test's requests in one window.
    time_machine.move_to(dt.datetime.now(dt.UTC), tick=False)
    cache.clear()
    yield
    cache.clear()


def _guess(client: Client, client_id: str, secret: str = "wrong-secret") -> Any:  # noqa: S107
    return client.post("/o/token/", BOGUS_CODE, **basic(client_id, secret))


def test_wrong_secrets_are_refused_without_spending_the_clients_allowance(flow: Flow, settings: Any) -> None:
    settings.VRM_TOKEN_RATE_PER_MINUTE = 3
    settings.VRM_TOKEN_FAILURES_PER_MINUTE = 5
    attacker = Client(REMOTE_ADDR=ATTACKER)
    statuses = [_guess(attacker, flow.app.client_id).status_code for _ in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    limited = _guess(attacker, flow.app.client_id)
    assert int(limited["Retry-After"]) >= 1 and limited.json()["error"] == "slow_down"
    # Refused before the secret is checked: even the right secret from there waits.
    assert _guess(attacker, flow.app.client_id, flow.secret).status_code == 429

    # The vendor, elsewhere, still has its whole allowance: a code exchange and two more requests.
    flow.client.defaults["REMOTE_ADDR"] = VENDOR
    assert "access_token" in flow.tokens()
    vendor = Client(REMOTE_ADDR=VENDOR)
    assert [_guess(vendor, flow.app.client_id, flow.secret).status_code for _ in range(3)] == [400, 400, 429]


def test_a_client_id_post_body_is_counted_like_basic_auth(flow: Flow, settings: Any) -> None:
    settings.VRM_TOKEN_FAILURES_PER_MINUTE = 2
    attacker = Client(REMOTE_ADDR=ATTACKER)
    body = {**BOGUS_CODE, "client_id": flow.app.client_id, "client_secret": "wrong"}
    assert [attacker.post("/o/token/", body).status_code for _ in range(3)] == [401, 401, 429]
    flow.client.defaults["REMOTE_ADDR"] = VENDOR
    assert "access_token" in flow.tokens()


def test_failures_are_counted_per_client_and_address(flow: Flow, stranger_app: Any, settings: Any) -> None:
    settings.VRM_TOKEN_FAILURES_PER_MINUTE = 2
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(2):
        _guess(attacker, flow.app.client_id)
    assert _guess(attacker, flow.app.client_id).status_code == 429
    # Another client's count, from the same address, is its own.
    assert _guess(attacker, stranger_app.client_id).status_code == 401
    # The vendor sharing the attacker's address (one NAT) waits with it: before the secret is
    # checked the two cannot be told apart (docs/security.md, "The token endpoint").
    flow.client.defaults["REMOTE_ADDR"] = ATTACKER
    assert flow.exchange(flow.code()).status_code == 429


def test_authenticated_requests_keep_their_per_client_allowance(flow: Flow, settings: Any) -> None:
    settings.VRM_TOKEN_RATE_PER_MINUTE = 2
    settings.VRM_TOKEN_FAILURES_PER_MINUTE = 100
    first, second = Client(REMOTE_ADDR=VENDOR), Client(REMOTE_ADDR="192.0.2.44")
    # Counted per client wherever its requests come from.
    assert _guess(first, flow.app.client_id, flow.secret).status_code == 400
    assert _guess(second, flow.app.client_id, flow.secret).status_code == 400
    limited = _guess(first, flow.app.client_id, flow.secret)
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
