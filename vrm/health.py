"""Health probes for load balancers and orchestrators: `/healthz` (alive) and `/readyz` (ready).

They are answered by a middleware near the top of the stack, before the host check, the HTTPS
redirect, sessions and sign-in: a probe comes from the load balancer to the node's own address
over plain HTTP and must get the node's answer, not a redirect or a 400 for its Host header.
Neither needs a sign-in or says anything about a person: each check names a component and
whether it answered, never an error message (which could carry a connection string).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.keys import index_subkey, master_keyring, signing_key
from core.problems import PROBLEM_CONTENT_TYPE

ALIVE = "/healthz"
READY = "/readyz"
OK = "ok"


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _cache() -> None:
    # A key of its own per probe: two nodes probing at once never read each other's value.
    key, value = f"vrm:readyz:{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, value, timeout=10)
    if cache.get(key) != value:
        raise RuntimeError("the cache did not return what was set")
    cache.delete(key)


def _keys() -> None:
    master_keyring()
    index_subkey("readyz")
    signing_key()


def _tasks() -> None:
    from django_tasks import task_backends

    # The database backend keeps its queue in a table of this database: it must be there.
    if type(task_backends["default"]).__module__.startswith("django_tasks_db"):
        from django_tasks_db.models import DBTaskResult

        DBTaskResult.objects.exists()


CHECKS: dict[str, tuple[Callable[[], None], str]] = {
    "database": (_database, "the database does not answer"),
    "cache": (_cache, "the cache does not answer"),
    "keys": (_keys, "a key is missing or malformed"),
    "tasks": (_tasks, "the task queue cannot be reached"),
}


def readiness() -> dict[str, str]:
    """Run every check; return each component's state: "ok", or what is wrong in a few words."""
    states = {}
    for name, (check, failure) in CHECKS.items():
        try:
            # A savepoint inside a transaction: a failed query must not abort the caller's.
            with transaction.atomic():
                check()
        except Exception:  # noqa: BLE001 (any failure means not ready; the reason is never echoed)
            states[name] = failure
        else:
            states[name] = OK
    return states


def _readyz() -> HttpResponse:
    states = readiness()
    failing = [name for name, state in states.items() if state != OK]
    if not failing:
        return JsonResponse({"status": "ready", "checks": states})
    body = {
        "type": f"{settings.VRM_ISSUER}/problems/not-ready",
        "title": "Not ready",
        "status": 503,
        "detail": "; ".join(states[name] for name in failing) + ".",
        "checks": states,
    }
    response = JsonResponse(body, status=503, content_type=PROBLEM_CONTENT_TYPE)
    response["Retry-After"] = "5"
    return response


class HealthMiddleware:
    """Answer GET and HEAD on /healthz and /readyz before the rest of the stack runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path not in (ALIVE, READY):
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = HttpResponse(status=405)
            response["Allow"] = "GET, HEAD"
        elif request.path == ALIVE:
            response = JsonResponse({"status": "alive"})
        else:
            response = _readyz()
        response["Cache-Control"] = "no-store"
        return response
