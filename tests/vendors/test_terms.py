"""An organisation's declaration of the MyTerms agreements it accepts is recorded in the ledger."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from accounts.models import User
from audit.models import LedgerEntry
from vendors import services
from vendors.models import Organisation
from vendors.services import organisation_create, organisation_terms_accept


@pytest.fixture
def grocer(vendor_staff: User) -> Organisation:
    return organisation_create(
        staff=vendor_staff,
        name="Green Grocer",
        website="https://grocer.example",
        privacy_contact="p@g.example",
    )


def _entries() -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(kind="terms.declared").order_by("id"))


def test_the_staff_page_records_the_declaration(
    client: Client, vendor_staff: User, grocer: Organisation
) -> None:
    client.force_login(vendor_staff)
    response = client.post("/vendor/terms/", {"accepted_terms": ["sd-no-ai-training", "sd-base"]})
    assert response.status_code == 302
    (entry,) = _entries()
    assert (entry.actor_type, entry.actor_id) == ("vendor_org", str(grocer.pk))
    assert entry.record_ids == ["sd-base", "sd-no-ai-training"]  # roster order
    assert entry.reason == f"staff {vendor_staff.pk}" and entry.subject == ""
    # The same declaration again changes nothing and records nothing.
    client.post("/vendor/terms/", {"accepted_terms": ["sd-base", "sd-no-ai-training"]})
    assert len(_entries()) == 1
    client.post("/vendor/terms/", {})  # withdrawing every agreement is a change too
    assert [e.record_ids for e in _entries()] == [["sd-base", "sd-no-ai-training"], []]


def test_a_refused_declaration_records_nothing(
    client: Client, vendor_staff: User, grocer: Organisation
) -> None:
    client.force_login(vendor_staff)
    assert client.post("/vendor/terms/", {"accepted_terms": ["bogus"]}).status_code == 400
    with pytest.raises(ValidationError):
        organisation_terms_accept(organisation=grocer, agreement_ids=["bogus"], by=vendor_staff)
    assert _entries() == []


def test_only_the_organisations_staff_declare(grocer: Organisation, alice: User) -> None:
    other = User.objects.create_user(email="staff2@rival.example", password="x" * 20, role="vendor_staff")
    organisation_create(
        staff=other, name="Rival", website="https://rival.example", privacy_contact="p@r.example"
    )
    for outsider in (alice, other):
        with pytest.raises(PermissionDenied):
            organisation_terms_accept(organisation=grocer, agreement_ids=["sd-base"], by=outsider)
    grocer.refresh_from_db()
    assert grocer.accepted_terms == [] and _entries() == []


def test_the_declaration_and_its_entry_commit_together(
    vendor_staff: User, grocer: Organisation, monkeypatch: Any
) -> None:
    def broken(**_: Any) -> None:
        raise RuntimeError("the ledger is down")

    monkeypatch.setattr(services, "ledger_append", broken)
    with pytest.raises(RuntimeError):
        organisation_terms_accept(organisation=grocer, agreement_ids=["sd-base"], by=vendor_staff)
    grocer.refresh_from_db()
    assert grocer.accepted_terms == []
