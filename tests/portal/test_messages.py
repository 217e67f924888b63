"""The person's side of vendor messages: the inbox, the message page, answers, reports, the
allowance on the grant page, the e-mail choice, the export and the erasure."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts.models import User
from audit.models import LedgerEntry
from consent.models import Grant
from consent.services import grant_authorize
from personal_data.keys import keys_drop
from personal_data.selectors import contact_preferences
from portal.inbox import inbox_unread_count
from tests.conftest import PASSWORD  # noqa: E402
from tests.consent.conftest import make_app
from vendors.messages import message_send
from vendors.models import Application, Message, Organisation

TITLE = "Your size is back <soon>"
BODY = "The navy jumper is back.\n<script>alert(1)</script>"
LINK = "https://acme.example/jumper?size=M&colour=navy"


@pytest.fixture
def shop(db: Any) -> Application:
    org = Organisation.objects.create(
        name="Acme Shop", website="https://acme.example", privacy_contact="p@acme.example", verified=True
    )
    return make_app(org)


@pytest.fixture
def grant(alice: Any, shop: Application) -> Grant:
    return grant_authorize(person=alice, application=shop, scopes=["messages:send"], duration_days=30)


def send(grant: Grant, **fields: Any) -> Message:
    data = {"kind": "offer", "title": TITLE, "body": BODY, "link": LINK, **fields}
    return message_send(grant=grant, application=grant.application, data=data)


@pytest.fixture
def page(client: Client, alice: Any) -> Client:
    client.force_login(alice)
    return client


def test_the_inbox_lists_a_message_with_its_title_while_the_store_is_open(
    page: Client, alice: Any, grant: Grant
) -> None:
    message = send(grant)
    assert inbox_unread_count(person=alice) == 1
    html = page.get("/inbox/").content.decode()
    assert "Acme Shop: Your size is back &lt;soon&gt;" in html
    assert f"/inbox/messages/{message.pk}/" in html and "Offer from a vendor" in html
    assert page.get("/inbox/?kind=message").content.decode().count("inbox-item") == 1
    # The nav counts it as unread.
    assert '<span class="count-badge">1<span class="sr-only"> unread</span>' in html


def test_without_the_persons_keys_the_inbox_names_only_the_sender(
    page: Client, alice: Any, grant: Grant
) -> None:
    send(grant)
    keys_drop(alice)  # as after a password reset by e-mail: signed in, the store not opened
    stale = Client()
    stale.force_login(User.objects.get(pk=alice.pk))
    html = stale.get("/inbox/").content.decode()
    assert "A message from Acme Shop" in html and "Your size" not in html


def test_the_message_page_shows_it_escaped_and_marks_it_read(page: Client, alice: Any, grant: Grant) -> None:
    message = send(grant, expires_at=(timezone.now() + dt.timedelta(days=10)).isoformat())
    html = page.get(f"/inbox/messages/{message.pk}/").content.decode()
    assert "<h1>Your size is back &lt;soon&gt;</h1>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert (
        '<a href="https://acme.example/jumper?size=M&amp;colour=navy" rel="noopener noreferrer nofollow">'
        "https://acme.example/jumper?size=M&amp;colour=navy</a>"
    ) in html
    assert "acme.example" in html and "Valid until" in html and "Acme Shop" in html
    message.refresh_from_db()
    assert message.read_at is not None and inbox_unread_count(person=alice) == 0
    page.get(f"/inbox/messages/{message.pk}/")
    read = LedgerEntry.objects.filter(kind="message.read")
    assert read.count() == 1 and read.get().record_ids == [str(message.pk)]


def test_answering_and_changing_the_answer(page: Client, grant: Grant) -> None:
    message = send(grant)
    url = f"/inbox/messages/{message.pk}/answer/"
    assert page.get(url).status_code == 405
    response = page.post(url, {"response": "interested"}, follow=True)
    assert "You answered “interested”" in response.content.decode()
    page.post(url, {"response": "not_interested"})
    message.refresh_from_db()
    assert message.response == "not_interested"
    assert page.post(url, {"response": "maybe"}).status_code == 400
    answered = LedgerEntry.objects.filter(kind="message.answered").order_by("id")
    assert [e.reason for e in answered] == ["interested", "not interested"]


def test_an_expired_message_is_shown_expired_and_cannot_be_answered(page: Client, grant: Grant) -> None:
    message = send(grant, expires_at=(timezone.now() + dt.timedelta(hours=1)).isoformat())
    with time_machine.travel(timezone.now() + dt.timedelta(hours=2)):
        html = page.get(f"/inbox/messages/{message.pk}/").content.decode()
        assert "expired" in html and "can no longer be answered" in html
        assert 'name="response"' not in html
        response = page.post(f"/inbox/messages/{message.pk}/answer/", {"response": "interested"})
        assert response.status_code == 400
    message.refresh_from_db()
    assert message.response == ""


def test_reporting_needs_a_reason_and_a_confirmation(page: Client, grant: Grant) -> None:
    message = send(grant)
    url = f"/inbox/messages/{message.pk}/report/"
    form = page.get(url).content.decode()
    assert 'value="spam"' in form and "Yes, report this message" in form
    assert page.post(url, {}).status_code == 400
    assert page.post(url, {"reason": "other text"}).status_code == 400
    assert page.post(url, {"reason": "misleading"}).status_code == 302
    message.refresh_from_db()
    assert message.report_reason == "misleading" and message.reported_at is not None
    reported = LedgerEntry.objects.get(kind="message.reported")
    assert reported.reason == "misleading" and reported.record_ids == [str(message.pk)]


def test_another_persons_message_is_not_found(client: Client, bob: Any, grant: Grant) -> None:
    message = send(grant)
    client.force_login(bob)
    for url in ("", "answer/", "report/"):
        assert client.post(f"/inbox/messages/{message.pk}/{url}", {"response": "interested"}).status_code in {
            404,
            405,
        }
    assert client.get(f"/inbox/messages/{message.pk}/").status_code == 404


def test_the_grant_page_lowers_and_mutes_the_allowance(page: Client, grant: Grant) -> None:
    html = page.get(f"/grants/{grant.pk}/").content.decode()
    assert "may send you at most 3 messages in any 7 days" in html
    page.post(f"/grants/{grant.pk}/messages/", {"allowance": "1"})
    grant.refresh_from_db()
    assert grant.messages_allowance == 1
    page.post(f"/grants/{grant.pk}/messages/", {"allowance": "0"})
    grant.refresh_from_db()
    assert grant.messages_allowance == 0
    assert "cannot send you messages" in page.get(f"/grants/{grant.pk}/").content.decode()
    page.post(f"/grants/{grant.pk}/messages/", {"allowance": "9"})
    grant.refresh_from_db()
    assert grant.messages_allowance == 0
    assert LedgerEntry.objects.filter(kind="message.allowance").count() == 2


def test_mark_all_read_includes_messages_with_their_ledger_entry(
    page: Client, alice: Any, grant: Grant
) -> None:
    first, second = send(grant), send(grant)
    page.post("/inbox/read-all/")
    assert inbox_unread_count(person=alice) == 0
    entry = LedgerEntry.objects.get(kind="message.read")
    assert sorted(entry.record_ids) == sorted([str(first.pk), str(second.pk)])


def test_the_preferences_page_turns_message_emails_on(page: Client, alice: Any) -> None:
    assert 'name="contact_messages_email"' in page.get("/data/preferences/").content.decode()
    page.post("/data/preferences/", {"contact_email": "on", "contact_messages_email": "on"})
    assert contact_preferences(owner=alice)["messages_email"] is True


def test_the_export_lists_messages_in_the_json_and_the_zip(page: Client, alice: Any, grant: Grant) -> None:
    message = send(grant)
    page.post(f"/inbox/messages/{message.pk}/answer/", {"response": "interested"})
    data = json.loads(b"".join(page.get("/data/export/?format=json").streaming_content))
    [exported] = data["messages"]
    assert exported["id"] == str(message.pk) and exported["title"] == TITLE and exported["body"] == BODY
    assert exported["link"] == LINK and exported["vendor"] == "Acme Shop"
    assert exported["response"] == "interested" and exported["kind"] == "offer"
    archive = zipfile.ZipFile(io.BytesIO(page.get("/data/export/?format=zip").content))
    assert json.loads(archive.read("messages.json"))[0]["title"] == TITLE
    assert "messages.json" in archive.read("README.txt").decode()


def test_deleting_the_account_erases_its_messages(page: Client, alice: Any, grant: Grant) -> None:
    send(grant)
    assert Message.objects.filter(person=alice).exists()
    response = page.post("/account/delete/", {"password": PASSWORD})
    assert response.status_code == 200
    assert not Message.objects.exists()
    # The ledger keeps the entries, which never held the words.
    assert LedgerEntry.objects.filter(kind="message.sent").exists()
