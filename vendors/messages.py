"""Vendor messages (messages:send): posted on the person's terms, sealed to the person.

A vendor with the scope posts a few messages a week per grant (WEEKLY_ALLOWANCE, lowered or
muted by the person on the grant page). The words are sealed to the person's public key at once,
so only the person opens them; the clear columns say only kind, times and the person's answer.
The vendor may ask for a message's status (`delivered` or `expired`, never whether it was read)
and the person's answer (interested / not interested); a report is never shown to it.
Every step writes a ledger entry of ids, kinds and counts (docs/api.md, docs/portal.md).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django_tasks import task
from rest_framework import serializers

from accounts.models import User
from audit.services import ledger_append
from consent.models import Grant
from core.formats import rfc3339
from core.ids import uuid_or_404
from personal_data.keys import StoreError
from personal_data.pseudonyms import person_subject
from personal_data.schemas import StrictSchema
from personal_data.selectors import contact_preferences
from personal_data.store import (
    document_open,
    document_seal,
    document_seal_to,
    owner_keys,
    owner_public_key,
    validate,
)
from vendors.models import Application, Message, Report
from vendors.reports import report_create

# At most this many messages per grant in any 7 days, unless the person lowered it.
WEEKLY_ALLOWANCE = 3
WINDOW = dt.timedelta(days=7)
# A message's expiry may be at most this far ahead.
MAX_EXPIRY = dt.timedelta(days=90)
TITLE_MAX = 120
BODY_MAX = 2000
LINK_MAX = 500

_TABLE = Message._meta.db_table


class MessageSchema(StrictSchema):
    """A message as a vendor posts it (INTERFACES.md §5 and §6)."""

    kind = serializers.ChoiceField(choices=Message.Kind.values)
    title = serializers.CharField(max_length=TITLE_MAX)
    body = serializers.CharField(max_length=BODY_MAX, trim_whitespace=False)
    link = serializers.CharField(max_length=LINK_MAX, required=False, allow_blank=True, default="")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate_title(self, value: str) -> str:
        if any(c in value for c in "\r\n"):
            raise serializers.ValidationError("A title is one line.")
        return value

    def validate_link(self, value: str) -> str:
        if value and (problem := link_problem(value)):
            raise serializers.ValidationError(problem)
        return value

    def validate_expires_at(self, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        now = timezone.now()
        if value <= now:
            raise serializers.ValidationError("Give a time in the future.")
        if value > now + MAX_EXPIRY:
            raise serializers.ValidationError(f"At most {MAX_EXPIRY.days} days ahead.")
        return value


def link_problem(url: str) -> str | None:
    """Say what is wrong with a message's link, or None: https with a host, no user name or password."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        return "This is not a valid URL."
    if parts.scheme != "https" or not parts.hostname:
        return "Use an https:// link."
    if "@" in parts.netloc:
        return "A link cannot contain a user name or password."
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "A link cannot contain spaces or control characters."
    return None


