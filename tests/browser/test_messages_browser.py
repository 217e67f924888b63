"""A vendor's message as the person meets it: posted through the API, opened in the inbox and
answered "Interested", at desktop and phone widths; the vendor then reads only that answer."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import requests
from django.utils import timezone

from accounts.models import User
from consent.services import grant_authorize
from tests.browser.conftest import axe_violations, log_in, screenshot
from tests.consent.conftest import make_app
from tests.vendors_api.conftest import issue_token
from vendors.models import Organisation

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGE = {
    "kind": "offer",
    "title": "Your size is back in stock",
    "body": "The navy merino jumper in M is back.\nTen percent off for you until Sunday.",
    "link": "https://shop.example/jumpers/navy-merino?size=M&utm_source=vrm",
}


@pytest.mark.parametrize("width", [1280, 390])
def test_a_vendor_message_opened_and_answered_in_the_inbox(
    page: Any, live_server: Any, alice: User, width: int
) -> None:
    org = Organisation.objects.create(
        name="Northwind Outfitters",
        website="https://shop.example",
        privacy_contact="privacy@shop.example",
        verified=True,
    )
    app = make_app(org, name="Northwind app")
    grant = grant_authorize(person=alice, application=app, scopes=["messages:send"], duration_days=30)
    api = f"{live_server.url}/api/v1/messages"
    headers = {"Authorization": f"Bearer {issue_token(grant)}"}
    expires = (timezone.now() + dt.timedelta(days=5)).replace(microsecond=0).isoformat()
    posted = requests.post(api, json={**MESSAGE, "expires_at": expires}, headers=headers, timeout=30)
    assert posted.status_code == 201, posted.text
    message_id = posted.json()["id"]

    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, alice.email)
    page.get_by_role("link", name=re.compile(r"^Inbox 1 unread")).click()
    page.wait_for_url("**/inbox/")
    item = page.get_by_role("link", name=f"Northwind Outfitters: {MESSAGE['title']}")
    assert item.is_visible()
    assert not axe_violations(page)
    screenshot(page, f"message-inbox-{width}")

    item.click()
    page.wait_for_url(f"**/inbox/messages/{message_id}/")
    assert page.get_by_role("heading", name=MESSAGE["title"]).is_visible()
    assert page.get_by_text("Ten percent off for you until Sunday.").is_visible()
    link = page.get_by_role("link", name=MESSAGE["link"])
    assert link.get_attribute("rel") == "noopener noreferrer nofollow"
    assert page.get_by_text("It leads to shop.example").is_visible()
    # Opened: no longer unread.
    assert page.get_by_role("link", name="Inbox", exact=True).is_visible()
    assert not axe_violations(page)
    screenshot(page, f"message-{width}")

    page.get_by_role("button", name="Interested", exact=True).click()
    page.get_by_text("You answered “interested”").first.wait_for()
    assert not axe_violations(page)
    screenshot(page, f"message-answered-{width}")

    status = requests.get(f"{api}/{message_id}", headers=headers, timeout=30)
    assert status.json() == {"id": message_id, "status": "delivered", "response": "interested"}

    page.get_by_role("link", name="Report as abuse").click()
    page.wait_for_url(f"**/inbox/messages/{message_id}/report/")
    assert not axe_violations(page)
    screenshot(page, f"message-report-{width}")
