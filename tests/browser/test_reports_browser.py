"""A person reports a vendor from the grant page; an auditor finds it on the vendors under
review, reads the shared words on the vendor's page and opens a case: at desktop and phone
widths, with axe checks on every page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import transaction

from accounts.models import User
from audit.services import ledger_append
from consent.services import grant_authorize
from personal_data.pseudonyms import person_subject
from tests.browser.conftest import axe_violations, log_in, screenshot
from tests.consent.conftest import make_app
from vendors.models import Case, Organisation, Report

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = "It reads my whole purchase history every night, for a coupon."


@pytest.mark.parametrize("width", [1280, 390])
def test_a_person_reports_a_vendor_and_an_auditor_opens_a_case(
    page: Any, alice: User, auditor: User, width: int
) -> None:
    org = Organisation.objects.create(
        name="Northwind Outfitters",
        website="https://shop.example",
        privacy_contact="privacy@shop.example",
        verified=True,
    )
    app = make_app(org, name="Northwind app")
    grant = grant_authorize(person=alice, application=app, scopes=["purchases:read"], duration_days=30)
    with transaction.atomic():
        for _ in range(5):
            ledger_append(
                kind="access.read",
                actor_type="client",
                actor_id=app.client_id,
                subject=person_subject(alice),
                grant_id=str(grant.pk),
                scopes=["purchases:read"],
                record_count=3,
            )

    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, alice.email)
    page.goto(f"/grants/{grant.pk}/")
    page.get_by_role("heading", name="Something wrong?").scroll_into_view_if_needed()
    assert not axe_violations(page)
    screenshot(page, f"report-grant-{width}")
    page.get_by_role("link", name="Report Northwind Outfitters").click()
    page.wait_for_url(f"**/grants/{grant.pk}/report/")
    assert page.get_by_role("heading", name="Report Northwind Outfitters").is_visible()
    share = page.get_by_label("Share my report with the reviewers")
    assert not share.is_checked()
    assert page.get_by_text("never learn who wrote them").is_visible()
    # Sent without a reason: the form says what is missing and keeps the words.
    page.get_by_label("What happened? (optional)").fill(WORDS)
    page.get_by_role("button", name="Send my report").click()
    assert page.get_by_text("Choose what is wrong from the list.").is_visible()
    assert page.get_by_label("What happened? (optional)").input_value() == WORDS
    assert not axe_violations(page)
    screenshot(page, f"report-form-error-{width}")
    assert not Report.objects.exists()

    page.get_by_label("Reads more than it needs").check()
    share.check()
    page.get_by_role("button", name="Send my report").click()
    page.wait_for_url("**/reports/")
    assert page.get_by_text("your report about Northwind Outfitters is sent").is_visible()
    assert page.get_by_text(WORDS).is_visible()
    assert not axe_violations(page)
    screenshot(page, f"report-mine-{width}")

    page.context.clear_cookies()
    log_in(page, auditor.email)
    page.get_by_role("link", name="Vendors under review").click()
    page.wait_for_url("**/audit/vendors/")
    assert page.get_by_role("link", name="Northwind Outfitters").is_visible()
    assert page.get_by_text("Reads more than it needs: 1").is_visible()
    assert alice.email not in page.content()
    assert not axe_violations(page)
    screenshot(page, f"audit-vendors-{width}")

    page.get_by_role("link", name="Northwind Outfitters").click()
    page.wait_for_url(f"**/audit/vendors/{org.pk}/")
    assert page.get_by_text(WORDS).is_visible()
    assert page.get_by_text("Reports per day").first.is_visible()
    assert alice.email not in page.content() and person_subject(alice) not in page.content()
    assert not axe_violations(page)
    screenshot(page, f"audit-vendor-{width}")

    page.get_by_label("Your finding").fill("Reads every purchase nightly for a coupon that needs none.")
    page.get_by_role("button", name="Open a case").click()
    page.wait_for_url(re.compile(r".*/audit/vendors/[0-9a-f-]+/cases/[0-9a-f-]+/$"))
    assert page.get_by_text(f"Case opened on {org.name}.").is_visible()
    assert not axe_violations(page)
    screenshot(page, f"audit-case-{width}")
    assert Case.objects.get().opened_by == auditor
