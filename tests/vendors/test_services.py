"""Vendor services: organisations, application registration rules, client secrets, the demo shop."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.hashers import check_password, identify_hasher
from django.core.exceptions import ValidationError

from accounts.models import User
from audit.models import LedgerEntry
from consent.models import AccessToken, AuthorizationCode, Grant, RefreshToken
from consent.oauth import GrantValidator
from consent.scopes import PERSON_SCOPES
from devtools.vendor import demo_vendor_seed
from tests.consent.conftest import Flow
from vendors.models import Application, Membership, Organisation
from vendors.services import (
    application_register,
    application_secret_reset,
    application_update,
    organisation_create,
)

CALLBACK = "https://shop.example/callback"


@pytest.fixture
def organisation(vendor_staff: User) -> Organisation:
    return organisation_create(
        staff=vendor_staff,
        name="Green Grocer",
        website="https://grocer.example",
        privacy_contact="privacy@grocer.example",
    )


def staff_of(organisation: Organisation) -> User:
    return organisation.members.select_related("user").get().user


def person_app(**overrides: Any) -> dict[str, Any]:
    """Valid arguments for a people's-data application; override any of them."""
    arguments: dict[str, Any] = {
        "name": "Grocer app",
        "grant_type": "authorization-code",
        "redirect_uris": [CALLBACK],
        "scopes": ["purchases:read", "profile:read"],
        "scope_purposes": {
            "purchases:read": "To suggest refills of what you buy often.",
            "profile:read": "To greet you by name.",
        },
        "required_scopes": ["profile:read"],
    }
    arguments.update(overrides)
    return arguments


def recall_app(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "name": "Grocer recalls",
        "grant_type": "client-credentials",
        "redirect_uris": [],
        "scopes": ["recalls:publish"],
        "scope_purposes": {},
    }
    arguments.update(overrides)
    return arguments


# Organisations and staff


def test_organisation_create_makes_the_staff_a_member(vendor_staff: User) -> None:
    org = organisation_create(
        staff=vendor_staff,
        name=" Green Grocer ",
        website="https://grocer.example",
        privacy_contact="privacy@grocer.example",
        description="Fresh food.",
    )
    assert org.name == "Green Grocer" and not org.verified
    assert Membership.objects.get(user=vendor_staff).organisation == org


def test_organisation_create_allows_one_organisation_per_staff(organisation: Organisation) -> None:
    staff = organisation.members.get().user
    with pytest.raises(ValidationError) as caught:
        organisation_create(
            staff=staff, name="Second", website="https://two.example", privacy_contact="p@two.example"
        )
    assert "staff" in caught.value.message_dict
    assert Organisation.objects.count() == 1


def test_organisation_create_refuses_people_and_bad_fields(alice: User, vendor_staff: User) -> None:
    with pytest.raises(ValidationError) as caught:
        organisation_create(
            staff=alice, name="Shop", website="https://s.example", privacy_contact="p@s.example"
        )
    assert "staff" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        organisation_create(staff=vendor_staff, name="", website="not a url", privacy_contact="nope")
    assert {"name", "website", "privacy_contact"} <= set(caught.value.message_dict)
    assert not Organisation.objects.exists() and not Membership.objects.exists()


# Registration


def test_register_person_app_returns_plaintext_secret_and_stores_a_hash(organisation: Organisation) -> None:
    app, secret = application_register(organisation=organisation, by=staff_of(organisation), **person_app())
    stored = Application.objects.get(pk=app.pk)
    assert stored.client_secret != secret
    assert identify_hasher(stored.client_secret)
    assert check_password(secret, stored.client_secret)
    assert secret not in stored.client_secret
    assert stored.client_type == Application.CLIENT_CONFIDENTIAL
    assert stored.authorization_grant_type == Application.GRANT_AUTHORIZATION_CODE
    assert stored.skip_authorization is False and stored.algorithm == ""
    assert stored.redirect_uris == CALLBACK
    # Stored in the order of the scope table, whatever order they came in.
    assert stored.scopes == ["profile:read", "purchases:read"]
    assert stored.required_scopes == ["profile:read"]
    assert stored.purpose_of("purchases:read") == "To suggest refills of what you buy often."


