"""Many requests at once against the live server, on whichever database the run uses.

`make run` serves SQLite from a threaded server, so concurrent requests are the normal case, not
an edge. Each test starts its threads together behind a barrier and then checks what the
contract promises under a race: no 5xx, one winner for a code or a refresh token with replay and
reuse detection intact (INTERFACES.md §4), one record per Idempotency-Key (§5).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from django.core.cache import cache
from django.db import connection
from django.test import Client

from audit.models import LedgerEntry
from consent.models import AccessToken, AuthorizationCode, Grant, RefreshToken
from personal_data.models import Purchase
from tests.conftest import purchase_data
from tests.consent.conftest import REDIRECT, SECRET, Flow
from tests.vendors_api.conftest import add_record, authorize, issue_token
from vendors import messages
from vendors.messages import WEEKLY_ALLOWANCE
from vendors.models import Application, IdempotencyKey, Message
from vendors.services import application_secret_reset

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 12


@pytest.fixture(autouse=True)
def _roomy_limits(throttle_rates: Callable[..., None], settings: Any) -> Iterator[None]:
    """Rate limits out of the way: the races are the point here, not the 429s."""
    throttle_rates()
    settings.VRM_TOKEN_RATE_PER_MINUTE = 100000
    cache.clear()
    yield
    cache.clear()


def together(
    calls: list[Callable[[], requests.Response]], *, barrier: threading.Barrier | None = None
) -> list[requests.Response]:
    """Run the calls in threads released at the same instant; return their responses in order.

    Pass a barrier with more parties to release other threads (an in-process service) with them.
    """
    barrier = barrier or threading.Barrier(len(calls))

    def run(call: Callable[[], requests.Response]) -> requests.Response:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def statuses(responses: list[requests.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def assert_no_5xx(responses: list[requests.Response]) -> None:
    failed = [(r.status_code, r.text[:300]) for r in responses if r.status_code >= 500]
    assert not failed, failed


def flow_for(person: Any, app: Application) -> Flow:
    """The authorization-code flow driven in-process (the consent page is not under test here)."""
    client = Client()
    client.force_login(person)
    return Flow(client=client, app=app)


def token_post(live_server: Any, app: Application, data: dict[str, str]) -> Callable[[], requests.Response]:
    def post() -> requests.Response:
        return requests.post(
            f"{live_server.url}/o/token/", data=data, auth=(app.client_id, SECRET), timeout=60
        )

    return post


def me(live_server: Any, access_token: str) -> requests.Response:
    return requests.get(
        f"{live_server.url}/api/v1/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=60
    )


def ledger_count(kind: str, grant: Grant) -> int:
    return LedgerEntry.objects.filter(kind=kind, grant_id=str(grant.pk)).count()


def test_concurrent_api_reads_and_writes_never_fail(
    live_server: Any, alice: Any, shop_app: Application
) -> None:
    grant = authorize(alice, shop_app)
    for _ in range(3):
        add_record(alice, "purchases")
    headers = {"Authorization": f"Bearer {issue_token(grant)}"}
    api = f"{live_server.url}/api/v1"
    before = Purchase.objects.filter(owner=alice).count()

    def reader(path: str) -> Callable[[], requests.Response]:
        def read() -> requests.Response:
            # Several requests per thread keep the writers and readers overlapping.
            for _ in range(2):
                response = requests.get(f"{api}/{path}", headers=headers, timeout=60)
                if response.status_code != 200:
                    break
            return response

        return read

    def writer(n: int) -> Callable[[], requests.Response]:
        def write() -> requests.Response:
            return requests.post(
                f"{api}/purchases", json=purchase_data(lot=f"RACE{n}"), headers=headers, timeout=60
            )

        return write

    calls = [writer(n) if n % 2 else reader(("me", "purchases", "receipts")[n % 3]) for n in range(THREADS)]
    responses = together(calls)

    assert_no_5xx(responses)
    assert statuses(responses) == {200: THREADS // 2, 201: THREADS // 2}, [r.text[:200] for r in responses]
    assert Purchase.objects.filter(owner=alice).count() == before + THREADS // 2
    assert ledger_count("access.write", grant) == THREADS // 2


def test_the_same_code_exchanged_at_once_wins_once_and_the_replays_revoke_its_tokens(
    live_server: Any, alice: Any, shop_app: Application
) -> None:
    flow = flow_for(alice, shop_app)
    code = flow.code()
    grant = Grant.objects.get(person=alice, application=shop_app)
    exchange = token_post(
        live_server,
        shop_app,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": flow.verifier,
        },
    )

    responses = together([exchange] * THREADS)

    assert_no_5xx(responses)
    assert statuses(responses) == {200: 1, 400: THREADS - 1}, [r.text[:200] for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code == 400)
    # Every replay is detected (none lost to a lock error), and it withdrew what the code gave.
    assert ledger_count("token.code_replayed", grant) == THREADS - 1
    assert ledger_count("token.issued", grant) == 1
    assert not AccessToken.objects.filter(grant=grant).exists()
    assert not RefreshToken.objects.filter(grant=grant).exists()
    assert me(live_server, winner["access_token"]).status_code == 401
    refreshed = token_post(
        live_server, shop_app, {"grant_type": "refresh_token", "refresh_token": winner["refresh_token"]}
    )()
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


def test_the_same_refresh_token_used_at_once_wins_at_most_once_and_reuse_revokes_the_grant_tokens(
    live_server: Any, alice: Any, shop_app: Application
) -> None:
    tokens = flow_for(alice, shop_app).tokens()
    grant = Grant.objects.get(person=alice, application=shop_app)
    refresh = token_post(
        live_server, shop_app, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )

    responses = together([refresh] * THREADS)

    assert_no_5xx(responses)
    counts = statuses(responses)
    assert counts[200] <= 1 and counts[200] + counts[400] == THREADS, [r.text[:200] for r in responses]
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code == 400)
    # A reused refresh token revokes the whole grant's tokens, the winner's new pair included.
    assert ledger_count("token.reuse_detected", grant) >= 1
    assert not AccessToken.objects.filter(grant=grant).exists()
    assert not RefreshToken.objects.filter(grant=grant).exists()
    for response in responses:
        if response.status_code == 200:
            assert me(live_server, response.json()["access_token"]).status_code == 401
    assert me(live_server, tokens["access_token"]).status_code == 401
    grant.refresh_from_db()
    assert grant.status == Grant.Status.ACTIVE  # the tokens go, the person's consent stays


def test_the_same_idempotency_key_posted_at_once_creates_one_record_and_answers_alike(
    live_server: Any, alice: Any, shop_app: Application
) -> None:
    grant = authorize(alice, shop_app)
    headers = {"Authorization": f"Bearer {issue_token(grant)}", "Idempotency-Key": "order-4471"}
    body = purchase_data(lot="ONCE")
    before = Purchase.objects.filter(owner=alice).count()

    def post() -> requests.Response:
        return requests.post(f"{live_server.url}/api/v1/purchases", json=body, headers=headers, timeout=60)

    responses = together([post] * THREADS)

    assert_no_5xx(responses)
    # The losers of the race wait for the winner and answer as its replay: the same 201.
    assert statuses(responses) == {201: THREADS}, [r.text[:200] for r in responses]
    assert len({r.content for r in responses}) == 1
    assert Purchase.objects.filter(owner=alice).count() == before + 1
    assert IdempotencyKey.objects.filter(application=shop_app, key="order-4471").count() == 1


def test_a_secret_reset_racing_token_requests_leaves_no_token_or_code_of_the_old_secret(
    live_server: Any, alice: Any, shop_app: Application, vendor_staff: Any, settings: Any
) -> None:
    settings.VRM_TOKEN_FAILURES_PER_MINUTE = 100000  # the old secret fails: not a 429 here
    # Refreshes lock their refresh token and a reset deletes it: both take the app row first, so
    # they queue instead of deadlocking, and whatever the order no token of the old secret lives.
    refreshes = [flow_for(alice, shop_app).tokens()["refresh_token"] for _ in range(THREADS // 2)]
    flows = [flow_for(alice, shop_app) for _ in range(THREADS // 2)]
    codes = [(flow.code(), flow.verifier) for flow in flows]
    calls = [
        token_post(live_server, shop_app, {"grant_type": "refresh_token", "refresh_token": r})
        for r in refreshes
    ] + [
        token_post(
            live_server,
            shop_app,
            {"grant_type": "authorization_code", "code": c, "redirect_uri": REDIRECT, "code_verifier": v},
        )
        for c, v in codes
    ]
    barrier = threading.Barrier(len(calls) + 1)
    reset: list[str] = []

    def reset_secret() -> None:
        barrier.wait(timeout=30)
        try:
            reset.append(application_secret_reset(application=shop_app, by=vendor_staff))
        finally:
            connection.close()

    resetter = threading.Thread(target=reset_secret)
    resetter.start()
    responses = together(calls, barrier=barrier)
    resetter.join(timeout=60)

    assert_no_5xx(responses)
    assert reset and set(statuses(responses)) <= {200, 400, 401}, [r.text[:200] for r in responses]
    assert not AccessToken.objects.filter(application=shop_app).exists()
    assert not RefreshToken.objects.filter(application=shop_app).exists()
    assert not AuthorizationCode.objects.filter(application=shop_app).exists()
    for response in responses:
        if response.status_code == 200:
            assert me(live_server, response.json()["access_token"]).status_code == 401


def test_posts_racing_for_the_last_message_of_the_week_send_only_one(
    live_server: Any, alice: Any, shop_app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = authorize(alice, shop_app, ["messages:send"])
    seal = messages.document_seal_to

    def slow_seal(**kwargs: Any) -> bytes:
        # Between counting the week's messages and storing this one: without the grant row
        # locked, every racer would count the same two and all would be stored.
        time.sleep(0.2)
        return seal(**kwargs)

    monkeypatch.setattr(messages, "document_seal_to", slow_seal)
    token = issue_token(grant)
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{live_server.url}/api/v1/messages"
    body = {"kind": "offer", "title": "Back in stock", "body": "Your size is back."}
    for _ in range(WEEKLY_ALLOWANCE - 1):
        assert requests.post(url, json=body, headers=headers, timeout=60).status_code == 201

    def post() -> requests.Response:
        return requests.post(url, json=body, headers=headers, timeout=60)

    responses = together([post] * THREADS)

    assert_no_5xx(responses)
    # The grant row is locked while a post counts the week's messages: one wins the last slot.
    assert statuses(responses) == {201: 1, 429: THREADS - 1}, [r.text[:200] for r in responses]
    assert all(int(r.headers["Retry-After"]) > 0 for r in responses if r.status_code == 429)
    assert Message.objects.filter(grant=grant).count() == WEEKLY_ALLOWANCE
    assert ledger_count("message.sent", grant) == WEEKLY_ALLOWANCE
