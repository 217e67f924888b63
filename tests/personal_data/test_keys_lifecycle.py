"""Master-key rotation and crypto-shredding erasure."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from audit.models import LedgerEntry
from core import crypto
from core.keys import master_keyring
from personal_data import selectors, services, store
from personal_data.categories import RECORD_CATEGORIES
from personal_data.models import PersonKey, Purchase
from personal_data.pseudonyms import ledger_pseudonym
from tests.conftest import purchase_data


def _new_key() -> str:
    return base64.b64encode(crypto.random_key()).decode()


def test_rotation_rewraps_every_key_and_the_old_master_key_can_go(alice: Any, bob: Any) -> None:
    a = services.record_create(owner=alice, category="purchases", data=purchase_data())
    b = services.record_create(owner=bob, category="purchases", data=purchase_data(merchant="Bakery"))
    old_ring = master_keyring()
    old_id = old_ring.newest_id
    old_entry = f"{old_id}:{base64.b64encode(old_ring.keys[0][1]).decode()}"
    new_entry = f"rot2:{_new_key()}"

    with override_settings(VRM_MASTER_KEYS=f"{new_entry},{old_entry}"):
        out = io.StringIO()
        call_command("rotate_master_key", "--batch-size", "1", stdout=out, stderr=io.StringIO())
        assert "Rewrapped 2 data keys" in out.getvalue()
        assert set(PersonKey.objects.values_list("master_key_id", flat=True)) == {"rot2"}
        entries = LedgerEntry.objects.filter(kind="key.rotated")
        assert [e.record_count for e in entries] == [1, 1]  # one entry per committed batch
        out = io.StringIO()
        call_command("rotate_master_key", stdout=out, stderr=io.StringIO())  # safe to re-run
        assert "Rewrapped 0 data keys; 2 were already" in out.getvalue()

    with override_settings(VRM_MASTER_KEYS=new_entry):  # the old master key is gone for good
        assert selectors.record_get_for_owner(owner=alice, category="purchases", record_id=a["id"]) == a
        assert selectors.record_get_for_owner(owner=bob, category="purchases", record_id=b["id"]) == b


def test_rotation_resumes_after_an_interruption(alice: Any, bob: Any) -> None:
    old = master_keyring()
    old_entry = f"{old.newest_id}:{base64.b64encode(old.keys[0][1]).decode()}"
    with override_settings(VRM_MASTER_KEYS=f"rot3:{_new_key()},{old_entry}"):
        calls = []

        def stop_after_first_batch(done: int, total: int) -> None:
            calls.append(done)
            if len(calls) == 2:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            services.master_key_rotate(batch_size=1, on_batch=stop_after_first_batch)
        assert PersonKey.objects.filter(master_key_id="rot3").count() == 1  # the first batch committed
        report = services.master_key_rotate(batch_size=1)
        assert report.rewrapped == 1 and report.already_current == 1


def test_rotation_reports_keys_it_cannot_unwrap(alice: Any) -> None:
    with override_settings(VRM_MASTER_KEYS=f"rot4:{_new_key()}"):
        err = io.StringIO()
        with pytest.raises(SystemExit):
            call_command("rotate_master_key", stdout=io.StringIO(), stderr=err)
        assert str(alice.pk) in err.getvalue()


def test_erasure_shreds_the_key_and_every_record(alice: Any, bob: Any) -> None:
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
    kept = services.record_create(owner=bob, category="purchases", data=purchase_data())
    row = Purchase.objects.get(owner=alice)
    stolen_payload, stolen_aad = (
        bytes(row.payload),
        crypto.record_aad(table=Purchase._meta.db_table, record_id=str(row.pk), owner_id=str(alice.pk)),
    )
    wrapped = bytes(PersonKey.objects.get(person=alice).wrapped_key)
    pseudonym = ledger_pseudonym(person_id=alice.pk)

    report = services.person_erase(person=alice)

    assert report.key_destroyed and report.records["purchases"] == 1 and report.records["preferences"] == 1
    assert not PersonKey.objects.filter(person=alice).exists()
    assert all(not c.model.objects.filter(owner=alice).exists() for c in RECORD_CATEGORIES.values())
    # Nothing the system still holds opens the copy taken before the erasure.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT wrapped_key FROM {PersonKey._meta.db_table}")  # noqa: S608
        remaining = [bytes(r[0]) for r in cursor.fetchall()]
    assert wrapped not in remaining
    for person_key in PersonKey.objects.all():
        with pytest.raises(crypto.CryptoError):
            crypto.unseal(store.data_key(person_key), stolen_payload, stolen_aad)
    with pytest.raises(store.StoreError):
        store.owner_data_key(alice.pk)
    entry = LedgerEntry.objects.get(kind="person.erased")
    assert entry.subject == pseudonym and entry.record_count == 5
    with pytest.raises(LookupError):  # nothing can recompute the pseudonym any more
        ledger_pseudonym(person_id=alice.pk)
    # Bob is untouched.
    assert selectors.record_get_for_owner(owner=bob, category="purchases", record_id=kept["id"]) == kept
