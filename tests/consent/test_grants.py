"""Grant lifecycle services, receipts, the grants pages and expire_grants."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from typing import Any

import jsonschema
import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from jwcrypto import jws

from audit.models import LedgerEntry
from audit.services import ledger_seal
from consent.models import AccessToken, Grant, RefreshToken
from consent.receipts import receipt_schema, receipt_verify
from consent.services import grant_amend, grant_authorize, grant_revoke, grants_expire_overdue
from tests.consent.conftest import Flow


def _day(end: dt.datetime, later_by: int = 0) -> dt.date:
    """The day `later_by` days after a grant's end (UTC), as the grants page posts it."""
    return (end.astimezone(dt.UTC) + dt.timedelta(days=later_by)).date()


def _grant(alice: Any, app: Any, **kwargs: Any) -> Grant:
    return grant_authorize(
        person=alice,
        application=app,
        **{"scopes": ["purchases:read", "profile:read"], "duration_days": 30, **kwargs},
    )


def test_receipts_validate_against_the_schema_and_verify_with_the_published_key(
    alice: Any, shop_app: Any, client: Client
) -> None:
    grant = _grant(alice, shop_app)
    grant_amend(grant=grant, by=alice, scopes=["purchases:read"])
    grant_revoke(grant=grant, by=alice)
    ledger_seal()
    checkpoint = client.get("/api/v1/ledger/checkpoint").json()
    raw = base64.b64decode(checkpoint["public_key"])
    public = {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}
    receipts = list(grant.receipts.all())
    assert [r.event for r in receipts] == ["created", "amended", "revoked"]
    for receipt in receipts:
        document = receipt_verify(receipt.jws, public)
        assert document == receipt.document
        jsonschema.validate(document, receipt_schema())
    assert receipts[-1].document["grant"]["status"] == "revoked"
    assert receipts[-1].document["pii_controllers"][0]["name"] == "Acme Shop"
    assert "alice" not in json.dumps([r.document for r in receipts]).lower()  # pairwise id only


