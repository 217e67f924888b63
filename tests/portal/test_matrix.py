"""The person portal's permission matrix: every portal route × every persona, by GET and POST.

The routes come from the URL resolver (every view of the `portal` package), so a new page is
in the matrix the moment it is routed. Its URL parameters are filled from real objects of
alice's; a parameter the matrix does not know fails with "add <kwarg> to the matrix", and a
route without a line in OWNER fails until its owner's answer is written down there.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.reauth import SESSION_KEY, WINDOW_SECONDS
from audit.models import LedgerEntry
from consent.models import Grant, TermsChoice
from consent.services import grant_authorize
from personal_data.models import PendingImport, Reminder, ReminderKind
from personal_data.selectors import preferences_get, records_for_owner
from personal_data.services import import_stage, record_create
from personal_data.transfer import import_parse
from tests.conftest import PASSWORD, purchase_data
from tests.consent.conftest import make_app
from tests.intents_helpers import publish, subscribe
from tests.routes import Route, all_routes
from tests.vendors_api.test_matrix import offer_data
from vendors.intents import offer_create
from vendors.messages import message_send
from vendors.models import Alert, Application, Intent, Message, Offer, Organisation, Report
from vendors.recalls import recall_match, recall_publish


def _portal_routes() -> list[Route]:
    """Every route whose view lives in the portal package (portal.views, portal.grants, …)."""
    return [
        route
        for route, callback in all_routes()
        if getattr(callback, "__module__", "").split(".")[0] == "portal"
    ]


# The portal pages anyone may open: sign-up and its confirmation, checked on their own below
# and in tests/accounts/test_signup.py.
# The reset link's page is Django's, checked in tests/portal/test_store_reset.py.
# The second step of a sign-in is checked in tests/portal/test_two_factor.py (it answers only
# the session that gave the right password).
PUBLIC = {
    "signup",
    "signup-sent",
    "signup-confirm",
    "login",
    "login-code",
    "admin-login",  # the same view as "login", for the admin (tests/accounts/test_limits.py)
    "password_change",
    "password_reset_confirm",
    # The MyTerms roster is public and read-only: tests/portal/test_terms.py.
    "terms",
    "terms-detail",
    "terms-detail-json",
    "myterms-json",
}
# Pages about one's own account that every role has, operators included: what each gets, by GET
# and POST, for an account without two-step sign-in.
EVERY_ROLE: dict[str, Owner] = {}
ROUTES = [route for route in _portal_routes() if route.name not in PUBLIC and route.name not in EVERY_ROLE]


@dataclass(frozen=True)
class Owner:
    """What alice gets on a page of her own, by GET and by POST."""

    get: int
    post: int
    reauth: bool = False  # behind recent_password_required
    data: Callable[[World], dict[str, Any]] | None = None  # the POST body; {} if None


def _body(owner: Owner, world: World) -> dict[str, Any]:
    return owner.data(world) if owner.data else {}


def _csv(world: World) -> dict[str, Any]:
    return {"file": SimpleUploadedFile("purchases.csv", CSV), "category": "purchases"}


# Views without a method restriction (dashboard, lists, receipt) answer a POST like a GET;
# the test client does not check CSRF, the middleware does that in the running site.
EVERY_ROLE.update(
    {
        "two-factor": Owner(200, 405),
        # Shows a new key; the empty POST is a form with an error. Behind a recent password.
        "two-factor-setup": Owner(200, 400, reauth=True),
        # Nothing to turn off or renew while it is off: back to the page that says so.
        "two-factor-disable": Owner(302, 302),
        "two-factor-backup-codes": Owner(302, 302),
    }
)
ROUTES = [route for route in ROUTES if route.name not in EVERY_ROLE]

OWNER: dict[str, Owner] = {
    "dashboard": Owner(200, 200),
    "activity": Owner(200, 200),
    "activity-proof": Owner(200, 200),
    # Reporting a vendor: from an activity line, a grant, an alert (and a message, below).
    "activity-report": Owner(200, 302, data=lambda w: {"reason": "overreach"}),
    "consent:report": Owner(200, 302, data=lambda w: {"reason": "spam", "text": "Too often."}),
    "alert-report": Owner(200, 302, data=lambda w: {"reason": "misleading", "shared": "on"}),
    "reports": Owner(200, 405),
    "alerts": Owner(200, 200),
    "inbox": Owner(200, 405),
    "inbox-read-all": Owner(405, 302),
    "inbox-reminder": Owner(200, 405),
    "inbox-alert": Owner(302, 405),
    "inbox-message": Owner(200, 405),
    "inbox-message-answer": Owner(405, 302, data=lambda w: {"response": "interested"}),
    "inbox-message-report": Owner(200, 302, data=lambda w: {"reason": "spam"}),
    "alert-contact": Owner(405, 302),
    "preferences": Owner(200, 302),
    "terms-settings": Owner(200, 302, data=lambda w: {"place-sd-base": "1"}),
    "data-import": Owner(200, 200, data=_csv),
    "data-import-confirm": Owner(405, 302),
    "data-export": Owner(200, 200, reauth=True),
    "account-delete": Owner(200, 200, reauth=True, data=lambda w: {"password": PASSWORD}),
    "store-unlock": Owner(200, 400),
    # Only after a sign-in found the store locked by a reset; alice's store is open.
    "store-start-empty": Owner(302, 302),
    "store-restore": Owner(200, 200),
    "data-list": Owner(200, 200),
    "data-add": Owner(200, 302, data=lambda w: purchase_data()),
    "data-edit": Owner(200, 302, data=lambda w: purchase_data(notes="for the cellar")),
    "data-delete": Owner(200, 302),
    "data-toggle": Owner(405, 302),
    "consent:grants": Owner(200, 200),
    "consent:grant": Owner(200, 302, data=lambda w: {"scopes": ["profile:read"]}),
    "consent:revoke": Owner(200, 302),
    "consent:messages": Owner(405, 302, data=lambda w: {"allowance": "1"}),
    "consent:receipt": Owner(200, 200),
    "consent:receipt-page": Owner(200, 200),
    "consent:agreement": Owner(200, 405),
    "intents": Owner(200, 405),
    "intent-new": Owner(200, 302, data=lambda w: _intent_form()),
    "intent-detail": Owner(200, 405),
    "intent-edit": Owner(200, 302, data=lambda w: _intent_form(title="Winter coat, long")),
    "intent-withdraw": Owner(405, 302),
    "intent-offer-accept": Owner(405, 302),
    "intent-offer-decline": Owner(405, 302),
}


@dataclass
class World:
    """alice's objects that the URLs point at, and the people who knock."""

    alice: Any
    bob: Any
    vendor_staff: Any
    auditor: Any
    record_id: str
    grant_id: str
    receipt_number: int
    alert_id: int
    reminder_id: int
    message_id: str
    intent_id: str
    offer_id: str
    pending_id: str
    entry_id: int

    def state(self) -> tuple[Any, ...]:
        """Everything of alice's a request could change (the ledger count first: reads log nothing)."""
        return (
            LedgerEntry.objects.count(),
            records_for_owner(owner=self.alice, category="purchases"),
            preferences_get(owner=self.alice),
            list(TermsChoice.objects.filter(person=self.alice).values_list("proffered", "per_vendor")),
            list(
                Grant.objects.filter(person=self.alice).values_list(
                    "pk", "status", "scopes", "ends_at", "messages_allowance"
                )
            ),
            list(
                Message.objects.filter(person=self.alice).values_list(
                    "pk", "read_at", "response", "reported_at", "report_reason"
                )
            ),
            list(Intent.objects.filter(owner=self.alice).values_list("pk", "status", "title", "updated_at")),
            list(Offer.objects.filter(intent__owner=self.alice).values_list("pk", "status")),
            list(PendingImport.objects.filter(owner=self.alice).values_list("pk", flat=True)),
            list(Report.objects.filter(person=self.alice).values_list("pk", "reason", "shared_text")),
            list(Alert.objects.filter(person=self.alice).values_list("pk", "read_at", "contact_grant")),
            type(self.alice).objects.filter(pk=self.alice.pk, is_active=True).exists(),
        )


