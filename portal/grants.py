"""The person's grant pages: list, detail with history and access log, narrow, extend, revoke."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import dateformat, timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import person_required, signed_in_user
from audit.selectors import last_access_by_grant
from consent.agreements import agreement_current, agreement_json
from consent.forms import GrantAmendForm
from consent.models import Grant
from consent.scopes import SCOPES
from consent.selectors import grant_get_for_person, grants_for_person, receipt_get
from consent.services import grant_amend, grant_revoke
from consent.terms import AGREEMENTS
from portal.activity import entries_for_grant, entry_sentence, names_for_person
from vendors.messages import WEEKLY_ALLOWANCE, allowance_of, grant_messages_allowance_set
from vendors.reports import reports_for_person


def _days_left(grant: Grant) -> int:
    return max(0, (grant.ends_at - timezone.now()).days)


@person_required
def grant_list(request: HttpRequest) -> HttpResponse:
    person = signed_in_user(request)
    grants = list(grants_for_person(person=person))
    last = last_access_by_grant(grant_ids=[str(g.pk) for g in grants])
    rows = [
        {
            "grant": g,
            "live": g.is_live(),
            "days_left": _days_left(g),
            "last_access": last.get(str(g.pk)),
            "scopes": [SCOPES[s] for s in g.scopes],
        }
        for g in grants
    ]
    return render(
        request,
        "consent/grant_list.html",
        {
            "active": [r for r in rows if r["live"]],
            "ended": [r for r in rows if not r["live"]],
        },
    )


@person_required
@require_http_methods(["GET", "POST"])
def grant_detail(request: HttpRequest, grant_id: str) -> HttpResponse:
    person = signed_in_user(request)
    grant = grant_get_for_person(person=person, grant_id=grant_id)
    form = GrantAmendForm(request.POST or None, grant=grant)
    if request.method == "POST" and form.is_valid():
        try:
            grant = grant_amend(
                grant=grant,
                by=person,
                scopes=form.cleaned_data["scopes"],
                ends_on=form.cleaned_data["ends_on"],
            )
        except ValidationError as error:
            form.add_errors(error)
        else:
            messages.success(
                request,
                f"Your grant is updated: {grant.application.organisation.name} can see what you kept "
                f"until {dateformat.format(grant.ends_at, 'j M Y')}. It sees the change on its next request.",
            )
            return redirect("consent:grant", grant_id=grant.pk)
    agreement = grant.agreement
    entries = entries_for_grant(person=person, grant_id=str(grant.pk))[:200]
    names = names_for_person(person=person, entries=entries)
    return render(
        request,
        "consent/grant_detail.html",
        {
            "grant": grant,
            "live": grant.is_live(),
            "days_left": _days_left(grant),
            "form": form,
            "scopes": [SCOPES[s] for s in grant.scopes],
            "receipts": grant.receipts.all(),
            "agreement": agreement,
            "agreement_terms": AGREEMENTS.get(agreement.agreement_id) if agreement else None,
            "earlier_agreements": [a for a in grant.agreements.all() if a.pk != grant.agreement_id],
            "entries": [(e, entry_sentence(e, names)) for e in entries],
            "messages_allowed": "messages:send" in grant.scopes,
            "messages_allowance": allowance_of(grant),
            "messages_choices": range(WEEKLY_ALLOWANCE, -1, -1),
            "reports": reports_for_person(person=person).filter(source_ref=str(grant.pk)).count(),
        },
        status=400 if form.errors else 200,
    )


@person_required
@require_POST
def grant_messages_view(request: HttpRequest, grant_id: str) -> HttpResponse:
    """Lower or mute how many messages a week the grant's vendor may send (never above the default)."""
    person = signed_in_user(request)
    grant = grant_get_for_person(person=person, grant_id=grant_id)
    text = request.POST.get("allowance", "")
    if not (text.isascii() and text.isdigit() and int(text) <= WEEKLY_ALLOWANCE):
        messages.error(request, f"Choose how many messages a week, from 0 to {WEEKLY_ALLOWANCE}.")
        return redirect("consent:grant", grant_id=grant.pk)
    allowance = int(text)
    grant_messages_allowance_set(
        grant=grant, by=person, allowance=None if allowance == WEEKLY_ALLOWANCE else allowance
    )
    vendor = grant.application.organisation.name
    messages.success(
        request,
        f"{vendor} can no longer send you messages."
        if allowance == 0
        else f"{vendor} may send you at most {allowance} message{'s' if allowance != 1 else ''} a week.",
    )
    return redirect(f"{reverse('consent:grant', kwargs={'grant_id': grant.pk})}#messages-h")


@person_required
@require_http_methods(["GET", "POST"])
def grant_revoke_view(request: HttpRequest, grant_id: str) -> HttpResponse:
    person = signed_in_user(request)
    grant = grant_get_for_person(person=person, grant_id=grant_id)
    if request.method == "POST":
        grant_revoke(grant=grant, by=person)
        messages.success(
            request,
            f"{grant.application.organisation.name} can no longer see your data. "
            "Every key it held stopped working just now.",
        )
        return redirect("consent:grant", grant_id=grant.pk)
    return render(request, "consent/grant_revoke.html", {"grant": grant})


_EVENTS = {
    "created": "You granted",
    "amended": "You changed your grant to",
    "revoked": "You revoked your grant to",
    "expired": "Your grant ended for",
}


@person_required
def receipt_page(request: HttpRequest, grant_id: str, number: int) -> HttpResponse:
    """A receipt in words, its signature checked in the person's browser, the JSON a click away."""
    person = signed_in_user(request)
    grant = grant_get_for_person(person=person, grant_id=grant_id)
    receipt = receipt_get(grant=grant, number=number)
    document = receipt.document
    return render(
        request,
        "consent/receipt.html",
        {
            "grant": grant,
            "receipt": receipt,
            "document": document,
            "event": _EVENTS.get(receipt.event, receipt.event),
            "controller": (document.get("pii_controllers") or [{}])[0],
            "terms": document.get("grant") or {},
        },
    )


@person_required
def receipt_download(request: HttpRequest, grant_id: str, number: int) -> HttpResponse:
    person = signed_in_user(request)
    grant = grant_get_for_person(person=person, grant_id=grant_id)
    receipt = receipt_get(grant=grant, number=number)
    response = JsonResponse(
        {"number": receipt.number, "event": receipt.event, "document": receipt.document, "jws": receipt.jws},
        json_dumps_params={"indent": 2},
    )
    response["Content-Disposition"] = f'attachment; filename="receipt-{grant.pk}-{number}.json"'
    return response


@person_required
@require_GET
def agreement_download(request: HttpRequest, grant_id: str) -> HttpResponse:
    """The grant's signed MyTerms agreement record, exactly as the vendor retrieves it."""
    person = signed_in_user(request)
    grant = grant_get_for_person(person=person, grant_id=grant_id)
    record = agreement_current(grant=grant)
    response = JsonResponse(agreement_json(record), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="agreement-{grant.pk}.json"'
    return response
