"""The person's inbox pages: the list, a reminder, an alert, and "mark all read"."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import person_required, signed_in_user
from portal.inbox import INBOX_KINDS, inbox_items, inbox_mark_all_read
from portal.reminders import reminder_get_for_person, reminder_mark_read, reminder_view
from vendors.alerts import alert_get_for_person


@person_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """Recall alerts and reminders, newest first; filter by kind and by unread."""
    person = signed_in_user(request)
    kind = request.GET.get("kind", "")
    if kind not in INBOX_KINDS:
        kind = ""
    unread_only = request.GET.get("unread") == "1"
    items = inbox_items(person=person, kind=kind, unread_only=unread_only)
    return render(
        request,
        "personal_data/inbox.html",
        {
            "items": items,
            "kinds": INBOX_KINDS.items(),
            "kind": kind,
            "unread_only": unread_only,
            "filtered": bool(kind or unread_only),
            "any_unread": any(item.unread for item in items),
        },
    )


@person_required
@require_GET
def inbox_reminder(request: HttpRequest, reminder_id: str) -> HttpResponse:
    """One reminder, worked out from the person's own record or grant; opening it marks it read."""
    person = signed_in_user(request)
    reminder = reminder_get_for_person(person=person, reminder_id=reminder_id)
    view = reminder_view(person=person, reminder=reminder)
    reminder_mark_read(reminder=reminder)
    return render(request, "personal_data/inbox_reminder.html", view)


@person_required
@require_GET
def inbox_alert(request: HttpRequest, alert_id: str) -> HttpResponse:
    """An alert is shown on the alerts page, which marks it read."""
    person = signed_in_user(request)
    alert = alert_get_for_person(person=person, alert_id=alert_id)
    return redirect(f"{reverse('alerts')}#alert-{alert.pk}")


@person_required
@require_POST
def inbox_read_all(request: HttpRequest) -> HttpResponse:
    person = signed_in_user(request)
    count = inbox_mark_all_read(person=person)
    messages.success(
        request,
        f"Marked {count} item{'s' if count != 1 else ''} as read." if count else "Nothing was unread.",
    )
    return redirect("inbox")
