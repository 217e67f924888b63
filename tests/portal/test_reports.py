"""The person reports a vendor from a grant, an activity line, a message or an alert, and sees
their own reports (portal/reportviews.py, docs/abuse.md)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from audit.models import LedgerEntry
from audit.services import ledger_append
from consent.models import Grant
from consent.services import grant_authorize
from personal_data.pseudonyms import person_subject
from vendors.messages import message_send
from vendors.models import Application, Message, Report

WORDS = "It asked for my whole purchase history for a coupon"


@pytest.fixture
def grant(alice: Any, shop_app: Application) -> Grant:
    return grant_authorize(
        person=alice, application=shop_app, scopes=["profile:read", "messages:send"], duration_days=30
    )


def _message(grant: Grant) -> Message:
    return message_send(
        grant=grant, application=grant.application, data={"kind": "offer", "title": "t", "body": "b"}
    )


@pytest.fixture
def page(alice: Any) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def test_the_grant_page_offers_a_report_form_that_says_what_happens(page: Client, grant: Grant) -> None:
    html = page.get(f"/grants/{grant.pk}/").content.decode()
    assert f'href="/grants/{grant.pk}/report/"' in html and "Report Acme Shop" in html
    form = page.get(f"/grants/{grant.pk}/report/").content.decode()
    for label in ("Reads more than it needs", "Spam", "Not what it said", "Something else"):
        assert label in form
    assert "Share my report with the reviewers" in form
    assert 'name="shared"' in form and "checked" not in form.split('name="shared"')[1].split(">")[0]
    assert "never learn who wrote them" in form and "The vendor is never told" in form


def test_reporting_from_the_grant_page(page: Client, grant: Grant) -> None:
    response = page.post(
        f"/grants/{grant.pk}/report/", {"reason": "overreach", "text": WORDS, "shared": "on"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/reports/"
    html = response.content.decode()
    assert "Acme Shop: Reads more than it needs" in html and WORDS in html
    assert "shared with the reviewers" in html
    made = Report.objects.get()
    assert (made.source, made.source_ref, made.shared_text) == ("grant", str(grant.pk), WORDS)
    assert "Your reports (1)" in page.get(f"/grants/{grant.pk}/").content.decode()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"reason": "overreach", "text": "x" * 501}, "Write at most 500 characters (you wrote 501)."),
        ({"reason": "rude", "text": "hi"}, "Choose what is wrong from the list."),
        ({"text": "hi"}, "Choose what is wrong from the list."),
    ],
)
def test_a_bad_form_says_what_is_wrong_and_stores_nothing(
    page: Client, grant: Grant, data: dict[str, str], error: str
) -> None:
    response = page.post(f"/grants/{grant.pk}/report/", data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Report.objects.exists()
    assert not LedgerEntry.objects.filter(kind="vendor.reported").exists()


def test_a_second_report_of_the_same_grant_the_same_day_is_refused_plainly(
    page: Client, grant: Grant
) -> None:
    page.post(f"/grants/{grant.pk}/report/", {"reason": "spam"})
    response = page.post(f"/grants/{grant.pk}/report/", {"reason": "spam"})
    assert response.status_code == 400 and "You already reported this today" in response.content.decode()
    assert Report.objects.count() == 1


def test_reporting_from_an_activity_line(
    page: Client, alice: Any, grant: Grant, shop_app: Application
) -> None:
    with transaction.atomic():
        read = ledger_append(
            kind="access.read",
            actor_type="client",
            actor_id=shop_app.client_id,
            subject=person_subject(alice),
            grant_id=str(grant.pk),
            record_count=1,
        )
    assert f"/activity/{read.pk}/report/" in page.get("/activity/").content.decode()
    assert page.post(f"/activity/{read.pk}/report/", {"reason": "overreach"}).status_code == 302
    assert Report.objects.get().source_ref == str(read.pk)


def test_reporting_a_message_with_words_and_keeping_its_own_state(
    page: Client, grant: Grant, shop_app: Application
) -> None:
    message = _message(grant)
    url = f"/inbox/messages/{message.pk}/report/"
    form = page.get(url).content.decode()
    assert "Share my report with the reviewers" in form and "never learn who wrote them" in form
    assert page.post(url, {"reason": "spam", "text": "x" * 501}).status_code == 400
    message.refresh_from_db()
    assert message.reported_at is None
    assert page.post(url, {"reason": "misleading", "text": WORDS}).status_code == 302
    message.refresh_from_db()
    assert message.report_reason == "misleading"
    made = Report.objects.get()
    assert (made.source, made.reason, made.shared, made.shared_text) == ("message", "misleading", False, "")


def test_another_person_cannot_report_from_alices_things_or_see_her_reports(
    page: Client, grant: Grant, bob: Any, shop_app: Application
) -> None:
    message = _message(grant)
    page.post(f"/grants/{grant.pk}/report/", {"reason": "spam", "text": WORDS})
    other = Client()
    other.force_login(bob)
    for url in (f"/grants/{grant.pk}/report/", f"/inbox/messages/{message.pk}/report/", "/alerts/1/report/"):
        assert other.get(url).status_code == 404
        assert other.post(url, {"reason": "spam"}).status_code == 404
    mine = other.get("/reports/").content.decode()
    assert WORDS not in mine and "You have not reported any vendor" in mine
    assert Report.objects.count() == 1
    assert Message.objects.get().reported_at is None
