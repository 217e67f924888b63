"""Vendor staff sign up, describe their organisation and register an app, in a real browser."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password

from tests.browser.conftest import screenshot
from tests.conftest import PASSWORD, signup_link
from vendors.models import Application

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
    secret = page.get_by_label("Client secret").input_value()
    client_id = page.get_by_label("Client id").input_value()
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
