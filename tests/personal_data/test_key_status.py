"""key_status: who holds which key, in counts, without opening any."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from django.core.management import call_command
from django.test import override_settings

from accounts.models import User
from accounts.services import account_upsert
from consent.services import grant_authorize, grant_revoke
from core import crypto
from core.keys import master_keyring
from personal_data import services
from personal_data.keys import keys_scope
from personal_data.selectors import key_status
from tests.conftest import purchase_data
from tests.personal_data.test_keys_lifecycle import make_legacy


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("key_status", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_key_status_counts_people_grant_keys_and_waiting_records(
    alice: Any, bob: Any, shop_app: Any, vendor_staff: Any
) -> None:
    newest = master_keyring().newest_id
    empty = {"newest": True, "in_ring": True, "grant_keys": 0, "people": 0}
    assert key_status()["master_keys"] == {newest: empty}
    account_upsert(email="nokey@example.com", password="x" * 20, role=User.Role.PERSON)  # no store yet
    grant = grant_authorize(person=alice, application=shop_app, scopes=["purchases:read"], duration_days=30)
    grant_authorize(person=bob, application=shop_app, scopes=["purchases:read"], duration_days=30)
    make_legacy(bob)
    with keys_scope():  # alice is away: a vendor's write is sealed to her public key
        services.record_create(owner=alice, category="purchases", data=purchase_data(), source="vendor")

    status = key_status()
    assert status == {
        "people": 3,  # not the vendor's staff
        "people_holding_their_key": 1,
        "people_wrapped_by_master_key": 1,
        "people_without_key": 1,
        "grant_keys_live": 2,
        "grant_keys_unfilled": 0,
        "records_awaiting_rewrap": 1,
        "people_with_records_awaiting_rewrap": 1,
        "stores_set_aside": 0,
        "records_set_aside": 0,
        "next_destruction": None,
        "master_keys": {newest: {**empty, "grant_keys": 2, "people": 1}},
    }
    assert json.loads(_run("--json")) == status
    text = _run()
    assert "People: 3; 1 hold their own key, 1 still wrapped by a master key" in text
    assert "Grant keys live: 2" in text and "Records awaiting rewrap: 1 (of 1 people)" in text
    assert f"Master key {newest} (newest): 2 grant keys, 1 people's keys." in text

    grant_revoke(grant=grant, by=alice)  # the grant key dies with the grant
    assert key_status()["grant_keys_live"] == 1


def test_key_status_names_keys_missing_from_the_ring(alice: Any, shop_app: Any) -> None:
    grant_authorize(person=alice, application=shop_app, scopes=["purchases:read"], duration_days=30)
    old = master_keyring().newest_id
    new = f"next:{base64.b64encode(crypto.random_key()).decode()}"
    with override_settings(VRM_MASTER_KEYS=new):  # rotated away before rewrapping: a lost key
        status = key_status()
        assert status["master_keys"][old] == {"newest": False, "in_ring": False, "grant_keys": 1, "people": 0}
        assert status["master_keys"]["next"]["newest"] is True
        assert f"Master key {old} (NOT IN THE KEY RING): 1 grant keys" in _run()
