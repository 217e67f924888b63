"""The health probes: /healthz (alive) and /readyz (database, cache, keys, task queue).

A load balancer probes each node directly: by its own address, over plain HTTP, with no
session. The probes must answer it (not redirect it or refuse its Host header), say which
component is not ready, and never say anything about a person or a secret.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings

from vrm import health


def test_healthz_answers_without_the_database(client: Client) -> None:
    # No `db` fixture: any query here would fail the test.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}
    assert response["Cache-Control"] == "no-store"


def test_readyz_says_every_component_is_ready(db: Any, client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "cache": "ok", "keys": "ok", "tasks": "ok"},
    }


@override_settings(ALLOWED_HOSTS=["vrm.example"], SECURE_SSL_REDIRECT=True)
def test_a_probe_by_the_node_address_over_http_is_answered(db: Any) -> None:
    """Not a redirect to https, not a 400 for an unknown Host: the node's own answer."""
    probe = Client(HTTP_HOST="10.0.3.7:8000")
    assert probe.get("/healthz").status_code == 200
    assert probe.get("/readyz").status_code == 200
    # Every other path still gets the host check.
    assert probe.get("/terms/").status_code == 400


def test_other_methods_are_refused(client: Client) -> None:
    response = client.post("/readyz")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert client.head("/healthz").status_code == 200


def test_a_missing_key_makes_the_node_not_ready_and_says_which(db: Any, client: Client) -> None:
    with override_settings(VRM_LEDGER_SIGNING_KEY="not a key"):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["type"].endswith("/problems/not-ready")
    assert body["checks"] == {
        "database": "ok",
        "cache": "ok",
        "keys": "a key is missing or malformed",
        "tasks": "ok",
    }
    assert body["detail"] == "a key is missing or malformed."
    assert "not a key" not in response.content.decode()


def test_an_unreachable_cache_and_database_are_named_without_their_errors(
    db: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "postgres://vrm:s3cret-password@db.internal/vrm"

    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError(f"could not connect to {secret}")

    monkeypatch.setattr(cache, "set", down)
    monkeypatch.setattr(health, "connection", _Broken(down))
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "the database does not answer"
    assert checks["cache"] == "the cache does not answer"
    assert checks["keys"] == "ok"
    # The error's text (a connection string with its password) is never echoed.
    assert "s3cret" not in response.content.decode()
    assert connection.is_usable()


class _Broken:
    def __init__(self, fail: Any) -> None:
        self.cursor = fail


@override_settings(TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}})
def test_the_database_task_queue_is_checked(db: Any, client: Client) -> None:
    from django_tasks import task_backends

    assert type(task_backends["default"]).__module__.startswith("django_tasks_db")
    assert client.get("/readyz").json()["checks"]["tasks"] == "ok"
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE django_tasks_database_dbtaskresult RENAME TO gone")
    try:
        response = client.get("/readyz")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE gone RENAME TO django_tasks_database_dbtaskresult")
    assert response.status_code == 503
    assert response.json()["checks"]["tasks"] == "the task queue cannot be reached"
