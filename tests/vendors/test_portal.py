"""The vendor portal: who may use it, the organisation, app registration, the secret shown once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import User
from accounts.services import account_upsert
from audit.services import ledger_append
from consent.scopes import SCOPES
from consent.services import access_denied_record, access_record, grant_authorize
from tests.conftest import PASSWORD, signup_link
from vendors.models import Application, Organisation
from vendors.selectors import UsageDay, application_usage
from vendors.services import application_register, organisation_create

CALLBACK = "https://shop.example/callback"


@pytest.fixture
def organisation(vendor_staff: User) -> Organisation:
    return organisation_create(
        staff=vendor_staff,
        name="Green Grocer",
        website="https://grocer.example",
        privacy_contact="privacy@grocer.example",
    )


@pytest.fixture
def app_and_secret(organisation: Organisation) -> tuple[Application, str]:
    return application_register(
        organisation=organisation,
        by=organisation.members.get().user,
        name="Grocer app",
        grant_type="authorization-code",
        redirect_uris=[CALLBACK],
        scopes=["profile:read", "purchases:read"],
        scope_purposes={"profile:read": "To greet you.", "purchases:read": "To suggest refills."},
        required_scopes=["profile:read"],
    )


@pytest.fixture
def rival_app(db: Any) -> Application:
    """An app of another organisation, with its own staff."""
    staff = account_upsert(email="staff@rival.example", password=PASSWORD, role=User.Role.VENDOR_STAFF)[0]
    rival = organisation_create(
        staff=staff, name="Rival", website="https://rival.example", privacy_contact="p@rival.example"
    )
    return application_register(
        organisation=rival,
        by=staff,
        name="Rival app",
        grant_type="authorization-code",
        redirect_uris=["https://rival.example/cb"],
        scopes=["closet:read"],
        scope_purposes={"closet:read": "To sell you shoes."},
    )[0]


def staff_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def registration(**overrides: Any) -> dict[str, Any]:
    """The POST of the registration form: two scopes with purposes, one required."""
    data: dict[str, Any] = {
        "name": "Grocer app",
        "grant_type": "authorization-code",
        "redirect_uris": f"{CALLBACK}\n  http://127.0.0.1:8765/callback  \n",
        "scopes": ["purchases:read", "closet:read"],
        "purpose_purchases_read": "To suggest refills of what you buy often.",
        "purpose_closet_read": "To suggest clothes that go with yours.",
        "purpose_prescriptions_read": "typed next to an unticked scope, dropped",
        "required_scopes": ["purchases:read"],
    }
    data.update(overrides)
    return data


def vendor_paths(client_id: str) -> list[str]:
    """Every vendor-portal URL except the public sign-up, from the URL resolver."""
    vendors = next(
        p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and p.namespace == "vendors"
    )
    names = [p.name for p in vendors.url_patterns if isinstance(p, URLPattern) and p.name]
    assert set(names) == {
        "portal",
        "signup",
        "signup_sent",
        "signup_confirm",
        "organisation_create",
        "application_create",
        "application",
        "application_secret_reset",
        "application_secret",
        "recall_create",
        "terms",
        "intents",
        "intent_webhook",
    }, "a new vendor URL needs a place in this matrix"
    paths = []
    for name in names:
        if name.startswith("signup"):  # public, checked in tests/accounts/test_signup.py
            continue
        with_id = name.startswith("application") and "create" not in name or name == "intent_webhook"
        kwargs = {"client_id": client_id} if with_id else {}
        paths.append(reverse(f"vendors:{name}", kwargs=kwargs))
    return paths


# Who may use the portal


def test_anonymous_visitors_are_sent_to_log_in(client: Client, app_and_secret: Any) -> None:
    for path in vendor_paths(app_and_secret[0].client_id):
        for method in (client.get, client.post):
            response = method(path)
            assert response.status_code == 302, path
            assert response["Location"].startswith(reverse("login") + "?next="), path


@pytest.mark.parametrize("persona", ["alice", "auditor", "operator"])
def test_other_roles_are_refused(persona: str, request: pytest.FixtureRequest, app_and_secret: Any) -> None:
    client = staff_client(request.getfixturevalue(persona))
    stored_hash = Application.objects.get().client_secret
    for path in vendor_paths(app_and_secret[0].client_id):
        assert client.get(path).status_code == 403, path
        assert client.post(path).status_code == 403, path
    assert Application.objects.get().client_secret == stored_hash


def test_staff_of_another_organisation_get_404_on_an_app(
    vendor_staff: User, organisation: Organisation, rival_app: Application
) -> None:
    client = staff_client(vendor_staff)
    secret_before = Application.objects.get(pk=rival_app.pk).client_secret
    detail = reverse("vendors:application", args=[rival_app.client_id])
    reset = reverse("vendors:application_secret_reset", args=[rival_app.client_id])
    assert client.get(detail).status_code == 404
    assert client.post(detail, registration(name="Taken over")).status_code == 404
    assert client.post(reset).status_code == 404
    assert client.get(reverse("vendors:application", args=["no-such-client"])).status_code == 404
    stored = Application.objects.get(pk=rival_app.pk)
    assert stored.client_secret == secret_before and stored.name == "Rival app"
    assert rival_app.name not in client.get(reverse("vendors:portal")).content.decode()


def test_staff_without_an_organisation_get_404_on_any_app(vendor_staff: User, rival_app: Application) -> None:
    client = staff_client(vendor_staff)
    assert client.get(reverse("vendors:application", args=[rival_app.client_id])).status_code == 404


# Organisation


def test_staff_without_an_organisation_are_asked_to_create_it(vendor_staff: User) -> None:
    client = staff_client(vendor_staff)
    response = client.get(reverse("vendors:portal"))
    assert response.status_code == 200
    assert b"Describe your organisation" in response.content
    assert b'name="privacy_contact"' in response.content
    assert client.get(reverse("vendors:application_create"))["Location"] == reverse(
        "vendors:organisation_create"
    )

    response = client.post(
        reverse("vendors:organisation_create"),
        {"name": "Green Grocer", "website": "not a url", "privacy_contact": "privacy@grocer.example"},
    )
    assert response.status_code == 200 and b'class="error"' in response.content
    assert not Organisation.objects.exists()

    response = client.post(
        reverse("vendors:organisation_create"),
        {
            "name": "Green Grocer",
            "website": "https://grocer.example",
            "privacy_contact": "privacy@grocer.example",
            "description": "Fresh food.",
        },
    )
    assert response["Location"] == reverse("vendors:portal")
    org = Organisation.objects.get()
    assert org.members.get().user == vendor_staff and not org.verified
    page = client.get(reverse("vendors:portal")).content.decode()
    assert "Green Grocer" in page and "not verified yet" in page and "Recalls" in page
    # One organisation per staff account: the form is gone now.
    assert client.get(reverse("vendors:organisation_create"))["Location"] == reverse("vendors:portal")
    client.post(
        reverse("vendors:organisation_create"),
        {"name": "Second", "website": "https://two.example", "privacy_contact": "p@two.example"},
    )
    assert Organisation.objects.count() == 1


def test_portal_lists_apps_and_the_verified_badge(vendor_staff: User, app_and_secret: Any) -> None:
    app, secret = app_and_secret
    Organisation.objects.update(verified=True)
    page = staff_client(vendor_staff).get(reverse("vendors:portal")).content.decode()
    assert "not verified yet" not in page and ">verified<" in page
    for text in (
        "Grocer app",
        app.client_id,
        CALLBACK,
        "To suggest refills.",
        "purchases:read",
        "Your purchases",
    ):
        assert text in page
    assert secret not in page


# Registration and the secret shown once


def test_register_shows_the_secret_once(vendor_staff: User, organisation: Organisation) -> None:
    client = staff_client(vendor_staff)
    form = client.get(reverse("vendors:application_create")).content.decode()
    assert "People&#x27;s data (authorization code + PKCE)" in form
    assert "Recall publishing (client credentials)" in form
    assert form.count('type="checkbox" name="scopes"') == len(SCOPES)  # every person and organisation scope
    assert "sensitive" in form

    response = client.post(reverse("vendors:application_create"), registration())
    app = Application.objects.get()
    shown = reverse("vendors:application_secret", args=[app.client_id])
    assert response.status_code == 302 and response["Location"] == shown  # POST-redirect-GET
    response = client.get(shown)
    secret = response.context["client_secret"]
    body = response.content.decode()
    assert secret in body and app.client_id in body
    assert "it will not be shown again" in body and "is registered" in body
    assert 'data-copy="client-secret"' in body and "js/copy.js" in body
    assert "no-store" in response["Cache-Control"]
    assert check_password(secret, app.client_secret) and secret not in app.client_secret
    assert app.scopes == ["purchases:read", "closet:read"]
    assert app.scope_purposes == {
        "purchases:read": "To suggest refills of what you buy often.",
        "closet:read": "To suggest clothes that go with yours.",
    }
    assert app.required_scopes == ["purchases:read"]
    assert app.redirect_uris.split() == [CALLBACK, "http://127.0.0.1:8765/callback"]

    # Never again: not on a reload, the app page, the portal, in the session or in a message.
    again = client.get(shown)
    assert again.status_code == 200 and again.context["client_secret"] is None
    assert secret not in again.content.decode() and "This secret was shown once" in again.content.decode()
    assert Application.objects.count() == 1  # the reload registered nothing
    for path in (reverse("vendors:application", args=[app.client_id]), reverse("vendors:portal")):
        assert secret not in client.get(path).content.decode()
    assert all(secret not in str(value) for value in client.session.values())


def test_the_secret_crosses_the_redirect_sealed_under_a_key_only_the_browser_holds(
    vendor_staff: User, app_and_secret: Any
) -> None:
    app, _ = app_and_secret
    client = staff_client(vendor_staff)
    response = client.post(reverse("vendors:application_secret_reset", args=[app.client_id]))
    cookie = response.cookies["vrm_new_secret"]
    assert cookie["httponly"] and int(cookie["max-age"]) <= 300
    assert cookie["path"] == reverse("vendors:application_secret", args=[app.client_id])
    # The session alone (a database dump) opens nothing: without the cookie, no secret.
    del client.cookies["vrm_new_secret"]
    page = client.get(response["Location"])
    assert page.context["client_secret"] is None and "This secret was shown once" in page.content.decode()


def test_a_secret_handed_over_for_one_app_is_not_shown_on_another(
    vendor_staff: User, app_and_secret: Any
) -> None:
    app, _ = app_and_secret
    client = staff_client(vendor_staff)
    client.post(reverse("vendors:application_secret_reset", args=[app.client_id]))
    other, _ = application_register(
        organisation=app.organisation,
        name="Other",
        grant_type="client-credentials",
        by=vendor_staff,
        redirect_uris=[],
        scopes=["recalls:publish"],
        scope_purposes={},
    )

    def shown(application: Application) -> Any:
        url = reverse("vendors:application_secret", args=[application.client_id])
        return client.get(url).context["client_secret"]

    assert shown(other) is None
    assert shown(app)


def test_register_a_recall_client(vendor_staff: User, organisation: Organisation) -> None:
    client = staff_client(vendor_staff)
    data = {"name": "Recalls", "grant_type": "client-credentials", "scopes": ["recalls:publish"]}
    response = client.post(reverse("vendors:application_create"), data, follow=True)
    assert response.status_code == 200 and response.context["client_secret"]
    app = Application.objects.get()
    assert app.authorization_grant_type == "client-credentials" and app.scopes == ["recalls:publish"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"redirect_uris": "http://shop.example/callback"}, "use https"),
        ({"redirect_uris": ""}, "at least one redirect URI"),
        ({"purpose_closet_read": ""}, "closet:read: say in one sentence why"),
        ({"purpose_closet_read": "x" * 301}, "at most 300 characters"),
        ({"scopes": ["purchases:read", "recalls:publish"]}, "cannot ask for: recalls:publish"),
        ({"scopes": []}, "Choose at least one scope."),
        ({"required_scopes": ["profile:read"]}, "Required scopes must be chosen scopes too"),
        ({"grant_type": "implicit"}, "Select a valid choice"),
        ({"name": ""}, "This field is required."),
    ],
)
def test_register_refuses_bad_settings_with_a_message(
    vendor_staff: User, organisation: Organisation, overrides: dict[str, Any], message: str
) -> None:
    response = staff_client(vendor_staff).post(
        reverse("vendors:application_create"), registration(**overrides)
    )
    assert response.status_code == 200
    assert "client_secret" not in response.context
    assert message in response.content.decode()
    assert not Application.objects.exists()


def test_reset_shows_a_new_secret_once_and_the_old_one_stops_working(
    vendor_staff: User, app_and_secret: Any
) -> None:
    app, old = app_and_secret
    client = staff_client(vendor_staff)
    reset = reverse("vendors:application_secret_reset", args=[app.client_id])
    assert client.get(reset).status_code == 405
    response = client.post(reset, follow=True)
    assert response.redirect_chain == [(reverse("vendors:application_secret", args=[app.client_id]), 302)]
    new = response.context["client_secret"]
    assert new != old and new in response.content.decode()
    stored = Application.objects.get(pk=app.pk)
    assert check_password(new, stored.client_secret) and not check_password(old, stored.client_secret)
    assert new not in client.get(reverse("vendors:application", args=[app.client_id])).content.decode()


# Editing


def test_edit_changes_scopes_and_purposes(vendor_staff: User, app_and_secret: Any) -> None:
    app, secret = app_and_secret
    client = staff_client(vendor_staff)
    path = reverse("vendors:application", args=[app.client_id])
    page = client.get(path).content.decode()
    assert "To suggest refills." in page and "Reset client secret" in page and secret not in page
    assert 'name="grant_type"' not in page

    response = client.post(
        path,
        {
            "name": "Grocer app",
            "redirect_uris": "https://shop.example/new",
            "scopes": ["preferences:read"],
            "purpose_preferences_read": "To leave out what you cannot eat.",
        },
    )
    assert response["Location"] == path
    stored = Application.objects.get(pk=app.pk)
    assert stored.scopes == ["preferences:read"] and stored.required_scopes == []
    assert stored.redirect_uris == "https://shop.example/new"
    assert check_password(secret, stored.client_secret)

    response = client.post(
        path, {"name": "Grocer app", "redirect_uris": "http://evil.example/", "scopes": []}
    )
    assert response.status_code == 200 and "use https" in response.content.decode()
    assert Application.objects.get(pk=app.pk).redirect_uris == "https://shop.example/new"


# Sign-up


def test_vendor_signup_creates_staff_and_asks_for_the_organisation(client: Client, alice: User) -> None:
    path = reverse("vendors:signup")
    assert client.get(path).status_code == 200
    weak = client.post(path, {"email": "new@shop.example", "password1": "short", "password2": "short"})
    assert weak.status_code == 200 and b"too short" in weak.content
    # An address with an account gets the same answer as a new one, and keeps its account.
    taken = client.post(path, {"email": "Alice@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert taken["Location"] == reverse("vendors:signup_sent")
    assert User.objects.get(email="alice@example.com").role == User.Role.PERSON

    response = client.post(path, {"email": "New@Shop.example", "password1": PASSWORD, "password2": PASSWORD})
    assert response["Location"] == reverse("vendors:signup_sent")
    response = client.post(signup_link("new@shop.example"), {"password": PASSWORD})
    assert response["Location"] == reverse("vendors:organisation_create")
    staff = User.objects.get(email="new@shop.example")
    assert staff.role == User.Role.VENDOR_STAFF and staff.check_password(PASSWORD)
    assert b"Describe your organisation" in client.get(response["Location"]).content


# Operator admin


def test_admin_never_shows_the_client_secret(operator: User, app_and_secret: Any) -> None:
    app, secret = app_and_secret
    stored_hash = Application.objects.get(pk=app.pk).client_secret
    client = staff_client(operator)
    for path in (
        "/admin/vendors/application/",
        f"/admin/vendors/application/{app.pk}/change/",
        "/admin/vendors/organisation/",
        f"/admin/vendors/organisation/{app.organisation_id}/change/",
        "/admin/vendors/membership/",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.content.decode()
        assert secret not in body and stored_hash not in body, path
    assert client.get("/admin/vendors/application/add/").status_code == 403
    assert client.post(f"/admin/vendors/application/{app.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Application.objects.filter(pk=app.pk).exists()


def test_admin_offers_no_way_to_add_a_member(operator: User, organisation: Organisation) -> None:
    # Members join by vendor sign-up only; tests/vrm/test_admin.py posts the forms anyway.
    client = staff_client(operator)
    assert client.get("/admin/vendors/membership/add/").status_code == 403
    page = client.get(f"/admin/vendors/organisation/{organisation.pk}/change/").content.decode()
    assert 'name="members-0-user"' not in page and 'name="members-__prefix__-user"' not in page


def test_operators_verify_organisations_in_the_admin(operator: User, organisation: Organisation) -> None:
    client = staff_client(operator)
    response = client.post(
        "/admin/vendors/organisation/",
        {"action": "mark_verified", "_selected_action": [str(organisation.pk)]},
    )
    assert response.status_code == 302
    organisation.refresh_from_db()
    assert organisation.verified
    # Shown, not editable: only the actions change it, through organisation_verify and the ledger.
    page = client.get(f"/admin/vendors/organisation/{organisation.pk}/change/").content.decode()
    assert (
        'name="verified"' not in page
        and "mark_unverified" in client.get("/admin/vendors/organisation/").content.decode()
    )


def test_a_second_organisation_is_refused_with_a_message(
    vendor_staff: User, organisation: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if two tabs submitted the form: the view's early check saw no organisation yet.
    monkeypatch.setattr("vendors.views.organisation_for_staff", lambda user: None)
    response = staff_client(vendor_staff).post(
        reverse("vendors:organisation_create"),
        {"name": "Second", "website": "https://two.example", "privacy_contact": "p@two.example"},
    )
    assert response.status_code == 200
    assert "already belongs to an organisation" in response.content.decode()
    assert Organisation.objects.count() == 1


def test_edit_a_recall_client(vendor_staff: User, organisation: Organisation) -> None:
    app, _ = application_register(
        organisation=organisation,
        by=vendor_staff,
        name="Recalls",
        grant_type="client-credentials",
        redirect_uris=[],
        scopes=["recalls:publish"],
        scope_purposes={},
    )
    client = staff_client(vendor_staff)
    path = reverse("vendors:application", args=[app.client_id])
    page = client.get(path).content.decode()
    assert 'value="recalls:publish"' in page and 'value="closet:read"' not in page
    response = client.post(path, {"name": "Lot recalls", "redirect_uris": "", "scopes": ["recalls:publish"]})
    assert response["Location"] == path
    assert Application.objects.get(pk=app.pk).name == "Lot recalls"
    response = client.post(path, {"name": "Lot recalls", "scopes": ["closet:read"]})
    assert "cannot ask for: closet:read" in response.content.decode()


# Usage figures


def test_the_portal_shows_each_apps_grants_calls_and_errors_per_day(
    vendor_staff: User, app_and_secret: Any, alice: User, bob: User, time_machine: Any
) -> None:
    app, _ = app_and_secret
    time_machine.move_to(dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC))
    grant = grant_authorize(person=alice, application=app, scopes=["purchases:read"], duration_days=30)
    for _ in range(3):
        access_record(grant=grant, client_id=app.client_id, kind="access.read", scopes=["purchases:read"])
    time_machine.move_to(dt.datetime(2026, 3, 12, 9, tzinfo=dt.UTC))
    grant_authorize(person=bob, application=app, scopes=["profile:read"], duration_days=30)
    access_record(grant=grant, client_id=app.client_id, kind="access.check", scopes=["purchases:check"])
    access_denied_record(
        grant=grant, client_id=app.client_id, scopes=["prescriptions:read"], reason="insufficient-scope"
    )
    # Another app's traffic and an old day are not counted.
    ledger_append(kind="access.read", actor_type="client", actor_id="someone-else", scopes=[])

    (usage,) = application_usage(applications=[app])
    by_day = {d.day: d for d in usage.days}
    assert len(usage.days) == 14 and usage.days[-1].day == dt.date(2026, 3, 12)
    assert by_day[dt.date(2026, 3, 10)] == UsageDay(day=dt.date(2026, 3, 10), grants=1, calls=3, errors=0)
    assert by_day[dt.date(2026, 3, 12)] == UsageDay(day=dt.date(2026, 3, 12), grants=1, calls=2, errors=1)
    assert usage.total == UsageDay(day=dt.date(2026, 3, 12), grants=2, calls=5, errors=1)
    assert usage.live_grants == 2

    page = staff_client(vendor_staff).get(reverse("vendors:portal")).content.decode()
    assert "Usage, last 14 days" in page
    assert "2 live grants · 2 new grants · 5 API calls · 1 error" in page
    assert "<tr><td>Thu 12 Mar</td><td>1</td><td>2</td><td>1</td></tr>" in page
    assert "<tr><td>Tue 10 Mar</td><td>1</td><td>3</td><td>0</td></tr>" in page
    assert page.count('class="usage-calls"') == 14 and page.count('class="usage-errors"') == 1

    time_machine.move_to(dt.datetime(2026, 3, 30, 9, tzinfo=dt.UTC))  # all of it is older than 14 days
    (usage,) = application_usage(applications=[app])
    assert usage.total.calls == 0 and usage.total.grants == 0
    page = staff_client(vendor_staff).get(reverse("vendors:portal")).content.decode()
    assert "No grants or API calls yet in the last 14 days." in page


def test_the_portal_links_the_docs(vendor_staff: User, organisation: Organisation) -> None:
    page = staff_client(vendor_staff).get(reverse("vendors:portal")).content.decode()
    for href in ("/docs/vendors/", "/docs/api/", "/api/docs/", "/api/schema/"):
        assert f'href="{href}"' in page
