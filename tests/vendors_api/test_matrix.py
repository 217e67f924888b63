"""The authorization matrix: every /api/v1 endpoint × every token and record state.

The endpoint table is compared with the URL resolver, so an endpoint added to the API fails
`test_every_api_endpoint_is_in_the_matrix` until it is listed here with the scopes it needs.
Each (endpoint, state) cell is its own test and asserts the exact status and problem type.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import Permission
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from accounts.models import User
from consent.models import AccessToken, Grant, TermsChoice
from consent.scopes import PERSON_SCOPES
from consent.services import grant_amend, grant_revoke
from tests.conftest import purchase_data
from tests.consent.conftest import make_app
from tests.intents_helpers import publish, subscribe
from tests.vendors_api.conftest import Api, add_record, authorize, days_ago, issue_token, make_person
from vendors.api.views import PersonApiView
from vendors.messages import message_send
from vendors.models import Application, Organisation
from vendors.suspensions import organisation_suspend


@dataclass(frozen=True)
class Endpoint:
    method: str
    route: str  # as the resolver spells it, under api/v1/
    scopes: tuple[str, ...]  # () = any person grant
    kind: str  # "list", "detail", "owns", "post", "document", "message_post", "message_detail"
    category: str = ""
    ok: int = 200

    @property
    def id(self) -> str:
        return f"{self.method} {self.route}"


def _records(category: str) -> list[Endpoint]:
    scope = (f"{category}:read",)
    return [
        Endpoint("GET", category, scope, "list", category),
        Endpoint("GET", f"{category}/<str:record_id>", scope, "detail", category),
    ]


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "me", (), "document"),
    Endpoint("GET", "receipts", (), "document"),
    Endpoint("GET", "agreement", (), "agreement"),
    Endpoint("POST", "agreement/accept", (), "accept"),
    *_records("purchases"),
    Endpoint("POST", "purchases", ("purchases:write",), "post", "purchases", ok=201),
    Endpoint("GET", "purchases/owns", ("purchases:check",), "owns", "purchases"),
    *_records("closet"),
    *_records("appliances"),
    *_records("prescriptions"),
    Endpoint("GET", "preferences", ("preferences:read",), "document"),
    Endpoint("POST", "messages", ("messages:send",), "message_post", ok=201),
    Endpoint("GET", "messages/<str:message_id>", ("messages:send",), "message_detail"),
]

# Organisation endpoints (vendors/api/recalls.py): client-credentials tokens, no person behind them.
ORGANISATION: list[Endpoint] = [
    Endpoint("POST", "recalls", ("recalls:publish",), "post", ok=202),
    Endpoint("GET", "recalls/<str:recall_id>", ("recalls:publish",), "detail"),
    Endpoint("GET", "intents", ("intents:read",), "list"),
    Endpoint("GET", "intents/<str:intent_id>", ("intents:read",), "intent"),
    Endpoint("POST", "intents/<str:intent_id>/offers", ("intents:read",), "post", ok=201),
    Endpoint("GET", "intents/<str:intent_id>/offers/<str:offer_id>", ("intents:read",), "detail"),
    Endpoint("PATCH", "intents/<str:intent_id>/offers/<str:offer_id>", ("intents:read",), "amend"),
]

# Public on purpose (audit/api.py): hashes and tree sizes only, no token, no person.
PUBLIC = {
    ("GET", "ledger/checkpoint"),
    ("GET", "ledger/proof/inclusion/<int:entry_id>"),
    ("GET", "ledger/proof/consistency"),
    # Witnesses post the checkpoints they cosigned: signatures prove who they are, not a token.
    ("POST", "ledger/cosignatures"),
}


def _walk(patterns: list[Any], prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            found.append((route, getattr(pattern.callback, "view_class", None)))
    return found


def _methods(view_class: Any) -> set[str]:
    names = set(getattr(view_class, "http_method_names", ())) - {"options", "head"}
    return {name.upper() for name in names if hasattr(view_class, name)}


def test_every_api_endpoint_is_in_the_matrix() -> None:
    person_api, organisation, public, unknown = set(), set(), set(), set()
    organisation_listed = {(e.method, e.route) for e in ORGANISATION}
    for route, view_class in _walk(get_resolver().url_patterns):
        if not route.startswith("api/v1/"):
            continue
        route = route.removeprefix("api/v1/")
        for method in _methods(view_class) or {"?"}:
            if isinstance(view_class, type) and issubclass(view_class, PersonApiView):
                person_api.add((method, route))
            elif (method, route) in organisation_listed:
                organisation.add((method, route))
            elif (method, route) in PUBLIC:
                public.add((method, route))
            else:
                unknown.add((method, route))
    assert not unknown, f"api/v1 endpoints missing from the matrix: {unknown}"
    assert person_api == {(e.method, e.route) for e in ENDPOINTS}
    assert organisation == organisation_listed
    assert public == PUBLIC


def test_the_matrix_knows_every_scope_the_views_require() -> None:
    for route, view_class in _walk(get_resolver().url_patterns):
        if isinstance(view_class, type) and issubclass(view_class, PersonApiView):
            for method in _methods(view_class):
                listed = next(e for e in ENDPOINTS if (e.method, e.route) == (method, route[7:]))
                assert tuple(view_class().scopes_for(method)) == listed.scopes, listed.id


# The world of one cell: alice's records of the endpoint's category in and out of the grant.


@dataclass
class World:
    endpoint: Endpoint
    alice: Any
    grant: Grant
    token: str
    visible: dict[str, Any] = field(default_factory=dict)
    outside: dict[str, dict[str, Any]] = field(default_factory=dict)

    def request(self, token: str | None, record_id: str | None = None, gtin: str | None = None) -> Any:
        e = self.endpoint
        api = Api(token)
        path = e.route.replace("<str:record_id>", record_id or (self.visible.get("id") or ""))
        path = path.replace("<str:message_id>", record_id or (self.visible.get("id") or ""))
        if e.kind == "message_post":
            return api.post(path, {"kind": "thanks", "title": "Thank you", "body": "For filling up here."})
        if e.kind == "post":
            return api.post(path, purchase_data(purchased_on=days_ago(1).isoformat()))
        if e.kind == "accept":
            return api.post(path, {})
        if e.kind == "owns":
            return api.get(path, {"gtin": gtin or self.visible["gtin"]})
        return api.get(path)


HISTORY_MONTHS = 12
OUTSIDE = {
    "another_persons_record": "bob's record of the same kind, shared with everyone he granted",
    "hidden_record": "alice's record she did not share",
    "gift_without_opt_in": "a gift, under a grant that did not opt in to gifts",
    "outside_history_window": "a record older than the grant's history window",
    "another_grants_message": "a message the same vendor app sent bob under his grant",
}


def _message(grant: Grant) -> dict[str, Any]:
    sent = message_send(
        grant=grant, application=grant.application, data={"kind": "offer", "title": "Hi", "body": "An offer."}
    )
    return {"id": str(sent.pk)}


def _world(endpoint: Endpoint, shop_app: Any, scopes: tuple[str, ...] = PERSON_SCOPES) -> World:
    alice = make_person("alice")
    if endpoint.kind in {"agreement", "accept"}:  # the grant is made under alice's terms
        TermsChoice.objects.create(person=alice, proffered=["sd-base"])
        shop_app.organisation.accepted_terms = ["sd-base"]
        shop_app.organisation.save(update_fields=["accepted_terms"])
    grant = authorize(alice, shop_app, list(scopes), history_months=HISTORY_MONTHS, include_gifts=False)
    world = World(endpoint, alice, grant, issue_token(grant))
    category = endpoint.category
    if endpoint.kind == "message_detail":
        bob = make_person("bob")
        world.visible = _message(grant)
        world.outside["another_grants_message"] = _message(authorize(bob, shop_app, list(scopes)))
    if category and endpoint.kind != "post":
        bob = make_person("bob")
        authorize(bob, shop_app, list(scopes), include_gifts=True)
        world.visible = add_record(alice, category)
        world.outside["another_persons_record"] = add_record(bob, category)
        world.outside["hidden_record"] = add_record(alice, category, shared=False)
        world.outside["outside_history_window"] = add_record(alice, category, day=days_ago(3 * 365))
        if category == "purchases":
            world.outside["gift_without_opt_in"] = add_record(alice, category, is_gift=True)
    return world


TOKEN_STATES = (
    "no_token",
    "malformed_token",
    "expired_token",
    "revoked_grant",
    "ended_grant",
    "narrowed_away_scope",
    "wrong_scope",
    "suspended_organisation",
    "correct",
)


def _suspend(organisation: Organisation) -> str:
    """Suspend the organisation as an operator would; return the reason it was given."""
    operator = User.objects.create_user(email=f"ops-{secrets.token_hex(4)}@example.com", is_staff=True)
    operator.user_permissions.add(Permission.objects.get(codename="suspend_organisation"))
    reason = "Read far more than its purpose needs."
    organisation_suspend(organisation=organisation, reason=reason, by=User.objects.get(pk=operator.pk))
    return reason


def _suspended(response: Any, reason: str) -> None:
    body = _problem(response, 403, "organisation-suspended")
    assert reason in body["detail"] and "scope" not in body


def _cells() -> list[Any]:
    cells = []
    for endpoint in ENDPOINTS:
        states = list(TOKEN_STATES)
        if endpoint.kind in {"list", "detail", "owns"}:
            states += [
                s
                for s in OUTSIDE
                if (s != "gift_without_opt_in" or endpoint.category == "purchases")
                and s != "another_grants_message"
            ]
        if endpoint.kind == "message_detail":
            states.append("another_grants_message")
        cells += [pytest.param(endpoint, state, id=f"{endpoint.id}|{state}") for state in states]
    return cells


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"{settings.VRM_ISSUER}/problems/{slug}"
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def _invalid_token(response: Any) -> None:
    _problem(response, 401, "invalid-token")
    assert response["WWW-Authenticate"] == 'Bearer realm="vrm", error="invalid_token"'
    assert "Grant-Expires" not in response


def _ok(world: World, response: Any) -> None:
    assert response.status_code == world.endpoint.ok, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response["Grant-Expires"].endswith("Z")


def _other_scopes(needed: tuple[str, ...]) -> list[str]:
    return [s for s in PERSON_SCOPES if s not in needed and s != "prescriptions:read"]


@pytest.mark.parametrize(("endpoint", "state"), _cells())
def test_matrix(endpoint: Endpoint, state: str, shop_app: Any) -> None:
    world = _world(endpoint, shop_app)

    if state == "no_token":
        response = world.request(None)
        _problem(response, 401, "invalid-token")
        assert response["WWW-Authenticate"] == 'Bearer realm="vrm"'
    elif state == "malformed_token":
        _invalid_token(world.request("not a token!"))
    elif state == "expired_token":
        AccessToken.objects.filter(grant=world.grant).update(expires=timezone.now() - dt.timedelta(seconds=1))
        _invalid_token(world.request(world.token))
    elif state == "revoked_grant":
        grant_revoke(grant=world.grant, by=world.alice)
        _invalid_token(world.request(world.token))
    elif state == "ended_grant":
        # The token itself would still be valid: only the grant's end refuses it.
        AccessToken.objects.filter(grant=world.grant).update(
            expires=world.grant.ends_at + dt.timedelta(days=9)
        )
        with time_machine.travel(world.grant.ends_at + dt.timedelta(minutes=1)):
            _invalid_token(world.request(world.token))
    elif state == "suspended_organisation":
        reason = _suspend(shop_app.organisation)
        _suspended(world.request(world.token), reason)
    elif state in {"narrowed_away_scope", "wrong_scope"}:
        if state == "narrowed_away_scope":
            # The token was issued with every scope; the person has since unticked this one.
            grant_amend(grant=world.grant, by=world.alice, scopes=_other_scopes(endpoint.scopes))
            token = world.token
        else:
            # The grant has every scope; the vendor asked for a token without this one.
            token = issue_token(world.grant, scopes=_other_scopes(endpoint.scopes))
        response = world.request(token)
        if not endpoint.scopes:
            _ok(world, response)  # /me and /receipts answer under any person grant
            return
        needed = " ".join(endpoint.scopes)
        body = _problem(response, 403, "insufficient-scope")
        assert body["scope"] == needed
        assert response["WWW-Authenticate"] == (
            f'Bearer realm="vrm", error="insufficient_scope", scope="{needed}"'
        )
    elif state == "correct":
        response = world.request(world.token)
        _ok(world, response)
        if endpoint.kind == "list":
            assert [r["id"] for r in response.json()["results"]] == [world.visible["id"]]
        elif endpoint.kind == "detail":
            assert response.json() == world.visible
        elif endpoint.kind == "owns":
            assert response.json() == {"gtin": world.visible["gtin"], "owns": True}
        elif endpoint.kind in {"agreement", "accept"}:
            assert response.json()["record"]["grant"] == {"id": str(world.grant.pk)}
            assert (response.json()["acknowledged_at"] is None) == (endpoint.kind == "agreement")
        elif endpoint.kind == "message_detail":
            assert response.json() == {"id": world.visible["id"], "status": "delivered", "response": None}
        elif endpoint.kind == "message_post":
            assert set(response.json()) == {"id", "status"}
    else:
        record = world.outside[state]
        if endpoint.kind in {"detail", "message_detail"}:
            refused = world.request(world.token, record_id=record["id"])
            unknown = world.request(world.token, record_id=str(uuid.uuid4()))
            _problem(refused, 404, "not-found")
            assert refused.json() == unknown.json()
            assert refused.headers.keys() == unknown.headers.keys()
        elif endpoint.kind == "list":
            response = world.request(world.token)
            _ok(world, response)
            ids = [r["id"] for r in response.json()["results"]]
            assert record["id"] not in ids and ids == [world.visible["id"]]
        else:  # owns
            response = world.request(world.token, gtin=record["gtin"])
            _ok(world, response)
            assert response.json() == {"gtin": record["gtin"], "owns": False}


# Organisation endpoints: only a verified organisation's token with recalls:publish, only its own recalls.


def recall_data() -> dict[str, Any]:
    return {
        "title": "Peanut butter recall",
        "message": "Lot L4471 may contain glass.",
        "severity": "danger",
        "gtins": ["5012345001234"],
        "lots": ["L4471"],
        "remedy_url": "https://acme.example/recall",
    }


def organisation_token(
    org_name: str, *, scope: str = "recalls:publish", verified: bool = True, **token: Any
) -> str:
    org = Organisation.objects.create(
        name=org_name, website="https://org.example", privacy_contact="p@org.example", verified=verified
    )
    app = make_app(
        org,
        name=f"{org_name} backend",
        scopes=("recalls:publish", "intents:read"),
        grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        secret=secrets.token_urlsafe(40),
    )
    raw = secrets.token_urlsafe(30)
    AccessToken.objects.create(
        user=None,
        application=app,
        token=raw,
        scope=scope,
        expires=token.get("expires") or timezone.now() + dt.timedelta(minutes=15),
    )
    return raw


ORGANISATION_STATES = (
    "no_token",
    "malformed_token",
    "expired_token",
    "person_token",
    "wrong_scope",
    "unverified_organisation",
    "suspended_organisation",
    "another_organisations_record",
    "correct",
)


def _organisation_cells() -> list[Any]:
    return [
        pytest.param(endpoint, state, id=f"{endpoint.id}|{state}")
        for endpoint in ORGANISATION
        for state in ORGANISATION_STATES
        if state != "another_organisations_record" or endpoint.kind in {"detail", "amend"}
    ]


def offer_data() -> dict[str, Any]:
    valid_until = (timezone.now() + dt.timedelta(days=3)).isoformat()
    return {
        "price": "9.90",
        "currency": "EUR",
        "description": "Ours",
        "link": "https://o.example",
        "valid_until": valid_until,
    }


@pytest.mark.parametrize(("endpoint", "state"), _organisation_cells())
def test_organisation_matrix(endpoint: Endpoint, state: str, shop_app: Any) -> None:
    scope = endpoint.scopes[0]

    def token_for(name: str, **token: Any) -> str:
        raw = organisation_token(name, scope=scope, **token)
        subscribe(Organisation.objects.get(name=name))  # to intents; nothing to recalls
        return raw

    own = token_for("Acme Foods")
    intent_id, record_id = str(publish(make_person("alice")).pk), ""
    if scope == "recalls:publish":
        record_id = Api(own).post("recalls", recall_data()).json()["id"]
    elif endpoint.kind != "post":
        record_id = Api(own).post(f"intents/{intent_id}/offers", offer_data()).json()["id"]

    def call(token: str | None, rid: str = "") -> Any:
        api = Api(token)
        if endpoint.route.startswith("recalls"):
            return (
                api.post("recalls", recall_data())
                if endpoint.kind == "post"
                else api.get(f"recalls/{rid or record_id}")
            )
        path = endpoint.route.replace("<str:intent_id>", intent_id).replace(
            "<str:offer_id>", rid or record_id
        )
        if endpoint.kind == "post":
            return api.post(path, offer_data())
        if endpoint.kind == "amend":
            body = json.dumps({"price": "8.50"})
            return api.client.patch(f"/api/v1/{path}", body, content_type="application/json", **api._auth({}))
        return api.get(path)

    if state == "no_token":
        response = call(None)
        _problem(response, 401, "invalid-token")
        assert response["WWW-Authenticate"] == 'Bearer realm="vrm"'
    elif state == "malformed_token":
        _invalid_token(call("not a token!"))
    elif state == "expired_token":
        _invalid_token(call(token_for("Late Ltd", expires=timezone.now() - dt.timedelta(seconds=1))))
    elif state in {"person_token", "wrong_scope"}:
        if state == "person_token":  # a person grant's token, with every person scope
            token = issue_token(authorize(make_person("alice"), shop_app, list(PERSON_SCOPES)))
        else:
            token = organisation_token("Narrow Ltd", scope="profile:read")
        body = _problem(call(token), 403, "insufficient-scope")
        assert body["scope"] == scope
    elif state == "unverified_organisation":  # the right scope, but nobody checked who they are
        body = _problem(call(token_for("Unchecked Ltd", verified=False)), 403, "organisation-unverified")
        assert "verified" in body["detail"] and "scope" not in body
    elif state == "suspended_organisation":
        reason = _suspend(Organisation.objects.get(name="Acme Foods"))
        _suspended(call(own), reason)
    elif state == "another_organisations_record":
        other = token_for("Other Foods")
        refused = call(other)
        unknown = call(other, str(uuid.uuid4()))
        _problem(refused, 404, "not-found")
        assert refused.json() == unknown.json()
    else:
        response = call(own)
        assert response.status_code == endpoint.ok, response.content[:300]
        body = response.json()
        if endpoint.kind == "list":
            assert [i["id"] for i in body["results"]] == [intent_id] and body["next"] is None
        elif endpoint.kind == "intent":
            assert body["id"] == intent_id
        else:
            assert body["id"] and body["status"]
            if endpoint.kind in {"detail", "amend"}:
                assert body["id"] == record_id
