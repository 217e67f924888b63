"""A suspended vendor, as the person and the vendor see it, in a real browser at both widths."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.utils.http import urlencode

from accounts.models import User
from consent.services import grant_authorize
from portal.services import person_signup
from tests.browser.conftest import axe_violations, log_in, screenshot
from tests.conftest import PASSWORD
from tests.consent.conftest import REDIRECT, make_app, pkce_pair
from tests.intents_helpers import staff_of
from vendors.models import Organisation
from vendors.suspensions import organisation_suspend

pytestmark = pytest.mark.django_db(transaction=True)

REASON = "It read every purchase it could, far beyond the refill reminders it said it needed."


def _fits(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert not axe_violations(page)


@pytest.mark.answers(403)  # the consent page refuses a suspended vendor
@pytest.mark.parametrize("width", [1280, 390])
def test_a_suspension_is_explained_to_the_person_and_to_the_vendor(page: Any, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    person = person_signup(email="mira@example.com", password=PASSWORD, display_name="Mira")
    org = Organisation.objects.create(
        name="Pill Box Pharmacy", website="https://pillbox.example", privacy_contact="p@pillbox.example"
    )
    app = make_app(org, name="Pill Box app")
    grant_authorize(
        person=person, application=app, scopes=["profile:read", "purchases:read"], duration_days=30
    )
    operator = User.objects.create_user(email="trust@example.com", password=PASSWORD, is_staff=True)
    operator.user_permissions.add(Permission.objects.get(codename="suspend_organisation"))
    organisation_suspend(organisation=org, reason=REASON, by=User.objects.get(pk=operator.pk))

    log_in(page, "mira@example.com")
    page.goto("/inbox/")
    notice = page.get_by_role("link", name="Vendor suspended: Pill Box Pharmacy")
    notice.click()
    page.get_by_role("heading", name="Pill Box Pharmacy has been suspended").wait_for()
    assert page.get_by_text(REASON).is_visible()
    _fits(page)
    screenshot(page, f"suspension-notice-{width}")

    page.get_by_role("link", name="See or revoke the grant").click()
    page.get_by_text("Paused:").wait_for()
    _fits(page)
    screenshot(page, f"suspension-grant-{width}")

    # Asked to grant it access anew: the page says why not, and goes nowhere.
    _, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "scope": "profile:read",
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page.goto("/o/authorize/?" + urlencode(query))
    page.get_by_role("heading", name="Pill Box Pharmacy cannot be given access now").wait_for()
    assert page.get_by_text(REASON).is_visible()
    assert page.get_by_role("button", name="Allow").count() == 0
    _fits(page)
    screenshot(page, f"suspension-consent-{width}")

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")
    staff = staff_of(org)
    staff.set_password(PASSWORD)
    staff.save()
    log_in(page, staff.email)
    alert = page.get_by_role("alert")
    assert alert.get_by_text("The operator has suspended your organisation").is_visible()
    assert alert.get_by_text(REASON).is_visible()
    _fits(page)
    screenshot(page, f"suspension-vendor-portal-{width}")
