"""Reports about a vendor and auditors' cases, as services (vendors/reports.py, docs/abuse.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone

from audit.models import LedgerEntry
from consent.models import Grant
from consent.services import grant_authorize
from personal_data.pseudonyms import person_subject
from portal.export import export_chunks
from portal.services import account_delete
from tests.conftest import matched_alert
from vendors.messages import message_report, message_send
from vendors.models import Application, Case, Message, Organisation, Report
from vendors.reports import (
    DAILY_REPORTS,
    case_close,
    case_open,
    report_create,
    report_text,
    reports_export,
)

SECRET_WORDS = "They phoned me at home about my pills"


@pytest.fixture
def grant(alice: Any, shop_app: Application) -> Grant:
    return grant_authorize(
        person=alice, application=shop_app, scopes=["profile:read", "messages:send"], duration_days=30
    )


def _message(grant: Grant, title: str) -> Message:
    data = {"kind": "notice", "title": title, "body": "."}
    return message_send(grant=grant, application=grant.application, data=data)


def report(grant: Grant, **overrides: Any) -> Report:
    fields: dict[str, Any] = {
        "person": grant.person,
        "organisation": grant.application.organisation,
        "source": Report.Source.GRANT,
        "source_ref": str(grant.pk),
        "reason": Report.Reason.OVERREACH,
        "text": SECRET_WORDS,
        "shared": False,
        **overrides,
    }
    return report_create(**fields)


def test_a_report_is_sealed_to_the_person_and_shared_only_when_chosen(grant: Grant) -> None:
    unshared = report(grant)
    assert SECRET_WORDS.encode() not in bytes(unshared.payload)
    assert unshared.shared_text == "" and not unshared.shared
    assert report_text(report=unshared) == SECRET_WORDS
    shared = report(grant, source=Report.Source.ACCESS, source_ref=str(_access_entry(grant).pk), shared=True)
    assert shared.shared_text == SECRET_WORDS


def _access_entry(grant: Grant) -> LedgerEntry:
    return LedgerEntry.objects.filter(subject=person_subject(grant.person)).latest("id")


def test_the_ledger_entry_names_the_organisation_and_reason_only(grant: Grant) -> None:
    report(grant)
    entry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.VENDOR_REPORTED)
    assert entry.actor_type == "person"
    assert entry.actor_id == str(grant.application.organisation_id)
    assert entry.reason == "overreach"
    assert entry.subject == "" and entry.grant_id == "" and entry.record_ids == []
    assert SECRET_WORDS not in str(entry.__dict__)


def test_another_persons_grant_message_alert_or_entry_is_not_found(
    grant: Grant, bob: Any, shop_app: Application
) -> None:
    message = _message(grant, "x")
    entry = _access_entry(grant)
    for source, ref in (
        (Report.Source.GRANT, str(grant.pk)),
        (Report.Source.MESSAGE, str(message.pk)),
        (Report.Source.ACCESS, str(entry.pk)),
        (Report.Source.ALERT, "1"),
        (Report.Source.GRANT, "not-an-id"),
    ):
        with pytest.raises(Http404):
            report(grant, person=bob, source=source, source_ref=ref)
    assert not Report.objects.exists()


def test_a_source_of_another_organisation_is_not_found(grant: Grant, stranger_app: Application) -> None:
    with pytest.raises(Http404):
        report(grant, organisation=stranger_app.organisation)


def test_a_bad_reason_or_long_words_store_nothing(grant: Grant) -> None:
    with pytest.raises(ValidationError) as bad:
        report(grant, reason="rude")
    assert "reason" in bad.value.message_dict
    with pytest.raises(ValidationError) as long:
        report(grant, text="x" * 501)
    assert "at most 500" in long.value.message_dict["text"][0]
    assert not Report.objects.exists()
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.VENDOR_REPORTED).exists()
    assert report(grant, text="x" * 500).pk


def test_one_report_per_source_per_day_and_a_few_a_day_in_all(
    grant: Grant, alice: Any, shop_app: Application
) -> None:
    report(grant)
    with pytest.raises(ValidationError, match="already reported this today"):
        report(grant, reason=Report.Reason.SPAM)
    with time_machine.travel(timezone.now() + dt.timedelta(days=1, minutes=1)):
        assert report(grant, reason=Report.Reason.SPAM).reason == "spam"
        for n in range(DAILY_REPORTS - 1):
            message = _message(grant, f"{n}")
            Grant.objects.filter(pk=grant.pk).update(messages_allowance=None)
            Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - dt.timedelta(days=8))
            report(grant, source=Report.Source.MESSAGE, source_ref=str(message.pk))
        extra = _message(grant, "z")
        with pytest.raises(ValidationError, match="reports today"):
            report(grant, source=Report.Source.MESSAGE, source_ref=str(extra.pk))


def test_reporting_a_message_also_reports_its_vendor(grant: Grant, shop_app: Application) -> None:
    message = _message(grant, "x")
    message_report(message=message, reason="not_asked", text="Every day", shared=True)
    message.refresh_from_db()
    assert message.reported_at is not None and message.report_reason == "not_asked"
    made = Report.objects.get()
    assert (made.source, made.source_ref, made.reason, made.shared_text) == (
        "message",
        str(message.pk),
        "spam",
        "Every day",
    )
    # Reporting it again changes neither.
    message_report(message=message, reason="spam")
    assert Report.objects.count() == 1


def test_a_message_report_with_words_too_long_leaves_the_message_unreported(
    grant: Grant, shop_app: Application
) -> None:
    message = _message(grant, "x")
    with pytest.raises(ValidationError):
        message_report(message=message, reason="spam", text="x" * 501)
    message.refresh_from_db()
    assert message.reported_at is None and not Report.objects.exists()


def test_reports_are_exported_and_erased_with_the_account(grant: Grant, alice: Any) -> None:
    report(grant)
    rows = reports_export(person=alice)
    assert (
        rows[0]["text"] == SECRET_WORDS
        and rows[0]["reason"] == "overreach"
        and rows[0]["vendor"] == "Acme Shop"
    )
    assert '"reports": [{' in "".join(export_chunks(person=alice))
    account_delete(person=alice)
    assert not Report.objects.exists()
    # The ledger keeps the organisation and reason: nothing that led to alice.
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.VENDOR_REPORTED).count() == 1


def test_opening_and_closing_a_case_records_the_auditor(auditor: Any, shop_org: Organisation) -> None:
    case = case_open(organisation=shop_org, finding="  Reads every record daily.  ", by=auditor)
    assert case.status == Case.Status.OPEN and case.finding == "Reads every record daily."
    closed = case_close(case=case, outcome="Suspended by the operator.", by=auditor)
    assert closed.status == Case.Status.CLOSED and closed.closed_by == auditor and closed.closed_at
    with pytest.raises(ValidationError, match="already closed"):
        case_close(case=case, outcome="Again.", by=auditor)
    entries = LedgerEntry.objects.filter(kind__startswith="audit.case").order_by("id")
    assert [(e.kind, e.actor_type, e.actor_id) for e in entries] == [
        ("audit.case_opened", "auditor", str(auditor.pk)),
        ("audit.case_closed", "auditor", str(auditor.pk)),
    ]
    assert entries[0].record_ids == [str(case.pk)]
    with pytest.raises(ValidationError):
        case_open(organisation=shop_org, finding="x" * 5001, by=auditor)
    with pytest.raises(ValidationError):
        case_open(organisation=shop_org, finding="   ", by=auditor)


def test_an_alert_can_be_reported_to_its_publisher(alice: Any) -> None:
    alert = matched_alert(alice)
    publisher = alert.recall.organisation
    made = report_create(
        person=alice,
        organisation=publisher,
        source=Report.Source.ALERT,
        source_ref=str(alert.pk),
        reason=Report.Reason.MISLEADING,
        text="",
        shared=False,
    )
    assert made.payload == b"" and report_text(report=made) == ""
