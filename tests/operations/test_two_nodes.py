"""Two application servers behind one balancer act as one: what docs/operations.md ("Several
nodes") says they must share, shown over HTTP.

Two gunicorn servers, production settings, on free loopback ports, share the test database and
one Redis (each run under a key prefix of its own, deleted afterwards), and hold the same keys
and VRM_SECRET_KEY (inherited from tests/env.py). In each test one request goes to node A and
the next to node B: a session begun on A is served and ended on B, API rate limits and login
pauses count requests to both nodes together, an Idempotency-Key used on A answers on B, and a
token revoked on A is refused on B at once. With a per-process cache (CACHE_URL=locmem://) the
rate-limit and lockout tests fail: each node would count only the requests it saw.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import requests
from django.db import connection

from consent.models import Grant
from consent.services import grant_authorize
from personal_data.selectors import records_for_owner
from portal.services import person_signup
from tests.conftest import PASSWORD, purchase_data
from tests.consent.conftest import SECRET, make_app
from tests.operations.servers import database_url, start, stop, wait_ready
from tests.vendors_api.conftest import issue_token
from vendors.models import Application, IdempotencyKey, Organisation

REDIS = "redis://127.0.0.1:6379/0"
# Every HTTP request and process wait is bounded: a stuck node fails the test, never hangs it.
TIMEOUT = 10
# Small enough to exhaust in a few requests; per day, so a window never ends mid-test.
API_RATE = 6
LOGIN = "/accounts/login/"


@dataclass(frozen=True)
class Nodes:
    a: str
    b: str
    cache_prefix: str


def _delete_prefixed(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="module")
def nodes(django_db_setup: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    """Start nodes A and B on the test database and one Redis; stop them, whatever happened."""
    if connection.vendor != "postgresql":
        pytest.fail("two nodes need PostgreSQL (DATABASE_URL=postgres://...)")
    prefix = f"vrm-test-nodes-{uuid.uuid4().hex}"
    env = {
        "DATABASE_URL": database_url(),
        "CACHE_URL": REDIS,
        "VRM_CACHE_KEY_PREFIX": prefix,
        "VRM_API_RATE_SUSTAINED": f"{API_RATE}/d",
    }
    logs = tmp_path_factory.mktemp("nodes")
    servers: list[subprocess.Popen[bytes]] = []
    try:
        bases = []
        for name in ("a", "b"):
            server, base = start(env, logs / f"{name}.log")
            servers.append(server)
            bases.append(base)
        for server, base, name in zip(servers, bases, ("a", "b"), strict=True):
            wait_ready(server, base, logs / f"{name}.log")
        yield Nodes(a=bases[0], b=bases[1], cache_prefix=prefix)
    finally:
        for server in servers:
            stop(server)
        with redis.Redis.from_url(REDIS, socket_timeout=TIMEOUT) as store:
            _delete_prefixed(store, prefix)


def _cached_keys(prefix: str) -> list[bytes]:
    with redis.Redis.from_url(REDIS, socket_timeout=TIMEOUT) as store:
        return list(store.scan_iter(match=f"{prefix}:*", count=1000))


@pytest.fixture
def two_nodes(nodes: Nodes, transactional_db: Any) -> Nodes:
    """The nodes, with this test's rows committed (the servers read them) and empty counters."""
    with redis.Redis.from_url(REDIS, socket_timeout=TIMEOUT) as store:
        _delete_prefixed(store, nodes.cache_prefix)
    return nodes


def _person(tag: str) -> Any:
    return person_signup(email=f"nodes-{tag}@example.com", password=PASSWORD, display_name="Node Walker")


def _app(tag: str) -> Application:
    org = Organisation.objects.create(
        name=f"Nodes {tag}", website="https://nodes.example", privacy_contact="p@nodes.example", verified=True
    )
    return make_app(org, name=f"Nodes {tag} app")


def _grant(person: Any, app: Application, scopes: list[str]) -> Grant:
    return grant_authorize(person=person, application=app, scopes=scopes, duration_days=30)


def _login_form(browser: requests.Session, node: str) -> None:
    assert browser.get(f"{node}{LOGIN}", timeout=TIMEOUT).status_code == 200


