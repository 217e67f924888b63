"""Auditors see per vendor how many messages it sent and how many people answered or reported,
from the ledger alone and without a word of any message."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from auditor.selectors import messages_by_vendor
from consent.services import grant_authorize
from tests.consent.conftest import make_app
from vendors.messages import message_answer, message_report, message_send
from vendors.models import Application, Organisation

TITLE = "Spring sale on every jumper"


def _app(name: str, secret: str) -> Application:
    org = Organisation.objects.create(name=name, website="https://x.example", privacy_contact="p@x.example")
    return make_app(org, name=f"{name} app", secret=secret * 45)


@pytest.fixture
def sent(alice: Any, bob: Any) -> dict[str, Any]:
    acme, green = _app("Acme Shop", "a"), _app("Green Grocer", "g")
    out: dict[str, Any] = {"acme": acme, "green": green}
    for person in (alice, bob):
        grant = grant_authorize(person=person, application=acme, scopes=["messages:send"], duration_days=30)
        messages = [
            message_send(
                grant=grant, application=acme, data={"kind": "offer", "title": TITLE, "body": "Now."}
            )
            for _ in range(2)
        ]
        for m in messages:
            m.person = person
        # Answered twice (the answer changed): counted once.
        message_answer(message=messages[0], response="interested")
        message_answer(message=messages[0], response="not_interested")
        if person == alice:
            message_report(message=messages[1], reason="spam")
    grant = grant_authorize(person=alice, application=green, scopes=["messages:send"], duration_days=30)
    message_send(grant=grant, application=green, data={"kind": "thanks", "title": TITLE, "body": "Thanks."})
    return out


def test_counts_per_vendor_from_the_ledger(sent: dict[str, Any]) -> None:
    counts = {c["vendor"]: c for c in messages_by_vendor()}
    assert counts[sent["acme"].client_id] == {
        "vendor": sent["acme"].client_id,
        "sent": 4,
        "answered": 2,
        "reported": 1,
    }
    assert counts[sent["green"].client_id] == {
        "vendor": sent["green"].client_id,
        "sent": 1,
        "answered": 0,
        "reported": 0,
    }
    only_green = messages_by_vendor(vendors=[sent["green"].client_id])
    assert [c["vendor"] for c in only_green] == [sent["green"].client_id]


def test_the_activity_page_shows_the_counts_and_no_content(sent: dict[str, Any], auditor: Any) -> None:
    client = Client()
    client.force_login(auditor)
    html = client.get("/audit/activity/").content.decode()
    assert "Messages per vendor" in html
    section = html[html.index('id="messages-h"') :]
    assert "Acme Shop" in section and "Green Grocer" in section
    assert '<td data-label="Sent" class="num">4</td>' in section
    assert '<td data-label="Reported" class="num">1</td>' in section
    assert TITLE not in html