def test_register_recall_client(organisation: Organisation) -> None:
    app, secret = application_register(organisation=organisation, by=staff_of(organisation), **recall_app())
    assert app.authorization_grant_type == Application.GRANT_CLIENT_CREDENTIALS
    assert app.client_type == Application.CLIENT_CONFIDENTIAL
    assert app.scopes == ["recalls:publish"] and app.redirect_uris == ""
    assert check_password(secret, Application.objects.get(pk=app.pk).client_secret)


def test_register_accepts_loopback_http_and_several_uris(organisation: Organisation) -> None:
    uris = ["http://127.0.0.1:8765/callback", "http://localhost/cb", CALLBACK, CALLBACK]
    app, _ = application_register(
        organisation=organisation, by=staff_of(organisation), **person_app(redirect_uris=uris)
    )
    assert app.redirect_uris.split() == uris[:3]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "  "}, "name"),
        ({"grant_type": "password"}, "grant_type"),
        ({"grant_type": "implicit"}, "grant_type"),
        ({"redirect_uris": []}, "redirect_uris"),
        ({"redirect_uris": ["http://shop.example/callback"]}, "redirect_uris"),
        ({"redirect_uris": ["https://shop.example/cb#fragment"]}, "redirect_uris"),
        ({"redirect_uris": ["ftp://shop.example/cb"]}, "redirect_uris"),
        ({"redirect_uris": ["https://shop.example/a b"]}, "redirect_uris"),
        ({"redirect_uris": ["shop.example/callback"]}, "redirect_uris"),
        ({"redirect_uris": ["http://localhost:8765@evil.example/cb"]}, "redirect_uris"),
        ({"redirect_uris": ["https://user:secret@shop.example/cb"]}, "redirect_uris"),
        ({"redirect_uris": [f"https://shop.example/{n}" for n in range(11)]}, "redirect_uris"),
        ({"scopes": [], "scope_purposes": {}, "required_scopes": []}, "scopes"),
        ({"scopes": ["purchases:read", "recalls:publish"]}, "scopes"),
        ({"scopes": ["purchases:read", "everything:read"]}, "scopes"),
        ({"scope_purposes": {"purchases:read": "Refills."}}, "scope_purposes"),
        ({"scope_purposes": {"purchases:read": "   ", "profile:read": "Names."}}, "scope_purposes"),
        ({"scope_purposes": {"purchases:read": "x" * 301, "profile:read": "Names."}}, "scope_purposes"),
        (
            {"scope_purposes": {"purchases:read": "R.", "profile:read": "N.", "closet:read": "C."}},
            "scope_purposes",
        ),
        ({"required_scopes": ["closet:read"]}, "required_scopes"),
        (
            {
                "scopes": ["prescriptions:read"],
                "scope_purposes": {"prescriptions:read": "Refill reminders."},
                "required_scopes": ["prescriptions:read"],
            },
            "required_scopes",
        ),
    ],
)
def test_register_person_app_rules(organisation: Organisation, overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        application_register(organisation=organisation, by=staff_of(organisation), **person_app(**overrides))
    assert field in caught.value.message_dict, caught.value.message_dict
    assert not Application.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"scopes": ["purchases:read"]}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"redirect_uris": [CALLBACK]}, "redirect_uris"),
        ({"required_scopes": ["recalls:publish"]}, "required_scopes"),
    ],
)
def test_register_recall_client_rules(
    organisation: Organisation, overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        application_register(organisation=organisation, by=staff_of(organisation), **recall_app(**overrides))
    assert field in caught.value.message_dict, caught.value.message_dict
    assert not Application.objects.exists()


def test_register_reports_every_problem_at_once(organisation: Organisation) -> None:
    with pytest.raises(ValidationError) as caught:
        application_register(
            organisation=organisation,
            by=staff_of(organisation),
            **person_app(
                name="",
                redirect_uris=["http://shop.example/"],
                scope_purposes={},
                required_scopes=["closet:read"],
            ),
        )
    assert set(caught.value.message_dict) == {"name", "redirect_uris", "scope_purposes", "required_scopes"}


def test_register_refuses_a_second_app_with_the_same_name(organisation: Organisation) -> None:
    application_register(organisation=organisation, by=staff_of(organisation), **person_app())
    with pytest.raises(ValidationError) as caught:
        application_register(
            organisation=organisation, by=staff_of(organisation), **person_app(name="GROCER APP")
        )
    assert "name" in caught.value.message_dict
    assert Application.objects.count() == 1


def test_a_sensitive_scope_can_be_asked_for_but_not_required(organisation: Organisation) -> None:
    scopes = ["profile:read", "prescriptions:read"]
    purposes = {"profile:read": "Names.", "prescriptions:read": "To remind you of refills."}
    app, _ = application_register(
        organisation=organisation,
        by=staff_of(organisation),
        **person_app(scopes=scopes, scope_purposes=purposes, required_scopes=["profile:read"]),
    )
    assert app.scopes == scopes and app.required_scopes == ["profile:read"]


def test_every_person_scope_can_be_registered(organisation: Organisation) -> None:
    app, _ = application_register(
        organisation=organisation,
        by=staff_of(organisation),
        **person_app(
            scopes=list(PERSON_SCOPES), scope_purposes={s: f"Because of {s}." for s in PERSON_SCOPES}
        ),
    )
    assert app.scopes == list(PERSON_SCOPES)


# Update and secret reset


def test_update_changes_uris_scopes_and_purposes(organisation: Organisation) -> None:
    app, secret = application_register(organisation=organisation, by=staff_of(organisation), **person_app())
    client_id = app.client_id
    application_update(
        application=app,
        name="Grocer app 2",
        redirect_uris=["https://shop.example/new"],
        scopes=["closet:read"],
        scope_purposes={"closet:read": "To match outfits."},
        required_scopes=[],
    )
    stored = Application.objects.get(pk=app.pk)
    assert stored.name == "Grocer app 2" and stored.client_id == client_id
    assert stored.redirect_uris == "https://shop.example/new"
    assert stored.scopes == ["closet:read"] and stored.required_scopes == []
    assert stored.scope_purposes == {"closet:read": "To match outfits."}
    assert check_password(secret, stored.client_secret)


def test_update_keeps_the_rules_and_writes_nothing_on_error(organisation: Organisation) -> None:
    app, _ = application_register(organisation=organisation, by=staff_of(organisation), **person_app())
    application_register(organisation=organisation, by=staff_of(organisation), **person_app(name="Other app"))
    before = Application.objects.filter(pk=app.pk).values().get()
    bad: list[dict[str, Any]] = [
        {"redirect_uris": ["http://shop.example/cb"]},
        {"redirect_uris": []},
        {"scopes": ["recalls:publish"], "scope_purposes": {}, "required_scopes": []},
        {"scope_purposes": {"purchases:read": "Refills."}},
        {"name": "other app"},
    ]
    for overrides in bad:
        arguments = person_app(**overrides)
        del arguments["grant_type"]
        with pytest.raises(ValidationError):
            application_update(application=app, **arguments)
        assert Application.objects.filter(pk=app.pk).values().get() == before


def test_secret_reset_hashes_a_new_secret_and_retires_the_old(organisation: Organisation) -> None:
    app, old = application_register(organisation=organisation, by=staff_of(organisation), **person_app())
    new = application_secret_reset(application=app, by=staff_of(organisation))
    stored = Application.objects.get(pk=app.pk)
    assert new != old and stored.client_secret != new
    assert check_password(new, stored.client_secret)
    assert not check_password(old, stored.client_secret)
    assert stored.client_id == app.client_id


def test_registration_writes_a_ledger_entry_naming_the_org_and_the_client(
    organisation: Organisation, vendor_staff: User
) -> None:
    app, _ = application_register(organisation=organisation, by=vendor_staff, **person_app())
    entry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.APP_REGISTERED)
    assert (entry.actor_type, entry.actor_id) == ("vendor_org", str(organisation.pk))
    assert entry.record_ids == [app.client_id] and entry.reason == f"staff {vendor_staff.pk}"
    assert entry.scopes == ["profile:read", "purchases:read"] and entry.subject == ""


