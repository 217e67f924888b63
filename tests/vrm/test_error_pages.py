"""Every error a person can meet is a vrm page with plain words and a way home, never Django's.

The suite runs with VRM_DEBUG=False (tests/env.py), so these are the production pages.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client

pytestmark = pytest.mark.urls("tests.vrm.error_urls")

HOME_LINK = '<a class="button" href="/">Go to your start page</a>'
# Phrases of Django's own fallback pages (django.views.defaults, django/views/templates/csrf_403.html).
DJANGO_DEFAULTS = ("Server Error (500)", "Bad Request (400)", "CSRF verification failed", "Forbidden (403)")


def _branded(response: Any, status: int, heading: str) -> str:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    body: str = response.content.decode()
    assert f"<h1>{heading}</h1>" in body
    assert HOME_LINK in body
    assert "css/vrm.css" in body and '<html lang="en">' in body
    assert not any(phrase in body for phrase in DJANGO_DEFAULTS)
    return body


def test_debug_is_off() -> None:
    assert settings.DEBUG is False


@pytest.mark.django_db
def test_400_page(client: Client) -> None:
    _branded(client.get("/test-errors/400/"), 400, "We could not understand that request")


@pytest.mark.django_db
def test_400_page_for_an_unknown_host(client: Client) -> None:
    _branded(client.get("/", HTTP_HOST="elsewhere.example"), 400, "We could not understand that request")


@pytest.mark.django_db
def test_403_page_without_a_message_says_whose_page_it_is(client: Client) -> None:
    body = _branded(client.get("/test-errors/403/"), 403, "Not allowed")
    assert "This page is not for your kind of account." in body


@pytest.mark.django_db
def test_403_page_for_a_person_in_the_audit_portal(client: Client, alice: Any) -> None:
    client.force_login(alice)
    body = _branded(client.get("/audit/"), 403, "Not allowed")
    assert "This page is not for your kind of account." in body
    # Still the person's own navigation, so they can get back to their pages.
    assert 'href="/dashboard/"' in body


@pytest.mark.django_db
def test_403_page_for_a_form_without_its_csrf_token() -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "alice@example.com", "password": "x"})
    body = _branded(response, 403, "Your form was not sent")
    assert "Nothing was changed." in body


@pytest.mark.django_db
def test_404_page(client: Client) -> None:
    body = _branded(client.get("/no-such-page/"), 404, "Not found")
    assert "not yours to see" in body


@pytest.mark.django_db
def test_404_under_the_api_is_a_problem_document(client: Client) -> None:
    response = client.get("/api/v1/no-such-resource")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
def test_500_page() -> None:
    client = Client(raise_request_exception=False)
    body = _branded(client.get("/test-errors/500/"), 500, "Something went wrong on our side")
    assert "a fault in the code" not in body


@pytest.mark.django_db
def test_500_under_the_api_is_a_problem_document() -> None:
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/test-errors/500/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 500 and body["type"].endswith("/problems/server-error")
    assert "a fault in the code" not in response.content.decode()


def test_500_page_renders_without_a_request_or_a_database() -> None:
    # No django_db mark: any query would fail the test. server_error renders with no context.
    body = render_to_string("500.html")
    assert "<h1>Something went wrong on our side</h1>" in body and HOME_LINK in body
