"""The vendor message channel (messages:send): posting, the weekly allowance, status and answers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.utils import timezone

from audit.models import LedgerEntry
from consent.models import Grant
from consent.scopes import PERSON_SCOPES
from personal_data.pseudonyms import person_subject
from tests.vendors_api.conftest import Api, authorize, issue_token, make_person
from vendors.messages import grant_messages_allowance_set, message_answer, message_report
from vendors.models import Application, Message

TITLE = "Your size is back in stock"
BODY = "The navy jumper in M is back. <b>Ten percent</b> off this week."


def message(**fields: Any) -> dict[str, Any]:
    return {"kind": "offer", "title": TITLE, "body": BODY, "link": "https://acme.example/jumper", **fields}


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.content[:400]
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"{settings.VRM_ISSUER}/problems/{slug}"
    return body


@pytest.fixture
def grant(alice: Any, shop_app: Application) -> Grant:
    return authorize(alice, shop_app, ["profile:read", "messages:send"])


@pytest.fixture
def vendor(grant: Grant) -> Api:
    return Api(issue_token(grant))


def test_a_vendor_posts_a_message_and_reads_only_its_status_and_answer(
    vendor: Api, grant: Grant, alice: Any
) -> None:
    response = vendor.post("messages", message())
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "status"} and body["status"] == "delivered"
    assert response["Grant-Expires"].endswith("Z")

    detail = vendor.get(f"messages/{body['id']}")
    assert detail.status_code == 200
    assert detail.json() == {"id": body["id"], "status": "delivered", "response": None}

    stored = Message.objects.get(pk=body["id"])
    stored.person = alice
    message_answer(message=stored, response="interested")
    assert vendor.get(f"messages/{body['id']}").json()["response"] == "interested"
    message_answer(message=stored, response="not_interested")
    assert vendor.get(f"messages/{body['id']}").json()["response"] == "not_interested"
    # A report is never shown to the vendor, nor is reading it.
    message_report(message=stored, reason="spam")
    assert vendor.get(f"messages/{body['id']}").json() == {
        "id": body["id"],
        "status": "delivered",
        "response": "not_interested",
    }


def test_the_person_opens_answers_and_reports_a_message_in_the_inbox(
    vendor: Api, grant: Grant, alice: Any, client: Any
) -> None:
    from tests.conftest import login_person  # noqa: F401