# URL parameters naming one of alice's objects: filled with hers, or with one nobody has.
OBJECT_KWARGS: dict[str, Callable[[World], Any]] = {
    "record_id": lambda w: w.record_id,
    "grant_id": lambda w: w.grant_id,
    "number": lambda w: w.receipt_number,
    "alert_id": lambda w: w.alert_id,
    "reminder_id": lambda w: w.reminder_id,
    "message_id": lambda w: w.message_id,
    "intent_id": lambda w: w.intent_id,
    "offer_id": lambda w: w.offer_id,
    "pending_id": lambda w: w.pending_id,
    "entry_id": lambda w: w.entry_id,
}
UNKNOWN: dict[str, Any] = {
    "record_id": str(uuid.uuid4()),
    "grant_id": str(uuid.uuid4()),
    "number": 999,
    "alert_id": 999_999,
    "reminder_id": 999_999,
    "message_id": str(uuid.uuid4()),
    "intent_id": str(uuid.uuid4()),
    "offer_id": str(uuid.uuid4()),
    "pending_id": str(uuid.uuid4()),
    "entry_id": 999_999_999,
}
# URL parameters that name no object of anyone's.
VALUE_KWARGS: dict[str, Any] = {"category": "purchases", "flag": "shared"}


def _url(route: Route, world: World, instead: dict[str, Any] | None = None) -> str:
    """The route's URL for alice's objects, some parameters given `instead`."""
    kwargs = {}
    for name in route.kwargs:
        if instead and name in instead:
            kwargs[name] = instead[name]
        elif name in OBJECT_KWARGS:
            kwargs[name] = OBJECT_KWARGS[name](world)
        else:
            assert name in VALUE_KWARGS, f"add {name} to the matrix (OBJECT_KWARGS or VALUE_KWARGS)"
            kwargs[name] = VALUE_KWARGS[name]
    return reverse(route.name, kwargs=kwargs)


