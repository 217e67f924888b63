"""Intentcasting as the person meets it: publish an intent with one profile field ticked, get an
offer through the vendor API, compare and accept it, and go on to the vendor's consent page."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from django.utils import timezone

from accounts.models import User
from consent.models import TermsChoice
from personal_data.services import preferences_update
from tests.browser.conftest import axe_violations, log_in, screenshot
from tests.consent.conftest import REDIRECT, make_app, pkce_pair
from tests.intents_helpers import subscribe
from tests.vendors_api.test_matrix import organisation_token
from vendors.models import Intent, Organisation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("width", [1280, 390])
def test_publish_an_intent_receive_an_offer_and_accept_it(
    page: Any, live_server: Any, alice: User, width: int
) -> None:
    preferences_update(owner=alice, data={"sizes": {"jacket": "M"}, "brands_avoided": ["Fastfash"]})
    TermsChoice.objects.create(person=alice, proffered=["sd-base"])
    token = organisation_token("Anorak Co", scope="intents:read")
    org = Organisation.objects.get(name="Anorak Co")
    subscribe(org, kinds=("clothing",), countries=("DE",))
    shop = make_app(org, name="Anorak shop", secret="anorak-" + "s" * 40)
    vendor = {"Authorization": f"Bearer {token}"}
    api = f"{live_server.url}/api/v1"

    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, alice.email)

    # Publish: one profile field ticked, one left out.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Intents").click()
    page.get_by_role("link", name="Publish an intent").click()
    page.get_by_label("What kind of thing").select_option("clothing")
    page.get_by_label("What you want, in a line").fill("Rain jacket, hooded")
    page.get_by_label("More about it (optional)").fill("Breathable, for cycling to work.")
    page.get_by_label("Lowest price").fill("40")
    page.get_by_label("Highest price").fill("120")
    page.get_by_label("Country").select_option("DE")
    assert page.get_by_label("Under your terms").input_value() == "shared-intent"
    size = page.get_by_label("Size (jacket): M")
    assert not size.is_checked() and not page.get_by_label("Brands I avoid: Fastfash").is_checked()
    size.check()
    screenshot(page, f"intent-new-{width}")
    page.get_by_role("button", name="Publish").click()
    page.get_by_role("heading", name="Rain jacket, hooded").wait_for()
    assert page.get_by_text("Your intent is published").is_visible()
    screenshot(page, f"intent-published-{width}")

    # The vendor finds it and answers; it sees the ticked size, not the brands.
    listed = requests.get(f"{api}/intents", headers=vendor, timeout=30).json()["results"]
    [seen] = listed
    assert seen["details"] == {"description": "Breathable, for cycling to work.", "size_jacket": "M"}
    valid = (timezone.now() + dt.timedelta(days=3)).replace(microsecond=0).isoformat()
    made = requests.post(
        f"{api}/intents/{seen['id']}/offers",
        json={
            "price": "89.00",
            "currency": "EUR",
            "description": "Hooded shell, 20,000 mm, size M in stock.",
            "link": "https://anorak.example/offer",
            "valid_until": valid,
        },
        headers=vendor,
        timeout=30,
    )
    assert made.status_code == 201, made.text
    offer_id = made.json()["id"]

    # The offer arrives in the inbox; its page compares and accepts.
    page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile("Inbox")).click()
    page.get_by_role("link", name=re.compile("Anorak Co: 89.00 EUR")).click()
    page.get_by_role("heading", name="Offers").wait_for()
    assert page.get_by_role("cell", name="89.00 EUR").is_visible()
    assert axe_violations(page) == []
    screenshot(page, f"intent-offers-{width}")
    page.get_by_role("button", name="Accept Anorak Co's offer").click()
    page.get_by_role("heading", name="Next: Anorak Co").wait_for()
    screenshot(page, f"intent-accepted-{width}")
    status = requests.get(f"{api}/intents/{seen['id']}/offers/{offer_id}", headers=vendor, timeout=30).json()
    assert status == {"id": offer_id, "status": "accepted"}
    assert Intent.objects.get(owner=alice).status == "closed"

    # The vendor's page starts its own consent request: nothing was shared before it.
    _verifier, challenge = pkce_pair()
    authorize = f"{live_server.url}/o/authorize/?" + urlencode(
        {
            "response_type": "code",
            "client_id": shop.client_id,
            "redirect_uri": REDIRECT,
            "scope": "profile:read",
            "state": "offer",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    page.route(
        "https://anorak.example/**",
        lambda route: route.fulfill(status=302, headers={"Location": authorize}),
    )
    page.get_by_role("link", name="Continue to Anorak Co").click()
    page.get_by_role("heading", name="Anorak Co would like to see some of your data").wait_for()
    screenshot(page, f"intent-consent-{width}")
