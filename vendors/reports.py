"""People's reports about a vendor, and the auditors' cases (issue #20, docs/abuse.md).

A report is the person's: its words are sealed to their public key like a message's, and a copy
in clear is kept only when they chose to share it with the reviewers. Auditors count reports by
organisation and reason, read the shared words, and never learn who wrote them; the vendor is
never told of any report. The ledger entry of a report names the organisation and the reason
only (actor_id is the organisation's id, no subject, no grant), so it cannot be tied to a person.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from audit.models import LedgerEntry
from audit.services import ledger_append
from consent.models import Grant
from core.formats import rfc3339
from core.ids import uuid_or_404
from personal_data.keys import StoreError
from personal_data.pseudonyms import person_subject
from personal_data.store import document_open, document_seal, document_seal_to, owner_keys, owner_public_key
from vendors.models import Alert, Application, Case, Message, Organisation, Report

TEXT_MAX = 500
FINDING_MAX = 5000
# One report per thing reported per person per day, and a few a day in all: enough to report
# everything a vendor did wrong today, too few to flood the auditors' counts.
DAILY_REPORTS = 10
DAY = dt.timedelta(days=1)

_TABLE = Report._meta.db_table
Source = Report.Source


def _aad_doc(report: Report) -> dict[str, Any]:
    return {"table": _TABLE, "row_id": report.pk, "owner_id": report.person_id}


def _access_organisation(*, person: User, source_ref: str) -> Organisation:
    """The organisation behind one of the person's own ledger entries (an activity line)."""
    entry = (
        LedgerEntry.objects.filter(pk=int(source_ref), subject=person_subject(person))
        .values("actor_type", "actor_id", "grant_id")
        .first()
        if source_ref.isascii() and source_ref.isdigit() and len(source_ref) < 19
        else None
    )
    if entry is None:
        raise Http404("No such entry in your activity.")
    if entry["actor_type"] == LedgerEntry.ActorType.CLIENT:
        app = Application.objects.select_related("organisation").filter(client_id=entry["actor_id"]).first()
        if app is not None:
            return app.organisation
    grant_key = _uuid_or_none(entry["grant_id"])
    grant = (
        Grant.objects.select_related("application__organisation").filter(pk=grant_key, person=person).first()
        if grant_key
        else None
    )
    if grant is None:
        raise Http404("No vendor to report for this entry.")
    return grant.application.organisation


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def report_source_organisation(*, person: User, source: str, source_ref: str) -> Organisation:
    """Return the organisation the person may report from this grant, entry, message or alert.

    Raise Http404 when the thing is not the person's (or does not exist): the same answer.
    """
    if source == Source.GRANT:
        key = uuid_or_404(source_ref, message="No such grant.")
        grants = Grant.objects.select_related("application__organisation")
        grant = grants.filter(pk=key, person=person).first()
        if grant is None:
            raise Http404("No such grant.")
        return grant.application.organisation
    if source == Source.ACCESS:
        return _access_organisation(person=person, source_ref=source_ref)
    if source == Source.MESSAGE:
        key = uuid_or_404(source_ref, message="No such message.")
        message = Message.objects.select_related("organisation").filter(pk=key, person=person).first()
        if message is None:
            raise Http404("No such message.")
        return message.organisation
    if source == Source.ALERT:
        alerts = Alert.objects.select_related("recall__organisation")
        alert = (
            alerts.filter(pk=int(source_ref), person=person).first()
            if source_ref.isascii() and source_ref.isdigit() and len(source_ref) < 19
            else None
        )
        if alert is None:
            raise Http404("No such alert.")
        return alert.recall.organisation
    raise Http404("Nothing to report.")


def _ref_canonical(source: str, source_ref: str) -> str:
    """The one spelling of an id the source lookup accepted: a UUID's hyphenated form, a plain number."""
    if source in (Source.GRANT, Source.MESSAGE):
        return str(uuid_or_404(source_ref))
    return str(int(source_ref))


