"""Small cross-cutting middleware."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.defaults import bad_request

from core.problems import PROBLEM_CONTENT_TYPE, problem_type

NUL = "\x00"
# Paths whose clients read problem+json rather than a page.
_MACHINE_PREFIXES = ("/api/", "/o/", "/.well-known/")


class NoStoreForAuthenticatedMiddleware:
    """Keep pages shown to a signed-in user out of every cache (shared and browser)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
        return response


class RefuseNulMiddleware:
    """Answer 400 to a request with a NUL character in its path, query or form fields.

    No text this site stores or looks up may hold NUL (PostgreSQL refuses it in text columns,
    and no person, vendor or auditor ever means it), so the one check here guards every view,
    including the OAuth endpoints and URL parameters that no form validates.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            NUL in request.path
            or _has_nul(request.GET)
            or (request.method == "POST" and _has_nul(request.POST))
        ):
            return _refusal(request, "The request contains a NUL character, which no field accepts.")
        return self.get_response(request)


def _has_nul(data: object) -> bool:
    lists = getattr(data, "lists", None)
    if lists is None:
        return False
    return any(NUL in key or any(NUL in value for value in values) for key, values in lists())


def _refusal(request: HttpRequest, detail: str) -> HttpResponse:
    if request.path.startswith(_MACHINE_PREFIXES):
        body = {"type": problem_type(400), "title": "Invalid input", "status": 400, "detail": detail}
        return JsonResponse(body, status=400, content_type=PROBLEM_CONTENT_TYPE)
    return bad_request(request, exception=ValueError(detail))
