"""Small cross-cutting middleware."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from urllib.parse import unquote_to_bytes

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


# RFC 9110 §5.5: a header field value holds no control character but the horizontal tab.
_HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 7617 §2: HTTP Basic user-ids and passwords hold no control character at all.
_CREDENTIAL_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
# The header values WSGI passes outside the HTTP_ prefix.
_PLAIN_HEADERS = ("CONTENT_TYPE", "CONTENT_LENGTH")


class RefuseNulMiddleware:
    """Answer 400 to a request with NUL in its path, query or form fields, or a control
    character in a header (the decoded HTTP Basic credentials included).

    No text this site stores or looks up may hold NUL (PostgreSQL refuses it in text columns,
    and no person, vendor or auditor ever means it), so the one check here guards every view,
    including the OAuth endpoints, URL parameters that no form validates, and headers that
    reach a query (the Basic client id, Idempotency-Key).
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
        if _bad_header(request.META):
            return _refusal(request, "A request header contains a control character.")
        if _bad_basic_credentials(request.META.get("HTTP_AUTHORIZATION", "")):
            return _refusal(request, "The HTTP Basic credentials contain a control character.")
        return self.get_response(request)


def _bad_header(meta: Mapping[str, object]) -> bool:
    return any(
        (name.startswith("HTTP_") or name in _PLAIN_HEADERS)
        and isinstance(value, str)
        and _HEADER_CONTROL.search(value) is not None
        for name, value in meta.items()
    )


def _bad_basic_credentials(header: str) -> bool:
    """Whether Basic credentials decode to text with a control character in it.

    The header itself is clean (checked before), but base64 hides any byte, and OAuth clients
    form-encode their id and secret (RFC 6749 §2.3.1), so "%00" is a NUL once unquoted: both
    are looked at. Decoding is lenient (missing padding, stray characters), as a library that
    reads the header may be. What is not UTF-8 once decoded is no client id anyone looks up
    (django-oauth-toolkit refuses it first), and is left to the view to answer 401: a Bearer
    token sent as "Basic <token>" decodes to random bytes.
    """
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    encoded = encoded.strip()
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=False)
        raw.decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return False
    return (
        _CREDENTIAL_CONTROL.search(raw) is not None
        or _CREDENTIAL_CONTROL.search(unquote_to_bytes(raw.replace(b"+", b" "))) is not None
    )


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
