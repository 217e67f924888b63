"""Master-key rotation (grant keys and not-yet-moved data keys) and crypto-shredding erasure."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from audit.models import LedgerEntry
from consent.services import grant_authorize
from core import crypto
from core.keys import master_keyring
from personal_data import selectors, services, shares, store
from personal_data.categories import RECORD_CATEGORIES
from personal_data.models import PersonKey, Purchase, Share, SharedCopy
from personal_data.pseudonyms import ledger_pseudonym
from tests.conftest import purchase_data


def _new_key() -> str:
    return base64.b64encode(crypto.random_key()).decode()


def make_legacy(person: Any) -> None:
    """Turn a person's keys into the form accounts had before person-held keys (master wrap)."""
    keys = store.owner_keys(person)
    key_id, wrapped = master_keyring().wrap(keys.data, context=str(person.pk))
    PersonKey.objects.filter(person=person).update(
        master_key_id=key_id,
        wrapped_key=wrapped,
        password_kdf="",
        password_wrap=None,
        recovery_wrap=None,
        public_key=None,
        private_wrap=None,
    )
    store.person_key_forget(person)


def _copy_documents(share: Share) -> dict[str, bytes]:
    rows = shares.copies_page(share=share, category="purchases", limit=100)
    return shares.copies_open_json(share=share, category="purchases", rows=rows)


def test_rotation_rewraps_grant_keys_and_legacy_data_keys(alice: Any, bob: Any, shop_app: Any) -> None:
    a = services.record_create(owner=alice, category="purchases", data=purchase_data())
    b = services.record_create(owner=bob, category="purchases", data=purchase_data(merchant="Bakery"))
    grants = [
        grant_authorize(person=p, application=shop_app, scopes=["purchases:read"], duration_days=30)
        for p in (alice, bob)
    ]
    make_legacy(bob)
    old_ring = master_keyring()
    old_entry = f"{old_ring.newest_id}:{base64.b64encode(old_ring.keys[0][1]).decode()}"
    new_entry = f"rot2:{_new_key()}"

    with override_settings(VRM_MASTER_KEYS=f"{new_entry},{old_entry}"):
        out = io.StringIO()
        call_command("rotate_master_key", "--batch-size", "1", stdout=out, stderr=io.StringIO())
        # bob's data key (legacy) and the two grant keys.
        assert "Rewrapped 3 keys" in out.getvalue()
        assert set(Share.objects.values_list("master_key_id", flat=True)) == {"rot2"}
        assert PersonKey.objects.get(person=bob).master_key_id == "rot2"
        assert PersonKey.objects.get(person=alice).master_key_id == ""  # alice holds her own key
        assert [e.record_count for e in LedgerEntry.objects.filter(kind="key.rotated")] == [1, 1, 1]
        out = io.StringIO()
        call_command("rotate_master_key", stdout=out, stderr=io.StringIO())  # safe to re-run
        assert "Rewrapped 0 keys; 3 were already" in out.getvalue()

    with override_settings(VRM_MASTER_KEYS=new_entry):  # the old master key is gone for good
        for grant, record in zip(grants, (a, b), strict=True):
            grant.refresh_from_db()
            assert grant.share is not None
            assert list(_copy_documents(grant.share)) == [record["id"]]
        assert selectors.record_get_for_owner(owner=alice, category="purchases", record_id=a["id"]) == a
        assert selectors.record_get_for_owner(owner=bob, category="purchases", record_id=b["id"]) == b


def _key_counts() -> dict[str, int]:
    return {
        "shares": Share.objects.count(),
        "copies": SharedCopy.objects.count(),
        "people's keys": PersonKey.objects.count(),
        "master-wrapped": PersonKey.objects.exclude(master_key_id="").count(),
    }


def test_rotation_resumes_after_an_interruption(alice: Any, bob: Any, shop_app: Any) -> None:
    records = [
        services.record_create(owner=p, category="purchases", data=purchase_data()) for p in (alice, bob)
    ]
    grants = [
        grant_authorize(person=p, application=shop_app, scopes=["purchases:read"], duration_days=30)
        for p in (alice, bob)
    ]
    make_legacy(bob)
    before = _key_counts()
    old = master_keyring()
    old_entry = f"{old.newest_id}:{base64.b64encode(old.keys[0][1]).decode()}"
    new_entry = f"rot3:{_new_key()}"
    with override_settings(VRM_MASTER_KEYS=f"{new_entry},{old_entry}"):
        calls = []

        def stop_after_first_batch(done: int, total: int) -> None:
            calls.append(done)
            if len(calls) == 2:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            services.master_key_rotate(batch_size=1, on_batch=stop_after_first_batch)
        # The first batch (bob's data key) committed with its ledger entry; nothing else moved.
        assert PersonKey.objects.get(person=bob).master_key_id == "rot3"
        assert set(Share.objects.values_list("master_key_id", flat=True)) == {old.newest_id}
        assert [e.record_count for e in LedgerEntry.objects.filter(kind="key.rotated")] == [1]
        assert _key_counts() == before
        report = services.master_key_rotate(batch_size=1)
        assert report.rewrapped == 2 and report.already_current == 1 and not report.failed

    assert _key_counts() == before
    with override_settings(VRM_MASTER_KEYS=new_entry):  # every key opens without the old one
        for grant, record in zip(grants, records, strict=True):
            grant.refresh_from_db()
            assert grant.share is not None
            assert list(_copy_documents(grant.share)) == [record["id"]]
        store.person_key_forget(bob)
        got = selectors.record_get_for_owner(owner=bob, category="purchases", record_id=records[1]["id"])
        assert got == records[1]