def _login(browser: requests.Session, node: str, email: str, password: str) -> requests.Response:
    return browser.post(
        f"{node}{LOGIN}",
        data={"username": email, "password": password, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def _dashboard(browser: requests.Session, node: str) -> requests.Response:
    return browser.get(f"{node}/dashboard/", allow_redirects=False, timeout=TIMEOUT)


def _api(node: str, token: str, path: str, body: Any = None, **headers: str) -> requests.Response:
    auth = {"Authorization": f"Bearer {token}", **headers}
    if body is None:
        return requests.get(f"{node}/api/v1/{path}", headers=auth, timeout=TIMEOUT)
    return requests.post(f"{node}/api/v1/{path}", json=body, headers=auth, timeout=TIMEOUT)


def test_a_session_begun_on_a_is_served_and_ended_on_b(
    two_nodes: Nodes, production_password_hashers: Any
) -> None:
    _person("session")
    browser = requests.Session()
    _login_form(browser, two_nodes.a)
    signed_in = _login(browser, two_nodes.a, "nodes-session@example.com", PASSWORD)
    assert signed_in.status_code == 302

    page = _dashboard(browser, two_nodes.b)
    assert page.status_code == 200
    # The store's counts open only with the keys sealed in the session: B unsealed them.
    assert "Hello, Node Walker" in page.text and "What your store holds" in page.text

    # The same cookies, kept aside, serve A too; after signing out on B they serve nobody.
    kept = requests.Session()
    kept.cookies.update(browser.cookies)
    assert _dashboard(kept, two_nodes.a).status_code == 200
    signed_out = browser.post(
        f"{two_nodes.b}/accounts/logout/",
        data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert signed_out.status_code == 302
    after = _dashboard(kept, two_nodes.a)
    assert after.status_code == 302 and after.headers["Location"].startswith(LOGIN)


def test_the_api_rate_limit_counts_requests_to_both_nodes(two_nodes: Nodes) -> None:
    person, app = _person("rate"), _app("rate")
    token = issue_token(_grant(person, app, ["purchases:read"]))
    order = [two_nodes.a, two_nodes.b] * (API_RATE // 2 + 1)
    answers = [_api(node, token, "purchases") for node in order]
    # Each node saw API_RATE / 2 + 1 requests: only a shared count reaches the limit.
    assert [r.status_code for r in answers] == [200] * API_RATE + [429, 429]
    for refused in answers[API_RATE:]:
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.headers["Content-Type"].startswith("application/problem+json")
    # The count is in the run's Redis, under its prefix (deleted when the nodes stop).
    assert _cached_keys(two_nodes.cache_prefix)


def test_wrong_passwords_on_both_nodes_pause_the_account(
    two_nodes: Nodes, production_password_hashers: Any
) -> None:
    _person("lockout")
    email = "nodes-lockout@example.com"
    attacker = requests.Session()
    _login_form(attacker, two_nodes.a)
    order = [two_nodes.a, two_nodes.b] * 3
    # AXES_FAILURE_LIMIT (5) wrong passwords, A B A B A: three on A, two on B.
    failed = [_login(attacker, node, email, "wrong password") for node in order[:5]]
    assert [r.status_code for r in failed[:4]] == [200] * 4
    refused = _login(attacker, order[5], email, PASSWORD)
    assert refused.status_code == 429, "B alone saw two failures; only a shared count pauses it"
    assert int(refused.headers["Retry-After"]) == 15 * 60
    assert "paused for 15 minutes" in refused.text
    assert _dashboard(attacker, two_nodes.b).status_code == 302


def test_an_idempotency_key_used_on_a_answers_on_b(two_nodes: Nodes) -> None:
    person, app = _person("idempotency"), _app("idempotency")
    token = issue_token(_grant(person, app, ["purchases:write"]))
    body = purchase_data(product_name="Oat Milk 1 l")
    first = _api(two_nodes.a, token, "purchases", body, **{"Idempotency-Key": "till-7"})
    retry = _api(two_nodes.b, token, "purchases", body, **{"Idempotency-Key": "till-7"})
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert [r["id"] for r in records_for_owner(owner=person, category="purchases")] == [first.json()["id"]]

    other = _api(two_nodes.b, token, "purchases", purchase_data(quantity=3), **{"Idempotency-Key": "till-7"})
    assert other.status_code == 409
    assert other.headers["Content-Type"].startswith("application/problem+json")
    assert len(records_for_owner(owner=person, category="purchases")) == 1
    assert IdempotencyKey.objects.filter(application=app).count() == 1


def test_a_token_revoked_on_a_is_refused_on_b(two_nodes: Nodes, production_password_hashers: Any) -> None:
    # The client secret is hashed as in production, so that the nodes can check it.
    person, app = _person("revoke"), _app("revoke")
    token = issue_token(_grant(person, app, ["purchases:read"]))
    assert _api(two_nodes.a, token, "purchases").status_code == 200
    assert _api(two_nodes.b, token, "purchases").status_code == 200

    revoked = requests.post(
        f"{two_nodes.a}/o/revoke_token/",
        data={"token": token, "token_type_hint": "access_token"},
        auth=(app.client_id, SECRET),
        timeout=TIMEOUT,
    )
    assert revoked.status_code == 200
    assert _api(two_nodes.b, token, "purchases").status_code == 401
