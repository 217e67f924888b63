"""Consent under the person's MyTerms, clicking: accepted, the one alternative, declined."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest

from accounts.models import User
from consent.models import Grant, TermsChoice
from tests.browser.conftest import log_in, screenshot
from tests.consent.conftest import REDIRECT, make_app, pkce_pair
from vendors.models import Application, Organisation

pytestmark = pytest.mark.django_db(transaction=True)


def _app(name: str, accepts: list[str]) -> Application:
    org = Organisation.objects.create(
        name=name,
        website=f"https://{name.split()[0].lower()}.example",
        privacy_contact="privacy@shop.example",
        verified=True,
        accepted_terms=accepts,
    )
    return make_app(org, name=f"{name} app")


def _authorize(app: Application) -> str:
    _verifier, challenge = pkce_pair()
    return "/o/authorize/?" + urlencode(
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": REDIRECT,
            "scope": "profile:read purchases:read",
            "state": "terms",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )


@pytest.mark.parametrize("width", [1280, 390])
def test_consent_with_accepted_alternative_and_declined_terms(
    chromium: Any, live_server: Any, alice: User, width: int
) -> None:
    TermsChoice.objects.create(
        person=alice, proffered=["sd-no-ai-training", "sd-base"], allow_without_terms=False
    )
    agrees = _app("Acme Shop", ["sd-base", "sd-goods-services"])
    offers = _app("Bolt Hardware", ["shared-intent", "sd-goods-services"])
    refuses = _app("Crane Media", [])
    context = chromium.new_context(base_url=live_server.url, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.route("http://127.0.0.1:8765/**", lambda route: route.fulfill(status=200, body="ok"))
    try:
        log_in(page, alice.email)

        # Accepted: the page names the agreement (her second choice, the first the vendor accepts).
        page.goto(_authorize(agrees))
        terms = page.get_by_role("region", name="Your terms")
        assert "Acme Shop accepts your terms" in terms.inner_text()
        assert terms.get_by_role("link", name="Service delivery only").is_visible()
        screenshot(page, f"consent-terms-accepted-{width}")
        page.get_by_role("button", name="Allow").click()
        page.wait_for_url(re.compile(r"http://127\.0\.0\.1:8765/.*code=.*"))
        grant = Grant.objects.get(person=alice, application=agrees)
        assert grant.agreement is not None and grant.agreement.agreement_id == "sd-base"

        # The grant page shows the agreement and offers the signed record.
        page.goto(f"/grants/{grant.pk}/")
        region = page.get_by_role("region", name="Terms")
        assert "you proffered it and Acme Shop accepted it" in region.inner_text()
        assert region.get_by_role("link", name="Download the signed agreement record (JSON)").is_visible()
        screenshot(page, f"grant-terms-{width}")

        # Alternative: exactly one offered; Allow without answering is refused, taking it grants.
        page.goto(_authorize(offers))
        group = page.get_by_role("group", name="Your terms")
        assert group.get_by_role("radio").count() == 1  # she requires terms: no "without" option
        assert group.get_by_role("link", name="Goods and services only").is_visible()
        page.get_by_role("button", name="Allow").click()
        page.get_by_role("alert").filter(has_text="instead").wait_for()
        assert not Grant.objects.filter(person=alice, application=offers).exists()
        screenshot(page, f"consent-terms-alternative-error-{width}")
        page.get_by_label("Take “Goods and services only” instead").check()
        screenshot(page, f"consent-terms-alternative-{width}")
        page.get_by_role("button", name="Allow").click()
        page.wait_for_url(re.compile(r"http://127\.0\.0\.1:8765/.*code=.*"))
        taken = Grant.objects.get(person=alice, application=offers)
        assert taken.agreement is not None
        assert (taken.agreement.agreement_id, taken.agreement.made) == ("sd-goods-services", "alternative")

        # Declined, and she requires terms: no Allow button at all, Deny tells the vendor no.
        page.goto(_authorize(refuses))
        assert page.get_by_role("alert").filter(has_text="No grant is possible").is_visible()
        assert page.get_by_role("button", name="Allow").count() == 0
        screenshot(page, f"consent-terms-declined-{width}")
        page.get_by_role("button", name="Deny").click()
        page.wait_for_url(re.compile(r"http://127\.0\.0\.1:8765/.*error=access_denied.*"))
        assert not Grant.objects.filter(person=alice, application=refuses).exists()
    finally:
        context.close()
