"""The vendor portal's intent page: filters, and a webhook whose secret is shown once."""

from __future__ import annotations

from typing import Any

from django.test import Client

from audit.models import LedgerEntry
from tests.consent.conftest import make_app
from tests.intents_helpers import staff_of
from vendors.intents import intent_filters
from vendors.models import Application, IntentWebhook, Organisation


def _org(name: str) -> tuple[Organisation, Application, Client]:
    organisation = Organisation.objects.create(
        name=name, website="https://org.example", privacy_contact="p@org.example", verified=True
    )
    app = make_app(
        organisation,
        name=f"{name} backend",
        scopes=("intents:read",),
        grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_of(organisation))
    return organisation, app, client


def _post(client: Client, path: str, data: dict[str, Any]) -> Any:
    client.get("/vendor/intents/")  # sets the CSRF cookie
    return client.post(path, {**data, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})


def test_staff_set_the_filters(db: Any) -> None:
    organisation, _app, client = _org("Acme Coats")
    page = client.get("/vendor/intents/")
    assert page.status_code == 200 and b"csrfmiddlewaretoken" in page.content
    assert Client(enforce_csrf_checks=True).post("/vendor/intents/", {"kinds": ["clothing"]}).status_code in {
        302,
        403,
    }
    response = _post(client, "/vendor/intents/", {"kinds": ["clothing", "service"], "countries": "de, at"})
    assert response.status_code == 302
    assert intent_filters(organisation=organisation) == (["clothing", "service"], ["AT", "DE"])
    assert LedgerEntry.objects.filter(kind="intent.filters_set", actor_id=str(organisation.pk)).count() == 1
    bad = _post(client, "/vendor/intents/", {"kinds": ["clothing"], "countries": "Germany"})
    assert bad.status_code == 400 and "ISO 3166-1" in bad.content.decode()


def test_a_webhook_secret_is_shown_once(db: Any) -> None:
    _organisation, app, client = _org("Acme Coats")
    response = _post(
        client,
        f"/vendor/intents/webhooks/{app.client_id}/",
        {f"{app.client_id}-url": "https://hooks.example/i"},
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    hook = IntentWebhook.objects.get(application=app)
    assert hook.secret in response.content.decode() and hook.url == "https://hooks.example/i"
    assert hook.secret not in client.get("/vendor/intents/").content.decode()
    refused = _post(
        client,
        f"/vendor/intents/webhooks/{app.client_id}/",
        {f"{app.client_id}-url": "http://hooks.example/i"},
    )
    assert (
        refused.status_code == 400
        and IntentWebhook.objects.get(application=app).url == "https://hooks.example/i"
    )
    assert _post(client, f"/vendor/intents/webhooks/{app.client_id}/", {"remove": "1"}).status_code == 302
    assert not IntentWebhook.objects.exists()


def test_another_organisations_app_is_not_found(db: Any) -> None:
    _org_a, app_a, _client_a = _org("Acme Coats")
    _org_b, _app_b, client_b = _org("Bravo Coats")
    response = _post(
        client_b,
        f"/vendor/intents/webhooks/{app_a.client_id}/",
        {f"{app_a.client_id}-url": "https://evil.example/"},
    )
    assert response.status_code == 404 and not IntentWebhook.objects.exists()


def test_people_cannot_open_the_page(alice: Any) -> None:
    client = Client()
    client.force_login(alice)
    assert client.get("/vendor/intents/").status_code in {302, 403}
