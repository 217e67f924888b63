"""The reminders the store makes on its own, and what the person's inbox shows of them.

A reminder row names a kind, a subject (a record or grant id) and a period, never content: the
inbox opens the person's own record or grant to say what it is about, so no medication name
or product is ever kept in clear. Record due dates come from `ReminderDue`, which the store
fills whenever a record is written with the person's key (docs/security.md says what that
leaks); grant dates are in clear already.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from audit.selectors import accesses_for_grant
from consent.models import Grant
from consent.scopes import SCOPES
from core.formats import rfc3339
from personal_data.models import Reminder, ReminderDue, ReminderKind
from personal_data.schemas import REMINDER_KINDS
from personal_data.selectors import contact_preferences, record_get_for_owner
from vendors.suspensions import standing_notice_view

# How far ahead each kind speaks up.
REFILL_AHEAD = dt.timedelta(days=3)
WARRANTY_AHEAD = dt.timedelta(days=60)
GRANT_ENDING_AHEAD = dt.timedelta(days=7)
SUMMARY_EVERY = dt.timedelta(days=90)
RECORD_WINDOWS = {ReminderKind.REFILL: REFILL_AHEAD, ReminderKind.WARRANTY: WARRANTY_AHEAD}
# A due date further in the past than this is not worth a reminder any more.
STALE_AFTER = dt.timedelta(days=14)

# Notices of what an operator did to a vendor (vendors/suspensions.py), which e-mails them itself.
STANDING_KINDS = (ReminderKind.VENDOR_SUSPENDED, ReminderKind.VENDOR_RESUMED, ReminderKind.VENDOR_ENDED)
EMAIL_SUBJECTS = {
    ReminderKind.REFILL: "A prescription refill is due",
    ReminderKind.WARRANTY: "A warranty is ending",
    ReminderKind.GRANT_ENDING: "A grant you gave is ending",
    ReminderKind.GRANT_SUMMARY: "What your grants read in the last 90 days",
}


@dataclass
class Candidate:
    owner_id: uuid.UUID
    kind: str
    subject: str
    period: str
    due_on: dt.date | None


@dataclass
class ReminderRun:
    made: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REMINDER_KINDS, 0))
    skipped_off: int = 0
    emailed: int = 0


def _record_candidates(today: dt.date) -> Iterator[Candidate]:
    for kind, ahead in RECORD_WINDOWS.items():
        due = ReminderDue.objects.filter(
            kind=kind, due_on__lte=today + ahead, due_on__gte=today - STALE_AFTER
        )
        for row in due.order_by("owner_id", "due_on").iterator(chunk_size=1000):
            yield Candidate(row.owner_id, kind, str(row.record_id), row.due_on.isoformat(), row.due_on)


def _grant_candidates(now: dt.datetime) -> Iterator[Candidate]:
    live = Grant.objects.filter(status=Grant.Status.ACTIVE, starts_at__lte=now, ends_at__gt=now)
    for grant in live.filter(ends_at__lte=now + GRANT_ENDING_AHEAD).iterator(chunk_size=1000):
        ends = timezone.localdate(grant.ends_at)
        yield Candidate(grant.person_id, ReminderKind.GRANT_ENDING, str(grant.pk), ends.isoformat(), ends)
    for grant in live.filter(created_at__lte=now - SUMMARY_EVERY).iterator(chunk_size=1000):
        # One summary per full 90 days the grant has lived: period "90d-1", "90d-2", …
        n = (now - grant.created_at) // SUMMARY_EVERY
        yield Candidate(grant.person_id, ReminderKind.GRANT_SUMMARY, str(grant.pk), f"90d-{n}", None)


def reminders_due_count(*, now: dt.datetime | None = None) -> int:
    """Count what the next reminder run would look at: record due dates and grant ends in their windows.

    Reminders already made are included: telling them apart costs a look-up per candidate, where
    this is an index range per kind. The 90-day grant summaries are left out, since every live
    grant older than 90 days is one on every run.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    records = sum(
        ReminderDue.objects.filter(
            kind=kind, due_on__lte=today + ahead, due_on__gte=today - STALE_AFTER
        ).count()
        for kind, ahead in RECORD_WINDOWS.items()
    )
    grants = Grant.objects.filter(
        status=Grant.Status.ACTIVE, starts_at__lte=now, ends_at__gt=now, ends_at__lte=now + GRANT_ENDING_AHEAD
    ).count()
    return records + grants