def _validated(*, person: User, source: str, source_ref: str, reason: str, text: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if reason not in Report.Reason.values:
        errors["reason"] = ["Choose what is wrong from the list."]
    if len(text) > TEXT_MAX:
        errors["text"] = [f"Write at most {TEXT_MAX} characters (you wrote {len(text)})."]
    since = timezone.now() - DAY
    mine = Report.objects.filter(person=person, created_at__gt=since)
    if mine.filter(source=source, source_ref=source_ref).exists():
        errors["__all__"] = ["You already reported this today. You can report it again tomorrow."]
    elif mine.count() >= DAILY_REPORTS:
        errors["__all__"] = [f"You made {DAILY_REPORTS} reports today, the most in a day. Try tomorrow."]
    return errors


@transaction.atomic
def report_create(
    *,
    person: User,
    organisation: Organisation,
    source: str,
    source_ref: str,
    reason: str,
    text: str,
    shared: bool,
) -> Report:
    """Record the person's report about the organisation, sealed to them, with its ledger entry.

    Raise Http404 if the source is not the person's or is not about this organisation, and
    ValidationError for a bad reason, words over TEXT_MAX, or a report already made today.
    """
    if report_source_organisation(person=person, source=source, source_ref=source_ref).pk != organisation.pk:
        raise Http404("Nothing to report.")
    # One spelling per thing (the ids come from URLs as written), so the per-source limit holds.
    source_ref = _ref_canonical(source, source_ref)
    # The person's row is the lock: two reports sent at once are counted one after the other.
    User.objects.select_for_update().filter(pk=person.pk).first()
    text = text.strip()
    if errors := _validated(person=person, source=source, source_ref=source_ref, reason=reason, text=text):
        raise ValidationError(errors)
    report = Report(
        person=person,
        organisation=organisation,
        source=source,
        source_ref=source_ref,
        reason=reason,
        shared=shared,
        shared_text=text if shared else "",
    )
    if text:
        try:
            report.payload = document_seal_to(
                public_key=owner_public_key(person.pk), doc={"text": text}, **_aad_doc(report)
            )
        except StoreError:  # an account from before person-held keys: its data key is the server's
            key = owner_keys(person.pk).data
            report.payload = document_seal(key=key, doc={"text": text}, **_aad_doc(report))
    report.save(force_insert=True)
    # No subject and no grant: only the organisation and the reason, so the entry leads to no one.
    ledger_append(
        kind=LedgerEntry.Kind.VENDOR_REPORTED,
        actor_type=LedgerEntry.ActorType.PERSON,
        actor_id=str(organisation.pk),
        reason=reason,
    )
    return report


# The person's side.


def reports_for_person(*, person: User) -> QuerySet[Report]:
    return Report.objects.filter(person=person).select_related("organisation")


def report_text(*, report: Report) -> str | None:
    """The report's words, opened with the person's keys; None if sealed to a key they lost."""
    if not report.payload:
        return ""
    keys = owner_keys(report.person)  # StoreLocked: the middleware asks to unlock
    try:
        doc = document_open(keys=keys, payload=bytes(report.payload), **_aad_doc(report))
    except StoreError:
        return None
    return str(doc.get("text") or "")


def reports_export(*, person: User) -> list[dict[str, Any]]:
    """The person's reports for the export (`reports`), their words opened with the person's keys."""
    rows = []
    for r in reports_for_person(person=person):
        try:
            text = report_text(report=r)
        except StoreError:
            text = None
        rows.append(
            {
                "id": str(r.pk),
                "vendor": r.organisation.name,
                "source": r.source,
                "source_ref": r.source_ref,
                "reason": r.reason,
                "text": text,
                "shared": r.shared,
                "created_at": rfc3339(r.created_at),
            }
        )
    return rows


def reports_erase(*, person: User) -> int:
    """Delete every report of the person (account deletion); return how many.

    The ledger's vendor.reported entries stay: they name the organisation and the reason only.
    """
    deleted, _ = Report.objects.filter(person=person).delete()
    return deleted


# The auditors' side: counts by organisation and reason, shared words; never a person.


@dataclass
class ReportCounts:
    last_30: int = 0
    last_90: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)  # reason code -> count in 90 days


def report_counts_by_organisation(*, now: dt.datetime | None = None) -> dict[uuid.UUID, ReportCounts]:
    """Count reports per organisation (last 30 and 90 days) and per reason (90 days): one query."""
    now = now or timezone.now()
    rows = (
        Report.objects.filter(created_at__gt=now - dt.timedelta(days=90))
        .values("organisation_id", "reason")
        .annotate(n90=Count("id"), n30=Count("id", filter=Q(created_at__gt=now - dt.timedelta(days=30))))
        .order_by()
    )
    counts: dict[uuid.UUID, ReportCounts] = {}
    for row in rows:
        c = counts.setdefault(row["organisation_id"], ReportCounts())
        c.last_30 += row["n30"]
        c.last_90 += row["n90"]
        c.by_reason[row["reason"]] = row["n90"]
    return counts