def _objects(route: Route) -> list[str]:
    return [name for name in route.kwargs if name in OBJECT_KWARGS]


def _intent_form(**overrides: Any) -> dict[str, Any]:
    return {
        "kind": "clothing",
        "title": "Winter coat",
        "price_min": "50",
        "price_max": "150",
        "currency": "EUR",
        "country": "DE",
        "ends_on": (timezone.now() + dt.timedelta(days=7)).date().isoformat(),
        **overrides,
    }


PEANUT, LOT = "5012345001234", "L4471"
CSV = (
    b"merchant,product_name,gtin,quantity,unit_price,currency,purchased_on,is_gift\n"
    b"Green Grocer,Oat Milk,7390044001501,1,2.19,EUR,2026-01-05,false\n"
)


@pytest.fixture
def world(alice: Any, bob: Any, vendor_staff: Any, auditor: Any, shop_app: Any) -> World:
    record = record_create(owner=alice, category="purchases", data=purchase_data(gtin=PEANUT, lot=LOT))
    # The grant is made under alice's terms, so its agreement record can be downloaded.
    TermsChoice.objects.create(person=alice, proffered=["sd-base"])
    shop_app.organisation.accepted_terms = ["sd-base"]
    shop_app.organisation.save(update_fields=["accepted_terms"])
    grant = grant_authorize(
        person=alice,
        application=shop_app,
        scopes=["profile:read", "purchases:read", "messages:send"],
        duration_days=30,
    )
    # The recall comes from another organisation, so answering it makes a grant of its own.
    publisher = Organisation.objects.create(
        name="Recall Foods",
        website="https://recall.example",
        privacy_contact="p@recall.example",
        verified=True,
    )
    recall = recall_publish(
        application=make_app(publisher, name="Recall app", secret="recall-" + "z" * 40),
        data={
            "title": "Peanut butter recall",
            "message": "Salmonella risk.",
            "severity": "warning",
            "gtins": [PEANUT],
            "lots": [LOT],
            "remedy_url": "https://recall.example/peanut",
        },
    )
    recall_match(recall_id=recall.pk)
    pending = import_stage(
        owner=alice,
        plan=import_parse(raw=CSV, filename="purchases.csv", category="purchases"),
        filename="purchases.csv",
    )
    intent = publish(alice)
    subscribe(publisher, kinds=("clothing",), countries=("DE",))
    offer = offer_create(
        application=make_app(
            publisher,
            name="Intents backend",
            scopes=("intents:read",),
            grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            secret="intents-" + "q" * 40,
        ),
        intent=intent,
        data=offer_data(),
    )
    return World(
        alice=alice,
        bob=bob,
        vendor_staff=vendor_staff,
        auditor=auditor,
        record_id=str(record["id"]),
        grant_id=str(grant.pk),
        receipt_number=grant.receipts.get().number,
        alert_id=Alert.objects.get(person=alice).pk,
        reminder_id=Reminder.objects.create(
            owner=alice, kind=ReminderKind.GRANT_ENDING, subject=str(grant.pk), period="2026-01-01"
        ).pk,
        message_id=str(
            message_send(
                grant=grant,
                application=shop_app,
                data={"kind": "offer", "title": "10% off", "body": "Today."},
            ).pk
        ),
        intent_id=str(intent.pk),
        offer_id=str(offer.pk),
        pending_id=str(pending.pk),
        entry_id=LedgerEntry.objects.get(kind="grant.created", grant_id=str(grant.pk)).pk,
    )