def _kinds_on(owner_id: uuid.UUID, cache: dict[uuid.UUID, dict[str, Any]]) -> dict[str, Any]:
    if owner_id not in cache:
        cache[owner_id] = contact_preferences(owner=User(pk=owner_id))
    return cache[owner_id]


def _make_once(candidate: Candidate) -> Reminder | None:
    """Create the reminder unless it exists; the unique constraint settles overlapping runs."""
    try:
        with transaction.atomic():
            return Reminder.objects.create(
                owner_id=candidate.owner_id,
                kind=candidate.kind,
                subject=candidate.subject,
                period=candidate.period,
                due_on=candidate.due_on,
            )
    except IntegrityError:
        return None


def _exists(candidate: Candidate) -> bool:
    return Reminder.objects.filter(
        owner_id=candidate.owner_id, kind=candidate.kind, subject=candidate.subject, period=candidate.period
    ).exists()


def reminders_send(
    *, now: dt.datetime | None = None, progress: Callable[[int], None] | None = None
) -> ReminderRun:
    """Make every reminder that is due and not made yet, then e-mail those whose people opted in.

    Safe to re-run and to overlap with another run: each reminder is made once (a unique
    constraint on person, kind, subject and period) and each e-mail is claimed before it is sent.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    run = ReminderRun()
    contacts: dict[uuid.UUID, dict[str, Any]] = {}
    seen = 0
    for candidate in (*_record_candidates(today), *_grant_candidates(now)):
        seen += 1
        if progress:
            progress(seen)
        contact = _kinds_on(candidate.owner_id, contacts)
        if candidate.kind not in contact.get("reminders", REMINDER_KINDS):
            run.skipped_off += 1
            continue
        if _exists(candidate):
            continue
        if _make_once(candidate) is not None:
            run.made[candidate.kind] += 1
    run.emailed = reminders_email(now=now)
    return run


def _wants_reminder_email(contact: dict[str, Any]) -> bool:
    return (
        bool(contact.get("email", True))
        and not contact.get("safety_alerts_only", False)
        and bool(contact.get("reminders_email", False))
    )


def reminders_email(*, now: dt.datetime | None = None) -> int:
    """E-mail unsent reminders to people who opted in; each is claimed first, so it goes once.

    The mail says only the kind and the date: what the reminder is about stays in the store.
    """
    now = now or timezone.now()
    sent = 0
    pending = Reminder.objects.filter(
        kind__in=EMAIL_SUBJECTS, emailed_at__isnull=True, read_at__isnull=True
    ).select_related("owner")
    contacts: dict[uuid.UUID, dict[str, Any]] = {}
    with get_connection() as connection:
        for reminder in pending.iterator(chunk_size=500):
            if not _wants_reminder_email(_kinds_on(reminder.owner_id, contacts)):
                continue
            # Claim before sending: of two overlapping runs only one updates the row.
            if not Reminder.objects.filter(pk=reminder.pk, emailed_at__isnull=True).update(emailed_at=now):
                continue
            when = f" ({reminder.due_on:%-d %B %Y})" if reminder.due_on else ""
            body = (
                f"{EMAIL_SUBJECTS[ReminderKind(reminder.kind)]}{when}.\n\n"
                f"Open your inbox to see the details: {settings.VRM_ISSUER}/inbox/\n\n"
                "You chose to get reminders by e-mail; change that in your preferences "
                f"({settings.VRM_ISSUER}/data/preferences/).\n"
            )
            EmailMessage(
                EMAIL_SUBJECTS[ReminderKind(reminder.kind)],
                body,
                to=[reminder.owner.email],
                connection=connection,
            ).send()
            sent += 1
    return sent


# The inbox's side.


def reminders_for_person(*, person: User) -> QuerySet[Reminder]:
    return Reminder.objects.filter(owner_id=person.pk).order_by("-created_at", "-id")


def reminders_unread_count(*, person: User) -> int:
    return reminders_for_person(person=person).filter(read_at__isnull=True).count()


def reminder_get_for_person(*, person: User, reminder_id: int | str) -> Reminder:
    text = str(reminder_id)
    reminder = (
        reminders_for_person(person=person).filter(pk=text).first()
        if text.isascii() and text.isdigit() and len(text) < 19
        else None
    )
    if reminder is None:
        raise Http404("No such reminder.")
    return reminder


def reminder_mark_read(*, reminder: Reminder) -> None:
    if reminder.read_at is None:
        reminder.read_at = timezone.now()
        Reminder.objects.filter(pk=reminder.pk, read_at__isnull=True).update(read_at=reminder.read_at)


def reminders_mark_read(*, person: User) -> int:
    return reminders_for_person(person=person).filter(read_at__isnull=True).update(read_at=timezone.now())


def standing_notice_vendors(*, person: User, grant_ids: list[str]) -> dict[str, str]:
    """The vendor's name for each of the person's grants that a standing notice is about."""
    rows = Grant.objects.filter(person=person, pk__in=[g for g in grant_ids if _is_uuid(g)]).values_list(
        "pk", "application__organisation__name"
    )
    return {str(pk): name for pk, name in rows}


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _grant_of(person: User, subject: str) -> Grant | None:
    try:
        return (
            Grant.objects.select_related("application__organisation")
            .filter(person=person, pk=uuid.UUID(subject))
            .first()
        )
    except ValueError:
        return None


def reminder_view(*, person: User, reminder: Reminder) -> dict[str, Any]:
    """What the person sees of a reminder, derived now from their own records and grants."""
    view: dict[str, Any] = {
        "reminder": reminder,
        "kind_label": ReminderKind(reminder.kind).label,
        "gone": False,
    }
    if reminder.kind in (ReminderKind.REFILL, ReminderKind.WARRANTY):
        category = "prescriptions" if reminder.kind == ReminderKind.REFILL else "appliances"
        try:
            record = record_get_for_owner(owner=person, category=category, record_id=reminder.subject)
        except Http404:
            record = None
        view["record"], view["category"] = record, category
        if record is None:
            view["gone"] = True
            view["title"] = "A record you have since deleted"
        elif reminder.kind == ReminderKind.REFILL:
            view["title"] = f"Refill due: {record.get('medication', '')}"
        else:
            name = " ".join(str(record.get(k) or "") for k in ("brand", "kind", "model_number")).strip()
            view["title"] = f"Warranty ending: {name or 'an appliance'}"
        return view
    grant = _grant_of(person, reminder.subject)
    view["grant"] = grant
    if grant is None:
        view["gone"], view["title"] = True, "A grant that no longer exists"
        return view
    vendor = grant.application.name
    view["scopes"] = [SCOPES[s].title if s in SCOPES else s for s in grant.scopes]
    if reminder.kind in STANDING_KINDS:
        view.update(standing_notice_view(reminder=reminder, grant=grant))
    elif reminder.kind == ReminderKind.GRANT_ENDING:
        view["title"] = f"Your grant to {vendor} ends soon"
    else:
        n = int(reminder.period.rsplit("-", 1)[-1]) if reminder.period.startswith("90d-") else 1
        until = grant.created_at + n * SUMMARY_EVERY
        since = until - SUMMARY_EVERY
        counts = accesses_for_grant(grant_id=str(grant.pk), since=since, until=until)
        view["since"], view["until"] = since, until
        view["reads"] = sum(v for k, v in counts.items() if k != "access.denied")
        view["refused"] = counts.get("access.denied", 0)
        view["title"] = f"90 days of your grant to {vendor}"
    return view


def reminders_export(*, person: User) -> list[dict[str, Any]]:
    """The person's reminders as the export lists them (kind, subject id, period, times)."""
    return [
        {
            "kind": r.kind,
            "subject": r.subject,
            "period": r.period,
            "due_on": r.due_on.isoformat() if r.due_on else None,
            "created_at": rfc3339(r.created_at),
            "read_at": rfc3339(r.read_at) if r.read_at else None,
            "emailed_at": rfc3339(r.emailed_at) if r.emailed_at else None,
        }
        for r in reminders_for_person(person=person)
    ]
