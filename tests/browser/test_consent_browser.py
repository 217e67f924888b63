"""A person gives consent to a vendor and revokes it, clicking, in a real browser."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.conf import settings

from consent.models import Grant
from consent.services import grant_authorize
from tests.browser.conftest import log_in, screenshot
from tests.consent.conftest import REDIRECT, SECRET, make_app, pkce_pair
from vendors.models import Application, Organisation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop_app(db: Any) -> Application:
    org = Organisation.objects.create(
        name="Acme Shop",
        website="https://acme.example",
        privacy_contact="privacy@acme.example",
        verified=True,
    )
    return make_app(org)


def test_person_consents_then_revokes_by_clicking(
    page: Any, live_server: Any, alice: Any, shop_app: Application
) -> None:
    verifier, challenge = pkce_pair()
    authorize = "/o/authorize/?" + urlencode(
        {
            "response_type": "code",
            "client_id": shop_app.client_id,
            "redirect_uri": REDIRECT,
            "scope": "profile:read purchases:read prescriptions:read",
            "state": "browser-state",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    # Nothing listens on the vendor's loopback callback: answer for it.
    page.route("http://127.0.0.1:8765/**", lambda route: route.fulfill(status=200, body="ok"))

    log_in(page, alice.email)
    page.goto(authorize)
    page.get_by_role("heading", name="Acme Shop would like to see some of your data").wait_for()
    assert page.get_by_text("verified vendor").is_visible()
    assert page.get_by_text("to serve you better with purchases:read").is_visible()

    # Plain-language scopes; only what the app needs is pre-ticked, never the sensitive one.
    name, purchases = page.get_by_label("Your name"), page.get_by_label("Your purchases")
    prescriptions = page.get_by_label("Your prescriptions")
    assert name.is_checked() and not purchases.is_checked() and not prescriptions.is_checked()
    sensitive = page.locator("li.scope.sensitive")
    assert sensitive.count() == 1 and "Your prescriptions" in sensitive.inner_text()
    assert sensitive.locator(".badge.danger", has_text="sensitive").is_visible()
    assert page.get_by_role("note").filter(has_text="Sensitive data.").is_visible()

    page.locator("li.scope label", has_text="Your purchases").click()
    assert purchases.is_checked()
    duration = page.get_by_label("For how long")
    assert duration.input_value() == "30"
    duration.select_option(label="7 days")
    screenshot(page, "consent")

    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{REDIRECT}?**")
    query = parse_qs(urlsplit(page.url).query)
    assert query["state"] == ["browser-state"] and query["iss"] == [settings.VRM_ISSUER]
    assert "error" not in query

    grant = Grant.objects.get(person=alice, application=shop_app)
    assert grant.status == Grant.Status.ACTIVE
    assert grant.scopes == ["profile:read", "purchases:read"]  # prescriptions stayed unticked
    assert (grant.ends_at - grant.starts_at).days == 7

    # The vendor exchanges the code before the person changes their mind.
    exchanged = requests.post(
        f"{live_server.url}/o/token/",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(shop_app.client_id, SECRET),
        timeout=30,
    )
    assert exchanged.status_code == 200, exchanged.text
    access_token = exchanged.json()["access_token"]

    def me() -> requests.Response:
        return requests.get(
            f"{live_server.url}/api/v1/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=30
        )

    assert me().status_code == 200

    # Two clicks from the dashboard: "Revoke", then "Revoke now".
    page.goto("/dashboard/")
    row = page.locator("ul.grants li", has_text="Acme Shop")
    row.get_by_role("link", name="Revoke").click()
    page.wait_for_url(f"**/grants/{grant.pk}/revoke/")
    assert page.get_by_role("heading", name="Stop Acme Shop seeing your data?").is_visible()
    page.get_by_role("button", name="Revoke now").click()
    page.wait_for_url(f"**/grants/{grant.pk}/")
    status = page.get_by_role("status")
    assert re.search(r"Acme Shop can no longer see your data\.", status.inner_text())
    assert page.locator(".badge.danger", has_text="revoked").is_visible()
    screenshot(page, "consent-revoked")

    grant.refresh_from_db()
    assert grant.status == Grant.Status.REVOKED and grant.ended_by == "person"
    assert grant.ended_at is not None
    gone = me()
    assert gone.status_code == 401 and "invalid_token" in gone.headers["WWW-Authenticate"]

    page.goto("/dashboard/")
    assert page.get_by_text("No vendor can see your data right now.").is_visible()


def test_allow_shows_that_it_is_working_while_the_copies_are_sealed(
    page: Any, alice: Any, shop_app: Application
) -> None:
    _, challenge = pkce_pair()
    authorize = "/o/authorize/?" + urlencode(
        {
            "response_type": "code",
            "client_id": shop_app.client_id,
            "redirect_uri": REDIRECT,
            "scope": "profile:read purchases:read",
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    log_in(page, alice.email)
    hold = "document.addEventListener('submit', (event) => event.preventDefault())"  # stay on the page
    for button, shows in (("Deny", False), ("Allow", True)):
        page.goto(authorize)
        page.evaluate(hold)
        page.get_by_role("button", name=button).click()
        status = page.get_by_role("status")
        if shows:
            status.wait_for()
            assert "Sharing" in status.inner_text()
            assert page.locator("progress.progress").is_visible()
            assert page.locator("form[aria-busy=true]").count() == 1
            screenshot(page, "consent-sharing")
        else:
            assert status.count() == 0 and page.locator("progress.progress").is_hidden()


def _both_widths(page: Any, name: str) -> None:
    """Screenshots at a laptop's width and a phone's."""
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"{name}-{width}")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_consent_over_a_live_grant_says_what_changes_and_extending_only_goes_later(
    page: Any, alice: Any, shop_app: Application
) -> None:
    grant = grant_authorize(
        person=alice,
        application=shop_app,
        scopes=["appliances:read", "closet:read", "preferences:read", "profile:read", "purchases:read"],
        duration_days=90,
        history_months=12,
        include_gifts=True,
    )
    _, challenge = pkce_pair()
    authorize = "/o/authorize/?" + urlencode(
        {
            "response_type": "code",
            "client_id": shop_app.client_id,
            "redirect_uri": REDIRECT,
            "scope": "profile:read purchases:read prescriptions:read",
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    log_in(page, alice.email)
    page.goto(authorize)
    page.get_by_role("heading", name="Acme Shop asks again for your data").wait_for()
    now = page.locator("section.shared-now")
    assert "Your closet" in now.inner_text() and "89 days left" in now.inner_text()
    changes = page.locator("section.changes li:not([hidden])")

    def shown() -> str:
        return " | ".join(changes.all_inner_texts())

    # As first shown: only "Your name" is ticked, for 30 days: most of today's grant would go.
    assert "Stops seeing Your purchases" in shown() and "Stops seeing Your closet" in shown()
    assert "(60 days earlier)" in shown() and "Starts seeing" not in shown()
    _both_widths(page, "consent-over-grant")

    page.locator("li.scope label", has_text="Your purchases").click()
    page.locator("li.scope label", has_text="Your prescriptions").click()
    page.get_by_label("For how long").select_option(label="7 days")
    page.get_by_label("Also show purchases I marked as gifts").check()
    assert "Stops seeing Your purchases" not in shown() and "Starts seeing Your prescriptions" in shown()
    assert "(83 days earlier)" in shown() and "(60 days earlier)" not in shown() and "gifts" not in shown()
    _both_widths(page, "consent-over-grant-changed")

    page.route("http://127.0.0.1:8765/**", lambda route: route.fulfill(status=200, body="ok"))
    page.get_by_role("button", name="Deny").click()  # "Deny keeps it as it is"
    page.wait_for_url(f"{REDIRECT}?**")
    grant.refresh_from_db()
    assert grant.status == Grant.Status.ACTIVE and len(grant.scopes) == 5

    page.goto(f"/grants/{grant.pk}/")
    ends_on = page.get_by_label("Ends on")
    assert ends_on.input_value() == "" and "(89 days left)" in ends_on.locator("option").first.inner_text()
    seven = ends_on.locator("option", has_text="(7 days later)")
    ends_on.select_option(value=seven.get_attribute("value"))
    _both_widths(page, "grant-extend")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_role("status").wait_for()
    assert "96 days left" in page.locator("main").inner_text()
    screenshot(page, "grant-extended-1280")
