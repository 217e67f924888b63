"""Auditors pick and read vendors by name; underneath, the filter is the ledger's client ids."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from audit.models import LedgerEntry
from audit.services import ledger_append
from tests.consent.conftest import make_app
from vendors.models import Application, Organisation

K = LedgerEntry.Kind


@pytest.fixture
def auditor_client(auditor: Any) -> Client:
    client = Client()
    client.force_login(auditor)
    return client


@pytest.fixture
def vendors(db: Any) -> dict[str, Any]:
    acme = Organisation.objects.create(
        name="Acme Shop", website="https://acme.example", privacy_contact="p@a.example"
    )
    green = Organisation.objects.create(
        name="Green Pharmacy", website="https://green.example", privacy_contact="p@g.example"
    )
    store = make_app(acme, name="Acme online store")
    loyalty = make_app(acme, name="Acme loyalty card", secret="l-" + "z" * 40)
    refills = make_app(green, name="Refill reminders", secret="r-" + "w" * 40)
    with transaction.atomic():
        for app, reads in ((store, 3), (loyalty, 2), (refills, 5)):
            for _ in range(reads):
                ledger_append(kind=K.ACCESS_READ, actor_type="client", actor_id=app.client_id, record_count=1)
        # The organisation itself acts too (an app's lifecycle events are recorded under its id).
        ledger_append(kind=K.ACCESS_CHECK, actor_type="vendor_org", actor_id=str(acme.pk))
        ledger_append(kind=K.ACCESS_READ, actor_type="client", actor_id="client-gone", record_count=1)
    return {"acme": acme, "green": green, "store": store, "loyalty": loyalty, "refills": refills}


def _actors(client: Client, query: str) -> list[str]:
    response = client.get(f"/audit/entries/?{query}")
    assert response.status_code == 200
    return sorted(row["actor_id"] for row in response.context["page"])


def test_the_vendor_select_lists_organisations_and_apps_by_name(
    vendors: dict[str, Any], auditor_client: Client
) -> None:
    body = auditor_client.get("/audit/entries/").content.decode()
    assert f'<option value="{vendors["acme"].pk}">Acme Shop: all its apps</option>' in body
    assert f'<option value="{vendors["loyalty"].client_id}">Acme Shop: Acme loyalty card</option>' in body
    assert f'<option value="{vendors["refills"].client_id}">Green Pharmacy: Refill reminders</option>' in body
    assert '<optgroup label="Green Pharmacy">' in body


def test_an_app_filters_by_its_client_id(vendors: dict[str, Any], auditor_client: Client) -> None:
    loyalty: Application = vendors["loyalty"]
    assert _actors(auditor_client, f"vendor={loyalty.client_id}") == [loyalty.client_id] * 2


def test_an_organisation_filters_by_its_id_and_all_its_apps_client_ids(
    vendors: dict[str, Any], auditor_client: Client
) -> None:
    acme = vendors["acme"]
    expected = sorted([vendors["store"].client_id] * 3 + [vendors["loyalty"].client_id] * 2 + [str(acme.pk)])
    assert _actors(auditor_client, f"vendor={acme.pk}") == expected
    # The same on every page and export that takes the filter.
    activity = auditor_client.get(f"/audit/activity/?vendor={acme.pk}").context["page"]
    assert sum(row["reads"] for row in activity) == 5
    assert (
        vendors["refills"].client_id
        not in auditor_client.get(f"/audit/entries/export.csv?vendor={acme.pk}").getvalue().decode()
    )


def test_an_id_no_organisation_holds_still_filters_and_stays_selected(
    vendors: dict[str, Any], auditor_client: Client
) -> None:
    response = auditor_client.get("/audit/entries/?vendor=client-gone")
    assert sorted(row["actor_id"] for row in response.context["page"]) == ["client-gone"]
    assert '<option value="client-gone" selected>client-gone (as recorded in the ledger)</option>' in (
        response.content.decode()
    )


def test_tables_show_vendors_by_name_with_the_client_id_after(
    vendors: dict[str, Any], auditor_client: Client
) -> None:
    refills = vendors["refills"]
    for path in ("/audit/entries/", "/audit/activity/"):
        body = auditor_client.get(path).content.decode()
        assert (
            '<span class="vendor-name">Green Pharmacy</span> '
            '<span class="vendor-app">Refill reminders</span> '
            f'<code class="id vendor-id">{refills.client_id}</code>'
        ) in body, path