def test_a_refused_registration_writes_no_ledger_entry(organisation: Organisation) -> None:
    with pytest.raises(ValidationError):
        application_register(organisation=organisation, by=staff_of(organisation), **person_app(name=""))
    assert not LedgerEntry.objects.exists()


def test_secret_reset_revokes_every_token_of_the_app_at_once(
    flow: Flow, vendor_staff: User, stranger_app: Application
) -> None:
    first = flow.tokens()
    second = flow.tokens()
    others = Flow(client=flow.client, app=stranger_app, secret="other-" + "y" * 40).tokens()
    assert flow.me(second["access_token"]).status_code == 200
    live = AccessToken.objects.filter(application=flow.app).count()
    live += RefreshToken.objects.filter(application=flow.app).count()

    new_secret = application_secret_reset(application=flow.app, by=vendor_staff)

    for token in (first, second):
        assert flow.me(token["access_token"]).status_code == 401
        flow.secret = new_secret  # the vendor's own client, now on the new secret
        refused = flow.refresh(token["refresh_token"])
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.filter(application=flow.app).exists()
    assert not RefreshToken.objects.filter(application=flow.app).exists()
    # Another app's tokens and the person's grant are untouched; the app asks the person again.
    assert flow.me(others["access_token"]).status_code == 200
    assert Grant.objects.get(application=flow.app).is_live()
    assert flow.tokens()["access_token"]
    entry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.APP_SECRET_RESET)
    assert (entry.actor_type, entry.actor_id) == ("vendor_org", str(flow.app.organisation_id))
    assert entry.record_ids == [flow.app.client_id] and entry.reason == f"staff {vendor_staff.pk}"
    assert entry.record_count == live > 0


