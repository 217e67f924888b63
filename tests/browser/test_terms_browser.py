"""Choosing one's MyTerms agreements, clicking, on a wide and a narrow screen."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from consent.selectors import terms_choice_get
from consent.services import grant_authorize
from tests.browser.conftest import log_in, screenshot
from tests.consent.conftest import make_app
from vendors.models import Organisation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("width", [1280, 390])
def test_choosing_terms(chromium: Any, live_server: Any, alice: User, width: int) -> None:
    org = Organisation.objects.create(
        name="Acme Shop", website="https://acme.example", privacy_contact="p@acme.example"
    )
    grant_authorize(person=alice, application=make_app(org), scopes=["profile:read"], duration_days=30)
    context = chromium.new_context(base_url=live_server.url, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        log_in(page, alice.email)
        page.get_by_role("link", name="Your terms").click()
        page.wait_for_url("**/settings/terms/")
        assert page.get_by_label("Let me grant access to a vendor that accepts none of my terms").is_checked()
        page.get_by_label("No AI training", exact=True).select_option("1")
        page.get_by_label("Service delivery only", exact=True).select_option("2")
        page.get_by_label("Acme Shop").select_option("sd-goods-services")
        page.get_by_label("Let me grant access to a vendor that accepts none of my terms").uncheck()
        screenshot(page, f"terms-settings-filled-{width}")
        page.get_by_role("button", name="Save").click()
        page.wait_for_url("**/settings/terms/")
        assert page.get_by_text("Your terms are saved.").is_visible()
        # Shown again in the order chosen, first choice first.
        first = page.locator("main select[name^=place-]").first
        assert first.get_attribute("name") == "place-sd-no-ai-training"
        screenshot(page, f"terms-settings-saved-{width}")
        choice = terms_choice_get(person=alice)
        assert choice.proffered == ["sd-no-ai-training", "sd-base"]
        assert choice.per_vendor == {str(org.pk): "sd-goods-services"}
        assert choice.allow_without_terms is False
        # Two agreements in the same place: told so, nothing saved.
        page.get_by_label("Shared intent", exact=True).select_option("1")
        page.get_by_role("button", name="Save").click()
        page.get_by_role("alert").get_by_text("different place").wait_for()
        # Shown as posted, so the person sees what to fix rather than the saved list.
        assert page.get_by_label("Shared intent", exact=True).input_value() == "1"
        screenshot(page, f"terms-settings-error-{width}")
        assert terms_choice_get(person=alice).proffered == ["sd-no-ai-training", "sd-base"]
        page.get_by_role("link", name="MyTerms agreements").click()
        page.get_by_role("link", name="No AI training", exact=True).click()
        page.get_by_role("heading", name="The vendor may not").wait_for()
        screenshot(page, f"terms-detail-{width}")
    finally:
        context.close()
