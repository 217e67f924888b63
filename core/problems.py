"""RFC 9457 problem details for every API error, with the RFC 6750 WWW-Authenticate header."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is larger than 1 MiB."
    default_code = "too_large"


class InsufficientScope(exceptions.PermissionDenied):
    default_detail = "The grant does not cover this request."
    default_code = "insufficient_scope"

    def __init__(self, scopes: list[str]) -> None:
        super().__init__(f"This needs the scope {' '.join(scopes)}, which the grant does not include.")
        self.scopes = scopes


class OrganisationUnverified(exceptions.PermissionDenied):
    """An organisation scope used by an organisation the operator has not verified (403)."""

    default_detail = (
        "Only organisations verified by the operator can use this scope, and this organisation is "
        "not verified yet. Ask the operator to verify it."
    )
    default_code = "organisation_unverified"
    problem = ("organisation-unverified", "The organisation is not verified")


class OrganisationSuspended(exceptions.PermissionDenied):
    """Every request of an organisation the operator has suspended or ended (403); says why."""

    default_detail = "The operator has suspended this organisation."
    default_code = "organisation_suspended"
    problem = ("organisation-suspended", "The organisation is suspended")


class IdempotencyConflict(exceptions.APIException):
    status_code = 409
    default_detail = "This Idempotency-Key was already used with a different request body."
    default_code = "idempotency_conflict"


# (slug, title) per status: the `type` is the issuer's /problems/<slug>, documented in docs/vendors.md.
_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("invalid-input", "Invalid input"),
    401: ("invalid-token", "Missing, invalid or expired access token"),
    403: ("insufficient-scope", "The grant does not allow this"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("idempotency-conflict", "Idempotency conflict"),
    413: ("too-large", "Request too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("rate-limited", "Too many requests"),
    500: ("server-error", "Internal server error"),
}


def problem_type(status: int) -> str:
    slug = _PROBLEMS.get(status, ("error", ""))[0]
    return f"{settings.VRM_ISSUER}/problems/{slug}"


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
        return out
    if isinstance(detail, list) and detail and all(isinstance(d, (dict, list)) for d in detail):
        out = {}
        for index, value in enumerate(detail):
            out.update(_flatten(value, f"{prefix}.{index}"))
        return out
    items = detail if isinstance(detail, list) else [detail]
    return {prefix or "non_field_errors": [str(item) for item in items]}


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Turn every API exception into application/problem+json; never a stack trace."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    response = exception_handler(exc, context)
    if response is None:
        return None
    status = response.status_code
    # An exception may name a problem type of its own, more precise than its status's.
    slug, title = getattr(exc, "problem", None) or _PROBLEMS.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": f"{settings.VRM_ISSUER}/problems/{slug}",
        "title": title,
        "status": status,
    }
    if isinstance(exc, exceptions.ValidationError):
        body["detail"] = "The request has invalid fields; see errors."
        body["errors"] = _flatten(exc.detail)
    else:
        detail = getattr(exc, "detail", None)
        body["detail"] = str(detail) if detail is not None else title
    request = context.get("request")
    if status == 401:
        presented = bool(request is not None and request.META.get("HTTP_AUTHORIZATION"))
        response["WWW-Authenticate"] = (
            'Bearer realm="vrm", error="invalid_token"' if presented else 'Bearer realm="vrm"'
        )
        if presented:
            body["detail"] = "The access token is invalid, expired, or its grant was revoked or has ended."
    if isinstance(exc, InsufficientScope):
        body["scope"] = " ".join(exc.scopes)
        response["WWW-Authenticate"] = (
            f'Bearer realm="vrm", error="insufficient_scope", scope="{body["scope"]}"'
        )
    response.data = body
    response.content_type = PROBLEM_CONTENT_TYPE
    view = context.get("view")
    if view is not None and hasattr(view, "on_refusal"):
        view.on_refusal(request, status, slug)
    return response


def body_limit_check(request: HttpRequest, limit: int = 1024 * 1024) -> None:
    """Refuse a request body over the API's limit before anything reads it (413)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise RequestTooLarge()


def problem_response(status: int, title: str, detail: str) -> HttpResponse:
    """Return an RFC 9457 problem document from a plain Django view."""
    from django.http import JsonResponse

    body = {"type": problem_type(status), "title": title, "status": status, "detail": detail}
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 for the whole site: problem+json under /api/, the HTML page elsewhere."""
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return problem_response(404, "Not found", "There is no such resource.")
    return page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """500 for the whole site: problem+json under /api/, the standalone HTML page elsewhere.

    Nothing here may touch the database or the request's user: either may be what failed.
    """
    from django.views.defaults import server_error as html_server_error

    if request.path.startswith("/api/"):
        detail = "Something went wrong on the server. Try again later."
        return problem_response(500, "Internal server error", detail)
    return html_server_error(request)