def reports_by_day(*, organisation: Organisation, since: dt.date) -> list[dict[str, Any]]:
    """Reports about the organisation per UTC day since `since`, as day_chart rows."""
    start = dt.datetime.combine(since, dt.time.min, tzinfo=dt.UTC)
    rows = (
        Report.objects.filter(organisation=organisation, created_at__gte=start)
        .values(day=TruncDate("created_at", tzinfo=dt.UTC))
        .annotate(reports=Count("id"))
        .order_by("day")
    )
    return [{"vendor": "Reports", "day": row["day"], "reports": row["reports"]} for row in rows]


def report_reasons(*, organisation: Organisation) -> list[tuple[str, int]]:
    """Every reason with how many reports about the organisation gave it, in the reasons' order."""
    counted = dict(
        Report.objects.filter(organisation=organisation)
        .values_list("reason")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [(label, counted.get(code, 0)) for code, label in Report.Reason.choices]


def reports_shared(*, organisation: Organisation, limit: int = 100) -> list[dict[str, Any]]:
    """The words people chose to share, with reason and day only: no person, no source, no id."""
    rows = (
        Report.objects.filter(organisation=organisation, shared=True)
        .exclude(shared_text="")
        .order_by("-created_at")
        .values("reason", "shared_text", "created_at")[:limit]
    )
    return [
        {
            "reason": Report.Reason(row["reason"]).label,
            "text": row["shared_text"],
            "day": timezone.localdate(row["created_at"]),
        }
        for row in rows
    ]


def cases_open_count(*, organisation_ids: Iterable[uuid.UUID] | None = None) -> dict[uuid.UUID, int]:
    rows = Case.objects.filter(status=Case.Status.OPEN)
    if organisation_ids is not None:
        rows = rows.filter(organisation_id__in=list(organisation_ids))
    return dict(rows.values_list("organisation_id").annotate(n=Count("id")).order_by())


def cases_for_organisation(*, organisation: Organisation) -> QuerySet[Case]:
    return Case.objects.filter(organisation=organisation).select_related("opened_by", "closed_by")


def case_get_for_organisation(*, organisation: Organisation, case_id: str) -> Case:
    key = uuid_or_404(case_id, message="No such case.")
    case = cases_for_organisation(organisation=organisation).filter(pk=key).first()
    if case is None:
        raise Http404("No such case.")
    return case


@transaction.atomic
def case_open(*, organisation: Organisation, finding: str, by: User) -> Case:
    """Open a case on the organisation with the auditor's written finding, and record it."""
    finding = finding.strip()
    if not finding:
        raise ValidationError({"finding": ["Write what you found."]})
    if len(finding) > FINDING_MAX:
        raise ValidationError({"finding": [f"Write at most {FINDING_MAX} characters."]})
    case = Case.objects.create(organisation=organisation, opened_by=by, finding=finding)
    ledger_append(
        kind=LedgerEntry.Kind.CASE_OPENED,
        actor_type=LedgerEntry.ActorType.AUDITOR,
        actor_id=str(by.pk),
        record_ids=[case.pk],
        reason=f"organisation {organisation.pk}",
    )
    return case


@transaction.atomic
def case_close(*, case: Case, outcome: str, by: User) -> Case:
    """Close an open case with its outcome, and record it; a closed case stays as it was."""
    outcome = outcome.strip()
    if not outcome:
        raise ValidationError({"outcome": ["Write how the case ends."]})
    if len(outcome) > FINDING_MAX:
        raise ValidationError({"outcome": [f"Write at most {FINDING_MAX} characters."]})
    locked = Case.objects.select_for_update().get(pk=case.pk)
    if locked.status != Case.Status.OPEN:
        raise ValidationError({"outcome": ["This case is already closed."]})
    locked.status, locked.outcome = Case.Status.CLOSED, outcome
    locked.closed_by, locked.closed_at = by, timezone.now()
    locked.save(update_fields=["status", "outcome", "closed_by", "closed_at"])
    ledger_append(
        kind=LedgerEntry.Kind.CASE_CLOSED,
        actor_type=LedgerEntry.ActorType.AUDITOR,
        actor_id=str(by.pk),
        record_ids=[locked.pk],
        reason=f"organisation {locked.organisation_id}",
    )
    return locked
