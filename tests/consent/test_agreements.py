"""MyTerms at consent: matching, the one alternative, refusal, the signed record both parties get."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from audit.models import LedgerEntry
from consent.agreements import Outcome, agreement_verify, terms_offer
from consent.models import Grant, TermsAgreement, TermsChoice
from consent.receipts import receipt_verify
from personal_data.pseudonyms import pairwise_subject
from tests.conftest import PASSWORD
from tests.consent.conftest import Flow
from vendors.models import Application, Organisation


def _terms(
    person: Any, *ids: str, allow_without: bool = True, per_vendor: dict[str, str] | None = None
) -> None:
    TermsChoice.objects.update_or_create(
        person=person,
        defaults={
            "proffered": list(ids),
            "allow_without_terms": allow_without,
            "per_vendor": per_vendor or {},
        },
    )


def _accepts(org: Organisation, *ids: str) -> None:
    org.accepted_terms = list(ids)
    org.save(update_fields=["accepted_terms"])


def _kinds(**filters: Any) -> list[str]:
    return list(
        LedgerEntry.objects.filter(kind__startswith="terms.", **filters)
        .order_by("id")
        .values_list("kind", flat=True)
    )


def _grant(alice: Any, app: Application) -> Grant | None:
    return Grant.objects.filter(person=alice, application=app, status="active").first()


# Matching (pure reads).


@pytest.mark.parametrize(
    ("proffered", "accepted", "outcome", "agreement", "alternative"),
    [
        ((), ("sd-base",), Outcome.NO_TERMS, None, None),
        (
            ("sd-no-ai-training", "sd-base"),
            ("sd-base", "sd-no-ai-training"),
            Outcome.ACCEPTED,
            "sd-no-ai-training",
            None,
        ),
        (("sd-no-ai-training", "sd-base"), ("sd-base",), Outcome.ACCEPTED, "sd-base", None),
        # None of the person's: the first the vendor accepts, in roster order, is the one alternative.
        (
            ("sd-no-ai-training",),
            ("shared-intent", "sd-goods-services"),
            Outcome.ALTERNATIVE,
            None,
            "sd-goods-services",
        ),
        (("sd-no-ai-training",), (), Outcome.DECLINED, None, None),
    ],
)
def test_the_person_s_terms_are_matched_against_the_vendor_s(
    alice: Any,
    shop_org: Organisation,
    proffered: tuple[str, ...],
    accepted: tuple[str, ...],
    outcome: str,
    agreement: str | None,
    alternative: str | None,
) -> None:
    _terms(alice, *proffered)
    offer = terms_offer(person=alice, organisation_id=shop_org.pk, accepted_terms=list(accepted))
    assert offer.outcome == outcome
    assert (offer.agreement.id if offer.agreement else None) == agreement
    assert (offer.alternative.id if offer.alternative else None) == alternative


def test_a_per_vendor_pick_replaces_the_default_list_for_that_vendor_only(
    alice: Any, shop_org: Organisation
) -> None:
    _terms(alice, "sd-base", per_vendor={str(shop_org.pk): "sd-data-protection"})
    mine = terms_offer(
        person=alice, organisation_id=shop_org.pk, accepted_terms=["sd-base", "sd-data-protection"]
    )
    assert [a.id for a in mine.proffered] == ["sd-data-protection"]
    assert mine.agreement is not None and mine.agreement.id == "sd-data-protection"
    other = terms_offer(person=alice, organisation_id="another", accepted_terms=["sd-base"])
    assert other.agreement is not None and other.agreement.id == "sd-base"


# The consent page and its outcomes.


def test_accepted_terms_make_a_signed_record_the_receipt_names(
    flow: Flow, alice: Any, shop_app: Application
) -> None:
    _terms(alice, "sd-no-ai-training", "sd-base")
    _accepts(shop_app.organisation, "sd-base", "sd-no-ai-training")
    page = flow.client.get(flow.authorize_path())
    assert "accepts your terms" in page.content.decode() and "No AI training" in page.content.decode()
    flow.code()
    grant = _grant(alice, shop_app)
    assert grant is not None and grant.agreement is not None
    record = grant.agreement
    assert (record.agreement_id, record.agreement_version, record.made) == (
        "sd-no-ai-training",
        "1.0",
        "accepted",
    )
    document = agreement_verify(record.jws)
    assert document == record.document
    assert document["first_party"]["id"] == pairwise_subject(
        person_id=alice.pk, organisation_id=shop_app.organisation_id
    )
    assert document["second_party"]["client_id"] == shop_app.client_id
    assert document["grant"] == {"id": str(grant.pk)}
    assert document["agreement"]["id"] == "sd-no-ai-training"
    receipt = receipt_verify(grant.receipts.get().jws)
    assert receipt["agreement"] == {"record_id": str(record.pk), "id": "sd-no-ai-training", "version": "1.0"}
    assert _kinds(grant_id=str(grant.pk)) == ["terms.proffered", "terms.accepted"]
    proffered = LedgerEntry.objects.get(kind="terms.proffered")
    assert proffered.reason == "sd-no-ai-training,sd-base" and proffered.actor_type == "person"


def test_the_page_offers_exactly_one_alternative_and_the_person_takes_it(
    flow: Flow, alice: Any, shop_app: Application
) -> None:
    _terms(alice, "sd-no-ai-training")
    _accepts(shop_app.organisation, "shared-intent", "sd-goods-services")
    path = flow.authorize_path()
    html = flow.client.get(path).content.decode()
    assert html.count('name="terms_alternative"') == 2  # take it, or refuse it
    assert 'value="sd-goods-services"' in html and 'value="shared-intent"' not in html
    # Pressing Allow without answering makes no grant.
    response = flow.consent(path)
    assert response.status_code == 400 and _grant(alice, shop_app) is None
    assert "instead" in response.content.decode()
    response = flow.consent(path, terms_alternative="sd-goods-services")
    assert response.status_code == 302 and "code" in parse_qs(urlsplit(response["Location"]).query)
    grant = _grant(alice, shop_app)
    assert grant is not None and grant.agreement is not None
    assert (grant.agreement.agreement_id, grant.agreement.made) == ("sd-goods-services", "alternative")
    assert grant.agreement.document["second_party"]["proffered"] is True
    assert _kinds(grant_id=str(grant.pk)) == ["terms.proffered", "terms.accepted"]
    assert LedgerEntry.objects.get(kind="terms.accepted").actor_type == "person"


def test_refusing_the_alternative_grants_without_terms_only_if_the_person_allows_it(
    flow: Flow, alice: Any, shop_app: Application
) -> None:
    _accepts(shop_app.organisation, "sd-goods-services")
    _terms(alice, "sd-no-ai-training", allow_without=False)
    path = flow.authorize_path()
    assert 'value="none"' not in flow.client.get(path).content.decode()
    response = flow.consent(path, terms_alternative="none")
    assert response.status_code == 400 and _grant(alice, shop_app) is None
    assert not LedgerEntry.objects.filter(kind__startswith="grant.").exists()

    _terms(alice, "sd-no-ai-training", allow_without=True)
    response = flow.consent(flow.authorize_path(), terms_alternative="none")
    assert response.status_code == 302
    grant = _grant(alice, shop_app)
    assert grant is not None and grant.agreement is None and not grant.agreements.exists()
    assert _kinds(grant_id=str(grant.pk)) == ["terms.proffered", "terms.declined"]
    assert receipt_verify(grant.receipts.get().jws)["agreement"] is None


def test_an_alternative_that_changed_after_the_page_was_shown_is_not_agreed_to(
    flow: Flow, alice: Any, shop_app: Application
) -> None:
    _terms(alice, "sd-no-ai-training")
    _accepts(shop_app.organisation, "sd-goods-services")
    path = flow.authorize_path()
    flow.client.get(path)
    _accepts(shop_app.organisation, "shared-intent")  # the vendor changes its terms meanwhile
    response = flow.consent(path, terms_alternative="sd-goods-services")
    assert response.status_code == 400 and "changed" in response.content.decode()
    assert _grant(alice, shop_app) is None and not TermsAgreement.objects.exists()


@pytest.mark.parametrize("answer", ["sd-base", "shared-intent", "no-such-terms", ""])
def test_a_posted_agreement_the_vendor_did_not_offer_is_refused(
    flow: Flow, alice: Any, shop_app: Application, answer: str
) -> None:
    _terms(alice, "sd-no-ai-training", allow_without=False)
    _accepts(shop_app.organisation, "sd-goods-services")
    response = flow.consent(flow.authorize_path(), terms_alternative=answer)
    assert response.status_code == 400
    assert _grant(alice, shop_app) is None and not TermsAgreement.objects.exists()


def test_declined_terms_that_the_person_requires_make_no_grant(
    flow: Flow, alice: Any, shop_app: Application
) -> None:
    _terms(alice, "sd-no-ai-training", allow_without=False)
    _accepts(shop_app.organisation)
    path = flow.authorize_path()
    html = flow.client.get(path).content.decode()
    assert "No grant is possible" in html and 'name="allow"' not in html and 'name="deny"' in html
    response = flow.consent(path)  # Allow posted anyway
    assert response.status_code == 400 and _grant(alice, shop_app) is None
    assert not LedgerEntry.objects.filter(kind__startswith="grant.").exists()
    denied = flow.consent(flow.authorize_path(), allow=False)
    assert denied.status_code == 302 and "access_denied" in denied["Location"]
    entry = LedgerEntry.objects.get(kind="terms.declined")
    assert (entry.actor_type, entry.actor_id, entry.grant_id) == (
        "vendor_org",
        str(shop_app.organisation_id),
        "",
    )
    assert entry.reason == "none accepted, no grant"


def test_declined_terms_go_ahead_without_an_agreement_when_the_person_allows_it(
    flow: Flow, alice: Any, shop_app: Application
) -> None:
    _terms(alice, "sd-no-ai-training")
    html = flow.client.get(flow.authorize_path()).content.decode()
    assert "No agreement." in html and 'name="allow"' in html
    flow.code()
    grant = _grant(alice, shop_app)
    assert grant is not None and grant.agreement is None
    assert _kinds(grant_id=str(grant.pk)) == ["terms.proffered", "terms.declined"]
    assert LedgerEntry.objects.get(kind="terms.declined").actor_type == "vendor_org"


def test_no_terms_proffered_means_consent_as_before(flow: Flow, alice: Any, shop_app: Application) -> None:
    _accepts(shop_app.organisation, "sd-base")
    flow.code()
    grant = _grant(alice, shop_app)
    assert grant is not None and grant.agreement is None
    assert _kinds() == []


def test_a_new_consent_keeps_the_same_agreement_and_records_a_different_one(
    flow: Flow, alice: Any, shop_app: Application
) -> None:
    _terms(alice, "sd-base", "sd-data-protection")
    _accepts(shop_app.organisation, "sd-base", "sd-data-protection")
    flow.code()
    first = _grant(alice, shop_app)
    assert first is not None and first.agreement is not None
    flow.code(duration=7)  # amended, same terms: the same record
    grant = _grant(alice, shop_app)
    assert grant is not None and grant.pk == first.pk and grant.agreement_id == first.agreement_id
    assert grant.agreements.count() == 1
    _terms(alice, "sd-data-protection")
    flow.code()
    grant.refresh_from_db()
    assert grant.agreement is not None and grant.agreement.agreement_id == "sd-data-protection"
    assert grant.agreements.count() == 2
    newest = grant.receipts.order_by("-number").first()
    assert newest is not None and receipt_verify(newest.jws)["agreement"]["id"] == "sd-data-protection"


# The person's grant page and the vendor's API return the same record.


def test_the_person_and_the_vendor_retrieve_identical_records_and_the_vendor_acknowledges(
    flow: Flow, alice: Any, shop_app: Application, bob: Any
) -> None:
    _terms(alice, "sd-base")
    _accepts(shop_app.organisation, "sd-base")
    tokens = flow.tokens()
    grant = _grant(alice, shop_app)
    assert grant is not None
    vendor = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {tokens['access_token']}"}
    from_api = vendor.get("/api/v1/agreement", **auth)
    assert from_api.status_code == 200
    download = flow.client.get(f"/grants/{grant.pk}/agreement.json")
    assert download.status_code == 200 and download.json() == from_api.json()
    assert from_api.json()["acknowledged_at"] is None
    assert agreement_verify(from_api.json()["jws"]) == from_api.json()["record"]

    page = flow.client.get(f"/grants/{grant.pk}/").content.decode()
    assert "Service delivery only" in page and "has not acknowledged" in page

    first = vendor.post("/api/v1/agreement/accept", **auth)
    again = vendor.post("/api/v1/agreement/accept", **auth)
    assert first.status_code == again.status_code == 200
    assert first.json()["acknowledged_at"] is not None and first.json() == again.json()
    assert LedgerEntry.objects.filter(kind="terms.acknowledged", grant_id=str(grant.pk)).count() == 1
    assert (
        flow.client.get(f"/grants/{grant.pk}/agreement.json").json()
        == vendor.get("/api/v1/agreement", **auth).json()
    )
    assert "acknowledged the signed record" in flow.client.get(f"/grants/{grant.pk}/").content.decode()

    # Someone else cannot download it; a body on accept is refused.
    bob_client = Client()
    bob_client.force_login(bob)
    assert bob_client.get(f"/grants/{grant.pk}/agreement.json").status_code == 404
    assert (
        vendor.post(
            "/api/v1/agreement/accept", {"agreement": "x"}, content_type="application/json", **auth
        ).status_code
        == 400
    )


def test_a_grant_without_terms_has_no_agreement_to_retrieve(
    flow: Flow, alice: Any, shop_app: Application
) -> None:
    tokens = flow.tokens()
    grant = _grant(alice, shop_app)
    assert grant is not None
    auth = {"HTTP_AUTHORIZATION": f"Bearer {tokens['access_token']}"}
    for response in (
        Client().get("/api/v1/agreement", **auth),
        Client().post("/api/v1/agreement/accept", **auth),
    ):
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/problem+json")
    assert flow.client.get(f"/grants/{grant.pk}/agreement.json").status_code == 404
    assert "made without a MyTerms agreement" in flow.client.get(f"/grants/{grant.pk}/").content.decode()


def test_the_export_holds_every_agreement_record(flow: Flow, alice: Any, shop_app: Application) -> None:
    _terms(alice, "sd-base")
    _accepts(shop_app.organisation, "sd-base", "sd-data-protection")
    flow.code()
    _terms(alice, "sd-data-protection")
    flow.code()
    grant = _grant(alice, shop_app)
    assert grant is not None and grant.agreements.count() == 2
    flow.client.post("/accounts/reauth/", {"password": PASSWORD})
    data = json.loads(b"".join(flow.client.get("/data/export/?format=json").streaming_content))
    exported = data["agreements"]
    assert [(a["record"]["agreement"]["id"], a["current"]) for a in exported] == [
        ("sd-base", False),
        ("sd-data-protection", True),
    ]
    assert all(agreement_verify(a["jws"]) == a["record"] for a in exported)
    current = flow.client.get(f"/grants/{grant.pk}/agreement.json").json()
    assert {k: v for k, v in exported[1].items() if k not in ("grant", "current")} == current
    archive = zipfile.ZipFile(io.BytesIO(flow.client.get("/data/export/?format=zip").content))
    names = [n for n in archive.namelist() if n.startswith("agreements/")]
    assert len(names) == 4 and "agreements/" in archive.read("README.txt").decode()


def test_terms_the_vendor_withdrew_after_the_page_was_shown_are_not_dropped_silently(
    flow: Flow, alice: Any, shop_app: Application
) -> None:
    """Found in review: the page said "accepts your terms"; a grant without them is refused."""
    _terms(alice, "sd-no-ai-training")
    _accepts(shop_app.organisation, "sd-no-ai-training")
    path = flow.authorize_path()
    html = flow.client.get(path).content.decode()
    shown = html.split('name="terms_shown" value="')[1].split('"')[0]
    assert shown == "accepted:sd-no-ai-training"
    _accepts(shop_app.organisation)  # withdrawn meanwhile
    response = flow.consent(path, terms_shown=shown)
    assert response.status_code == 400 and "changed while you were deciding" in response.content.decode()
    assert _grant(alice, shop_app) is None
