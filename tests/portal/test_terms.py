"""MyTerms: the public roster, the person's choice of terms, and what vendors accept."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from consent.models import TermsChoice
from consent.selectors import terms_choice_get
from consent.services import grant_authorize
from consent.terms import ROSTER
from tests.conftest import PASSWORD
from tests.consent.conftest import Flow, make_app
from vendors.models import Application, Organisation
from vendors.services import organisation_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(alice: User) -> Application:
    org = Organisation.objects.create(
        name="Acme Shop", website="https://acme.example", privacy_contact="p@acme.example"
    )
    app = make_app(org)
    grant_authorize(person=alice, application=app, scopes=["profile:read"], duration_days=30)
    return app


@pytest.fixture
def vendor_org(vendor_staff: User) -> Organisation:
    return organisation_create(
        staff=vendor_staff,
        name="Green Grocer",
        website="https://grocer.example",
        privacy_contact="p@grocer.example",
    )


def test_well_known_roster_has_exactly_the_contract_shape(client: Client, settings: Any) -> None:
    response = client.get("/.well-known/myterms")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "public" in response["Cache-Control"]
    body = response.json()
    assert set(body) == {"roster", "accepted_by"}
    assert body["accepted_by"] == {}
    assert [entry["id"] for entry in body["roster"]] == [a.id for a in ROSTER]
    assert len(ROSTER) == 5
    for entry in body["roster"]:
        assert set(entry) == {"id", "version", "title", "summary", "url"}
        assert all(isinstance(value, str) and value for value in entry.values())
        assert entry["url"] == f"{settings.VRM_ISSUER}/terms/{entry['id']}/"


def test_every_agreement_has_a_page_and_json(client: Client) -> None:
    listing = client.get("/terms/")
    assert listing.status_code == 200
    for agreement in ROSTER:
        assert f'href="/terms/{agreement.id}/"'.encode() in listing.content
        page = client.get(f"/terms/{agreement.id}/")
        assert page.status_code == 200
        assert agreement.title in page.content.decode()
        assert "public" in page["Cache-Control"]
        as_json = client.get(f"/terms/{agreement.id}.json")
        assert as_json.status_code == 200
        body = as_json.json()
        assert (body["id"], body["version"], body["title"]) == (
            agreement.id,
            agreement.version,
            agreement.title,
        )
        assert body["may"] and body["may_not"]


@pytest.mark.parametrize("path", ["/terms/no-such/", "/terms/no-such.json", "/terms/SD-BASE/"])
def test_unknown_agreement_is_404(client: Client, path: str) -> None:
    assert client.get(path).status_code == 404


def test_settings_save_order_and_per_vendor_choice(client: Client, alice: User, shop: Application) -> None:
    client.force_login(alice)
    page = client.get("/settings/terms/")
    assert page.status_code == 200
    assert b"Acme Shop" in page.content
    org = str(shop.organisation.pk)
    response = client.post(
        "/settings/terms/",
        {"place-sd-no-ai-training": "1", "place-sd-base": "2", f"vendor-{org}": "sd-goods-services"},
    )
    assert response.status_code == 302
    choice = terms_choice_get(person=alice)
    assert choice.proffered == ["sd-no-ai-training", "sd-base"]
    assert choice.per_vendor == {org: "sd-goods-services"}
    assert choice.allow_without_terms is False  # the box was not posted


def test_allow_without_terms_is_the_default(alice: User) -> None:
    assert terms_choice_get(person=alice).allow_without_terms is True


def test_another_person_cannot_see_or_change_them(
    client: Client, alice: User, bob: User, shop: Application
) -> None:
    client.force_login(alice)
    client.post("/settings/terms/", {"place-sd-base": "1", "allow_without_terms": "on"})
    client.force_login(bob)
    page = client.get("/settings/terms/")
    assert b"Acme Shop" not in page.content  # bob has no grant with it
    assert b'<option value="1" selected' not in page.content
    # bob cannot set a choice for a vendor only alice knows
    response = client.post("/settings/terms/", {f"vendor-{shop.organisation.pk}": "sd-base"})
    assert response.status_code == 400
    client.post("/settings/terms/", {"place-shared-intent": "1"})
    assert terms_choice_get(person=alice).proffered == ["sd-base"]
    assert terms_choice_get(person=bob).proffered == ["shared-intent"]


def test_anonymous_is_sent_to_sign_in(client: Client) -> None:
    response = client.post("/settings/terms/", {"place-sd-base": "1"})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert not TermsChoice.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"place-sd-base": "1", "place-shared-intent": "1"},  # two at the same place
        {"place-sd-base": "x"},
        {"place-sd-base": "0"},
        {"place-sd-base": "²"},
        {"place-sd-base": "99"},
        {"vendor-00000000-0000-0000-0000-000000000000": "sd-base"},
        {"vendor-nonsense": "sd-base"},
    ],
)
def test_malformed_input_is_400_and_changes_nothing(
    client: Client, alice: User, shop: Application, body: dict[str, str]
) -> None:
    client.force_login(alice)
    client.post("/settings/terms/", {"place-sd-base": "1", "allow_without_terms": "on"})
    response = client.post("/settings/terms/", body)
    assert response.status_code == 400
    assert b'role="alert"' in response.content
    choice = terms_choice_get(person=alice)
    assert (choice.proffered, choice.per_vendor, choice.allow_without_terms) == (["sd-base"], {}, True)


def test_unknown_agreement_for_a_vendor_is_400(client: Client, alice: User, shop: Application) -> None:
    client.force_login(alice)
    response = client.post("/settings/terms/", {f"vendor-{shop.organisation.pk}": "made-up"})
    assert response.status_code == 400
    assert not TermsChoice.objects.filter(person=alice).exists()


def test_vendor_declares_accepted_terms_and_json_shows_it(
    client: Client, vendor_staff: User, vendor_org: Organisation
) -> None:
    client.force_login(vendor_staff)
    assert client.get("/vendor/terms/").status_code == 200
    response = client.post("/vendor/terms/", {"accepted_terms": ["sd-base", "sd-no-ai-training"]})
    assert response.status_code == 302
    vendor_org.refresh_from_db()
    assert vendor_org.accepted_terms == ["sd-base", "sd-no-ai-training"]
    accepted_by = client.get("/.well-known/myterms").json()["accepted_by"]
    assert accepted_by == {str(vendor_org.pk): ["sd-base", "sd-no-ai-training"]}
    assert b"No AI training" in client.get("/vendor/").content
    assert client.post("/vendor/terms/", {"accepted_terms": ["bogus"]}).status_code == 400
    vendor_org.refresh_from_db()
    assert vendor_org.accepted_terms == ["sd-base", "sd-no-ai-training"]


@pytest.mark.parametrize("who", ["anonymous", "alice", "other_staff"])
def test_only_the_organisations_staff_declare_its_terms(
    client: Client, who: str, alice: User, vendor_org: Organisation
) -> None:
    if who == "alice":
        client.force_login(alice)
    elif who == "other_staff":
        other = User.objects.create_user(email="staff2@rival.example", password="x" * 20, role="vendor_staff")
        organisation_create(
            staff=other, name="Rival", website="https://rival.example", privacy_contact="p@rival.example"
        )
        client.force_login(other)
    client.post("/vendor/terms/", {"accepted_terms": ["sd-base"]})
    vendor_org.refresh_from_db()
    assert vendor_org.accepted_terms == []


def test_consent_page_names_the_terms_the_vendor_accepts(flow: Flow, shop_app: Application) -> None:
    path = flow.authorize_path()
    assert b"accepts these standard terms" not in flow.client.get(path).content
    shop_app.organisation.accepted_terms = ["sd-no-ai-training"]
    shop_app.organisation.save()
    page = flow.client.get(flow.authorize_path()).content.decode()
    assert "Acme Shop accepts these standard terms" in page
    assert 'href="/terms/sd-no-ai-training/">No AI training</a>' in page


def test_a_change_of_terms_shows_on_the_activity_page_in_words(
    client: Client, alice: User, shop: Application
) -> None:
    client.force_login(alice)
    org = str(shop.organisation.pk)
    client.post(
        "/settings/terms/",
        {"place-sd-no-ai-training": "1", "place-sd-base": "2", f"vendor-{org}": "sd-goods-services"},
    )
    page = client.get("/activity/").content.decode()
    assert (
        "You changed your terms: you proffer “No AI training”, then “Service delivery only”; "
        "“Goods and services only” for Acme Shop; no access for a vendor that accepts none of them"
    ) in page
    client.post("/settings/terms/", {"allow_without_terms": "on"})
    page = client.get("/activity/").content.decode()
    assert (
        "You changed your terms: you proffer no agreement; "
        "you may still grant access to a vendor that accepts none of them"
    ) in page


def test_the_export_holds_the_terms_choice(client: Client, alice: User, shop: Application) -> None:
    client.force_login(alice)
    client.post("/accounts/reauth/", {"password": PASSWORD})
    data = json.loads(b"".join(client.get("/data/export/?format=json").streaming_content))
    # Never saved: the defaults, and no time.
    assert data["terms"] == {
        "proffered": [],
        "per_vendor": [],
        "allow_without_terms": True,
        "updated_at": None,
    }
    org = str(shop.organisation.pk)
    client.post(
        "/settings/terms/",
        {"place-sd-no-ai-training": "1", "place-sd-base": "2", f"vendor-{org}": "sd-goods-services"},
    )
    terms = json.loads(b"".join(client.get("/data/export/?format=json").streaming_content))["terms"]
    assert terms["proffered"] == [
        {"id": "sd-no-ai-training", "version": "1.0", "title": "No AI training"},
        {"id": "sd-base", "version": "1.0", "title": "Service delivery only"},
    ]
    assert terms["per_vendor"] == [
        {
            "organisation": org,
            "vendor": "Acme Shop",
            "agreement": {"id": "sd-goods-services", "version": "1.0", "title": "Goods and services only"},
        }
    ]
    assert terms["allow_without_terms"] is False and terms["updated_at"]
    archive = zipfile.ZipFile(io.BytesIO(client.get("/data/export/?format=zip").content))
    assert json.loads(archive.read("terms.json")) == terms
    assert "terms.json" in archive.read("README.txt").decode()


def test_an_agreement_page_names_the_vendors_that_accept_it(client: Client) -> None:
    Organisation.objects.create(
        name="Zed Goods",
        website="https://zed.example",
        privacy_contact="p@zed.example",
        verified=True,
        accepted_terms=["sd-base", "sd-no-ai-training"],
    )
    Organisation.objects.create(
        name="Unchecked Ltd",
        website="https://u.example",
        privacy_contact="p@u.example",
        accepted_terms=["sd-base"],
    )
    page = client.get("/terms/sd-base/").content.decode()
    assert "Zed Goods" in page and "Unchecked Ltd" in page and "not verified" in page
    assert page.index("Unchecked Ltd") < page.index("Zed Goods")  # by name
    other = client.get("/terms/shared-intent/").content.decode()
    assert "Zed Goods" not in other and "No vendor here has declared" in other