def test_a_refill_begun_before_a_rotation_keeps_the_rotated_key(alice: Any, shop_app: Any) -> None:
    """A share loaded before the rotation and saved after it (a grant amended, or filled at sign-in,
    while the rotation runs) must not write the old master key's wrap back over the new one."""
    record = services.record_create(owner=alice, category="purchases", data=purchase_data())
    grant = grant_authorize(person=alice, application=shop_app, scopes=["purchases:read"], duration_days=30)
    stale = Share.objects.get(pk=grant.share_id)
    old = master_keyring()
    old_entry = f"{old.newest_id}:{base64.b64encode(old.keys[0][1]).decode()}"
    new_entry = f"rot5:{_new_key()}"
    with override_settings(VRM_MASTER_KEYS=f"{new_entry},{old_entry}"):
        assert services.master_key_rotate().rewrapped == 1
        shares.share_refill(share=stale, owner=alice, filters=shares.share_filters(stale))

    share = Share.objects.get(pk=grant.share_id)
    assert share.master_key_id == "rot5"
    with override_settings(VRM_MASTER_KEYS=new_entry):
        assert list(_copy_documents(share)) == [record["id"]]


def test_rotation_reports_keys_it_cannot_unwrap(alice: Any, shop_app: Any) -> None:
    grant = grant_authorize(person=alice, application=shop_app, scopes=["purchases:read"], duration_days=30)
    with override_settings(VRM_MASTER_KEYS=f"rot4:{_new_key()}"):
        err = io.StringIO()
        with pytest.raises(SystemExit):
            call_command("rotate_master_key", stdout=io.StringIO(), stderr=err)
        assert str(grant.share_id) in err.getvalue()


def test_erasure_shreds_the_keys_and_every_record(alice: Any, bob: Any, shop_app: Any) -> None:
    for category in RECORD_CATEGORIES:
        data = (
            purchase_data()
            if category == "purchases"
            else {
                "closet": {"kind": "top", "name": "Shirt"},
                "appliances": {"kind": "tv"},
                "prescriptions": {"medication": "Ibuprofen"},
            }[category]
        )
        services.record_create(owner=alice, category=category, data=data)
    services.preferences_update(owner=alice, data={"allergies": ["peanuts"]})
    grant_authorize(person=alice, application=shop_app, scopes=["purchases:read"], duration_days=30)
    kept = services.record_create(owner=bob, category="purchases", data=purchase_data())
    row = Purchase.objects.get(owner=alice)
    stolen_payload, stolen_aad = (
        bytes(row.payload),
        crypto.record_aad(table=Purchase._meta.db_table, record_id=str(row.pk), owner_id=str(alice.pk)),
    )
    wraps = PersonKey.objects.get(person=alice)
    stolen_wraps = {bytes(wraps.password_wrap or b""), bytes(wraps.recovery_wrap or b"")}
    pseudonym = ledger_pseudonym(person_id=alice.pk)

    report = services.person_erase(person=alice)

    assert report.key_destroyed and report.records["purchases"] == 1 and report.records["preferences"] == 1
    assert not PersonKey.objects.filter(person=alice).exists()
    assert not Share.objects.filter(owner=alice).exists() and not SharedCopy.objects.exists()
    assert all(not c.model.objects.filter(owner=alice).exists() for c in RECORD_CATEGORIES.values())
    # Nothing the system still holds opens the copy taken before the erasure.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT password_wrap, recovery_wrap FROM {PersonKey._meta.db_table}")  # noqa: S608
        remaining = {bytes(v) for r in cursor.fetchall() for v in r if v is not None}
    assert not stolen_wraps & remaining
    for other in PersonKey.objects.all():
        keys = store.keys_held(other.person_id)
        assert keys is not None
        with pytest.raises(crypto.CryptoError):
            crypto.unseal(keys.data, stolen_payload, stolen_aad)
    with pytest.raises(store.StoreError):
        store.owner_keys(alice.pk)
    entry = LedgerEntry.objects.get(kind="person.erased")
    assert entry.subject == pseudonym and entry.record_count == 5
    with pytest.raises(LookupError):  # nothing can recompute the pseudonym any more
        ledger_pseudonym(person_id=alice.pk)
    # Bob is untouched.
    assert selectors.record_get_for_owner(owner=bob, category="purchases", record_id=kept["id"]) == kept
