"""The activity page as a person reads it: names, folded bursts, a chart, filters, on a phone too."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from audit.services import ledger_append, ledger_seal
from consent.services import grant_authorize
from personal_data.pseudonyms import person_subject
from tests.browser.conftest import log_in, screenshot
from tests.browser.test_portal_browser import _nav, _no_sideways_scroll
from tests.consent.conftest import make_app
from vendors.models import Organisation

pytestmark = pytest.mark.django_db(transaction=True)


def _reads(
    person: Any, grant: Any, count: int, *, start: dt.datetime, every: dt.timedelta, records: int
) -> None:
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(count):
            with transaction.atomic():
                ledger_append(
                    kind="access.read",
                    actor_type="client",
                    actor_id=grant.application.client_id,
                    subject=person_subject(person),
                    grant_id=str(grant.pk),
                    scopes=["purchases:read"],
                    record_ids=[f"r{i}" for i in range(records)],
                )
            clock.shift(every)


@pytest.fixture
def busy(alice: Any) -> Any:
    """Alice with two vendors: a shop that read in bursts over a fortnight, a bookshop once."""
    shop = Organisation.objects.create(
        name="Demo Shop", website="https://shop.example", privacy_contact="p@shop.example", verified=True
    )
    books = Organisation.objects.create(
        name="Bookworm", website="https://books.example", privacy_contact="p@books.example"
    )
    scopes = ["purchases:read", "closet:read"]
    now = timezone.now().replace(second=0, microsecond=0)
    with time_machine.travel(now - dt.timedelta(days=15)):
        shop_grant = grant_authorize(
            person=alice, application=make_app(shop, name="Demo Shop"), scopes=scopes, duration_days=30
        )
        books_grant = grant_authorize(
            person=alice, application=make_app(books, name="Gift finder"), scopes=scopes, duration_days=30
        )
    for day in range(14, 0, -2):
        start = (now - dt.timedelta(days=day)).replace(hour=8, minute=23)
        _reads(alice, shop_grant, 5 + day, start=start, every=dt.timedelta(seconds=20), records=200)
    _reads(alice, books_grant, 1, start=now - dt.timedelta(days=3), every=dt.timedelta(0), records=4)
    with transaction.atomic():
        ledger_append(
            kind="access.denied",
            actor_type="client",
            actor_id=books_grant.application.client_id,
            subject=person_subject(alice),
            grant_id=str(books_grant.pk),
            scopes=["prescriptions:read"],
            outcome="denied",
            reason="insufficient_scope",
        )
    ledger_seal()
    return alice, books


def test_activity_reads_as_sentences_with_a_chart_and_filters(page: Any, busy: Any) -> None:
    alice, books = busy
    log_in(page, alice.email)
    _nav(page, "Activity")
    page.wait_for_url("**/activity/")
    lines = page.locator("li.activity-line")
    assert lines.first.get_by_text("Bookworm (Gift finder) was refused (insufficient_scope)").is_visible()
    assert page.get_by_text("Demo Shop read 3,400 purchases in 17 requests").is_visible()
    assert page.get_by_text("You granted Bookworm (Gift finder): Your purchases, Your closet").is_visible()
    assert page.get_by_role("img", name="Requests by vendors per day").is_visible()
    screenshot(page, "activity-1280")

    page.get_by_label("Vendor", exact=True).select_option(label="Bookworm")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/activity/?vendor=*")
    assert page.get_by_text("Demo Shop read").count() == 0
    assert page.get_by_text("Bookworm (Gift finder) read 4 purchases").is_visible()
    page.get_by_role("link", name="Clear").click()

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/activity/")
    _no_sideways_scroll(page)
    screenshot(page, "activity-390")
    page.get_by_text("Proofs of these 17 requests").click()
    line = page.locator("li.activity-line", has_text="17 requests")
    # One proof per request, and the line's "Report this vendor" (docs/abuse.md).
    assert line.get_by_role("link", name=re.compile(r"^#\d+$")).count() == 17
    assert line.get_by_role("link", name="Report this vendor").count() == 1


def test_a_receipt_and_an_entry_verify_in_the_browser(page: Any, busy: Any, monkeypatch: Any) -> None:
    from audit.models import LedgerEntry
    from consent.models import Receipt

    alice, _ = busy
    log_in(page, alice.email)
    grant = alice.grants.order_by("created_at").first()
    page.goto(f"/grants/{grant.pk}/")
    page.get_by_role("link", name="Receipt 1").click()
    page.wait_for_url("**/receipts/1/")
    verdict = page.locator("[data-verdict]")
    verdict.filter(has_text="This receipt is genuine").wait_for()
    assert page.locator("[data-check].passed").count() == 3
    assert page.get_by_text("Your purchases").first.is_visible()
    screenshot(page, "receipt-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    _no_sideways_scroll(page)
    screenshot(page, "receipt-390")

    # The same receipt with its stored copy altered: the page shows the change, the browser refuses it.
    receipt = Receipt.objects.get(grant=grant, number=1)
    receipt.document = {**receipt.document, "scopes": receipt.document["scopes"][:1]}
    receipt.save()
    page.reload()
    page.locator("[data-verdict]").filter(has_text="did not verify").wait_for()
    assert page.locator("[data-check=document].failed").count() == 1

    entry = LedgerEntry.objects.filter(kind="access.read", grant_id=str(grant.pk)).order_by("id").first()
    page.goto(f"/activity/{entry.pk}/proof/")
    page.locator("[data-verdict]").filter(has_text="this entry is in the log, as shown").wait_for()
    assert page.locator("[data-check].passed").count() == 3
    _no_sideways_scroll(page)
    screenshot(page, "entry-proof-390")

    # Shown differently from what the log holds (one more record read): the leaf check fails.
    from audit.selectors import entry_leaf_text

    real = entry_leaf_text(entry_id=entry.pk)
    monkeypatch.setattr(
        "portal.views.entry_leaf_text",
        lambda entry_id: real.replace('"record_count":200', '"record_count":201'),
    )
    page.reload()
    page.locator("[data-verdict]").filter(has_text="did not verify").wait_for()
    assert page.locator("[data-check=leaf].failed").count() == 1