def link_host(url: str) -> str:
    """Where a link leads, as people should read it: an international name in its ASCII (xn--)
    form, so a look-alike of a known shop's domain does not pass for it (as a recall's remedy)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


class AllowanceExceeded(Exception):
    """The grant has used its messages for the rolling week; one frees up in `retry_after` seconds."""

    def __init__(self, retry_after: int, allowance: int) -> None:
        super().__init__(f"allowance of {allowance} used; retry after {retry_after} s")
        self.retry_after = retry_after
        self.allowance = allowance


def allowance_of(grant: Grant) -> int:
    value = grant.messages_allowance
    return WEEKLY_ALLOWANCE if value is None else min(value, WEEKLY_ALLOWANCE)


def message_status(message: Message, *, at: dt.datetime | None = None) -> str:
    """`expired` past its expiry, otherwise `delivered`: never whether it was read or reported."""
    return "expired" if message.is_expired(at) else "delivered"


def _aad_doc(message: Message) -> dict[str, Any]:
    return {"table": _TABLE, "row_id": message.pk, "owner_id": message.person_id}


@transaction.atomic
def message_send(*, grant: Grant, application: Application, data: object, request_id: str = "") -> Message:
    """Post a message to the grant's person, within the grant's weekly allowance.

    The grant row is locked first, so two posts at the limit are counted one after the other.
    Raise ValidationError for bad input and AllowanceExceeded past the allowance.
    """
    doc = validate(MessageSchema, data)
    locked = Grant.objects.select_for_update().get(pk=grant.pk)
    now = timezone.now()
    allowance = allowance_of(locked)
    recent = list(
        Message.objects.filter(grant=locked, created_at__gt=now - WINDOW)
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )
    if len(recent) >= allowance:
        # The slot that frees first is the oldest message the allowance still counts.
        frees = recent[len(recent) - allowance] + WINDOW if allowance else locked.ends_at
        raise AllowanceExceeded(max(1, int((frees - now).total_seconds()) + 1), allowance)
    message = Message(
        person_id=locked.person_id,
        grant=locked,
        organisation_id=application.organisation_id,
        application=application,
        kind=doc["kind"],
        created_at=now,
        expires_at=dt.datetime.fromisoformat(doc["expires_at"]) if doc["expires_at"] else None,
    )
    content = {"title": doc["title"], "body": doc["body"], "link": doc["link"]}
    try:
        message.payload = document_seal_to(
            public_key=owner_public_key(locked.person_id), doc=content, **_aad_doc(message)
        )
    except StoreError:  # an account from before person-held keys: its data key is the server's
        message.payload = document_seal(
            key=owner_keys(locked.person_id).data, doc=content, **_aad_doc(message)
        )
    message.save(force_insert=True)
    ledger_append(
        kind="message.sent",
        actor_type="client",
        actor_id=application.client_id,
        subject=person_subject(locked.person),
        grant_id=str(locked.pk),
        scopes=["messages:send"],
        record_ids=[message.pk],
        reason=f"kind {message.kind}",
        request_id=request_id,
    )
    # Committed first, so a worker can see it; with VRM_TASKS_BACKEND=immediate it runs at once.
    ids = (str(message.pk), str(locked.person_id))
    transaction.on_commit(lambda: message_notify_task.enqueue(*ids))
    return message


def message_get_for_grant(*, grant: Grant, message_id: str) -> Message:
    """A message the grant posted; any other (another grant's, or none) is the same 404."""
    key = uuid_or_404(message_id, message="No such message.")
    message = Message.objects.filter(pk=key, grant=grant).first()
    if message is None:
        raise Http404("No such message.")
    return message


def _wants_message_email(contact: dict[str, Any]) -> bool:
    return (
        bool(contact.get("email", True))
        and not contact.get("safety_alerts_only", False)
        and bool(contact.get("messages_email", False))
    )


@task()
def message_notify_task(message_id: str, person_id: str) -> bool:
    return message_notify(message_id=message_id, person_id=person_id)


def message_notify(*, message_id: uuid.UUID | str, person_id: uuid.UUID | str) -> bool:
    """E-mail the person that a message arrived, if they opted in: who sent it, never what it says.

    Claimed before it is sent (emailed_at), so it goes at most once.
    """
    person = User.objects.filter(pk=person_id).first()
    if person is None or not _wants_message_email(contact_preferences(owner=person)):
        return False
    if not Message.objects.filter(pk=message_id, emailed_at__isnull=True).update(emailed_at=timezone.now()):
        return False
    message = Message.objects.select_related("organisation").get(pk=message_id)
    body = (
        f"{message.organisation.name} sent you a message in vrm.\n\n"
        f"Read it in your inbox: {settings.VRM_ISSUER}/inbox/\n\n"
        "You chose to be told about vendor messages by e-mail; change that in your preferences "
        f"({settings.VRM_ISSUER}/data/preferences/).\n"
    )
    EmailMessage("A vendor sent you a message", body, to=[person.email]).send()
    return True


# The person's side.


def messages_for_person(*, person: User) -> QuerySet[Message]:
    return Message.objects.filter(person=person).select_related("organisation", "application")


def messages_unread_count(*, person: User) -> int:
    return Message.objects.filter(person=person, read_at__isnull=True).count()


def message_get_for_person(*, person: User, message_id: str) -> Message:
    key = uuid_or_404(message_id, message="No such message.")
    message = messages_for_person(person=person).filter(pk=key).first()
    if message is None:
        raise Http404("No such message.")
    return message


def message_content(*, message: Message) -> dict[str, str] | None:
    """The message's words, opened with the person's keys (StoreLocked if they are not open);
    None if they were sealed to a key the person no longer has (a store started afresh)."""
    keys = owner_keys(message.person)
    try:
        content = document_open(keys=keys, payload=bytes(message.payload), **_aad_doc(message))
    except StoreError:
        return None
    return {k: str(content.get(k) or "") for k in ("title", "body", "link")}


def _person_entry(message: Message, kind: str, *, reason: str = "", record_count: int | None = None) -> None:
    subject = person_subject(message.person)
    ledger_append(
        kind=kind,
        actor_type="person",
        actor_id=subject,
        subject=subject,
        grant_id=str(message.grant_id),
        record_ids=[message.pk],
        record_count=record_count,
        reason=reason,
    )


@transaction.atomic
def message_mark_read(*, message: Message) -> bool:
    """Mark the message read (once), with its ledger entry; return whether it was unread."""
    now = timezone.now()
    if not Message.objects.filter(pk=message.pk, read_at__isnull=True).update(read_at=now):
        return False
    message.read_at = now
    _person_entry(message, "message.read", reason=f"kind {message.kind}")
    return True


@transaction.atomic
def messages_mark_all_read(*, person: User) -> int:
    """Mark every unread message read ("mark all as read"): one ledger entry per grant."""
    unread = list(
        Message.objects.select_for_update()
        .filter(person=person, read_at__isnull=True)
        .values_list("pk", "grant_id")
    )
    if not unread:
        return 0
    Message.objects.filter(pk__in=[pk for pk, _ in unread]).update(read_at=timezone.now())
    by_grant: dict[Any, list[Any]] = {}
    for pk, grant_id in unread:
        by_grant.setdefault(grant_id, []).append(pk)
    subject = person_subject(person)
    for grant_id, ids in by_grant.items():
        ledger_append(
            kind="message.read",
            actor_type="person",
            actor_id=subject,
            subject=subject,
            grant_id=str(grant_id),
            record_ids=ids,
            reason="marked all read",
        )
    return len(unread)


@transaction.atomic
def message_answer(*, message: Message, response: str) -> Message:
    """Record the person's answer (interested or not); changeable until the message expires."""
    if response not in Message.Answer.values:
        raise ValidationError({"response": ["Choose interested or not interested."]})
    locked = Message.objects.select_for_update().get(pk=message.pk)
    if locked.is_expired():
        raise ValidationError({"response": ["This message has expired and can no longer be answered."]})
    if locked.response != response:
        locked.response, locked.answered_at = response, timezone.now()
        locked.save(update_fields=["response", "answered_at"])
        _person_entry(locked, "message.answered", reason=Message.Answer(response).label.lower())
    locked.person = message.person
    return locked


# A message's own reasons, read as the reasons of a report about its vendor (vendors/reports.py).
REPORT_REASONS = {
    Message.ReportReason.SPAM: Report.Reason.SPAM,
    Message.ReportReason.MISLEADING: Report.Reason.MISLEADING,
    Message.ReportReason.OFFENSIVE: Report.Reason.OTHER,
    Message.ReportReason.NOT_ASKED: Report.Reason.SPAM,
}


@transaction.atomic
def message_report(*, message: Message, reason: str, text: str = "", shared: bool = False) -> Message:
    """Report the message as abuse with a reason code; the vendor is never told.

    The first report of a message also reports its vendor (a Report, with the person's words and
    their choice to share them), in the same transaction: a report that cannot be made (words too
    long) leaves the message unreported.
    """
    if reason not in Message.ReportReason.values:
        raise ValidationError({"reason": ["Choose a reason from the list."]})
    locked = Message.objects.select_for_update().get(pk=message.pk)
    if locked.reported_at is None:
        locked.reported_at, locked.report_reason = timezone.now(), reason
        locked.save(update_fields=["reported_at", "report_reason"])
        _person_entry(locked, "message.reported", reason=reason)
        report_create(
            person=message.person,
            organisation=message.organisation,
            source=Report.Source.MESSAGE,
            source_ref=str(message.pk),
            reason=REPORT_REASONS[Message.ReportReason(reason)],
            text=text,
            shared=shared,
        )
    locked.person = message.person
    return locked


def _allowance_words(allowance: int | None) -> str:
    if allowance is None:
        return f"at most {WEEKLY_ALLOWANCE} a week, the default"
    return "muted" if allowance == 0 else f"at most {allowance} a week"


@transaction.atomic
def grant_messages_allowance_set(*, grant: Grant, by: User, allowance: int | None) -> Grant:
    """Lower (0..WEEKLY_ALLOWANCE) or mute (0) a grant's weekly messages; None is the default."""
    if allowance is not None and not 0 <= allowance <= WEEKLY_ALLOWANCE:
        raise ValidationError({"allowance": [f"Choose between 0 and {WEEKLY_ALLOWANCE} a week."]})
    locked = Grant.objects.select_for_update().get(pk=grant.pk)
    if locked.person_id != by.pk:
        raise Http404("No such grant.")
    if locked.messages_allowance != allowance:
        locked.messages_allowance = allowance
        locked.save(update_fields=["messages_allowance"])
        subject = person_subject(by)
        ledger_append(
            kind="message.allowance",
            actor_type="person",
            actor_id=subject,
            subject=subject,
            grant_id=str(locked.pk),
            scopes=["messages:send"],
            record_count=allowance_of(locked),
            reason=_allowance_words(allowance),
        )
    grant.messages_allowance = locked.messages_allowance
    return grant


def messages_export(*, person: User) -> list[dict[str, Any]]:
    """The person's messages for the export, their words opened (the export runs with their keys)."""
    rows = []
    for m in messages_for_person(person=person):
        try:
            content = message_content(message=m)
        except StoreError:
            content = None
        rows.append(
            {
                "id": str(m.pk),
                "vendor": m.organisation.name,
                "app": m.application.name,
                "grant": str(m.grant_id),
                "kind": m.kind,
                "title": content["title"] if content else None,
                "body": content["body"] if content else None,
                "link": (content["link"] or None) if content else None,
                "created_at": rfc3339(m.created_at),
                "expires_at": rfc3339(m.expires_at) if m.expires_at else None,
                "read_at": rfc3339(m.read_at) if m.read_at else None,
                "response": m.response or None,
                "answered_at": rfc3339(m.answered_at) if m.answered_at else None,
                "reported_at": rfc3339(m.reported_at) if m.reported_at else None,
                "report_reason": m.report_reason or None,
            }
        )
    return rows


def messages_erase(*, person: User) -> int:
    """Delete every message of the person (account deletion); return how many."""
    deleted, _ = Message.objects.filter(person=person).delete()
    return deleted
