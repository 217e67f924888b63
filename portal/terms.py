"""The MyTerms pages: the public roster (HTML and JSON) and the person's choice of terms.

The roster JSON at /.well-known/myterms names which organisations accept which agreements, so
it reads both consent (the roster) and vendors (the declarations): it lives here, above both.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_http_methods

from accounts.permissions import person_required, signed_in_user
from consent.models import TermsChoice
from consent.selectors import grants_for_person, terms_choice_get
from consent.services import terms_choice_update
from consent.terms import AGREEMENTS, ROSTER, Agreement, agreement_get
from vendors.selectors import organisations_accepting, terms_accepted_by

ROSTER_MAX_AGE = 3600  # the roster changes only with a release
ACCEPTED_MAX_AGE = 300  # vendors' declarations change at any time


def _url(agreement: Agreement) -> str:
    return settings.VRM_ISSUER + reverse("terms-detail", args=[agreement.id])


@require_GET
@cache_control(public=True, max_age=ROSTER_MAX_AGE)
def terms_list(request: HttpRequest) -> HttpResponse:
    return render(request, "consent/terms_list.html", {"roster": ROSTER})


@require_GET
@cache_control(public=True, max_age=ACCEPTED_MAX_AGE)
def terms_detail(request: HttpRequest, agreement_id: str) -> HttpResponse:
    agreement = agreement_get(agreement_id=agreement_id)
    accepted_by = organisations_accepting(agreement_id=agreement.id)
    return render(request, "consent/terms_detail.html", {"agreement": agreement, "accepted_by": accepted_by})


@require_GET
@cache_control(public=True, max_age=ROSTER_MAX_AGE)
def terms_detail_json(request: HttpRequest, agreement_id: str) -> JsonResponse:
    agreement = agreement_get(agreement_id=agreement_id)
    return JsonResponse(agreement.as_json(url=_url(agreement)))


@require_GET
@cache_control(public=True, max_age=ACCEPTED_MAX_AGE)
def myterms_json(request: HttpRequest) -> JsonResponse:
    roster = [
        {"id": a.id, "version": a.version, "title": a.title, "summary": a.summary, "url": _url(a)}
        for a in ROSTER
    ]
    return JsonResponse({"roster": roster, "accepted_by": terms_accepted_by()})


class TermsInputError(ValueError):
    pass


def _posted(posted: QueryDict) -> dict[str, Any]:
    """Read the settings form: a place (1, 2, …) per agreement, a choice per vendor, the box."""
    places: dict[str, int] = {}
    for agreement in ROSTER:
        raw = posted.get(f"place-{agreement.id}", "").strip()
        if not raw:
            continue
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= len(ROSTER):
            raise TermsInputError(
                f"The place of “{agreement.title}” must be a number from 1 to {len(ROSTER)}."
            )
        places[agreement.id] = int(raw)
    if len(set(places.values())) != len(places):
        raise TermsInputError("Give each agreement you proffer a different place.")
    per_vendor: dict[str, str] = {}
    for key in posted:
        value = posted.get(key, "")
        if key.startswith("vendor-") and value:
            per_vendor[key.removeprefix("vendor-")] = value
    return {
        "proffered": sorted(places, key=places.__getitem__),
        "per_vendor": per_vendor,
        "allow_without_terms": "allow_without_terms" in posted,
    }


def _place(raw: str) -> int | None:
    raw = raw.strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 3 else None


@person_required
@require_http_methods(["GET", "POST"])
def terms_settings(request: HttpRequest) -> HttpResponse:
    person = signed_in_user(request)
    choice = terms_choice_get(person=person)
    vendors: dict[str, str] = {}
    for grant in grants_for_person(person=person):
        organisation = grant.application.organisation
        vendors.setdefault(str(organisation.pk), organisation.name)
    errors: list[str] = []
    if request.method == "POST":
        try:
            wanted = _posted(request.POST)
            terms_choice_update(person=person, **wanted)
        except TermsInputError as error:
            errors = [str(error)]
        except ValidationError as error:
            errors = [m for problems in error.message_dict.values() for m in problems]
        else:
            messages.success(request, "Your terms are saved.")
            return redirect("terms-settings")
    places: dict[str, int | None] = {
        agreement_id: n for n, agreement_id in enumerate(choice.proffered, start=1)
    }
    if errors:  # shown again as posted, so the person sees what to fix, not what was saved
        places = {a.id: _place(request.POST.get(f"place-{a.id}", "")) for a in ROSTER}
        choice = TermsChoice(
            person=person,
            per_vendor={pk: request.POST.get(f"vendor-{pk}", "") for pk in vendors},
            allow_without_terms="allow_without_terms" in request.POST,
        )
    return render(
        request,
        "consent/terms_settings.html",
        {
            "choice": choice,
            "errors": errors,
            "rows": [(a, places.get(a.id)) for a in sorted(ROSTER, key=lambda a: places.get(a.id) or 99)],
            "places": range(1, len(ROSTER) + 1),
            "vendors": [(pk, name, choice.per_vendor.get(pk, "")) for pk, name in vendors.items()],
            "agreements": AGREEMENTS,
            "roster": ROSTER,
        },
        status=400 if errors else 200,
    )
