"""The inbox as a person meets it: a refill reminder beside a recall alert, at desktop and phone widths."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User
from devtools.vendor import DEMO_RECALL_CLIENT, demo_vendor_seed
from personal_data.services import record_create
from portal.reminders import reminders_send
from tests.browser.conftest import axe_violations, log_in, screenshot
from tests.conftest import purchase_data
from vendors.models import Application
from vendors.recalls import recall_publish_and_match

pytestmark = pytest.mark.django_db(transaction=True)

RECALL = {
    "title": "Peanut butter recall",
    "message": "Salmonella risk. Do not eat.",
    "severity": "warning",
    "gtins": [purchase_data()["gtin"]],
    "remedy_url": "https://shop.example/recall",
}


@pytest.mark.parametrize("width", [1280, 390])
def test_a_refill_reminder_in_the_inbox(page: Any, alice: User, width: int) -> None:
    today = timezone.localdate()
    record_create(
        owner=alice,
        category="prescriptions",
        data={
            "medication": "Sertraline 50 mg",
            "last_filled_on": (today - dt.timedelta(days=28)).isoformat(),
            "days_supply": 30,
            "refills_remaining": 2,
        },
    )
    record_create(owner=alice, category="purchases", data=purchase_data(gtin=RECALL["gtins"][0]))
    demo_vendor_seed()
    recall_publish_and_match(application=Application.objects.get(name=DEMO_RECALL_CLIENT), data=RECALL)
    reminders_send()

    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, alice.email)
    nav = page.get_by_role("link", name=re.compile(r"^Inbox 2 unread"))
    nav.wait_for()
    nav.click()
    page.wait_for_url("**/inbox/")
    assert page.get_by_text("Refill due").is_visible()
    assert page.get_by_text(RECALL["title"]).is_visible()
    assert page.get_by_text("Sertraline").count() == 0  # the list names kinds, not medicines
    assert not axe_violations(page)
    screenshot(page, f"inbox-{width}")

    page.get_by_role("link", name=re.compile("Refill due")).click()
    page.wait_for_url("**/inbox/reminders/*/")
    assert page.get_by_text("Sertraline 50 mg").first.is_visible()
    assert not axe_violations(page)
    screenshot(page, f"inbox-reminder-{width}")

    page.get_by_role("link", name=re.compile(r"^Inbox 1 unread")).click()
    page.get_by_role("button", name="Mark all as read").click()
    page.get_by_text("Marked 1 item as read.").wait_for()
    assert page.get_by_role("link", name="Inbox", exact=True).is_visible()
    screenshot(page, f"inbox-read-{width}")
