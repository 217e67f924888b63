"""The person reports a vendor: from a grant, an activity line or a recall alert; and their reports.

A message is reported from its own page (portal.inboxviews), with the same words and choice to
share. The vendor is never told of any report; reviewers read the words only if the person shares
them, and never learn who wrote them (vendors/reports.py, docs/abuse.md).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from accounts.permissions import person_required, signed_in_user
from vendors.models import Report
from vendors.reports import (
    TEXT_MAX,
    report_create,
    report_source_organisation,
    report_text,
    reports_for_person,
)

SHARE_HELP = (
    "If you tick this, the reviewers (independent auditors) read your words. They never learn who "
    "wrote them. Unticked, your words stay sealed to you and the reviewers only count the report."
)
VENDOR_NEVER_TOLD = "The vendor is never told of any report, yours or anyone's."


class ReportForm(forms.Form):
    """The words and the choice to share that every report form has (a message has its own reasons)."""

    text = forms.CharField(
        label="What happened? (optional)",
        required=False,
        strip=True,
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 5, "maxlength": TEXT_MAX, "aria-describedby": "text-help"}),
        error_messages={"max_length": f"Write at most {TEXT_MAX} characters (you wrote %(show_value)d)."},
    )
    shared = forms.BooleanField(
        label="Share my report with the reviewers",
        required=False,
        widget=forms.CheckboxInput(attrs={"aria-describedby": "share-help"}),
    )


class VendorReportForm(ReportForm):
    reason = forms.ChoiceField(
        label="What is wrong?",
        choices=Report.Reason.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose what is wrong from the list.",
            "invalid_choice": "Choose what is wrong from the list.",
        },
    )
    field_order = ["reason", "text", "shared"]


def form_errors_from(form: forms.Form, error: ValidationError) -> None:
    for name, texts in error.message_dict.items():
        form.add_error(None if name == "__all__" or name not in form.fields else name, texts)


# What the report is about, in the form's first sentence: "Tell the reviewers if <vendor> …".
_ABOUT = {
    Report.Source.GRANT: "misuses the access you granted it",
    Report.Source.ACCESS: "asked for more than it should in this request",
    Report.Source.ALERT: "sent you a recall alert that looks wrong or abusive",
}
_BACK = {
    Report.Source.GRANT: lambda ref: ("consent:grant", {"grant_id": ref}, "← Back to the grant"),
    Report.Source.ACCESS: lambda ref: ("activity", {}, "← Back to your activity"),
    Report.Source.ALERT: lambda ref: ("alerts", {}, "← Back to your alerts"),
}


def _report(request: HttpRequest, source: Report.Source, source_ref: str) -> HttpResponse:
    person = signed_in_user(request)
    organisation = report_source_organisation(person=person, source=source, source_ref=source_ref)
    form = VendorReportForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            report_create(
                person=person,
                organisation=organisation,
                source=source,
                source_ref=source_ref,
                reason=form.cleaned_data["reason"],
                text=form.cleaned_data["text"],
                shared=form.cleaned_data["shared"],
            )
        except ValidationError as error:
            form_errors_from(form, error)
        else:
            messages.success(
                request,
                f"Thank you: your report about {organisation.name} is sent to the reviewers. "
                f"{organisation.name} is not told.",
            )
            return redirect("reports")
    name, kwargs, back = _BACK[source](source_ref)
    return render(
        request,
        "personal_data/report_form.html",
        {
            "organisation": organisation,
            "about": _ABOUT[source],
            "form": form,
            "back_url": reverse(name, kwargs=kwargs),
            "back_label": back,
            "share_help": SHARE_HELP,
            "never_told": VENDOR_NEVER_TOLD,
        },
        status=400 if form.errors else 200,
    )


@person_required
@require_http_methods(["GET", "POST"])
def grant_report(request: HttpRequest, grant_id: str) -> HttpResponse:
    """Report the vendor of one of the person's grants."""
    return _report(request, Report.Source.GRANT, grant_id)


@person_required
@require_http_methods(["GET", "POST"])
def activity_report(request: HttpRequest, entry_id: int) -> HttpResponse:
    """Report the vendor behind one line of the person's activity."""
    return _report(request, Report.Source.ACCESS, str(entry_id))


@person_required
@require_http_methods(["GET", "POST"])
def alert_report(request: HttpRequest, alert_id: str) -> HttpResponse:
    """Report the publisher of one of the person's recall alerts."""
    return _report(request, Report.Source.ALERT, alert_id)


@person_required
@require_GET
def reports(request: HttpRequest) -> HttpResponse:
    """The person's own reports, newest first, their words opened with the person's keys."""
    person = signed_in_user(request)
    rows = [{"report": r, "text": report_text(report=r)} for r in reports_for_person(person=person)[:200]]
    return render(request, "personal_data/reports.html", {"rows": rows})
