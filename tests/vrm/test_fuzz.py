"""Hostile input on every route: no request, however malformed, is answered with a 5xx.

The routes come from the URL resolver (the admin and the browsable docs aside), so a new page is
fuzzed the moment it is routed. Each route is sent, by the persona it serves and anonymously:
hostile values in each of its URL parameters, hostile values in every query and form field a
view of this project reads, and, where it takes JSON, bodies that are deeply nested, not UTF-8,
or numbers no column holds. The answer may be anything a client can act on (400, 403, 404,
405, 413, 429, a redirect, a page), never a server error.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from consent.models import AccessToken
from consent.scopes import PERSON_SCOPES
from consent.services import grant_authorize
from personal_data.models import Reminder
from personal_data.services import record_create
from tests.conftest import PASSWORD, purchase_data
from tests.consent.conftest import make_app
from tests.intents_helpers import publish, subscribe
from tests.routes import Route, all_routes
from tests.twofactor import two_factor_on
from vendors.intents import offer_create
from vendors.messages import message_send
from vendors.models import Alert, Application, Membership, Organisation
from vendors.recalls import recall_match, recall_publish
from vendors.reports import case_open

# Values that broke, or could break, a parser, a converter, a column or a template.
HOSTILE = (
    "9" * 40,  # more than any integer column holds
    "-1",
    "٣",  # an Arabic-Indic digit: str.isdigit() says yes, int() says yes, the database says no
    "²",  # superscript two: str.isdigit() says yes, int() says no (HOSTILE_PATH has more)
    "9999-12-31",  # a date whose next day does not exist
    "0001-01-01",
    "2026-02-30",
    "x" * 3000,
    "nul\x00byte",  # PostgreSQL text refuses NUL
    "1e999",
)
# Path values are a subset: the router has to carry them first. Numeric to str.isdigit() or
# isnumeric() but not to int(): "²", "1²", "①", "½".
HOSTILE_PATH = ("9" * 40, "-1", "٣", "１２", "²", "1²", "①", "½", "x" * 300, "..", "0", "a b", "nul\x00byte")

# Every query and form field a view of this project reads, and the OAuth and record fields.
FIELDS = (
    "page", "limit", "cursor", "since", "until", "gtin", "size", "first", "second",
    "date_from", "date_to", "vendor", "status", "scope", "scopes", "kind", "subject", "grant_id",
    "outcome", "q", "category", "next", "client_id", "client_secret", "redirect_uri",
    "response_type", "state", "code_challenge", "code_challenge_method", "code", "code_verifier",
    "grant_type", "token", "token_type_hint", "refresh_token", "duration_days", "history_months",
    "include_gifts", "allow", "deny", "username", "email", "password", "password1", "password2",
    "display_name", "name", "website", "privacy_contact", "redirect_uris", "purposes",
    "allowed_scopes", "title", "message", "severity", "gtins", "lots", "purchased_from",
    "purchased_to", "remedy_url", "merchant", "product_name", "brand", "quantity", "unit_price",
    "currency", "lot", "purchased_on", "is_gift", "shared", "notes", "rating", "dietary",
    "allergies", "sizes", "brands_liked", "brands_avoided", "contact_email", "format", "pending",
)  # fmt: skip

# A value in every field at once is often refused by the first field a form checks; these groups
# reach one kind of parser at a time (a filter form with only its dates hostile, say).
GROUPS = (
    ("since", "until", "date_from", "date_to", "purchased_on", "purchased_from", "purchased_to"),
    ("page", "limit", "size", "first", "second", "quantity", "duration_days", "history_months", "rating"),
    ("cursor", "vendor", "subject", "grant_id", "client_id", "code", "token", "state", "gtin", "kind"),
)

# JSON bodies for the routes that parse JSON.
DEEP = "[" * 100_000 + "]" * 100_000
JSON_BODIES: tuple[bytes, ...] = (
    DEEP.encode(),
    ('{"a":' * 5000 + "1" + "}" * 5000).encode(),
    b'{"merchant": "\xff\xfe", "quantity": 1}',
    b'{"quantity": 1' + b"0" * 5000 + b', "merchant": "x"}',
    b'{"unit_price": 1e999, "purchased_on": "9999-12-31", "merchant": "nul\\u0000"}',
    b"[]",
    b"null",
    b'"' + b"x" * 100_000 + b'"',
)


def _basic(credentials: bytes) -> str:
    return "Basic " + base64.b64encode(credentials).decode()


# Hostile request headers for the routes machines call. The WSGI server hands a header over as
# latin-1 text, and a NUL inside base64 passes any server, so each of these can arrive.
HOSTILE_AUTHORIZATION = (
    _basic(b"a\x00b:x"),  # NUL in the client id, once decoded
    _basic(b"a:x\x00y"),  # NUL in the secret
    _basic(b"a%00b:x"),  # NUL once the form-encoded client id is unquoted (RFC 6749 2.3.1)
    _basic(b"a\x01b:x\x7f"),  # other control characters
    _basic(b"\xff\xfe:\xed\xa0\x80"),  # not UTF-8
    _basic(b"no-colon"),
    _basic("²٣:１２".encode()),
    "Basic !!!not-base64***",
    "Basic " + "QUFB" * 3000,  # huge
    "Basic",
    "Bearer " + "x" * 10_000,
    "Bearer nul\x00byte",
    "Bearer ²٣\xff",
    "Bearer",
    "Digest x\x00",
)
HOSTILE_HEADERS: tuple[dict[str, str], ...] = (
    *({"HTTP_AUTHORIZATION": value} for value in HOSTILE_AUTHORIZATION),
    {"HTTP_IDEMPOTENCY_KEY": "key\x00nul"},
    {"HTTP_IDEMPOTENCY_KEY": "k" * 10_000},
    {"HTTP_IDEMPOTENCY_KEY": "ключ-²-\xff"},
    {"HTTP_IDEMPOTENCY_KEY": "key\x01\x1f\x7f"},
    {"HTTP_X_REQUEST_ID": "id\x00nul"},
    {"HTTP_X_REQUEST_ID": "x" * 10_000 + "\r\nSet-Cookie: a=b"},
    {"HTTP_X_FORWARDED_FOR": "nul\x00, 999.1.1.1, ²"},
    {"HTTP_USER_AGENT": "agent\x00\x1b[31m"},
)
MACHINE_ROUTES = ("api/", "o/", ".well-known/")

SKIPPED = ("admin/", "api/docs/", "api/schema/", "static/")


def _routes() -> list[tuple[Route, str]]:
    routes = []
    for route, callback in all_routes():
        if route.pattern.startswith(SKIPPED):
            continue
        package = getattr(callback, "__module__", "").split(".")[0]
        routes.append((route, package))
    return routes


ROUTES = _routes()


@dataclass
class World:
    clients: dict[str, Client]
    kwargs: dict[str, str]


def _client(user: Any = None, token: str | None = None) -> Client:
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    if token is not None:
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def _token(application: Application, *, grant: Any = None, user: Any = None, scope: str) -> str:
    raw = secrets.token_urlsafe(30)
    AccessToken.objects.create(
        user=user,
        application=application,
        token=raw,
        scope=scope,
        expires=timezone.now() + dt.timedelta(minutes=15),
        grant=grant,
    )
    return raw


# Pages that only answer a form to someone in the middle of a two-step sign-in ("pending": bob's
# right password given, his code not yet) or with it turned on ("two_step": bob signed in).
TWO_STEP_PERSONAS = {
    "login-code": "pending",
    "two-factor-disable": "two_step",
    "two-factor-backup-codes": "two_step",
}


@pytest.fixture
def world(
    alice: Any, bob: Any, vendor_staff: Any, auditor: Any, shop_app: Application, shop_org: Organisation
) -> World:
    cache.clear()  # a fresh allowance for the throttles and rate limits
    record = record_create(owner=alice, category="purchases", data=purchase_data())
    grant = grant_authorize(person=alice, application=shop_app, scopes=list(PERSON_SCOPES), duration_days=30)
    Membership.objects.create(user=vendor_staff, organisation=shop_org)
    publisher = Organisation.objects.create(
        name="Fuzz Foods", website="https://fuzz.example", privacy_contact="p@fuzz.example", verified=True
    )
    recall_app = make_app(publisher, name="Fuzz recalls", secret="fuzz-" + "z" * 40)
    recall = recall_publish(
        application=recall_app,
        data={
            "title": "Recall",
            "message": "Do not eat.",
            "severity": "warning",
            "gtins": [purchase_data()["gtin"]],
            "remedy_url": "https://fuzz.example/recall",
        },
    )
    recall_match(recall_id=recall.pk)
    summary = Reminder.objects.create(
        owner=alice, kind="grant_summary", subject=str(grant.pk), period="90d-1"
    )
    person_token = _token(shop_app, grant=grant, user=alice, scope=" ".join(PERSON_SCOPES))
    recall_token = _token(recall_app, scope="recalls:publish intents:read")
    subscribe(publisher)
    intent = publish(alice)
    offer = offer_create(
        application=recall_app,
        intent=intent,
        data={
            "price": "1",
            "currency": "EUR",
            "description": "x",
            "link": "https://fuzz.example/",
            "valid_until": "2999-01-01T00:00:00Z",
        },
    )
    two_factor_on(bob)
    pending = _client()
    assert pending.post("/accounts/login/", {"username": bob.email, "password": PASSWORD}).status_code == 302
    clients = {
        "anonymous": _client(),
        "pending": pending,
        "two_step": _client(bob),
        "portal": _client(alice),
        "consent": _client(alice),
        "accounts": _client(alice),
        "vendors": _client(vendor_staff),
        "auditor": _client(auditor),
        "api": _client(token=person_token),
        "recalls": _client(token=recall_token),
    }
    kwargs = {
        "record_id": str(record["id"]),
        "category": "purchases",
        "flag": "shared",
        "grant_id": str(grant.pk),
        "number": "1",
        "alert_id": str(Alert.objects.get(person=alice).pk),
        "reminder_id": str(summary.pk),
        "message_id": str(
            message_send(
                grant=grant,
                application=shop_app,
                data={"kind": "notice", "title": "Hi", "body": "Soon."},
            ).pk
        ),
        "pending_id": "00000000-0000-0000-0000-000000000000",
        "client_id": shop_app.client_id,
        "recall_id": str(recall.pk),
        "intent_id": str(intent.pk),
        "offer_id": str(offer.pk),
        "entry_id": "1",
        "uidb64": "MQ",
        "token": "set-password",
        "name": "vendors",
        "agreement_id": "sd-base",
        "organisation_id": str(shop_org.pk),
        "case_id": str(case_open(organisation=shop_org, finding="Reads too much.", by=auditor).pk),
        # /ledger/tile/<level>/<index>[.p/<width>] and the refused entry bundles
        "level": "0",
        "index": "000",
        "width": "1",
        "path": "000",
    }
    return World(clients=clients, kwargs=kwargs)


def _persona(route: Route, package: str) -> str:
    if route.name in TWO_STEP_PERSONAS:
        return TWO_STEP_PERSONAS[route.name]
    if route.pattern.startswith(("api/v1/recalls", "api/v1/intents")):
        return "recalls"
    if route.pattern.startswith("api/v1/ledger"):
        return "anonymous"
    if route.pattern.startswith("api/"):
        return "api"
    return package if package in {"portal", "consent", "accounts", "vendors", "auditor"} else "anonymous"


def _url(route: Route, kwargs: dict[str, str]) -> str | None:
    try:
        return reverse(route.name, kwargs={name: kwargs[name] for name in route.kwargs})
    except NoReverseMatch:  # a converter (<int:…>) that does not carry this value
        return None


def _check(failures: list[str], label: str, response: Any) -> None:
    if response.status_code >= 500:
        exc = getattr(response, "exc_info", None)
        cause = f"{exc[0].__name__}: {str(exc[1])[:200]}" if exc else response.content[:200]
        failures.append(f"{label} -> {response.status_code} {cause}")


@pytest.mark.parametrize(("route", "package"), ROUTES, ids=[f"/{r.pattern}" for r, _ in ROUTES])
def test_no_server_error_for_hostile_input(route: Route, package: str, world: World) -> None:
    for name in route.kwargs:
        assert name in world.kwargs, f"add {name} to the fuzz world's kwargs"
    failures: list[str] = []
    personas = dict.fromkeys([_persona(route, package), "anonymous"])
    url = _url(route, world.kwargs)
    assert url is not None, route.name

    for persona in personas:
        client = world.clients[persona]
        for value in HOSTILE:
            fields = dict.fromkeys(FIELDS, value)
            _check(failures, f"{persona} GET {url} ?{value[:20]!r}", client.get(url, fields))
            _check(failures, f"{persona} POST {url} form {value[:20]!r}", client.post(url, fields))
            if persona == "anonymous":
                continue  # a visitor is sent to the login page before any field is read
            for group in GROUPS:
                label = f"{persona} GET {url} ?{group[0]}…={value[:20]!r}"
                _check(failures, label, client.get(url, dict.fromkeys(group, value)))
        # Bytes that are not UTF-8, percent-encoded as a browser would send them.
        raw = "&".join(f"{field}=%ff%fe%ed%a0%80" for field in FIELDS)
        _check(failures, f"{persona} GET {url} ?not-utf-8", client.get(f"{url}?{raw}"))
        form = "application/x-www-form-urlencoded"
        _check(failures, f"{persona} POST {url} not-utf-8", client.post(url, raw, content_type=form))
        for name in route.kwargs:
            for value in HOSTILE_PATH:
                hostile = _url(route, {**world.kwargs, name: value})
                if hostile is None:
                    continue
                _check(failures, f"{persona} GET {hostile[:80]}", client.get(hostile))
                _check(failures, f"{persona} POST {hostile[:80]}", client.post(hostile, {}))
        if route.pattern.startswith("api/") or route.pattern.startswith("o/"):
            for body in JSON_BODIES:
                response = client.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")
                _check(failures, f"{persona} POST {url} json {body[:20]!r}", response)
        cache.clear()  # the next persona starts with a fresh allowance

    if route.pattern.startswith(MACHINE_ROUTES):
        # Hostile headers, sent by the route's own persona: an Authorization header replaces its
        # token, the others ride along with it. The bodies reach client authentication (a form
        # with a grant type) and the idempotent create (a valid purchase).
        client = world.clients[_persona(route, package)]
        form = {"grant_type": "client_credentials", "token": "t", "client_id": "c"}
        purchase = json.dumps(purchase_data())
        for headers in HOSTILE_HEADERS:
            label = f"{url} {next(iter(headers))}={next(iter(headers.values()))[:30]!r}"
            _check(failures, f"GET {label}", client.get(url, **headers))
            if route.pattern.startswith("o/"):
                _check(failures, f"POST {label}", client.post(url, form, **headers))
            else:
                response = client.post(url, purchase, content_type="application/json", **headers)
                _check(failures, f"POST {label}", response)
            cache.clear()

    assert not failures, "\n".join(failures)


def test_the_fuzz_reaches_every_kind_of_route() -> None:
    packages = {package for _, package in ROUTES}
    assert {"portal", "vendors", "auditor", "consent", "accounts", "audit"} <= packages, packages
    assert len(ROUTES) > 60, len(ROUTES)


# The requests of the penetration test (issue #13, item 9), each with the answer it must get.
PROBLEM = "application/problem+json"


def test_the_reported_requests_get_a_client_error(world: World) -> None:
    api, portal, auditor = world.clients["api"], world.clients["portal"], world.clients["auditor"]
    anonymous = world.clients["anonymous"]

    response = anonymous.get("/api/v1/ledger/proof/inclusion/" + "9" * 30)
    assert (response.status_code, response["Content-Type"]) == (404, PROBLEM)

    for page in ("/audit/grants/", "/audit/activity/", "/audit/entries/"):
        response = auditor.get(page, {"date_to": "9999-12-31"})
        assert response.status_code == 400  # the page, with the form's message
        assert "Choose a day on or before 2999-12-31." in response.content.decode()
        response = auditor.get(page + "export.csv", {"date_to": "9999-12-31"})
        assert response.status_code == 400

    assert portal.post("/data/import/not-a-uuid/confirm/").status_code == 404
    assert portal.post("/alerts/٣/contact/").status_code == 404
    for digits in ("²", "1²", "①", "½"):  # numeric to str.isdigit()/isnumeric(), not to int()
        assert portal.post(f"/alerts/{digits}/contact/").status_code == 404
    for digits in ("²", "①", "٣", "１２"):  # a tree size is ASCII digits, as the API documents
        response = anonymous.get("/api/v1/ledger/proof/consistency", {"first": digits, "second": "1"})
        assert (response.status_code, response["Content-Type"]) == (400, PROBLEM)
        assert response.json()["detail"] == "first must be a positive integer"

    response = api.post("/api/v1/purchases", DEEP, content_type="application/json")
    assert (response.status_code, response["Content-Type"]) == (400, PROBLEM)
    assert "depth limit exceeded" in response.json()["detail"]
    shallow_but_deep = "[" * 40 + "]" * 40
    response = api.post("/api/v1/purchases", shallow_but_deep, content_type="application/json")
    assert "nests deeper than 16 levels" in response.json()["detail"]

    response = portal.post(f"/data/purchases/{world.kwargs['record_id']}/toggle/shared/", {"next": "-1"})
    assert (response.status_code, response["Location"]) == (302, "/data/purchases/")

    response = anonymous.post("/o/introspect/", {"token": "nul\x00byte"})
    assert (response.status_code, response["Content-Type"]) == (400, PROBLEM)


def test_control_characters_in_headers_get_a_problem(world: World, shop_app: Application) -> None:
    # The review of issue #13: a NUL inside base64 passes any HTTP server and reached the client
    # lookup; a NUL in Idempotency-Key reached the key lookup. Both are refused before a view.
    anonymous, api = world.clients["anonymous"], world.clients["api"]
    hidden_nul = (_basic(b"a\x00b:x"), _basic(b"a%00b:x"), _basic(shop_app.client_id.encode() + b":\x00"))
    for path in ("/o/token/", "/o/introspect/", "/o/revoke_token/"):
        for header in hidden_nul:
            response = anonymous.post(path, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=header)
            assert (response.status_code, response["Content-Type"]) == (400, PROBLEM), (path, header)
            assert "control character" in response.json()["detail"]
    purchase = json.dumps(purchase_data())
    for key in ("key\x00nul", "key\x1b[0m"):
        response = api.post(
            "/api/v1/purchases", purchase, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
        )
        assert (response.status_code, response["Content-Type"]) == (400, PROBLEM)
    response = world.clients["portal"].get("/data/purchases/", HTTP_USER_AGENT="agent\x00")
    assert response.status_code == 400  # a page, not a problem document, for a browser

    # What the standards allow still passes: a tab in a header, non-ASCII in a key (obs-text).
    response = api.post(
        "/api/v1/purchases", purchase, content_type="application/json", HTTP_IDEMPOTENCY_KEY="ключ\tkey"
    )
    assert response.status_code == 201
    response = anonymous.post(
        "/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=_basic(b"unknown%20id:x")
    )
    assert response.status_code == 401