PERSONAS = ("anonymous", "vendor_staff", "auditor", "another_person", "unknown_id", "owner", "owner_stale")


def _cells() -> list[Any]:
    cells = []
    for route in ROUTES:
        for persona in PERSONAS:
            if persona in {"another_person", "unknown_id"} and not _objects(route):
                continue  # bob on his own dashboard is just another owner
            for method in ("GET", "POST"):
                cells.append(pytest.param(route, persona, method, id=f"{method} /{route.pattern}|{persona}"))
    return cells


def _client(user: Any = None, *, stale: bool = False) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)  # a log-in counts as a fresh password confirmation
    if stale:
        session = client.session
        session[SESSION_KEY] = timezone.now().timestamp() - WINDOW_SECONDS - 1
        session.save()
    return client


def _send(client: Client, method: str, url: str, data: dict[str, Any] | None = None) -> Any:
    return client.get(url) if method == "GET" else client.post(url, data or {})


def _redirected(response: Any, to: str, next_url: str) -> None:
    assert response.status_code == 302, response.status_code
    location = urlsplit(response["Location"])
    assert location.path == to, response["Location"]
    assert parse_qs(location.query)["next"] == [next_url], response["Location"]


# The CSRF token is masked afresh on every page.
CSRF_TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]*"')


def _same_page(a: Any, b: Any) -> None:
    """Two refusals a visitor cannot tell apart (the 404 page names no object)."""
    assert a.status_code == b.status_code
    assert a["Content-Type"] == b["Content-Type"]
    assert CSRF_TOKEN.sub(b"", a.content) == CSRF_TOKEN.sub(b"", b.content)


@pytest.mark.parametrize(("route", "persona", "method"), _cells())
def test_matrix(route: Route, persona: str, method: str, world: World) -> None:
    url = _url(route, world)
    assert route.name in OWNER, f"add {route.name} (/{route.pattern}) to OWNER in the portal matrix"
    owner = OWNER[route.name]
    before = world.state()

    if persona == "anonymous":
        _redirected(_send(_client(), method, url), resolve_url(settings.LOGIN_URL), url)
    elif persona in {"vendor_staff", "auditor"}:
        response = _send(_client(getattr(world, persona)), method, url)
        assert response.status_code == 403
        assert "This page is not for your kind of account." in response.content.decode()
    elif persona == "another_person":
        # bob is a person too, so only the object lookup stands between him and alice's things.
        bob = _client(world.bob)
        response = _send(bob, method, url, _body(owner, world))
        expected = 405 if getattr(owner, method.lower()) == 405 else 404
        assert response.status_code == expected
        unknown = {name: UNKNOWN[name] for name in _objects(route)}
        _same_page(response, _send(bob, method, _url(route, world, instead=unknown)))
    elif persona == "unknown_id":
        # Each object parameter is looked up: alice with one id nobody has gets the 404 page.
        alice = _client(world.alice)
        expected = 405 if getattr(owner, method.lower()) == 405 else 404
        for name in _objects(route):
            response = _send(alice, method, _url(route, world, instead={name: UNKNOWN[name]}))
            assert response.status_code == expected, name
    elif persona == "owner_stale" and owner.reauth:
        response = _send(_client(world.alice, stale=True), method, url)
        _redirected(response, reverse("reauth"), url)
    else:  # the owner, with a fresh or (on pages that do not ask for it) an old password
        stale = persona == "owner_stale"
        response = _send(_client(world.alice, stale=stale), method, url, _body(owner, world))
        expected = getattr(owner, method.lower())
        assert response.status_code == expected, response.content[:500]
        if expected == 302:
            target = urlsplit(response["Location"]).path
            assert target not in {resolve_url(settings.LOGIN_URL), reverse("reauth")}, target
        return

    assert world.state() == before, "a refused request changed alice's data"


