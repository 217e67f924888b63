"""Logs: one JSON line per request and per background task, and nothing personal in any line.

Lines are written by python-json-logger (LOGGING in vrm/settings.py). A request's line holds
the time, level, the server's request id, the route's name (never the path: paths carry ids and
reset tokens), the method, the status, the duration and the kind of actor (anonymous, person,
vendor_staff, auditor, operator, or client for a vendor's OAuth client). A task's line holds its
task path, its id, its outcome and its duration, never its arguments.

`Scrub` runs on every record of every logger: it drops the request object Django attaches to its
own records (its repr carries the path and query string), and rewrites the path in
`django.request`'s "Not Found: /path" lines into the route's name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from core.request_ids import request_id_of

REQUEST_LOGGER = logging.getLogger("vrm.request")
TASK_LOGGER = logging.getLogger("vrm.task")
# The token endpoints a vendor's client calls with its own credentials (HTTP Basic).
_CLIENT_PATHS = ("/o/token/", "/o/introspect/", "/o/revoke_token/")


def route_of(request: HttpRequest) -> str:
    """Name the route a request was resolved to ("-" when none matched), never its path."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "-"
    return match.view_name or match.route or "-"


def actor_of(request: HttpRequest) -> str:
    """Say what kind of actor made the request, from its credentials; never who."""
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    if authorization[:7].lower() == "bearer " or request.path in _CLIENT_PATHS:
        return "client"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return str(getattr(user, "role", "") or "user")
    return "anonymous"


class RequestLogMiddleware:
    """Write one line per request: route name, status, duration, actor kind and request id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        status = response.status_code
        REQUEST_LOGGER.log(
            logging.ERROR if status >= 500 else logging.INFO,
            "request",
            extra={
                "request_id": request_id_of(request),
                "route": route_of(request),
                "method": request.method,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "actor": actor_of(request),
            },
        )
        return response


def task_finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
    """Write one line per finished background task (django-tasks' task_finished signal)."""
    started, finished = task_result.started_at, task_result.finished_at
    duration = (finished - started).total_seconds() * 1000 if started and finished else None
    status = str(getattr(task_result.status, "value", task_result.status))
    TASK_LOGGER.log(
        logging.ERROR if status == "FAILED" else logging.INFO,
        "task",
        extra={
            "task": task_result.task.module_path,
            "task_id": str(task_result.id),
            "status": status,
            "duration_ms": None if duration is None else round(duration, 1),
        },
    )


class Scrub(logging.Filter):
    """Keep paths, query strings and request objects out of every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = record.__dict__.pop("request", None)
        if isinstance(request, HttpRequest) and isinstance(record.args, tuple):
            # Django's "Not Found: /path" and the like: the path becomes the route's name (Django
            # passes it escaped, so compare with that form too).
            paths = {request.path, request.path.encode("unicode_escape").decode("ascii")}
            route = route_of(request)
            record.args = tuple(route if arg in paths else arg for arg in record.args)
            record.route = route
        return True
