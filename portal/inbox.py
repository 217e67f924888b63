"""The person's inbox: recall alerts, the store's reminders, vendor messages and offers on the
person's intents, newest first.

Each kind of item becomes an `InboxItem`. A vendor message's title is sealed to the person: the
list shows it only while their store is open (their keys held for this request), otherwise it
names the sender only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.urls import reverse

from accounts.models import User
from personal_data.keys import keys_held
from personal_data.models import ReminderKind
from portal.reminders import (
    STANDING_KINDS,
    reminders_for_person,
    reminders_mark_read,
    reminders_unread_count,
    standing_notice_vendors,
)
from vendors.alerts import alerts_for_person, alerts_mark_read, alerts_unread_count
from vendors.intents import offer_is_unseen, offers_for_person, offers_mark_seen, offers_unseen
from vendors.messages import (
    message_content,
    messages_for_person,
    messages_mark_all_read,
    messages_unread_count,
)
from vendors.models import Message

# The filter's choices: the item kinds a person can pick.
INBOX_KINDS = {
    "alert": "Recall alerts",
    ReminderKind.REFILL.value: "Refills",
    ReminderKind.WARRANTY.value: "Warranties",
    ReminderKind.GRANT_ENDING.value: "Grants ending",
    ReminderKind.GRANT_SUMMARY.value: "Grant summaries",
    "message": "Vendor messages",
    "offer": "Offers on your intents",
}


@dataclass(frozen=True)
class InboxItem:
    kind: str
    kind_label: str
    title: str
    created_at: dt.datetime
    unread: bool
    url: str
    danger: bool = False


def inbox_unread_count(*, person: User) -> int:
    return (
        alerts_unread_count(person=person)
        + reminders_unread_count(person=person)
        + messages_unread_count(person=person)
        + offers_unseen(person=person).count()
    )


def _message_title(message: Message, store_open: bool) -> str:
    sender = message.organisation.name
    if store_open:
        content = message_content(message=message)
        if content is not None:
            return f"{sender}: {content['title']}"
    return f"A message from {sender}"


def inbox_items(*, person: User, kind: str = "", unread_only: bool = False) -> list[InboxItem]:
    """The person's inbox, optionally one kind or only what is unread.

    A reminder's title here says only its kind: what it is about (a medication, an appliance)
    is opened from the person's records on the reminder's own page.
    """
    items: list[InboxItem] = []
    if kind in ("", "alert"):
        alerts = alerts_for_person(person=person)
        if unread_only:
            alerts = alerts.filter(read_at__isnull=True)
        items += [
            InboxItem(
                kind="alert",
                kind_label="Recall alert",
                title=a.recall.title,
                created_at=a.created_at,
                unread=a.read_at is None,
                url=reverse("inbox-alert", kwargs={"alert_id": a.pk}),
                danger=a.recall.severity == "danger",
            )
            for a in alerts
        ]
    if kind == "" or kind in ReminderKind.values:
        reminders = reminders_for_person(person=person)
        if kind:
            reminders = reminders.filter(kind=kind)
        if unread_only:
            reminders = reminders.filter(read_at__isnull=True)
        found_reminders = list(reminders)
        vendors = standing_notice_vendors(
            person=person, grant_ids=[r.subject for r in found_reminders if r.kind in STANDING_KINDS]
        )
        for r in found_reminders:
            label = ReminderKind(r.kind).label
            due = f", {r.due_on:%-d %b %Y}" if r.due_on else ""
            notice = r.kind in STANDING_KINDS
            items.append(
                InboxItem(
                    kind=r.kind,
                    kind_label="Notice" if notice else "Reminder",
                    title=f"{label}: {vendors.get(r.subject, 'a vendor')}" if notice else f"{label}{due}",
                    created_at=r.created_at,
                    unread=r.read_at is None,
                    url=reverse("inbox-reminder", kwargs={"reminder_id": r.pk}),
                )
            )
    if kind in ("", "message"):
        found = messages_for_person(person=person)
        if unread_only:
            found = found.filter(read_at__isnull=True)
        store_open = keys_held(person) is not None
        items += [
            InboxItem(
                kind="message",
                kind_label=f"{Message.Kind(m.kind).label} from a vendor",
                title=_message_title(m, store_open),
                created_at=m.created_at,
                unread=m.read_at is None,
                url=reverse("inbox-message", kwargs={"message_id": m.pk}),
            )
            for m in found
        ]
    if kind in ("", "offer"):
        offers = offers_unseen(person=person) if unread_only else offers_for_person(person=person)
        items += [
            InboxItem(
                kind="offer",
                kind_label="Offer on your intent",
                title=f"{o.organisation.name}: {o.price} {o.currency} for “{o.intent.title}”",
                created_at=o.amended_at or o.created_at,
                unread=offer_is_unseen(o),
                url=reverse("intent-detail", kwargs={"intent_id": o.intent_id}) + f"#offer-{o.pk}",
            )
            for o in offers
        ]
    items.sort(key=lambda item: item.created_at, reverse=True)
    return items


def inbox_mark_all_read(*, person: User) -> int:
    return (
        alerts_mark_read(person=person)
        + reminders_mark_read(person=person)
        + messages_mark_all_read(person=person)
        + offers_mark_seen(person=person)
    )