def test_every_portal_route_is_in_the_matrix() -> None:
    for route in ROUTES:
        for name in route.kwargs:
            assert name in OBJECT_KWARGS or name in VALUE_KWARGS, f"add {name} to the matrix ({route.name})"
    names = {route.name for route in ROUTES}
    assert names, "no portal routes found: has the portal package moved?"
    assert not names - OWNER.keys(), f"add these routes to OWNER in the portal matrix: {names - OWNER.keys()}"
    assert not OWNER.keys() - names, f"routes gone from the URLconf, drop them: {OWNER.keys() - names}"
    assert {route.name for route in _portal_routes()} - names == PUBLIC | EVERY_ROLE.keys()
    # A few routes by name, so a broken walk cannot pass on a partial list.
    patterns = {route.pattern for route in ROUTES}
    assert {"dashboard/", "activity/", "alerts/", "inbox/", "account/delete/", "grants/"} <= patterns
    assert "data/<str:category>/<str:record_id>/edit/" in patterns
    assert "grants/<str:grant_id>/receipts/<int:number>.json" in patterns


@pytest.mark.parametrize(
    "kwarg",
    [
        "record_id",
        "grant_id",
        "alert_id",
        "reminder_id",
        "message_id",
        "intent_id",
        "offer_id",
        "pending_id",
    ],
)
def test_a_malformed_id_is_not_found_either(kwarg: str, world: World) -> None:
    alice = _client(world.alice)
    routes = [route for route in ROUTES if kwarg in route.kwargs]
    assert routes
    for route in routes:
        url = _url(route, world, instead={kwarg: "not-an-id"})
        for method in ("GET", "POST"):
            expected = 405 if getattr(OWNER[route.name], method.lower()) == 405 else 404
            assert _send(alice, method, url).status_code == expected, (method, url)


def test_sign_up_is_open_to_anonymous_visitors(db: Any) -> None:
    response = Client().get(reverse("signup"))
    assert response.status_code == 200
    assert 'name="password1"' in response.content.decode()
    assert Client().get(reverse("signup-sent")).status_code == 200
    assert Client().get(reverse("signup-confirm", args=["not-a-link"])).status_code == 400


EVERY_ROLE_ROUTES = [route for route in _portal_routes() if route.name in EVERY_ROLE]


@pytest.mark.parametrize("route", EVERY_ROLE_ROUTES, ids=[f"/{r.pattern}" for r in EVERY_ROLE_ROUTES])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_account_pages_of_every_role(route: Route, method: str, world: World, operator: Any) -> None:
    url = _url(route, world)
    owner = EVERY_ROLE[route.name]
    _redirected(_send(_client(), method, url), resolve_url(settings.LOGIN_URL), url)
    # Operators too: the admin signs in through the site's login view.
    for user in (world.alice, world.vendor_staff, world.auditor, operator):
        response = _send(_client(user), method, url)
        assert response.status_code == getattr(owner, method.lower()), (user.role, response.content[:300])
        if owner.reauth:
            _redirected(_send(_client(user, stale=True), method, url), reverse("reauth"), url)


def test_every_account_page_of_every_role_is_in_the_matrix() -> None:
    assert {route.name for route in EVERY_ROLE_ROUTES} == EVERY_ROLE.keys()
