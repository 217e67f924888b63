"""An auditor logs in, verifies the ledger and filters grants, in a real browser."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from audit.models import LedgerEntry
from audit.services import ledger_append, ledger_seal
from audit.summaries import rebuild_request
from consent.services import grant_authorize
from personal_data.pseudonyms import person_subject
from personal_data.services import record_create
from tests.audit.conftest import ledger_wipe
from tests.browser.conftest import ARTIFACTS, screenshot
from tests.conftest import PASSWORD, purchase_data
from tests.consent.conftest import make_app
from vendors.models import Organisation

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
    assert "4 sealed entries read and hashed again" in result.inner_text()
    assert "1 checkpoint: root recomputed, signature verified" in result.inner_text()
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
    page.get_by_role("heading", name="History").wait_for()
    assert page.locator("tbody tr", has_text="grant.revoked").count() == 1


def test_audit_pages_fit_a_phone_screen(page: Any, auditor: Any, sealed_grants: None) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    _log_in(page, auditor.email)
    for path in ("/audit/", "/audit/grants/", "/audit/activity/", "/audit/entries/"):
        page.goto(path)
        # Wide tables scroll inside their own box; the page itself must not scroll sideways.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
    screenshot(page, "audit-entries-phone")


@pytest.fixture
def busy_ledger(alice: Any, bob: Any) -> Iterator[dict[str, Any]]:
    """Two organisations, three apps, real grants and two weeks of reads and refusals, sealed."""
    shop = Organisation.objects.create(
        name="Acme Shop", website="https://acme.example", privacy_contact="privacy@acme.example"
    )
    pharmacy = Organisation.objects.create(
        name="Green Pharmacy", website="https://green.example", privacy_contact="privacy@green.example"
    )
    shop_app = make_app(shop, name="Acme online store")
    loyalty = make_app(shop, name="Acme loyalty card", secret="loyal-" + "z" * 40)
    refills = make_app(pharmacy, name="Refill reminders", secret="refill-" + "w" * 40)
    grants = [
        grant_authorize(person=alice, application=shop_app, scopes=["purchases:read"], duration_days=30),
        grant_authorize(person=bob, application=shop_app, scopes=["purchases:read"], duration_days=30),
        grant_authorize(person=alice, application=loyalty, scopes=["purchases:read"], duration_days=30),
        grant_authorize(person=alice, application=refills, scopes=["prescriptions:read"], duration_days=30),
    ]
    today = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    for n in range(14, 0, -1):
        with time_machine.travel(today - dt.timedelta(days=n), tick=False), transaction.atomic():
            for grant, reads in ((grants[0], 3 + n % 4), (grants[1], 1), (grants[2], n % 3), (grants[3], 2)):
                for _ in range(reads):
                    ledger_append(
                        kind=K.ACCESS_READ,
                        actor_type="client",
                        actor_id=grant.application.client_id,
                        subject=person_subject(grant.person),
                        grant_id=str(grant.pk),
                        scopes=grant.scopes,
                        record_count=2,
                    )
            if n % 5 == 0:
                for _ in range(n // 2):
                    ledger_append(
                        kind=K.ACCESS_DENIED,
                        actor_type="client",
                        actor_id=loyalty.client_id,
                        subject=person_subject(alice),
                        grant_id=str(grants[2].pk),
                        scopes=["prescriptions:read"],
                        outcome="denied",
                        reason="insufficient_scope",
                    )
    ledger_seal()
    yield {"shop": shop, "pharmacy": pharmacy, "apps": [shop_app, loyalty, refills], "grants": grants}
    ledger_wipe()


FITS = """() => ({
  page: document.documentElement.scrollWidth <= window.innerWidth,
  tables: Array.from(document.querySelectorAll(".table-wrap"))
    .filter((wrap) => wrap.scrollWidth > wrap.clientWidth + 1)
    .map((wrap) => `${wrap.getAttribute("aria-label")}: ${wrap.scrollWidth} > ${wrap.clientWidth}`),
})"""


@pytest.mark.parametrize("width", [1280, 390])
def test_audit_pages_fit_the_window(page: Any, auditor: Any, busy_ledger: dict[str, Any], width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    _log_in(page, auditor.email)
    grant = busy_ledger["grants"][0]
    pages = {
        "overview": "/audit/",
        "grants": "/audit/grants/",
        "grant": f"/audit/grants/{grant.pk}/",
        "activity": "/audit/activity/",
        "entries": "/audit/entries/",
    }
    for name, path in pages.items():
        page.goto(path)
        if name == "overview":
            page.get_by_role("button", name="Verify now").click()
            page.wait_for_load_state()
        fits = page.evaluate(FITS)
        screenshot(page, f"audit-{name}-{width}")
        # The first screenful too: a long page shrinks to nothing in a full-page image.
        page.screenshot(path=str(ARTIFACTS / f"audit-{name}-{width}-top.png"))
        # No sideways scroll, neither of the page nor of a table inside it.
        assert fits == {"page": True, "tables": []}, (path, fits)
    # While the summaries are rebuilt, the counting pages say so instead of showing partial counts.
    rebuild_request(reason="browser test")
    response = page.goto("/audit/grants/")
    assert response is not None and response.status == 503
    assert page.get_by_role("heading", name="Counts are being rebuilt").is_visible()
    assert page.evaluate(FITS) == {"page": True, "tables": []}
    screenshot(page, f"audit-rebuilding-{width}")


@pytest.mark.parametrize("width", [1280, 390])
def test_auditor_registers_a_witness_and_sees_its_alarm(
    page: Any, auditor: Any, sealed_grants: None, width: int
) -> None:
    from django.test import Client

    from audit import ledger
    from audit.selectors import checkpoint_latest
    from tests.audit.test_witnesses import Cosigner, log_signed, post

    page.set_viewport_size({"width": width, "height": 900})
    _log_in(page, auditor.email)
    page.get_by_role("navigation", name="Audit sections").get_by_role("link", name="Witnesses").click()
    page.wait_for_url("**/audit/witnesses/")
    assert page.get_by_text("No witness is registered yet.").is_visible()
    witness = Cosigner("witness.example.org/alice")
    page.get_by_label("Public key").fill("witness.example.org/alice+00000000+" + "A" * 44)
    page.get_by_role("button", name="Register the witness").click()
    page.get_by_role("alert").first.wait_for()
    page.get_by_label("Public key").fill(ledger.witness_vkey(name=witness.name, public_raw=witness.public))
    page.get_by_role("button", name="Register the witness").click()
    page.wait_for_url("**/audit/witnesses/")
    assert page.get_by_text("Witness witness.example.org/alice registered").is_visible()
    row = page.locator("li.witness", has_text="witness.example.org/alice")
    assert "by auditor@example.com" in row.inner_text() and "nothing yet" in row.inner_text()

    # The witness cosigns the newest checkpoint, then reports a fork of it.
    newest = checkpoint_latest()
    assert newest is not None
    assert post(Client(), witness.cosign(newest.note)).status_code == 201
    page.reload()
    assert f"tree size {newest.tree_size}" in page.locator("li.witness").first.inner_text()
    assert post(Client(), witness.cosign(log_signed(newest.tree_size, bytes(32)))).status_code == 409
    page.reload()
    banner = page.get_by_role("alert").filter(has_text="The ledger has 1 alarm.")
    assert banner.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, f"audit-witnesses-{width}")
    banner.get_by_role("link").click()
    page.wait_for_url("**/audit/alarms/")
    assert page.get_by_role("heading", name=f"fork at tree size {newest.tree_size}").is_visible()
    assert "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" in page.locator("pre.evidence").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, f"audit-alarms-{width}")

    # Retiring asks first.
    page.goto("/audit/witnesses/")
    page.get_by_role("button", name="Retire witness witness.example.org/alice").click()
    page.wait_for_url("**/audit/witnesses/retire/?witness=*")
    screenshot(page, f"audit-witness-retire-{width}")
    page.get_by_role("button", name="Retire witness witness.example.org/alice").click()
    page.wait_for_url("**/audit/witnesses/")
    assert "Retired" in page.locator("li.witness").first.inner_text()
