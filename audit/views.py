"""The auditor portal."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.permissions import auditor_required


@auditor_required
def portal(request: HttpRequest) -> HttpResponse:
    return render(request, "audit/portal.html")
