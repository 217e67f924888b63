"""The auditor's intents page: counts per organisation and totals, never an intent's content."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.test import Client
from django.utils import timezone

from tests.consent.conftest import make_app
from tests.intents_helpers import publish, subscribe
from vendors.intents import intent_withdraw, offer_accept, offer_create
from vendors.models import Application, Organisation


def _app(name: str) -> Application:
    organisation = Organisation.objects.create(
        name=name, website="https://org.example", privacy_contact="p@org.example", verified=True
    )
    subscribe(organisation)
    return make_app(
        organisation, name=f"{name} app", scopes=("intents:read",), grant_type="client-credentials"
    )


def _offer(app: Application, intent: Any) -> Any:
    valid_until = (timezone.now() + dt.timedelta(days=2)).isoformat()
    data = {
        "price": "99",
        "currency": "EUR",
        "description": "Secret offer text",
        "link": "https://o.example/",
        "valid_until": valid_until,
    }
    return offer_create(application=app, intent=intent, data=data)


def test_counts_per_organisation_and_totals_without_content(auditor: Any, alice: Any, bob: Any) -> None:
    acme, bravo = _app("Acme Coats"), _app("Bravo Coats")
    coat = publish(alice, title="Very particular coat", details={"size": "XS-unique"}, postcode_prefix="99")
    boots = publish(bob, title="Boots")
    _offer(bravo, coat)
    offer_accept(owner=alice, intent=coat, offer=_offer(acme, coat))
    _offer(acme, boots)
    intent_withdraw(owner=bob, intent=boots)
    publish(alice)
    client = Client()
    client.force_login(auditor)
    response = client.get("/audit/intents/")
    assert response.status_code == 200
    rows = {
        r["organisation__name"]: (r["made"], r["accepted"], r["declined"])
        for r in response.context["organisations"]
    }
    assert rows == {"Acme Coats": (2, 1, 0), "Bravo Coats": (1, 0, 1)}
    assert response.context["totals"] == {
        "published": 3,
        "open": 1,
        "withdrawn": 1,
        "expired": 0,
        "closed": 1,
    }
    page = response.content.decode()
    for content in (
        "Very particular coat",
        "XS-unique",
        "Boots",
        "Secret offer text",
        str(coat.pk),
        alice.email,
    ):
        assert content not in page


def test_only_auditors_see_it(alice: Any) -> None:
    client = Client()
    assert client.get("/audit/intents/").status_code == 302
    client.force_login(alice)
    assert client.get("/audit/intents/").status_code in {302, 403}
