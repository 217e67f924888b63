"""Intent services: the person's side (publish, update, withdraw, accept, decline), expiry,
organisation filters and matching, and the signed webhook (sent to a real local HTTP server)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from audit.models import LedgerEntry
from personal_data.pseudonyms import person_subject
from tests.consent.conftest import make_app
from tests.intents_helpers import intent_data, publish, staff_of, subscribe
from vendors import webhooks
from vendors.intents import (
    MAX_OPEN_INTENTS,
    IntentLimitReached,
    NotOpen,
    intent_counts_by_organisation,
    intent_filters,
    intent_filters_set,
    intent_get_for_owner,
    intent_json,
    intent_publish,
    intent_totals,
    intent_update,
    intent_webhook_set,
    intent_withdraw,
    intents_expire,
    offer_accept,
    offer_create,
    offer_decline,
    offers_for_intent,
    organisations_matching,
    webhook_url_problem,
)
from vendors.models import Application, Intent, Offer, Organisation, WebhookDelivery


def org_app(name: str, *, verified: bool = True, kinds: tuple[str, ...] = ("clothing",)) -> Application:
    organisation = Organisation.objects.create(
        name=name, website="https://org.example", privacy_contact="p@org.example", verified=verified
    )
    subscribe(organisation, kinds)
    return make_app(
        organisation,
        name=f"{name} backend",
        scopes=("intents:read",),
        grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )


def offer(app: Application, intent: Intent, **fields: Any) -> Offer:
    data = {
        "price": "120",
        "currency": "EUR",
        "description": "A coat",
        "link": "https://org.example/coat",
        "valid_until": (timezone.now() + dt.timedelta(days=5)).isoformat(),
        **fields,
    }
    return offer_create(application=app, intent=intent, data=data)


def person_entries(person: Any, kind: str) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(kind=kind, subject=person_subject(person)).order_by("id"))


# Publishing.


def test_publish_stores_the_intent_and_records_it_by_its_ledger_ref(alice: Any) -> None:
    intent = publish(alice, postcode_prefix="1a")
    assert intent.status == "open" and intent.owner == alice and intent.postcode_prefix == "1A"
    assert intent.price_min == Decimal("50") and intent.details == {"size": "M", "colour": "navy"}
    (entry,) = person_entries(alice, LedgerEntry.Kind.INTENT_PUBLISHED)
    assert entry.record_ids == [str(intent.ledger_ref)] and entry.actor_type == "person"
    assert intent.ledger_ref != intent.pk


def test_at_most_ten_open_intents(alice: Any, bob: Any) -> None:
    made = [publish(alice) for _ in range(MAX_OPEN_INTENTS)]
    with pytest.raises(IntentLimitReached):
        publish(alice)
    publish(bob)  # the limit is per person
    intent_withdraw(owner=alice, intent=made[0])
    publish(alice)  # a withdrawn intent no longer counts
    Intent.objects.filter(pk=made[1].pk).update(ends_at=timezone.now() - dt.timedelta(seconds=1))
    publish(alice)  # nor an ended one
    assert Intent.objects.filter(owner=alice).count() == MAX_OPEN_INTENTS + 2


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"ends_at": (timezone.now() + dt.timedelta(days=31)).isoformat()}, {"ends_at"}),
        ({"ends_at": "2001-01-01T00:00:00Z"}, {"ends_at"}),
        ({"price_min": "200"}, {"price_max"}),
        ({"price_min": "-1"}, {"price_min"}),
        ({"currency": "EURO"}, {"currency"}),
        ({"currency": "XYZ"}, {"currency"}),
        ({"country": "XX"}, {"country"}),
        ({"country": "de"}, {"country"}),
        ({"terms": "sell-everything"}, {"terms"}),
        ({"kind": "car"}, {"kind"}),
        ({"title": "x" * 121}, {"title"}),
        ({"postcode_prefix": "1234"}, {"postcode_prefix"}),
        ({"details": {f"f{i}": "x" for i in range(21)}}, {"details"}),
        ({"details": {"size": "x" * 201}}, {"details"}),
        ({"details": {"size": {"nested": "no"}}}, {"details"}),
        ({"details": ["M"]}, {"details"}),
        ({"owner": "me"}, {"owner"}),
    ],
)
def test_publish_refuses_bad_input_per_field(alice: Any, fields: dict[str, Any], errors: set[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        intent_publish(owner=alice, data=intent_data(**fields))
    assert set(caught.value.message_dict) == errors
    assert not Intent.objects.exists()


def test_terms_and_postcode_are_optional(alice: Any) -> None:
    data = intent_data()
    del data["terms"], data["postcode_prefix"], data["details"]
    intent = intent_publish(owner=alice, data=data)
    assert intent.terms == "" and intent.postcode_prefix == "" and intent.details == {}
    assert intent_json(intent)["postcode_prefix"] is None and intent_json(intent)["terms"] is None


# Updating and withdrawing.


def test_update_changes_only_what_is_given(alice: Any, bob: Any) -> None:
    intent = publish(alice)
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=5)):
        updated = intent_update(
            owner=alice, intent=intent, data={"price_max": "180", "details": {"size": "L"}}
        )
    assert updated.price_max == 180 and updated.details == {"size": "L"} and updated.title == "Winter coat"
    assert updated.updated_at > intent.created_at
    assert len(person_entries(alice, LedgerEntry.Kind.INTENT_UPDATED)) == 1
    with pytest.raises(ValidationError) as caught:
        intent_update(owner=alice, intent=intent, data={"price_min": "500"})
    assert set(caught.value.message_dict) == {"price_max"}
    # The end stays within 30 days of first publishing.
    with pytest.raises(ValidationError):
        late = intent.created_at + dt.timedelta(days=30, minutes=1)
        intent_update(owner=alice, intent=intent, data={"ends_at": late.isoformat()})
    with pytest.raises(Http404):
        intent_update(owner=bob, intent=intent, data={"title": "Mine now"})


def test_withdraw_withdraws_open_offers_and_ends_editing(alice: Any, bob: Any) -> None:
    intent = publish(alice)
    made = offer(org_app("Acme Coats"), intent)
    with pytest.raises(Http404):
        intent_withdraw(owner=bob, intent=intent)
    intent_withdraw(owner=alice, intent=intent)
    assert Intent.objects.get(pk=intent.pk).status == "withdrawn"
    assert Offer.objects.get(pk=made.pk).status == "withdrawn"
    with pytest.raises(NotOpen):
        intent_withdraw(owner=alice, intent=intent)
    with pytest.raises(NotOpen):
        intent_update(owner=alice, intent=intent, data={"title": "Again"})
    (entry,) = person_entries(alice, LedgerEntry.Kind.INTENT_WITHDRAWN)
    assert entry.record_ids == [str(intent.ledger_ref)]


# Offers: accept one, decline the rest.


def test_accept_one_declines_the_others_and_closes_the_intent(alice: Any) -> None:
    intent = publish(alice)
    apps = [org_app(name) for name in ("Acme Coats", "Bravo Coats", "Charlie Coats")]
    first, second, third = (offer(app, intent) for app in apps)
    assert [o.pk for o in offers_for_intent(intent=intent_get_for_owner(owner=alice, intent_id=intent.pk))]
    accepted = offer_accept(owner=alice, intent=intent, offer=second)
    assert accepted.status == "accepted"
    statuses = {o.pk: o.status for o in Offer.objects.all()}
    assert statuses == {first.pk: "declined", second.pk: "accepted", third.pk: "declined"}
    assert Intent.objects.get(pk=intent.pk).status == "closed"
    (accepted_entry,) = person_entries(alice, LedgerEntry.Kind.INTENT_ACCEPTED)
    (declined_entry,) = person_entries(alice, LedgerEntry.Kind.INTENT_DECLINED)
    assert declined_entry.record_count == 2
    for entry in (accepted_entry, declined_entry):
        # The intent's ledger ref only: no offer, intent or organisation id vendors know.
        assert entry.record_ids == [str(intent.ledger_ref)] and entry.reason == ""
    with pytest.raises(NotOpen):
        offer_accept(owner=alice, intent=intent, offer=first)


def test_decline_keeps_the_intent_open(alice: Any, bob: Any) -> None:
    intent = publish(alice)
    made = offer(org_app("Acme Coats"), intent)
    with pytest.raises(Http404):
        offer_decline(owner=bob, intent=intent, offer=made)
    assert offer_decline(owner=alice, intent=intent, offer=made).status == "declined"
    assert Intent.objects.get(pk=intent.pk).status == "open"
    with pytest.raises(NotOpen):
        offer_accept(owner=alice, intent=intent, offer=made)


def test_an_offer_past_its_validity_cannot_be_accepted(alice: Any) -> None:
    intent = publish(alice)
    made = offer(org_app("Acme Coats"), intent)
    Offer.objects.filter(pk=made.pk).update(valid_until=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(NotOpen):
        offer_accept(owner=alice, intent=intent, offer=made)


def test_an_offer_on_another_intent_is_not_found(alice: Any) -> None:
    one, other = publish(alice), publish(alice)
    made = offer(org_app("Acme Coats"), other)
    with pytest.raises(Http404):
        offer_accept(owner=alice, intent=one, offer=made)


# Expiry.


def test_expiry_marks_ended_intents_and_their_offers_once(alice: Any) -> None:
    ended, running = publish(alice), publish(alice)
    app = org_app("Acme Coats")
    on_ended, stale, fresh = offer(app, ended), offer(app, running), offer(org_app("Bravo Coats"), running)
    Intent.objects.filter(pk=ended.pk).update(ends_at=timezone.now() - dt.timedelta(seconds=1))
    Offer.objects.filter(pk=stale.pk).update(valid_until=timezone.now() - dt.timedelta(seconds=1))
    result = intents_expire()
    assert (result.intents, result.offers) == (1, 2)
    assert (
        Intent.objects.get(pk=ended.pk).status == "expired"
        and Intent.objects.get(pk=running.pk).status == "open"
    )
    assert {o.pk: o.status for o in Offer.objects.all()} == {
        on_ended.pk: "expired",
        stale.pk: "expired",
        fresh.pk: "open",
    }
    (entry,) = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.INTENT_EXPIRED)
    assert entry.subject == "" and entry.record_ids == [str(ended.ledger_ref)] and entry.reason == "offers 2"
    assert intents_expire().intents == 0
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.INTENT_EXPIRED).count() == 1


# Filters and matching.


def test_matching_finds_verified_subscribed_organisations(alice: Any) -> None:
    clothing_de = org_app("Acme Coats").organisation
    anywhere = Organisation.objects.create(
        name="Anywhere", website="https://a.example", privacy_contact="p@a.example", verified=True
    )
    subscribe(anywhere, ("clothing", "service"), ())
    unverified = org_app("Unchecked", verified=False).organisation
    services = org_app("Plumbers", kinds=("service",)).organisation
    france = Organisation.objects.create(
        name="Paris", website="https://p.example", privacy_contact="p@p.example", verified=True
    )
    subscribe(france, ("clothing",), ("FR",))
    found = set(organisations_matching(intent=publish(alice)))
    assert found == {clothing_de.pk, anywhere.pk}
    assert unverified.pk not in found and services.pk not in found and france.pk not in found
    assert intent_filters(organisation=anywhere) == (["clothing", "service"], [])


def test_filters_are_set_by_staff_with_valid_codes(vendor_staff: Any) -> None:
    organisation = Organisation.objects.create(
        name="Acme", website="https://a.example", privacy_contact="p@a.example"
    )
    with pytest.raises(PermissionDenied):
        intent_filters_set(organisation=organisation, kinds=["clothing"], countries=["DE"], by=vendor_staff)
    staff = staff_of(organisation)
    with pytest.raises(ValidationError) as caught:
        intent_filters_set(organisation=organisation, kinds=["cars"], countries=["XX"], by=staff)
    assert set(caught.value.message_dict) == {"kinds", "countries"}
    intent_filters_set(
        organisation=organisation, kinds=["service", "clothing"], countries=["fr", "DE"], by=staff
    )
    assert intent_filters(organisation=organisation) == (["clothing", "service"], ["DE", "FR"])
    entry = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.INTENT_FILTERS_SET).latest("id")
    assert entry.actor_id == str(organisation.pk) and entry.record_ids == ["clothing", "service"]


def test_auditor_counts_hold_no_content(alice: Any) -> None:
    intent, other = publish(alice), publish(alice)
    acme, bravo = org_app("Acme Coats"), org_app("Bravo Coats")
    offer(bravo, other)
    offer_accept(owner=alice, intent=intent, offer=offer(acme, intent))
    intent_withdraw(owner=alice, intent=other)
    rows = {row["organisation__name"]: row for row in intent_counts_by_organisation()}
    assert {k: (v["made"], v["accepted"], v["declined"]) for k, v in rows.items()} == {
        "Acme Coats": (1, 1, 0),
        "Bravo Coats": (1, 0, 0),
    }
    assert intent_totals() == {"published": 2, "open": 0, "withdrawn": 1, "expired": 0, "closed": 1}


# Webhooks.


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []  # noqa: RUF012 (one server per test)
    answer = 204

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(type(self).answer)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver(settings: Any) -> Iterator[tuple[str, type[Receiver]]]:
    settings.DEBUG = True  # http on loopback is allowed only while debugging
    handler = type("OneReceiver", (Receiver,), {"received": [], "answer": 204})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/intents", handler
    server.shutdown()
    server.server_close()


def _hooked_app(url: str) -> tuple[Application, str]:
    app = org_app("Acme Coats")
    return app, intent_webhook_set(application=app, url=url, by=staff_of(app.organisation))


def test_a_matching_intent_is_pushed_signed(
    alice: Any, receiver: tuple[str, type[Receiver]], django_capture_on_commit_callbacks: Any
) -> None:
    url, handler = receiver
    _app, secret = _hooked_app(url)
    org_app("Plumbers", kinds=("service",))  # subscribed to other intents: nothing pushed there
    with django_capture_on_commit_callbacks(execute=True):
        intent = publish(alice)
    ((headers, body),) = handler.received
    assert json.loads(body) == intent_json(intent)
    expected = hmac.new(
        secret.encode(), headers["Vrm-Timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(headers["Vrm-Signature"], expected)
    assert headers["Vrm-Event"] == "intent.published" and headers["Content-Type"] == "application/json"
    assert abs(int(headers["Vrm-Timestamp"]) - timezone.now().timestamp()) < 60
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("delivered", 1, 204)
    assert headers["Vrm-Delivery"] == str(delivery.pk)


def test_failed_pushes_are_retried_with_backoff_then_given_up(
    alice: Any, receiver: tuple[str, type[Receiver]], django_capture_on_commit_callbacks: Any
) -> None:
    url, handler = receiver
    _hooked_app(url)
    handler.answer = 500
    with django_capture_on_commit_callbacks(execute=True):
        publish(alice)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert webhooks.webhooks_retry_due() == 0  # not due yet
    now = timezone.now()
    for attempt, wait in enumerate(webhooks.BACKOFF_SECONDS, start=2):
        delivery.refresh_from_db()
        assert delivery.next_attempt_at - now >= dt.timedelta(seconds=wait - 5)
        with time_machine.travel(delivery.next_attempt_at + dt.timedelta(seconds=1)):
            now = timezone.now()
            assert webhooks.webhooks_retry_due() == 1
        delivery.refresh_from_db()
        assert delivery.attempts == attempt
    assert delivery.status == "failed" and len(handler.received) == webhooks.MAX_ATTEMPTS


def test_a_retry_after_withdrawal_sends_nothing(
    alice: Any, receiver: tuple[str, type[Receiver]], django_capture_on_commit_callbacks: Any
) -> None:
    url, handler = receiver
    _hooked_app(url)
    handler.answer = 503
    with django_capture_on_commit_callbacks(execute=True):
        intent = publish(alice)
    intent_withdraw(owner=alice, intent=intent)
    with time_machine.travel(timezone.now() + dt.timedelta(hours=1)):
        webhooks.webhooks_retry_due()
    assert len(handler.received) == 1 and WebhookDelivery.objects.get().status == "failed"


def test_webhook_urls_are_https(settings: Any) -> None:
    settings.DEBUG = False
    assert webhook_url_problem("https://hooks.example/intents") is None
    for url in (
        "http://hooks.example/x",
        "http://127.0.0.1:9/x",
        "https://u:p@hooks.example/",
        "ftp://x",
        "https://",
    ):
        assert webhook_url_problem(url), url
    settings.DEBUG = True
    assert webhook_url_problem("http://127.0.0.1:9/x") is None
    assert webhook_url_problem("http://hooks.example/x")


def test_a_webhook_needs_the_scope(db: Any) -> None:
    app = org_app("Acme Coats")
    app.scopes = ["recalls:publish"]
    app.save()
    with pytest.raises(ValidationError):
        intent_webhook_set(application=app, url="https://hooks.example/", by=staff_of(app.organisation))
    outsider = org_app("Other").organisation
    with pytest.raises(PermissionDenied):
        intent_webhook_set(application=app, url="https://hooks.example/", by=staff_of(outsider))


def test_with_a_deferring_backend_a_failed_push_is_requeued_for_later(alice: Any, settings: Any) -> None:
    # Changing the setting resets django-tasks' backend handler (its setting_changed receiver).
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    app, _secret = _hooked_app("https://hooks.example/intents")
    intent = publish(alice)
    delivery = WebhookDelivery.objects.create(webhook=app.intent_webhook, intent=intent)
    backend = webhooks.webhook_deliver_task.get_backend()
    assert backend.supports_defer
    sent: list[str] = []

    def unavailable(url: str, body: bytes, headers: dict[str, str]) -> int:  # the outside world
        sent.append(url)
        return 503

    assert webhooks.webhook_deliver(delivery_id=delivery.pk, send=unavailable) == "pending"
    delivery.refresh_from_db()
    (queued,) = backend.results  # type: ignore[attr-defined]
    assert queued.task.run_after == delivery.next_attempt_at and queued.args == [delivery.pk]
    assert sent == ["https://hooks.example/intents"]


def test_expire_intents_command(alice: Any) -> None:
    from io import StringIO

    from django.core.management import call_command

    intent = publish(alice)
    Intent.objects.filter(pk=intent.pk).update(ends_at=timezone.now() - dt.timedelta(seconds=1))
    out = StringIO()
    call_command("expire_intents", stdout=out)
    assert "Expired 1 intent(s) and 0 offer(s)" in out.getvalue()
    assert Intent.objects.get(pk=intent.pk).status == "expired"


def test_an_unverified_organisation_cannot_offer(alice: Any) -> None:
    app = org_app("Unchecked", verified=False)
    with pytest.raises(PermissionDenied):
        offer(app, publish(alice))
    other = org_app("Plumbers", kinds=("service",))
    with pytest.raises(Http404):
        offer(other, publish(alice))  # outside its filters
