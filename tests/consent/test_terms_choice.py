"""The person's terms choice is recorded in the ledger, with public ids only, with the change."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from accounts.models import User
from audit.models import LedgerEntry
from consent import services
from consent.models import TermsChoice
from consent.services import grant_authorize, terms_choice_update
from personal_data.pseudonyms import person_subject
from vendors.models import Application


def _entries() -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(kind="terms.chosen").order_by("id"))


def test_a_change_of_terms_is_recorded_under_the_persons_pseudonym(
    alice: User, shop_app: Application
) -> None:
    grant_authorize(person=alice, application=shop_app, scopes=["profile:read"], duration_days=30)
    org = str(shop_app.organisation_id)
    terms_choice_update(
        person=alice,
        proffered=["sd-no-ai-training", "sd-base"],
        per_vendor={org: "sd-goods-services"},
        allow_without_terms=False,
    )
    (entry,) = _entries()
    subject = person_subject(alice)
    assert (entry.actor_type, entry.actor_id, entry.subject) == ("person", subject, subject)
    assert entry.record_ids == ["sd-no-ai-training", "sd-base", f"{org}=sd-goods-services"]
    assert entry.record_count == 2
    assert entry.reason == "without terms: refused"
    assert entry.grant_id == "" and entry.scopes == []
    assert alice.email not in str(entry.__dict__) and "Alice" not in str(entry.__dict__)


def test_saving_the_same_terms_again_records_nothing_new(alice: User) -> None:
    terms_choice_update(person=alice, proffered=["sd-base"], per_vendor={}, allow_without_terms=True)
    terms_choice_update(person=alice, proffered=["sd-base"], per_vendor={}, allow_without_terms=True)
    assert len(_entries()) == 1
    terms_choice_update(person=alice, proffered=[], per_vendor={}, allow_without_terms=True)
    assert [e.record_ids for e in _entries()] == [["sd-base"], []]
    assert _entries()[-1].reason == "without terms: allowed"


def test_the_first_save_is_recorded_even_with_the_defaults(alice: User) -> None:
    terms_choice_update(person=alice, proffered=[], per_vendor={}, allow_without_terms=True)
    assert len(_entries()) == 1


def test_a_refused_choice_records_nothing(alice: User) -> None:
    with pytest.raises(ValidationError):
        terms_choice_update(person=alice, proffered=["made-up"], per_vendor={}, allow_without_terms=True)
    assert _entries() == [] and not TermsChoice.objects.exists()


def test_the_choice_and_its_entry_commit_together(alice: User, monkeypatch: Any) -> None:
    def broken(**_: Any) -> None:
        raise RuntimeError("the ledger is down")

    monkeypatch.setattr(services, "ledger_append", broken)
    with pytest.raises(RuntimeError):
        terms_choice_update(person=alice, proffered=["sd-base"], per_vendor={}, allow_without_terms=False)
    assert not TermsChoice.objects.exists()