def test_a_tampered_receipt_does_not_verify(alice: Any, shop_app: Any) -> None:
    receipt = _grant(alice, shop_app).receipts.get()
    header, payload, signature = receipt.jws.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["grant"]["end"] = "2099-01-01T00:00:00Z"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(jws.InvalidJWSSignature):
        receipt_verify(f"{header}.{forged_payload}.{signature}")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scopes": []}, "scopes"),
        ({"scopes": ["recalls:publish"]}, "scopes"),
        ({"duration_days": 45}, "duration_days"),
        ({"scopes": ["prescriptions:read"], "duration_days": 365}, "duration_days"),
        ({"history_months": 5}, "history_months"),
    ],
)
def test_grant_authorize_refuses_bad_choices(
    alice: Any, shop_app: Any, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        _grant(alice, shop_app, **kwargs)
    assert field in excinfo.value.message_dict
    assert not Grant.objects.exists() and not LedgerEntry.objects.exists()


def test_amend_only_narrows_and_extension_is_capped(alice: Any, shop_app: Any) -> None:
    grant = _grant(alice, shop_app)
    with pytest.raises(ValidationError):
        grant_amend(grant=grant, by=alice, scopes=["purchases:read", "closet:read"])
    rx = _grant(alice, shop_app, scopes=["prescriptions:read"], duration_days=30)
    with pytest.raises(ValidationError) as excinfo:
        grant_amend(grant=rx, by=alice, ends_on=_day(rx.ends_at, 61))
    assert "at most 90 days from today" in excinfo.value.message_dict["ends_on"][0]
    extended = grant_amend(grant=rx, by=alice, ends_on=_day(rx.ends_at, 60))
    assert extended.ends_at == rx.ends_at + dt.timedelta(days=60)
    assert extended.ends_at - extended.amended_at <= dt.timedelta(days=90)


def test_revoke_deletes_every_token_and_logs_it(flow: Flow, alice: Any) -> None:
    flow.tokens()
    grant = Grant.objects.get()
    grant_revoke(grant=grant, by=alice)
    assert not AccessToken.objects.exists() and not RefreshToken.objects.exists()
    assert Grant.objects.get().status == "revoked"
    assert LedgerEntry.objects.filter(kind="grant.revoked", grant_id=str(grant.pk)).exists()


def test_expire_grants_command(flow: Flow) -> None:
    token = flow.tokens(duration=1)
    grant = Grant.objects.get()
    with time_machine.travel(grant.ends_at + dt.timedelta(minutes=1)):
        out = io.StringIO()
        call_command("expire_grants", stdout=out)
        assert "Expired 1 grant." in out.getvalue()
        assert grants_expire_overdue() == 0  # safe to re-run
    grant.refresh_from_db()
    assert grant.status == "expired" and not AccessToken.objects.exists()
    assert grant.receipts.last().event == "expired"
    assert LedgerEntry.objects.filter(kind="grant.expired").count() == 1
    assert flow.me(token["access_token"]).status_code == 401


def test_grants_pages_list_narrow_extend_revoke_and_receipts(
    client: Client, alice: Any, shop_app: Any
) -> None:
    grant = _grant(alice, shop_app)
    client.force_login(alice)
    listing = client.get("/grants/").content.decode()
    assert "Acme Shop" in listing and "Your purchases" in listing and "days left" in listing

    ends_on = _day(grant.ends_at, 7)
    response = client.post(f"/grants/{grant.pk}/", {"scopes": ["purchases:read"], "ends_on": ends_on})
    assert response.status_code == 302
    before = grant.ends_at
    grant.refresh_from_db()
    assert grant.scopes == ["purchases:read"] and grant.ends_at == before + dt.timedelta(days=7)

    bad = client.post(f"/grants/{grant.pk}/", {"scopes": ["closet:read"]})
    assert bad.status_code == 400

    receipt = client.get(f"/grants/{grant.pk}/receipts/2.json")
    assert receipt.status_code == 200 and receipt.json()["event"] == "amended"
    assert "attachment" in receipt["Content-Disposition"]

    dashboard = client.get("/dashboard/").content.decode()
    assert f"/grants/{grant.pk}/revoke/" in dashboard  # click 1
    assert "Revoke now" in client.get(f"/grants/{grant.pk}/revoke/").content.decode()
    client.post(f"/grants/{grant.pk}/revoke/")  # click 2
    grant.refresh_from_db()
    assert grant.status == "revoked"


def test_grants_pages_refuse_other_people_and_anonymous(
    client: Client, alice: Any, bob: Any, shop_app: Any, auditor: Any
) -> None:
    grant = _grant(alice, shop_app)
    paths = [f"/grants/{grant.pk}/", f"/grants/{grant.pk}/revoke/", f"/grants/{grant.pk}/receipts/1.json"]
    for path in ["/grants/", *paths]:
        assert client.get(path)["Location"].startswith("/accounts/login/")
    client.force_login(bob)
    for path in [*paths, "/grants/not-a-uuid/"]:
        assert client.get(path).status_code == 404
    assert client.post(f"/grants/{grant.pk}/revoke/").status_code == 404
    grant.refresh_from_db()
    assert grant.status == "active"
    client.force_login(auditor)
    assert client.get("/grants/").status_code == 403


def test_client_credentials_only_for_organisation_scopes(client: Client, shop_org: Any) -> None:
    from tests.consent.conftest import SECRET, basic, make_app

    recall_app = make_app(
        shop_org, name="Recalls", grant_type="client-credentials", scopes=("recalls:publish",)
    )
    ok = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "recalls:publish"},
        **basic(recall_app.client_id, SECRET),
    )
    assert (
        ok.status_code == 200 and ok.json()["scope"] == "recalls:publish" and "refresh_token" not in ok.json()
    )
    assert AccessToken.objects.get().grant is None
    person = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "purchases:read"},
        **basic(recall_app.client_id, SECRET),
    )
    assert person.status_code == 400 and person.json()["error"] == "invalid_scope"
    me = Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {ok.json()['access_token']}")
    assert me.status_code in (401, 403)  # no person behind an organisation token


def test_sub_is_pairwise_per_organisation(alice: Any, bob: Any, shop_org: Any, stranger_app: Any) -> None:
    from django.test import override_settings

    from consent.services import grant_authorize
    from core.crypto import encode_key, random_key
    from personal_data.pseudonyms import ledger_pseudonym, pairwise_subject
    from tests.consent.conftest import make_app

    second_shop_app = make_app(shop_org, name="Second app")
    shop = pairwise_subject(person_id=alice.pk, organisation_id=shop_org.pk)
    # Stable across the organisation's apps and calls, different for another organisation and person.
    assert shop == pairwise_subject(person_id=alice.pk, organisation_id=second_shop_app.organisation_id)
    assert shop != pairwise_subject(person_id=alice.pk, organisation_id=stranger_app.organisation_id)
    assert shop != pairwise_subject(person_id=bob.pk, organisation_id=shop_org.pk)
    assert shop != ledger_pseudonym(person_id=alice.pk)
    assert str(alice.pk).replace("-", "") not in shop
    # Not derivable without VRM_INDEX_KEY: another index key gives another id.
    with override_settings(VRM_INDEX_KEY=encode_key(random_key())):
        assert pairwise_subject(person_id=alice.pk, organisation_id=shop_org.pk) != shop
    grant = grant_authorize(
        person=alice, application=second_shop_app, scopes=["profile:read"], duration_days=7
    )
    assert grant.receipts.get().document["pii_principal_id"] == shop
