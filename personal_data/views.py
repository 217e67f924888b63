"""The person's portal pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.permissions import person_required
from personal_data.categories import RECORD_CATEGORIES
from personal_data.selectors import category_counts


@person_required
def dashboard(request: HttpRequest) -> HttpResponse:
    counts = category_counts(owner=request.user)
    categories = [(RECORD_CATEGORIES[name].label, n) for name, n in counts.items()]
    return render(request, "personal_data/dashboard.html", {"categories": categories})
