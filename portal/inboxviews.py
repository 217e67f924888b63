"""The person's inbox pages: the list, a reminder, an alert, a vendor message, and "mark all read"."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import person_required, signed_in_user
from portal.inbox import INBOX_KINDS, inbox_items, inbox_mark_all_read
from portal.reminders import reminder_get_for_person, reminder_mark_read, reminder_view
from portal.reportviews import SHARE_HELP, VENDOR_NEVER_TOLD, ReportForm, form_errors_from
from vendors.alerts import alert_get_for_person
from vendors.messages import (
    link_host,
    message_answer,
    message_content,
    message_get_for_person,
    message_mark_read,
    message_report,
)
from vendors.models import Message


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


def _message_context(message: Message) -> dict[str, object]:
    content = message_content(message=message)  # StoreLocked: the middleware asks to unlock
    return {
        "message": message,
        "content": content,
        "link_host": link_host(content["link"]) if content and content["link"] else "",
        "expired": message.is_expired(),
        "kind_label": Message.Kind(message.kind).label,
        "answers": Message.Answer.choices,
        "reasons": Message.ReportReason.choices,
    }


@person_required
@require_GET
def inbox_message(request: HttpRequest, message_id: str) -> HttpResponse:
    """A vendor's message, opened with the person's keys; opening it marks it read."""
    person = signed_in_user(request)
    message = message_get_for_person(person=person, message_id=message_id)
    context = _message_context(message)
    message_mark_read(message=message)
    return render(request, "personal_data/inbox_message.html", context)


@person_required
@require_POST
def inbox_message_answer(request: HttpRequest, message_id: str) -> HttpResponse:
    """Answer interested / not interested; the vendor sees only this answer."""
    person = signed_in_user(request)
    message = message_get_for_person(person=person, message_id=message_id)
    try:
        message = message_answer(message=message, response=request.POST.get("response", ""))
    except ValidationError as error:
        context = {**_message_context(message), "errors": error.messages}
        return render(request, "personal_data/inbox_message.html", context, status=400)
    said = Message.Answer(message.response).label.lower()
    messages.success(
        request, f"You answered “{said}”. {message.organisation.name} can see this answer, nothing else."
    )
    return redirect("inbox-message", message_id=message.pk)


@person_required
@require_http_methods(["GET", "POST"])
def inbox_message_report(request: HttpRequest, message_id: str) -> HttpResponse:
    """Report a message as abuse: a reason, words if wanted, confirmed; the vendor is not told."""
    person = signed_in_user(request)
    message = message_get_for_person(person=person, message_id=message_id)
    form = ReportForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            message_report(
                message=message,
                reason=request.POST.get("reason", ""),
                text=form.cleaned_data["text"],
                shared=form.cleaned_data["shared"],
            )
        except ValidationError as error:
            form_errors_from(form, error)  # the reason's error shows above the form
        else:
            messages.success(
                request,
                "Thank you: the message is reported. Auditors see how many messages each vendor had "
                "reported; the vendor is not told it was you.",
            )
            return redirect("inbox-message", message_id=message.pk)
    return render(
        request,
        "personal_data/inbox_message_report.html",
        {
            "message": message,
            "reasons": Message.ReportReason.choices,
            "chosen": request.POST.get("reason", ""),
            "form": form,
            "share_help": SHARE_HELP,
            "never_told": VENDOR_NEVER_TOLD,
        },
        status=400 if form.errors else 200,
    )
