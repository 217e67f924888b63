"""The operator's admin: every registered model is classified, and none shows personal content.

A model newly registered in admin.site fails `test_every_registered_model_is_classified` until
it is written into CLASSIFIED below; personal-data and credential models must refuse add, change
and delete. The crawl signs in as a superuser, follows every admin link from the index, opens
every add page, and checks that none of a person's record content, nor any secret, appears.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.db.models import Model
from django.test import Client, RequestFactory

from accounts.models import User
from audit.models import LedgerEntry
from consent.models import AccessToken, RefreshToken
from devtools.records import demo_records_seed
from personal_data.selectors import preferences_get, records_for_owner
from personal_data.services import import_stage, preferences_update, record_create
from personal_data.transfer import import_parse
from tests.admin_crawl import admin_pages
from tests.conftest import purchase_data
from tests.consent.conftest import SECRET, Flow
from vendors.models import Membership, Organisation

PERSONAL = "personal data: metadata only, no add, change or delete"
CREDENTIAL = "credential: read-only, no secret shown"
LEDGER = "ledger: read-only"
ACCOUNTS = "accounts: actions through portal.operator only"
OPERATIONS = "operations: no personal content"
VENDOR = "vendor identity and members: read-only, verification only through organisation_verify"
CASES = "auditors' cases on vendors: read-only, opened and closed on the auditor portal"

CLASSIFIED: dict[str, str] = {
    "personal_data.Purchase": PERSONAL,
    "personal_data.ClosetItem": PERSONAL,
    "personal_data.Appliance": PERSONAL,
    "personal_data.Prescription": PERSONAL,
    "personal_data.Preferences": PERSONAL,
    "personal_data.PersonKey": PERSONAL,
    "vendors.Application": CREDENTIAL,
    "audit.LedgerEntry": LEDGER,
    "audit.LedgerCheckpoint": LEDGER,
    "accounts.User": ACCOUNTS,
    "auth.Group": OPERATIONS,
    "axes.AccessAttempt": OPERATIONS,
    "axes.AccessLog": OPERATIONS,
    "axes.AccessFailureLog": OPERATIONS,
    "django_tasks_database.DBTaskResult": OPERATIONS,
    "vendors.Organisation": VENDOR,
    "vendors.Membership": VENDOR,
    "vendors.Case": CASES,
}
# Never in the admin: tokens, codes and keys would let an operator act as a vendor or a person;
# the rest hold a person's content or what a vendor was told about it.
NEVER_REGISTERED = (
    "consent.AccessToken",
    "consent.RefreshToken",
    "consent.AuthorizationCode",
    "consent.IDToken",
    "consent.SpentCode",
    "consent.Grant",
    "consent.Receipt",
    "oauth2_provider.DeviceGrant",
    "personal_data.PendingImport",
    "personal_data.AwaitingRewrap",
    "personal_data.Share",
    "personal_data.SharedCopy",
    "personal_data.RetiredStore",
    "personal_data.RetiredRecord",
    # A person's due dates and reminders: what they are about, and when they read them.
    "personal_data.ReminderDue",
    "personal_data.Reminder",
    "vendors.IdempotencyKey",
    "vendors.Alert",
    # A person's report about a vendor: who made it stays with the person (docs/abuse.md).
    "vendors.Report",
    "sessions.Session",
    # The authenticator's secret and the backup codes' hashes (accounts/admin.py).
    "otp_totp.TOTPDevice",
    "otp_static.StaticDevice",
    "otp_static.StaticToken",
)
# Columns that hold a secret, a credential or ciphertext: no admin may show them.
SECRET_FIELDS = frozenset(
    {
        "client_secret",
        "token",
        "token_checksum",
        "code",
        "code_challenge",
        "password",
        "payload",
        "wrapped_key",
        "pseudonym_salt",
        "gtin_index",
        "lot_index",
        "response",
        "session_key",
        "session_data",
    }
)
# Document fields that are free text a person wrote or that identify what they own.
FREE_TEXT = (
    "merchant",
    "product_name",
    "brand",
    "sku",
    "lot",
    "order_ref",
    "notes",
    "name",
    "color",
    "material",
    "model_number",
    "serial_number",
    "location",
    "medication",
    "directions",
    "prescriber",
    "pharmacy",
)
MARKERS = (
    "Zephyrine Quokka Jam",
    "Marmalade Lighthouse",
    "ORD-QX-77215",
    "Vermilion Tuxedo",
    "SN-XK-44120-Q",
    "Quixotamab",
    "Dr. Oriel Vantablack",
    "kumquat dust",
    "Imported Oatcake Xylophone",
)


def _label(model: type[Model]) -> str:
    return model._meta.label


def _superuser_request(operator: User) -> Any:
    request = RequestFactory().get("/admin/")
    request.user = operator
    return request


def test_every_registered_model_is_classified(operator: User) -> None:
    registered = {_label(model): model_admin for model, model_admin in admin.site._registry.items()}
    assert set(registered) == set(CLASSIFIED), "classify every model in admin.site (tests/vrm/test_admin.py)"
    for label in NEVER_REGISTERED:
        assert label not in registered, label
    request = _superuser_request(operator)
    for label, model_admin in registered.items():
        fields = set(model_admin.get_fields(request)) | set(model_admin.get_list_display(request))
        assert not fields & SECRET_FIELDS, (label, fields & SECRET_FIELDS)
        if CLASSIFIED[label] in (PERSONAL, CREDENTIAL, LEDGER, CASES):
            assert not model_admin.has_add_permission(request), label
            assert not model_admin.has_change_permission(request), label
            assert not model_admin.has_delete_permission(request), label
            assert model_admin.has_view_permission(request), label
        if CLASSIFIED[label] == VENDOR:
            # Change permission may stay for admin actions, but no field is editable.
            assert not model_admin.has_add_permission(request), label
            assert not model_admin.has_delete_permission(request), label
            assert set(model_admin.get_fields(request)) <= set(model_admin.get_readonly_fields(request)), (
                label
            )
            for inline in model_admin.get_inline_instances(request):
                assert not inline.has_add_permission(request, None), label
                assert not inline.has_change_permission(request), label
                assert not inline.has_delete_permission(request), label
    accounts = registered["accounts.User"]
    assert not accounts.has_add_permission(request) and not accounts.has_delete_permission(request)
    assert "password" not in accounts.get_fields(request)


def test_every_personal_data_model_is_either_classified_or_never_registered() -> None:
    # A new model in the store must be decided on: shown as metadata, or kept out.
    for model in apps.get_app_config("personal_data").get_models():
        label = _label(model)
        assert CLASSIFIED.get(label) == PERSONAL or label in NEVER_REGISTERED, label


@pytest.fixture
def seeded(flow: Flow, alice: User) -> dict[str, Any]:
    """Alice with records in every category, private notes, preferences, a pending import, and
    a vendor holding live tokens under her grant."""
    demo_records_seed(person=alice, scale="small")
    record_create(
        owner=alice,
        category="purchases",
        data=purchase_data(
            merchant="Marmalade Lighthouse",
            product_name="Zephyrine Quokka Jam",
            order_ref="ORD-QX-77215",
            notes="Zephyrine Quokka Jam for the pantry",
        ),
    )
    record_create(
        owner=alice,
        category="closet",
        data={"kind": "outerwear", "name": "Vermilion Tuxedo", "size": "L", "acquired_on": "2025-02-01"},
    )
    record_create(
        owner=alice,
        category="appliances",
        data={
            "kind": "tv",
            "brand": "Lumenix",
            "serial_number": "SN-XK-44120-Q",
            "purchased_on": "2025-01-01",
        },
    )
    record_create(
        owner=alice,
        category="prescriptions",
        data={
            "medication": "Quixotamab",
            "prescriber": "Dr. Oriel Vantablack",
            "prescribed_on": "2025-03-03",
        },
    )
    preferences_update(owner=alice, data={"allergies": ["kumquat dust"], "brands_liked": ["Lumenix"]})
    csv = (
        b"merchant,product_name,quantity,unit_price,currency,purchased_on\n"
        b"Marmalade Lighthouse,Imported Oatcake Xylophone,1,2.19,EUR,2026-01-05\n"
    )
    import_stage(
        owner=alice,
        plan=import_parse(raw=csv, filename="purchases.csv", category="purchases"),
        filename="purchases.csv",
    )
    tokens = flow.tokens()
    return {"tokens": tokens}


def _forbidden(alice: User, seeded: dict[str, Any], shop_app: Any) -> set[str]:
    """Everything the admin must never show: record text, preferences, tokens, secrets, hashes."""
    texts: set[str] = set(MARKERS)
    for category in ("purchases", "closet", "appliances", "prescriptions"):
        for document in records_for_owner(owner=alice, category=category):
            texts |= {str(document[f]) for f in FREE_TEXT if document.get(f)}
    preferences = preferences_get(owner=alice)
    for key in ("allergies", "brands_liked", "brands_avoided"):
        texts |= set(preferences.get(key) or [])
    texts |= {seeded["tokens"]["access_token"], seeded["tokens"]["refresh_token"], SECRET}
    texts |= set(AccessToken.objects.values_list("token_checksum", flat=True))
    texts |= set(RefreshToken.objects.values_list("token_checksum", flat=True))
    texts.add(type(shop_app).objects.get(pk=shop_app.pk).client_secret.rsplit("$", 1)[-1])
    texts.add(User.objects.get(pk=alice.pk).password.rsplit("$", 1)[-1])
    # Short everyday words ("Bosch", "Navy") may be on any page; the rest are the person's.
    return {t for t in texts if len(t) >= 6}


def test_the_operator_cannot_read_personal_data_through_the_admin(
    seeded: dict[str, Any], alice: User, operator: User, shop_app: Any
) -> None:
    forbidden = _forbidden(alice, seeded, shop_app)
    assert "Quixotamab" in forbidden and len(forbidden) > 30
    client = Client()
    client.force_login(operator)
    seen: set[str] = set()
    object_pages = 0
    for path, status, body in admin_pages(client):
        seen.add(path)
        assert status in (200, 302, 403), (path, status)
        leaked = [text for text in forbidden if text in body]
        assert not leaked, (path, leaked)
        if status == 200:
            object_pages += bool(re.search(r"/\w+/[\w-]+/(change|history)/$", path))
    personal_pages = [p for p in seen if p.startswith("/admin/personal_data/") and p.endswith("/change/")]
    # Every record of alice's was opened (demo records, the markers, preferences, her key).
    assert len(personal_pages) >= 25 and object_pages > len(personal_pages), sorted(seen)[:20]
    for label in NEVER_REGISTERED:
        app_label, model_name = label.lower().split(".")
        assert client.get(f"/admin/{app_label}/{model_name}/").status_code == 404, label


def _snapshot() -> dict[str, list[tuple[Any, ...]]]:
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    for model in admin.site._registry:
        if CLASSIFIED[_label(model)] in (PERSONAL, CREDENTIAL):
            snapshot[_label(model)] = sorted(map(tuple, model._default_manager.values_list()), key=repr)
    for model in (AccessToken, RefreshToken):
        snapshot[_label(model)] = sorted(map(tuple, model._default_manager.values_list()), key=repr)
    return snapshot


def test_posting_add_change_delete_of_personal_and_credential_models_is_refused(
    seeded: dict[str, Any], alice: User, operator: User
) -> None:
    client = Client()
    client.force_login(operator)
    before = _snapshot()
    for model in admin.site._registry:
        if CLASSIFIED[_label(model)] not in (PERSONAL, CREDENTIAL):
            continue
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert client.post(base + "add/", {"owner": alice.pk, "shared": "on"}).status_code == 403
        for pk in model._default_manager.values_list("pk", flat=True)[:3]:
            assert client.post(f"{base}{pk}/change/", {"shared": ""}).status_code == 403, base
            assert client.post(f"{base}{pk}/delete/", {"post": "yes"}).status_code == 403, base
        every = list(model._default_manager.values_list("pk", flat=True))
        bulk = client.post(base, {"action": "delete_selected", "_selected_action": every, "post": "yes"})
        # No delete action is offered: the changelist answers "no action selected", deletes nothing.
        assert bulk.status_code in (200, 302, 403), base
    for label in (
        "consent/accesstoken",
        "consent/refreshtoken",
        "consent/authorizationcode",
        "consent/idtoken",
    ):
        assert (
            client.post(f"/admin/{label}/add/", {"user": alice.pk, "scope": "purchases:read"}).status_code
            == 404
        )
    assert _snapshot() == before
    # Her records and her vendor's token are as they were.
    me = Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {seeded['tokens']['access_token']}")
    assert me.status_code == 200


def test_an_organisation_cannot_be_deleted_from_the_admin(operator: User) -> None:
    # One without apps: Django's delete view already refuses a cascade into the read-only apps.
    org = Organisation.objects.create(name="Lonely Foods", website="https://lonely.example", verified=True)
    client = Client()
    client.force_login(operator)
    assert client.post(f"/admin/vendors/organisation/{org.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [org.pk], "post": "yes"}
    client.post("/admin/vendors/organisation/", bulk)
    assert type(org).objects.filter(pk=org.pk).exists()


def _vendor_snapshot() -> list[Any]:
    return [
        sorted(map(tuple, Organisation.objects.values_list()), key=repr),
        sorted(map(tuple, Membership.objects.values_list()), key=repr),
        sorted(map(tuple, LedgerEntry.objects.values_list("kind", "record_ids")), key=repr),
    ]


def test_the_operator_cannot_join_or_rename_a_verified_vendor(
    operator: User, shop_org: Organisation, vendor_staff: User
) -> None:
    """An operator with a vendor-staff account of their own must not get it into a verified
    organisation, nor change what people are told the organisation is, through the admin."""
    insider = User.objects.create_user(email="insider@shop.example", role=User.Role.VENDOR_STAFF)
    member = Membership.objects.create(user=vendor_staff, organisation=shop_org)
    client = Client()
    client.force_login(operator)
    before = _vendor_snapshot()
    base = "/admin/vendors/membership/"
    # A complete form, as the add page asked for it before memberships became read-only.
    when = {"created_at_0": "2026-01-05", "created_at_1": "10:00:00"}
    join = {"user": insider.pk, "organisation": shop_org.pk, **when}
    assert client.post(base + "add/", join).status_code == 403
    assert client.post(f"{base}{member.pk}/change/", join).status_code == 403
    assert client.post(f"{base}{member.pk}/delete/", {"post": "yes"}).status_code == 403
    client.post(base, {"action": "delete_selected", "_selected_action": [member.pk], "post": "yes"})
    identity = {
        "name": "Acme Shop Official",
        "website": "https://evil.example",
        "privacy_contact": "privacy@evil.example",
        "description": "Call us on a number of ours",
        "verified": "on",
    }
    inline = {
        "members-TOTAL_FORMS": "2",
        "members-INITIAL_FORMS": "1",
        "members-MIN_NUM_FORMS": "0",
        "members-MAX_NUM_FORMS": "1000",
        "members-0-id": member.pk,
        "members-0-organisation": shop_org.pk,
        "members-0-user": insider.pk,
        "members-0-DELETE": "on",
        "members-1-organisation": shop_org.pk,
        "members-1-user": insider.pk,
        "members-1-created_at_0": when["created_at_0"],
        "members-1-created_at_1": when["created_at_1"],
    }
    no_rows = {"members-TOTAL_FORMS": "0", "members-INITIAL_FORMS": "0"}
    change = f"/admin/vendors/organisation/{shop_org.pk}/change/"
    for data in ({**identity, **no_rows}, {**identity, **inline}):
        assert client.post(change, data).status_code in (200, 302, 403)
    added = client.post("/admin/vendors/organisation/add/", {**identity, "name": "Acme Shop Two", **inline})
    assert added.status_code == 403
    assert _vendor_snapshot() == before
    shop_org.refresh_from_db()
    assert shop_org.verified and shop_org.website == "https://acme.example"
    assert not Membership.objects.filter(user=insider).exists()
