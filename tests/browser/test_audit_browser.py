"""An auditor logs in, verifies the ledger and filters grants, in a real browser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction

from audit.models import LedgerEntry
from audit.services import ledger_append, ledger_seal
from personal_data.pseudonyms import person_subject
from personal_data.services import record_create
from tests.audit.conftest import ledger_wipe
from tests.browser.conftest import screenshot
from tests.conftest import PASSWORD, purchase_data

pytestmark = pytest.mark.django_db(transaction=True)
K = LedgerEntry.Kind


@pytest.fixture
def sealed_grants(alice: Any, bob: Any) -> Iterator[None]:
    """Commit two grants (one revoked) and a read, sealed; empty the ledger afterwards."""
    record_create(owner=alice, category="purchases", data=purchase_data())
    record_create(owner=bob, category="purchases", data=purchase_data())
    shop: dict[str, Any] = {"actor_type": "client", "actor_id": "client-shop"}
    with transaction.atomic():
        for person, grant in ((alice, "grant-kept"), (bob, "grant-ended")):
            ledger_append(
                kind=K.GRANT_CREATED,
                subject=person_subject(person),
                grant_id=grant,
                scopes=["purchases:read"],
                **shop,
            )
        ledger_append(
            kind=K.ACCESS_READ,
            subject=person_subject(alice),
            grant_id="grant-kept",
            scopes=["purchases:read"],
            record_count=1,
            **shop,
        )
        ledger_append(
            kind=K.GRANT_REVOKED,
            actor_type="person",
            actor_id=person_subject(bob),
            subject=person_subject(bob),
            grant_id="grant-ended",
        )
    ledger_seal()
    yield
    # The ledger refuses the DELETE and TRUNCATE that Django's flush would run.
    ledger_wipe()


def _log_in(page: Any, email: str) -> None:
    page.goto("/accounts/login/?next=/audit/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/audit/")


def test_auditor_verifies_the_ledger_and_filters_grants(page: Any, auditor: Any, sealed_grants: None) -> None:
    _log_in(page, auditor.email)
    page.get_by_role("button", name="Verify now").click()
    result = page.get_by_role("status")
    assert "The ledger is intact." in result.inner_text()
    assert "Checked 4 entries and 1 checkpoint" in result.inner_text()
    screenshot(page, "audit-overview")

    page.get_by_role("navigation", name="Audit sections").get_by_role("link", name="Grants").click()
    page.wait_for_url("**/audit/grants/")
    assert page.get_by_role("link", name="grant-kept").is_visible()
    page.get_by_label("Status").select_option("revoked")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/audit/grants/?*status=revoked*")
    assert page.get_by_role("link", name="grant-ended").is_visible()
    assert page.get_by_role("link", name="grant-kept").count() == 0
    body = page.content()
    assert "alice@example.com" not in body and "Alice Liddell" not in body

    page.get_by_role("link", name="grant-ended").click()
    assert page.get_by_role("heading", name="History").is_visible()
    assert page.locator("tbody tr", has_text="grant.revoked").count() == 1


def test_audit_pages_fit_a_phone_screen(page: Any, auditor: Any, sealed_grants: None) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    _log_in(page, auditor.email)
    for path in ("/audit/", "/audit/grants/", "/audit/activity/", "/audit/entries/"):
        page.goto(path)
        # Wide tables scroll inside their own box; the page itself must not scroll sideways.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
    screenshot(page, "audit-entries-phone")
