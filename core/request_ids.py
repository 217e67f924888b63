"""Request ids: made by the server for every request, never taken from the client.

The ledger keeps a request's id for good (it is never erased) and shows it to auditors, so the id
must say nothing: a random 128-bit value (uuid4, 32 hex digits), made here for each request and
sent back in `X-Request-Id`. A client's own `X-Request-Id` is not read, stored, logged or echoed;
a vendor that wants to correlate logs its id next to the one in our response.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-Id"
# What a server-made id looks like (tests and log tooling can rely on it).
FORMAT = re.compile(r"[0-9a-f]{32}")


def request_id_new() -> str:
    """Return a fresh request id: 128 random bits as 32 lowercase hex digits."""
    return uuid.uuid4().hex


def request_id_of(request: object) -> str:
    """Return the server's id for this request, making one if the middleware did not run.

    `request` is Django's HttpRequest or a REST framework Request wrapping it (which reads the
    attribute through to it).
    """
    value = getattr(request, "vrm_request_id", None)
    if not isinstance(value, str):
        value = request_id_new()
        setattr(request, "vrm_request_id", value)  # noqa: B010 (an attribute of our own on a request)
    return value


class RequestIdMiddleware:
    """Give every request a server-made id and send it back in the X-Request-Id header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Whatever the client sent under the same header is replaced, not merely ignored, so no
        # later reader of request.META can mistake it for ours.
        request.META.pop("HTTP_X_REQUEST_ID", None)
        value = request_id_of(request)
        response = self.get_response(request)
        response[HEADER] = value
        return response
