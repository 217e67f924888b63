"""The person's portal pages."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.permissions import person_required
from audit.activity import activity_for_person, entry_sentence, grant_dates_for_person
from consent.selectors import grants_live_for_person
from personal_data.categories import RECORD_CATEGORIES
from personal_data.selectors import category_counts


@person_required
def dashboard(request: HttpRequest) -> HttpResponse:
    counts = category_counts(owner=request.user)
    categories = [(RECORD_CATEGORIES[name].label, n) for name, n in counts.items()]
    return render(
        request,
        "personal_data/dashboard.html",
        {
            "categories": categories,
            "grants": grants_live_for_person(person=request.user),
            "latest": [(e, entry_sentence(e)) for e in activity_for_person(person=request.user)[:5]],
        },
    )


@person_required
def activity(request: HttpRequest) -> HttpResponse:
    """Show every access to the person's data: when, who, what, with a proof link."""
    page = Paginator(activity_for_person(person=request.user), 50).get_page(request.GET.get("page"))
    grant_dates = grant_dates_for_person(person=request.user)
    rows = [(entry, entry_sentence(entry, grant_dates=grant_dates)) for entry in page]
    return render(request, "personal_data/activity.html", {"page": page, "rows": rows})
