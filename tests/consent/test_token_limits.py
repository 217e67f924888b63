"""A public client id and a wrong secret cannot spend a vendor's token allowance (#13 item 4)."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from oauth2_provider import oauth2_validators

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


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every client secret DOT checks (each one an Argon2 hash), by the client checked."""
    checked: list[str] = []
    real = oauth2_validators.check_password

    def counting(password: str, encoded: str, *args: Any, **kwargs: Any) -> bool:
        checked.append(encoded)
        return bool(real(password, encoded, *args, **kwargs))

    monkeypatch.setattr(oauth2_validators, "check_password", counting)
    return checked


def _percent_encoded(client_id: str, n: int) -> str:
    """The client id with its n-th character percent-encoded: DOT form-decodes it back."""
    return client_id[:n] + f"%{ord(client_id[n]):02X}" + client_id[n + 1 :]


def test_every_spelling_dot_decodes_to_the_client_is_counted_as_that_client(
    flow: Flow, settings: Any, hashes: list[str]
) -> None:
    settings.VRM_TOKEN_FAILURES_PER_MINUTE = 3
    attacker, client_id = Client(REMOTE_ADDR=ATTACKER), flow.app.client_id
    assert [_guess(attacker, client_id).status_code for _ in range(3)] == [401] * 3
    # RFC 6749 §2.3.1 form-encodes the Basic user part and DOT decodes it: the same client.
    for n in range(6):
        assert _guess(attacker, _percent_encoded(client_id, n)).status_code == 429
    assert _guess(attacker, _percent_encoded(client_id, 0), flow.secret).status_code == 429
    assert len(hashes) == 3


def test_a_basic_header_dot_ignores_does_not_hide_the_body_credentials(
    flow: Flow, settings: Any, hashes: list[str]
) -> None:
    settings.VRM_TOKEN_FAILURES_PER_MINUTE = 2
    attacker = Client(REMOTE_ADDR=ATTACKER)
    body = {**BOGUS_CODE, "client_id": flow.app.client_id, "client_secret": "wrong"}
    # DOT reads Basic credentials only under the scheme "Basic" and then falls back to the body.
    for n in range(5):
        decoy = base64.b64encode(f"decoy{n}:x".encode()).decode()
        attacker.post("/o/token/", body, HTTP_AUTHORIZATION=f"basic {decoy}")
    assert len(hashes) == 2
    # A client id in the query string is read by oauthlib as well.
    in_query = f"/o/token/?client_id={flow.app.client_id}&client_secret=x"
    assert attacker.post(in_query, BOGUS_CODE).status_code == 429
    assert len(hashes) == 2


def test_credentials_of_two_clients_in_one_request_are_refused_unchecked(
    flow: Flow, stranger_app: Any, hashes: list[str]
) -> None:
    # DOT would check the Basic secret and, failing that, the body's: two guesses for one count.
    body = {**BOGUS_CODE, "client_id": stranger_app.client_id, "client_secret": "guess"}
    response = Client(REMOTE_ADDR=ATTACKER).post("/o/token/", body, **basic(flow.app.client_id, "guess"))
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert hashes == []


def test_spellings_dot_does_not_resolve_cost_no_secret_hash(flow: Flow, hashes: list[str]) -> None:
    # Counted apart from the client only because DOT does not take them for it either:
    # the lookup is exact, so even the right secret is refused, and no hash is computed.
    client_id, attacker = flow.app.client_id, Client(REMOTE_ADDR=ATTACKER)
    spellings = {client_id.upper(), client_id.lower(), f"{client_id} ", f" {client_id}"}
    for spelling in spellings - {client_id}:
        assert _guess(attacker, spelling, flow.secret).status_code == 401
    # Control characters in credentials are refused at the edge (vrm.middleware), before any lookup.
    assert _guess(attacker, f"{client_id}\n", flow.secret).status_code == 400
    assert _guess(attacker, f"{client_id}%00", flow.secret).status_code == 400
    assert hashes == []


def test_revocation_and_introspection_failures_share_the_count(
    flow: Flow, settings: Any, hashes: list[str]
) -> None:
    settings.VRM_TOKEN_FAILURES_PER_MINUTE = 2
    attacker = Client(REMOTE_ADDR=ATTACKER)
    credentials = basic(flow.app.client_id, "wrong")
    assert attacker.post("/o/revoke_token/", {"token": "x"}, **credentials).status_code == 401
    assert attacker.post("/o/introspect/", {"token": "x"}, **credentials).status_code == 401
    for path in ("/o/revoke_token/", "/o/introspect/", "/o/token/"):
        refused = attacker.post(path, {**BOGUS_CODE, "token": "x"}, **credentials)
        assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert len(hashes) == 2
