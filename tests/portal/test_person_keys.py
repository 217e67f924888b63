"""People hold the key: sign-up, sign-in, the session, password change and reset, vendor writes.

Each test drives the real pages (Django's test client through every middleware) and checks
what is stored: the session row, the key rows and the payloads.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client

from accounts.models import User
from audit.models import LedgerEntry
from consent.models import Grant
from consent.services import grant_amend, grant_authorize, grant_revoke
from core import crypto
from personal_data import selectors, services, store
from personal_data.keys import WrongSecret, keys_scope, recovery_code_issued
from personal_data.models import AwaitingRewrap, PersonKey, Purchase, Share, SharedCopy
from portal.keysession import COOKIE
from portal.services import person_signup
from tests.conftest import PASSWORD, purchase_data
from tests.personal_data.test_keys_lifecycle import make_legacy
from tests.vendors_api.conftest import Api, issue_token

CODE = re.compile(r"<code>([A-Z2-9]{5}(?:-[A-Z2-9]{5}){5})</code>")
NEW_PASSWORD = "a brand new passphrase"


def _login(client: Client, email: str, password: str) -> Any:
    return client.post("/accounts/login/", {"username": email, "password": password})


def _fresh(person: User) -> User:
    """The same account read afresh, holding no opened keys (as any later request starts)."""
    return User.objects.get(pk=person.pk)


def _signed_out_person(email: str = "carol@example.com") -> User:
    with keys_scope():
        person = person_signup(email=email, password=PASSWORD, display_name="Carol")
        services.record_create(
            owner=person, category="purchases", data=purchase_data(product_name="Carol Cocoa")
        )
    return _fresh(person)


def test_sign_in_opens_the_store_and_the_session_row_alone_opens_nothing(db: Any) -> None:
    person = _signed_out_person()
    with pytest.raises(store.StoreLocked):
        selectors.records_for_owner(owner=person, category="purchases")
    client = Client()
    assert _login(client, person.email, PASSWORD).status_code == 302
    assert "Carol Cocoa" in client.get("/data/purchases/").content.decode()
    cookie = client.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    # The session row holds the keys sealed under the cookie's key, never the keys themselves.
    keys = services.person_unlock(person=_fresh(person), password=PASSWORD)
    assert keys is None
    row = Session.objects.get(session_key=client.session.session_key)
    data_key = store.owner_keys(person).data
    assert data_key not in row.session_data.encode() and data_key.hex() not in row.session_data
    # Without the cookie the session is signed in but the store stays shut: unlock first.
    del client.cookies[COOKIE]
    response = client.get("/data/purchases/")
    assert response.status_code == 302 and response["Location"] == "/account/unlock/"


def test_logging_out_drops_the_keys(db: Any) -> None:
    person = _signed_out_person()
    client = Client()
    _login(client, person.email, PASSWORD)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.cookies[COOKIE].value == ""  # deleted
    assert not Session.objects.filter(session_key=client.session.session_key).exists() or (
        "_vrm_sealed_keys" not in client.session
    )


def test_sign_up_shows_a_recovery_code_once_and_it_opens_the_store(db: Any) -> None:
    client = Client()
    data = {"email": "dora@example.com", "password1": PASSWORD, "password2": PASSWORD}
    client.post("/accounts/signup/", data)
    link = re.search(r"https?://[^/]+(/accounts/signup/confirm/\S+/)", mail.outbox[0].body)
    assert link is not None
    page = client.post(link.group(1), {"password": PASSWORD})
    found = CODE.search(page.content.decode())
    assert page.status_code == 200 and found is not None and "no-store" in page["Cache-Control"]
    assert "Keep it somewhere safe" in page.content.decode()
    person = User.objects.get(email="dora@example.com")
    services.record_create(owner=person, category="purchases", data=purchase_data())
    # Nothing stored holds the code: only its wrap. It opens the store under a new password.
    wraps = PersonKey.objects.get(person=person)
    assert found.group(1).encode() not in bytes(wraps.recovery_wrap or b"")
    with keys_scope():
        new_code = services.person_recover(
            person=_fresh(person), code=found.group(1), new_password=NEW_PASSWORD
        )
        assert new_code != found.group(1)
    with keys_scope(), pytest.raises(WrongSecret):  # the old code was replaced
        services.person_recover(person=_fresh(person), code=found.group(1), new_password=NEW_PASSWORD)


def test_a_password_change_rewraps_the_key(db: Any) -> None:
    person = _signed_out_person()
    client = Client()
    _login(client, person.email, PASSWORD)
    response = client.post(
        "/accounts/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    with keys_scope():
        services.person_unlock(person=_fresh(person), password=NEW_PASSWORD)
    with keys_scope(), pytest.raises(WrongSecret):
        services.person_unlock(person=_fresh(person), password=PASSWORD)
    # The session that changed it keeps its keys.
    assert "Carol Cocoa" in client.get("/data/purchases/").content.decode()


def test_a_password_reset_by_e_mail_asks_for_the_recovery_code(db: Any) -> None:
    with keys_scope():
        person = person_signup(email="erin@example.com", password=PASSWORD)
        recovery = recovery_code_issued(person)  # what the sign-up page showed
        assert recovery is not None
        services.record_create(
            owner=person, category="purchases", data=purchase_data(product_name="Erin Espresso")
        )
    person = _fresh(person)
    person.set_password(NEW_PASSWORD)  # what the e-mailed reset link does
    person.save()
    client = Client()
    response = _login(client, person.email, NEW_PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/account/unlock/"
    page = client.get("/account/unlock/").content.decode()
    assert "recovery code" in page
    wrong = client.post("/account/unlock/", {"recovery_code": "A" * 30, "password": NEW_PASSWORD})
    assert wrong.status_code == 400
    opened = client.post("/account/unlock/", {"recovery_code": recovery.lower(), "password": NEW_PASSWORD})
    assert opened.status_code == 200 and CODE.search(opened.content.decode())
    assert "Erin Espresso" in client.get("/data/purchases/").content.decode()
    with keys_scope():  # from now on the new password opens it
        services.person_unlock(person=_fresh(person), password=NEW_PASSWORD)


def test_an_account_from_before_moves_to_its_own_key_at_sign_in(db: Any, shop_app: Any) -> None:
    with keys_scope():
        person = person_signup(email="finn@example.com", password=PASSWORD)
        services.record_create(owner=person, category="purchases", data=purchase_data())
        grant = grant_authorize(
            person=person, application=shop_app, scopes=["purchases:read"], duration_days=30
        )
        make_legacy(person)
    Grant.objects.filter(pk=grant.pk).update(share=None)  # a grant from before grant keys
    Share.objects.all().delete()
    client = Client()
    page = _login(client, "finn@example.com", PASSWORD)
    assert page.status_code == 200 and CODE.search(page.content.decode())
    assert "only you hold" in page.content.decode()
    moved = PersonKey.objects.get(person=person)
    assert moved.master_key_id == "" and moved.wrapped_key is None and moved.password_wrap is not None
    assert LedgerEntry.objects.filter(kind="key.rotated", actor_type="person").exists()
    grant.refresh_from_db()
    assert grant.share is not None and SharedCopy.objects.filter(share=grant.share).count() == 1


def test_a_vendor_write_while_away_is_sealed_to_the_person_and_moves_at_sign_in(
    db: Any, shop_app: Any
) -> None:
    with keys_scope():
        person = person_signup(email="gwen@example.com", password=PASSWORD)
        grant = grant_authorize(
            person=person,
            application=shop_app,
            scopes=["purchases:read", "purchases:write"],
            duration_days=30,
        )
    token = issue_token(Grant.objects.get(pk=grant.pk))
    with keys_scope():
        response = Api(token).post(
            "purchases", purchase_data(notes="written by the shop", product_name="Shop Scone")
        )
    assert response.status_code == 201, response.content
    row = Purchase.objects.get(pk=response.json()["id"])
    assert bytes(row.payload)[:1] == bytes([crypto.SEALED_TO_VERSION])
    assert AwaitingRewrap.objects.filter(owner_id=person.pk).count() == 1
    # The vendor reads it back through its own copy; nobody else can open it meanwhile.
    with keys_scope():
        listed = Api(token).get("purchases").json()["results"]
        assert [r["notes"] for r in listed] == ["written by the shop"]
        with pytest.raises(store.StoreLocked):
            selectors.records_for_owner(owner=_fresh(person), category="purchases")
    client = Client()
    _login(client, person.email, PASSWORD)
    row.refresh_from_db()
    assert bytes(row.payload)[:1] == bytes([crypto.FORMAT_VERSION])
    assert not AwaitingRewrap.objects.exists()
    assert "Shop Scone" in client.get("/data/purchases/").content.decode()


def test_the_copies_follow_the_person_and_die_with_the_grant(alice: Any, shop_app: Any) -> None:
    kept = services.record_create(owner=alice, category="purchases", data=purchase_data(notes="kept"))
    hidden = services.record_create(owner=alice, category="purchases", data=purchase_data(notes="hidden"))
    gift = services.record_create(owner=alice, category="purchases", data=purchase_data(is_gift=True))
    services.record_create(owner=alice, category="closet", data={"kind": "top", "name": "Shirt"})
    grant = grant_authorize(
        person=alice, application=shop_app, scopes=["purchases:read", "closet:read"], duration_days=30
    )
    share = Share.objects.get(pk=grant.share_id)

    def copies() -> set[tuple[str, str]]:
        return {(c.category, str(c.record_id)) for c in SharedCopy.objects.filter(share=share)}

    assert {r for c, r in copies() if c == "purchases"} == {kept["id"], hidden["id"]}  # no gift
    services.record_update(owner=alice, category="purchases", record_id=hidden["id"], data={"shared": False})
    assert {r for c, r in copies() if c == "purchases"} == {kept["id"]}
    services.record_update(owner=alice, category="purchases", record_id=gift["id"], data={"is_gift": False})
    services.record_update(owner=alice, category="purchases", record_id=kept["id"], data={"notes": "changed"})
    token = issue_token(Grant.objects.get(pk=grant.pk))
    notes = {r["id"]: r["notes"] for r in Api(token).get("purchases").json()["results"]}
    assert notes == {kept["id"]: "changed", gift["id"]: purchase_data()["notes"]}
    services.record_delete(owner=alice, category="purchases", record_id=gift["id"])
    assert {r for c, r in copies() if c == "purchases"} == {kept["id"]}

    grant_amend(grant=grant, by=alice, scopes=["purchases:read"])  # narrowing drops the closet
    assert {c for c, _ in copies()} == {"purchases"}
    grant_revoke(grant=Grant.objects.get(pk=grant.pk), by=alice)
    assert not Share.objects.filter(pk=share.pk).exists() and not SharedCopy.objects.exists()


def test_a_streamed_export_is_written_with_the_keys_of_the_session(db: Any) -> None:
    # The export streams after the view returns; the keys must be open while its chunks are made.
    person = _signed_out_person()
    client = Client()
    _login(client, person.email, PASSWORD)
    response = client.get("/data/export/?format=json")
    exported = json.loads(b"".join(response.streaming_content))
    assert [p["product_name"] for p in exported["purchases"]] == ["Carol Cocoa"]


def _derivations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the thread of every Argon2id derivation of a store's wrapping key."""
    threads: list[str] = []
    derive = crypto.PasswordKdf.derive

    def recorded(self: crypto.PasswordKdf, password: str) -> bytes:
        threads.append(threading.current_thread().name)
        return derive(self, password)

    monkeypatch.setattr(crypto.PasswordKdf, "derive", recorded)
    return threads


def test_sign_in_derives_the_store_key_on_another_thread_while_the_password_is_checked(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = _signed_out_person()
    threads = _derivations(monkeypatch)
    client = Client()
    assert _login(client, person.email, PASSWORD).status_code == 302
    assert len(threads) == 1 and threads[0].startswith("vrm-kdf"), threads
    assert "Carol Cocoa" in client.get("/data/purchases/").content.decode()
    # A wrong password: derived all the same (no answer may come sooner), and nothing opens.
    threads.clear()
    other = Client()
    assert _login(other, person.email, "not the password at all").status_code == 200
    assert len(threads) == 1 and COOKIE not in other.cookies


def test_a_refused_sign_in_costs_no_key_derivation(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    person = _signed_out_person()
    client = Client()
    for _ in range(5):
        _login(client, person.email, "not the password at all")
    threads = _derivations(monkeypatch)
    assert _login(client, person.email, PASSWORD).status_code == 429
    assert threads == []
