"""Vendor staff sign up, describe their organisation and register an app, in a real browser."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password

from accounts.models import User
from accounts.services import account_upsert
from consent.services import access_denied_record, access_record, grant_authorize
from portal.services import person_signup
from tests.browser.conftest import log_in, screenshot
from tests.conftest import PASSWORD, signup_link
from vendors.models import Application
from vendors.services import application_register, organisation_create

pytestmark = pytest.mark.django_db(transaction=True)


def _scope(page: Any, title: str) -> Any:
    """The fieldset of one scope on the registration form, found by its title."""
    return page.get_by_role("group", name=re.compile(f"^{re.escape(title)} "))


def test_vendor_signs_up_and_registers_an_app(page: Any) -> None:
    page.goto("/vendor/signup/")
    page.get_by_label("Work e-mail address").fill("dev@grocer.example")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create staff account").click()
    page.wait_for_url("**/vendor/signup/sent/")
    page.goto(signup_link("dev@grocer.example"))
    page.get_by_label("The password you chose when you signed up").fill(PASSWORD)
    page.get_by_role("button", name="Create staff account").click()
    page.wait_for_url("**/vendor/organisation/new/")

    page.get_by_label("Organisation name").fill("Green Grocer")
    page.get_by_label("Website").fill("https://grocer.example")
    page.get_by_label("Privacy contact e-mail").fill("privacy@grocer.example")
    page.get_by_label("Short description (optional)").fill("Fresh food, delivered.")
    page.get_by_role("button", name="Create organisation").click()
    page.wait_for_url("**/vendor/")
    assert page.get_by_text("not verified yet — an operator checks organisations").is_visible()

    page.get_by_role("link", name="Register an application").click()
    page.wait_for_url("**/vendor/apps/new/")
    page.get_by_label("Application name").fill("Grocer app")
    page.get_by_label("People's data (authorization code + PKCE)").check()
    page.get_by_label("Redirect URIs").fill("https://grocer.example/callback")
    purchases = _scope(page, "Your purchases")
    purchases.get_by_label("Your purchases", exact=True).check()
    purchases.get_by_label(re.compile("^Why your application needs")).fill(
        "To suggest refills of what you buy often."
    )
    purchases.get_by_label(re.compile("^Required")).check()
    preferences = _scope(page, "Your preferences")
    preferences.get_by_label("Your preferences", exact=True).check()
    preferences.get_by_label(re.compile("^Why your application needs")).fill(
        "To leave out what you cannot eat."
    )
    assert _scope(page, "Your prescriptions").get_by_text("sensitive", exact=True).is_visible()
    screenshot(page, "vendor-register")
    page.get_by_role("button", name="Register application").click()

    assert page.get_by_role("heading", name="Grocer app is registered").is_visible()
    assert page.get_by_text("it will not be shown again").is_visible()
    secret = page.get_by_label("Client secret", exact=True).input_value()
    client_id = page.get_by_label("Client id", exact=True).input_value()
    app = Application.objects.get(client_id=client_id)
    assert check_password(secret, app.client_secret)
    assert app.scopes == ["purchases:read", "preferences:read"]
    assert app.required_scopes == ["purchases:read"]
    screenshot(page, "vendor-secret")

    page.get_by_role("link", name="I have copied it").click()
    page.wait_for_url(f"**/vendor/apps/{client_id}/")
    assert secret not in page.content()
    assert page.get_by_text("To suggest refills of what you buy often.").first.is_visible()
    page.goto("/vendor/")
    assert secret not in page.content()
    assert page.get_by_role("link", name="Grocer app").is_visible()
    screenshot(page, "vendor-portal")


def _staff_with_usage() -> tuple[Any, Application]:
    """A verified shop with an app people granted, some calls and a refused one, like the demo."""
    staff, _ = account_upsert(email="dev@grocer.example", password=PASSWORD, role=User.Role.VENDOR_STAFF)
    organisation = organisation_create(
        staff=staff,
        name="Green Grocer",
        website="https://grocer.example",
        privacy_contact="privacy@grocer.example",
        description="Fresh food, delivered.",
    )
    app, _ = application_register(
        organisation=organisation,
        name="Grocer app",
        grant_type="authorization-code",
        by=staff,
        redirect_uris=["https://grocer.example/callback"],
        scopes=["profile:read", "purchases:read"],
        scope_purposes={"profile:read": "To greet you.", "purchases:read": "To suggest refills."},
    )
    person = person_signup(email="pat@example.com", password=PASSWORD)
    grant = grant_authorize(person=person, application=app, scopes=["purchases:read"], duration_days=30)
    for _ in range(4):
        access_record(
            grant=grant, client_id=app.client_id, kind="access.read", scopes=["purchases:read"], alone=True
        )
    access_denied_record(
        grant=grant, client_id=app.client_id, scopes=["closet:read"], reason="insufficient-scope"
    )
    return staff, app


@pytest.mark.parametrize("width", [1280, 390])
def test_vendor_portal_usage_secret_copy_and_docs(page: Any, width: int) -> None:
    _, app = _staff_with_usage()
    page.set_viewport_size({"width": width, "height": 900})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, "dev@grocer.example")
    assert page.get_by_role("heading", name="Usage, last 14 days").is_visible()
    assert page.get_by_text("1 live grant · 1 new grant · 5 API calls · 1 error").is_visible()
    assert page.get_by_role("img", name=re.compile("API calls per day")).is_visible()
    assert page.locator("#main").get_by_role("link", name="integration guide").is_visible()
    screenshot(page, f"vendor-portal-usage-{width}")
    # Nothing wider than the screen: the page does not scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    page.goto(f"/vendor/apps/{app.client_id}/")
    page.get_by_role("button", name="Reset client secret").click()
    page.wait_for_url(f"**/vendor/apps/{app.client_id}/secret/new/")
    secret = page.get_by_label("Client secret", exact=True).input_value()
    assert check_password(secret, Application.objects.get(pk=app.pk).client_secret)
    page.get_by_role("button", name="Copy the client secret").click()
    page.get_by_text("Client secret copied to the clipboard.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, f"vendor-secret-{width}")
    hashed = Application.objects.get(pk=app.pk).client_secret
    page.reload()  # no "resubmit the form?" and no second reset: a GET, and the secret is gone
    assert page.get_by_role("heading", name="This secret was shown once").is_visible()
    assert secret not in page.content()
    assert Application.objects.get(pk=app.pk).client_secret == hashed
    screenshot(page, f"vendor-secret-gone-{width}")

    page.goto("/vendor/")
    page.locator("#main").get_by_role("link", name="integration guide").click()
    page.wait_for_url("**/docs/vendors/")
    assert page.get_by_text("Integrate with vrm in 10 minutes").first.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # The guide is long: the first screenful is what a person judges it by.
    page.screenshot(path=str(screenshot(page, f"docs-vendors-{width}")), full_page=False)
