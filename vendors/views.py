"""The vendor portal (organisations, apps and recalls arrive with the consent work)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.permissions import vendor_required


@vendor_required
def portal(request: HttpRequest) -> HttpResponse:
    return render(request, "vendors/portal.html")