def test_codes_issued_before_a_secret_reset_cannot_be_exchanged_after_it(
    flow: Flow, vendor_staff: User
) -> None:
    # Whoever held the old secret may have a code too: it dies with the tokens.
    code, verifier = flow.code(), flow.verifier
    unused = flow.code()
    flow.secret = application_secret_reset(application=flow.app, by=vendor_staff)
    for stale in (code, unused):
        refused = flow.exchange(stale, verifier=verifier)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert not AuthorizationCode.objects.filter(application=flow.app).exists()
    assert not AccessToken.objects.filter(application=flow.app).exists()
    assert LedgerEntry.objects.get(kind=LedgerEntry.Kind.APP_SECRET_RESET).record_count == 2
    assert flow.tokens()["access_token"]  # a new code, on the new secret


def test_a_token_request_past_client_authentication_issues_nothing_after_a_reset(
    flow: Flow, vendor_staff: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reset lands between the token request's secret check and its token: on PostgreSQL the
    request waits on the app row the reset holds; here it runs in between on one connection."""
    code = flow.code()
    checked = GrantValidator._authenticate_basic_auth

    def reset_after_check(validator: GrantValidator, request: Any) -> bool:
        ok = checked(validator, request)
        if ok:
            application_secret_reset(application=flow.app, by=vendor_staff)
        return ok

    monkeypatch.setattr(GrantValidator, "_authenticate_basic_auth", reset_after_check)
    response = flow.exchange(code)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert not AccessToken.objects.filter(application=flow.app).exists()
    assert not RefreshToken.objects.filter(application=flow.app).exists()
    assert not LedgerEntry.objects.filter(kind="token.issued").exists()


# Demo shop


def test_demo_vendor_seed_is_idempotent_and_rotates_secrets(db: Any) -> None:
    first = demo_vendor_seed()
    second = demo_vendor_seed()
    assert Organisation.objects.count() == 1 and Application.objects.count() == 2
    org = Organisation.objects.get()
    assert org.name == "Demo Shop" and org.verified
    assert org.website == "https://shop.example" and org.privacy_contact == "privacy@shop.example"
    staff = User.objects.get(email="shop@example.com")
    assert staff.role == User.Role.VENDOR_STAFF and staff.check_password(second["vendor_staff"]["password"])
    assert not staff.check_password(first["vendor_staff"]["password"])
    for key in ("app", "recall_client"):
        assert first[key]["client_id"] == second[key]["client_id"]
        assert first[key]["client_secret"] != second[key]["client_secret"]
        stored = Application.objects.get(client_id=second[key]["client_id"])
        assert check_password(second[key]["client_secret"], stored.client_secret)
        assert not check_password(first[key]["client_secret"], stored.client_secret)
    app = Application.objects.get(client_id=second["app"]["client_id"])
    assert app.name == "Demo Shop app" and app.scopes == list(PERSON_SCOPES) == second["app"]["scopes"]
    assert all(app.purpose_of(s) for s in PERSON_SCOPES)
    assert app.required_scopes == ["profile:read"]
    assert app.redirect_uris == "http://127.0.0.1:8765/callback" == second["app"]["redirect_uri"]
    assert app.client_type == "confidential" and app.authorization_grant_type == "authorization-code"
    recalls = Application.objects.get(client_id=second["recall_client"]["client_id"])
    assert recalls.name == "Demo Shop recalls" and recalls.scopes == ["recalls:publish"]
    assert recalls.authorization_grant_type == "client-credentials"
