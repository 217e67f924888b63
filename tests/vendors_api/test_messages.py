"""The vendor message channel (messages:send): posting, the weekly allowance, status and answers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from audit.models import LedgerEntry
from consent.models import Grant
from personal_data.keys import StoreLocked, keys_drop
from personal_data.pseudonyms import person_subject
from personal_data.services import preferences_update
from tests.consent.conftest import make_app
from tests.vendors_api.conftest import Api, authorize, issue_token, make_person
from vendors.messages import (
    grant_messages_allowance_set,
    message_answer,
    message_content,
    message_mark_read,
    message_report,
)
from vendors.models import Application, Message, Organisation

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
def stranger_app(db: Any) -> Application:
    org = Organisation.objects.create(
        name="Stranger Ltd", website="https://stranger.example", privacy_contact="p@stranger.example"
    )
    return make_app(org, name="Stranger app", secret="other-" + "y" * 40)


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


def test_without_messages_send_the_vendor_gets_insufficient_scope(
    grant: Grant, shop_app: Application
) -> None:
    posted = Api(issue_token(grant)).post("messages", message()).json()["id"]
    narrow = Api(issue_token(grant, scopes=["profile:read"]))
    for response in (narrow.post("messages", message()), narrow.get(f"messages/{posted}")):
        body = _problem(response, 403, "insufficient-scope")
        assert body["scope"] == "messages:send"
        assert 'error="insufficient_scope", scope="messages:send"' in response["WWW-Authenticate"]
    assert Message.objects.count() == 1


def test_another_grants_or_persons_message_is_a_404_like_a_missing_one(
    vendor: Api, grant: Grant, shop_app: Application, stranger_app: Application
) -> None:
    mine = vendor.post("messages", message()).json()["id"]
    bob = make_person("bob")
    bobs = (
        Api(issue_token(authorize(bob, shop_app, ["messages:send"]))).post("messages", message()).json()["id"]
    )
    stranger = Api(issue_token(authorize(grant.person, stranger_app, ["messages:send"])))
    theirs = stranger.post("messages", message()).json()["id"]
    unknown = vendor.get(f"messages/{uuid.uuid4()}")
    _problem(unknown, 404, "not-found")
    for refused in (
        vendor.get(f"messages/{bobs}"),
        vendor.get(f"messages/{theirs}"),
        vendor.get("messages/x"),
    ):
        _problem(refused, 404, "not-found")
        assert refused.json() == unknown.json()
        assert refused.headers.keys() == unknown.headers.keys()
    _problem(stranger.get(f"messages/{mine}"), 404, "not-found")


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"link": "http://acme.example/jumper"}, "link"),
        ({"link": "https://user:pw@acme.example/"}, "link"),
        ({"link": "javascript:alert(1)"}, "link"),
        ({"title": "x" * 121}, "title"),
        ({"body": "x" * 2001}, "body"),
        ({"kind": "advert"}, "kind"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "not a time"}, "expires_at"),
        ({"price": "10.00"}, "price"),
        ({"title": ""}, "title"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(vendor: Api, fields: dict[str, Any], bad: str) -> None:
    body = _problem(vendor.post("messages", message(**fields)), 400, "invalid-input")
    assert set(body["errors"]) == {bad}
    assert Message.objects.count() == 0


def test_the_expiry_is_at_most_ninety_days_ahead(vendor: Api) -> None:
    now = timezone.now()
    too_far = (now + dt.timedelta(days=91)).isoformat()
    body = _problem(vendor.post("messages", message(expires_at=too_far)), 400, "invalid-input")
    assert "90 days" in body["errors"]["expires_at"][0]
    ok = vendor.post("messages", message(expires_at=(now + dt.timedelta(days=89)).isoformat()))
    assert ok.status_code == 201, ok.content


def test_past_the_weekly_allowance_a_429_with_retry_after_and_the_window_rolls(grant: Grant) -> None:
    start = timezone.now()

    def post(title: str) -> Any:  # a fresh token at each moment (a token lives 15 minutes)
        return Api(issue_token(grant)).post("messages", message(title=title))

    with time_machine.travel(start, tick=False):
        assert post("one").status_code == 201
    with time_machine.travel(start + dt.timedelta(days=2), tick=False):
        assert post("two").status_code == 201
        assert post("three").status_code == 201
        refused = post("four")
        body = _problem(refused, 429, "rate-limited")
        assert "7 days" in body["detail"]
        # The first message frees its slot 7 days after it was sent: 5 days from now.
        assert abs(int(refused["Retry-After"]) - 5 * 86400) <= 2
    with time_machine.travel(start + dt.timedelta(days=7, seconds=-5), tick=False):
        _problem(post("four"), 429, "rate-limited")
    with time_machine.travel(start + dt.timedelta(days=7, seconds=1), tick=False):
        assert post("four").status_code == 201
        _problem(post("five"), 429, "rate-limited")
    assert Message.objects.count() == 4


def test_a_muted_grant_gets_429_and_a_lowered_allowance_holds(vendor: Api, grant: Grant, alice: Any) -> None:
    grant_messages_allowance_set(grant=grant, by=alice, allowance=1)
    assert vendor.post("messages", message()).status_code == 201
    _problem(vendor.post("messages", message()), 429, "rate-limited")
    grant_messages_allowance_set(grant=grant, by=alice, allowance=0)
    muted = vendor.post("messages", message())
    _problem(muted, 429, "rate-limited")
    assert int(muted["Retry-After"]) >= 1
    grant_messages_allowance_set(grant=grant, by=alice, allowance=None)
    assert vendor.post("messages", message()).status_code == 201
    entries = LedgerEntry.objects.filter(kind="message.allowance", grant_id=str(grant.pk)).order_by("id")
    assert [(e.reason, e.record_count) for e in entries] == [
        ("at most 1 a week", 1),
        ("muted", 0),
        ("at most 3 a week, the default", 3),
    ]
    assert all(e.actor_type == "person" and e.subject == person_subject(alice) for e in entries)


def test_the_allowance_cannot_be_raised_past_the_default(grant: Grant, alice: Any) -> None:
    with pytest.raises(ValidationError):
        grant_messages_allowance_set(grant=grant, by=alice, allowance=4)


def test_an_idempotent_retry_answers_alike_and_sends_once(vendor: Api) -> None:
    first = vendor.post("messages", message(), HTTP_IDEMPOTENCY_KEY="msg-1")
    again = vendor.post("messages", message(), HTTP_IDEMPOTENCY_KEY="msg-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert Message.objects.count() == 1
    other = vendor.post("messages", message(title="other"), HTTP_IDEMPOTENCY_KEY="msg-1")
    _problem(other, 409, "idempotency-conflict")


def test_the_message_is_sealed_to_the_person(vendor: Api, alice: Any) -> None:
    link = "https://acme.example/jumper-offer"
    message_id = vendor.post("messages", message(link=link)).json()["id"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM vendors_message WHERE id = %s", [message_id])
        row = cursor.fetchone()
    flat = " ".join(str(bytes(v)) if isinstance(v, (bytes, memoryview)) else str(v) for v in row)
    for secret in (TITLE, "navy jumper", "Ten percent", "jumper-offer"):
        assert secret not in flat
    stored = Message.objects.get(pk=message_id)
    # The person can (person_signup left alice's keys open, as a signed-in request has them).
    stored.person = alice
    assert message_content(message=stored) == {"title": TITLE, "body": BODY, "link": link}
    # The server alone cannot: once the person's keys are not held, opening it asks for them.
    keys_drop(alice)
    with pytest.raises(StoreLocked):
        message_content(message=Message.objects.select_related("person").get(pk=message_id))


def test_ledger_entries_hold_ids_and_kinds_never_the_words(vendor: Api, grant: Grant, alice: Any) -> None:
    message_id = vendor.post("messages", message()).json()["id"]
    vendor.get(f"messages/{message_id}")
    stored = Message.objects.get(pk=message_id)
    stored.person = alice
    message_mark_read(message=stored)
    message_answer(message=stored, response="interested")
    message_report(message=stored, reason="misleading")
    entries = LedgerEntry.objects.filter(grant_id=str(grant.pk), kind__startswith="message.").order_by("id")
    assert [e.kind for e in entries] == [
        "message.sent",
        "message.read",
        "message.answered",
        "message.reported",
    ]
    sent = entries[0]
    assert sent.actor_type == "client" and sent.actor_id == grant.application.client_id
    assert sent.subject == person_subject(alice) and sent.record_ids == [message_id]
    assert sent.reason == "kind offer" and sent.scopes == ["messages:send"]
    assert [e.reason for e in entries[2:]] == ["interested", "misleading"]
    every = " ".join(str(vars(e)) for e in LedgerEntry.objects.all())
    for secret in (TITLE, "navy jumper", "acme.example/jumper", alice.email):
        assert secret not in every


def test_an_expired_message_says_so_and_cannot_be_answered(vendor: Api, grant: Grant, alice: Any) -> None:
    soon = (timezone.now() + dt.timedelta(hours=1)).isoformat()
    message_id = vendor.post("messages", message(expires_at=soon)).json()["id"]
    with time_machine.travel(timezone.now() + dt.timedelta(hours=2)):
        assert Api(issue_token(grant)).get(f"messages/{message_id}").json()["status"] == "expired"
        stored = Message.objects.get(pk=message_id)
        stored.person = alice
        with pytest.raises(ValidationError):
            message_answer(message=stored, response="interested")


def test_the_person_is_emailed_only_if_they_opted_in_and_never_the_content(
    vendor: Api, alice: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        vendor.post("messages", message())
    assert mail.outbox == []
    preferences_update(owner=alice, data={"contact": {"messages_email": True}})
    with django_capture_on_commit_callbacks(execute=True):
        vendor.post("messages", message())
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == [alice.email] and "Acme Shop" in sent.body
    assert TITLE not in sent.body + sent.subject and "jumper" not in sent.body
    preferences_update(owner=alice, data={"contact": {"messages_email": True, "safety_alerts_only": True}})
    with django_capture_on_commit_callbacks(execute=True):
        vendor.post("messages", message())
    assert len(mail.outbox) == 1
