"""A forgotten password: the reset asks for the recovery code; without it, an empty store.

The old records are set aside sealed as they were, kept 30 days (the person is told the date),
brought back by the old recovery code until then, and destroyed afterwards. Each test drives the
real pages (the e-mailed link, sign-in, the unlock pages) and checks what is stored.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone

from accounts.models import User
from audit.models import LedgerEntry
from consent.models import Grant
from consent.services import grant_authorize
from core import crypto
from personal_data import selectors, services, store
from personal_data.keys import WrongSecret, keys_scope, recovery_code_issued
from personal_data.models import (
    AwaitingRewrap,
    PersonKey,
    Preferences,
    Purchase,
    RetiredRecord,
    RetiredStore,
    SharedCopy,
)
from portal.keysession import COOKIE
from portal.services import person_signup
from tests.conftest import PASSWORD, purchase_data
from tests.vendors_api.conftest import Api, issue_token

CODE = re.compile(r"<code>([A-Z2-9]{5}(?:-[A-Z2-9]{5}){5})</code>")
NEW_PASSWORD = "a brand new passphrase"


def _fresh(person: User) -> User:
    return User.objects.get(pk=person.pk)


def _person_with_records(email: str = "rosa@example.com") -> tuple[User, str, list[str]]:
    """A signed-out person with a gift, a hidden purchase, a closet item and preferences."""
    with keys_scope():
        person = person_signup(email=email, password=PASSWORD, display_name="Rosa")
        code = recovery_code_issued(person)
        assert code is not None
        ids = [
            services.record_create(
                owner=person, category="purchases", data=purchase_data(product_name="Rosa Rooibos")
            )["id"],
            services.record_create(
                owner=person,
                category="purchases",
                data=purchase_data(product_name="Hidden Hat", shared=False, is_gift=True),
            )["id"],
            services.record_create(
                owner=person, category="closet", data={"kind": "top", "name": "Rosa Raincoat"}
            )["id"],
        ]
        services.preferences_update(
            owner=person,
            data={"dietary": ["vegetarian"], "contact": {"email": True, "safety_alerts_only": False}},
        )
    return _fresh(person), code, ids


def _reset_link(client: Client, email: str) -> str:
    mail.outbox.clear()
    client.post("/accounts/password_reset/", {"email": email})
    (message,) = mail.outbox
    link = re.search(r"http://[^/\s]+(/accounts/reset/\S+/)", message.body)
    assert link is not None, message.body
    page = client.get(link.group(1))  # Django moves the token into the session and redirects
    assert page.status_code == 302
    return str(page["Location"])


def _login(client: Client, email: str, password: str) -> Any:
    return client.post("/accounts/login/", {"username": email, "password": password})


def _reset_without_code(person: User) -> Client:
    """Reset the password by the e-mailed link without the code, then sign in: store locked."""
    client = Client()
    form = _reset_link(client, person.email)
    done = client.post(form, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302, done.content
    signed_in = _login(client, person.email, NEW_PASSWORD)
    assert signed_in["Location"] == "/account/unlock/"
    return client


def test_the_reset_pages_say_plainly_that_the_code_is_needed(db: Any) -> None:
    person, _, _ = _person_with_records()
    client = Client()
    assert "recovery code" in client.get("/accounts/password_reset/").content.decode()
    page = client.get(_reset_link(client, person.email)).content.decode()
    assert 'name="recovery_code"' in page and "a new password cannot open it" in page


def test_a_reset_with_the_recovery_code_keeps_the_store_open_under_the_new_password(db: Any) -> None:
    person, code, _ = _person_with_records()
    client = Client()
    form = _reset_link(client, person.email)
    page = client.post(
        form, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD, "recovery_code": code.lower()}
    )
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    new_code = CODE.search(page.content.decode())
    assert new_code is not None and new_code.group(1) != code
    assert _fresh(person).check_password(NEW_PASSWORD)
    with keys_scope():  # the new password opens the store at once; the old code no longer does
        services.person_unlock(person=_fresh(person), password=NEW_PASSWORD)
    with keys_scope(), pytest.raises(WrongSecret):
        services.person_recover(person=_fresh(person), code=code, new_password=NEW_PASSWORD)
    signed_in = Client()
    assert _login(signed_in, person.email, NEW_PASSWORD)["Location"] != "/account/unlock/"
    assert "Rosa Rooibos" in signed_in.get("/data/purchases/").content.decode()


def test_a_wrong_recovery_code_at_reset_changes_nothing(db: Any) -> None:
    person, _, _ = _person_with_records()
    client = Client()
    form = _reset_link(client, person.email)
    page = client.post(
        form, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD, "recovery_code": "A" * 30}
    )
    assert page.status_code == 200
    assert "does not open your store; your password is not changed" in page.content.decode()
    assert _fresh(person).check_password(PASSWORD) and not _fresh(person).check_password(NEW_PASSWORD)
    with keys_scope():
        services.person_unlock(person=_fresh(person), password=PASSWORD)


def test_a_browser_restart_asks_for_the_password_not_the_recovery_code(db: Any) -> None:
    person, _, _ = _person_with_records()
    client = Client()
    _login(client, person.email, PASSWORD)
    del client.cookies[COOKIE]  # the key cookie lives as long as the browser; the session longer
    assert client.get("/data/purchases/")["Location"] == "/account/unlock/"
    page = client.get("/account/unlock/").content.decode()
    assert "Type your password to open your store again" in page and "recovery_code" not in page
    wrong = client.post("/account/unlock/?next=/data/purchases/", {"password": "not it at all"})
    assert wrong.status_code == 400 and "That is not your password" in wrong.content.decode()
    opened = client.post("/account/unlock/?next=/data/purchases/", {"password": PASSWORD})
    assert opened.status_code == 302 and opened["Location"] == "/data/purchases/"
    assert "Rosa Rooibos" in client.get("/data/purchases/").content.decode()


def test_after_a_reset_the_unlock_page_finds_out_and_asks_for_the_code(db: Any) -> None:
    person, code, _ = _person_with_records()
    person.set_password(NEW_PASSWORD)  # what an earlier reset did; this session does not know it
    person.save()
    client = Client()
    client.force_login(person)  # a session whose keys cookie is gone
    client.cookies.pop(COOKIE, None)
    moved = client.post("/account/unlock/", {"password": NEW_PASSWORD})
    assert moved.status_code == 302 and moved["Location"] == "/account/unlock/"
    page = client.get("/account/unlock/").content.decode()
    assert "recovery_code" in page and "start an empty store" in page
    opened = client.post("/account/unlock/", {"recovery_code": code, "password": NEW_PASSWORD})
    assert opened.status_code == 200 and CODE.search(opened.content.decode())


def test_without_the_code_the_person_starts_an_empty_store_and_is_told_the_date(
    db: Any, shop_app: Any
) -> None:
    person, old_code, ids = _person_with_records()
    with keys_scope():
        services.person_unlock(person=person, password=PASSWORD)
        grant = grant_authorize(
            person=person,
            application=shop_app,
            scopes=["purchases:read", "closet:read", "preferences:read"],
            duration_days=30,
        )
    assert SharedCopy.objects.filter(share=grant.share).count() == 3  # 2 records + preferences
    client = _reset_without_code(_fresh(person))
    assert client.get("/account/unlock/start-empty/").status_code == 200
    until = timezone.now() + dt.timedelta(days=30)
    page = client.get("/account/unlock/start-empty/").content.decode()
    assert f"{until:%-d %B %Y}" in page

    unticked = client.post("/account/unlock/start-empty/", {"password": NEW_PASSWORD})
    assert unticked.status_code == 400 and "Tick this box" in unticked.content.decode()
    wrong = client.post("/account/unlock/start-empty/", {"password": "not it", "understood": "on"})
    assert wrong.status_code == 400 and not RetiredStore.objects.exists()

    mail.outbox.clear()
    done = client.post("/account/unlock/start-empty/", {"password": NEW_PASSWORD, "understood": "on"})
    assert done.status_code == 200
    text = done.content.decode()
    new_code = CODE.search(text)
    assert new_code is not None and f"{until:%-d %B %Y}" in text and "3 records from before" in text
    (message,) = mail.outbox
    assert message.to == [person.email] and f"{until:%-d %B %Y}" in message.body
    assert "/account/earlier-records/" in message.body

    # An empty store that the new password opens; the old records are set aside, sealed as they were.
    assert not Purchase.objects.filter(owner=person).exists()
    retired = RetiredStore.objects.get(owner=person)
    assert retired.record_count == 3 and abs(retired.destroy_after - until) < dt.timedelta(minutes=1)
    assert RetiredRecord.objects.filter(store=retired).count() == 4  # and the preferences
    with keys_scope():
        services.person_unlock(person=_fresh(person), password=NEW_PASSWORD)
        assert selectors.records_for_owner(owner=_fresh(person), category="purchases") == []
    contact = Preferences.objects.get(owner=person).contact
    # The e-mail choices stay (with the reminder choices' defaults).
    assert {k: contact[k] for k in ("email", "safety_alerts_only")} == {
        "email": True,
        "safety_alerts_only": False,
    }
    # The grant goes on over the empty store: the vendor reads nothing of the old records.
    token = issue_token(Grant.objects.get(pk=grant.pk))
    assert Api(token).get("purchases").json()["results"] == []
    assert Api(token).get("closet").json()["results"] == []
    entry = LedgerEntry.objects.get(kind="person.store_restarted")
    assert entry.record_count == 3 and f"{until:%Y-%m-%d}" in entry.reason
    dashboard = client.get("/dashboard/").content.decode()
    assert f"will be destroyed on {until:%-d %B %Y}" in dashboard and "/account/earlier-records/" in dashboard

    # The new code opens the new store, not the old records; the old code brings those back.
    client.post("/data/purchases/add/", purchase_data(product_name="Since The Reset", shared="on"))
    wrong_code = client.post("/account/earlier-records/", {"recovery_code": new_code.group(1)})
    assert wrong_code.status_code == 400 and "not the one you were given" in wrong_code.content.decode()
    back = client.post("/account/earlier-records/", {"recovery_code": old_code})
    assert back.status_code == 302 and back["Location"] == "/dashboard/"
    assert "3 records from before are back" in client.get("/dashboard/").content.decode()
    assert not RetiredStore.objects.exists() and not RetiredRecord.objects.exists()
    listed = client.get("/data/purchases/").content.decode()
    assert "Rosa Rooibos" in listed and "Hidden Hat" in listed and "Since The Reset" in listed
    hidden = Purchase.objects.get(pk=ids[1])
    assert hidden.shared is False and hidden.is_gift is True
    assert sorted(r["product_name"] for r in Api(token).get("purchases").json()["results"]) == [
        "Rosa Rooibos",
        "Since The Reset",
    ]
    assert [r["name"] for r in Api(token).get("closet").json()["results"]] == ["Rosa Raincoat"]
    assert LedgerEntry.objects.get(kind="person.store_restored").record_count == 3


def test_the_preferences_come_back_with_the_contact_choices_made_since(db: Any) -> None:
    person, old_code, _ = _person_with_records()
    with keys_scope():
        services.person_store_restart(person=person, password=NEW_PASSWORD)
        services.preferences_update(
            owner=person, data={"contact": {"email": False, "safety_alerts_only": True}}
        )
        restored = services.person_store_restore(person=person, code=old_code)
        assert restored.records == 3 and restored.preferences
        prefs = selectors.preferences_get(owner=person)
    assert prefs["dietary"] == ["vegetarian"]
    assert prefs["contact"]["email"] is False and prefs["contact"]["safety_alerts_only"] is True


def test_start_empty_sets_nothing_aside_when_the_password_opens_the_store(db: Any) -> None:
    person, _, _ = _person_with_records()
    with keys_scope():
        restart = services.person_store_restart(person=_fresh(person), password=PASSWORD)
    assert restart.code is None and restart.retired is None
    assert not RetiredStore.objects.exists() and Purchase.objects.filter(owner=person).count() == 2
    client = Client()
    client.force_login(person)
    # The page is only for a store the sign-in found locked by a reset.
    assert client.get("/account/unlock/start-empty/")["Location"] == "/account/unlock/"


def test_the_set_aside_store_is_destroyed_after_30_days_and_not_before(db: Any) -> None:
    person, old_code, _ = _person_with_records()
    with keys_scope():
        services.person_store_restart(person=person, password=NEW_PASSWORD)
    out = StringIO()
    with time_machine.travel(timezone.now() + dt.timedelta(days=29, hours=23)):
        call_command("destroy_retired_stores", stdout=out)
    assert out.getvalue().startswith("Destroyed 0 stores") and RetiredStore.objects.count() == 1
    status = StringIO()
    call_command("key_status", stdout=status)
    assert "Stores set aside after a reset without the recovery code: 1 (3 records" in status.getvalue()
    with time_machine.travel(timezone.now() + dt.timedelta(days=30, minutes=1)):
        call_command("destroy_retired_stores", stdout=out)
        assert "Destroyed 1 store set aside (3 records)" in out.getvalue()
        assert not RetiredStore.objects.exists() and not RetiredRecord.objects.exists()
        entry = LedgerEntry.objects.get(kind="person.store_destroyed")
        assert entry.record_count == 3 and entry.actor_type == "system"
        with keys_scope(), pytest.raises(WrongSecret):
            services.person_unlock(person=_fresh(person), password=NEW_PASSWORD)
            services.person_store_restore(person=_fresh(person), code=old_code)
        call_command("destroy_retired_stores", stdout=out)  # safe to re-run
    assert LedgerEntry.objects.filter(kind="person.store_destroyed").count() == 1


def test_a_store_past_its_date_cannot_be_restored_even_before_the_command_runs(db: Any) -> None:
    person, old_code, _ = _person_with_records()
    with keys_scope():
        services.person_store_restart(person=person, password=NEW_PASSWORD)
    with time_machine.travel(timezone.now() + dt.timedelta(days=31)), keys_scope():
        services.person_unlock(person=_fresh(person), password=NEW_PASSWORD)
        with pytest.raises(WrongSecret):
            services.person_store_restore(person=_fresh(person), code=old_code)
        assert selectors.retired_stores_for_person(person=person) == []


def test_erasure_destroys_the_set_aside_store_too(db: Any) -> None:
    person, _, _ = _person_with_records()
    with keys_scope():
        services.person_store_restart(person=person, password=NEW_PASSWORD)
        services.person_erase(person=_fresh(person))
    assert not RetiredStore.objects.exists() and not RetiredRecord.objects.exists()


def test_records_waiting_for_the_old_key_are_set_aside_and_come_back(db: Any, shop_app: Any) -> None:
    person, old_code, _ = _person_with_records()
    with keys_scope():
        services.person_unlock(person=person, password=PASSWORD)
        grant = grant_authorize(
            person=person, application=shop_app, scopes=["purchases:write"], duration_days=30
        )
    token = issue_token(Grant.objects.get(pk=grant.pk))
    with keys_scope():  # the person is away: sealed to the old public key
        written = Api(token).post("purchases", purchase_data(product_name="Shop Scone")).json()
    assert AwaitingRewrap.objects.count() == 1
    with keys_scope():
        services.person_store_restart(person=_fresh(person), password=NEW_PASSWORD)
        assert not AwaitingRewrap.objects.exists()
        services.person_store_restore(person=_fresh(person), code=old_code)
        restored = Purchase.objects.get(pk=written["id"])
        assert bytes(restored.payload)[:1] == bytes([crypto.FORMAT_VERSION])
        doc = selectors.record_get_for_owner(
            owner=_fresh(person), category="purchases", record_id=written["id"]
        )
    assert doc["product_name"] == "Shop Scone"


@pytest.mark.django_db(transaction=True)
def test_a_vendor_write_during_the_reset_waits_and_is_sealed_to_the_new_key(shop_app: Any) -> None:
    """The write-back path locks the key row, so it never seals to a key that is being replaced."""
    person, _, _ = _person_with_records()
    with keys_scope():
        services.person_unlock(person=person, password=PASSWORD)
        grant_authorize(person=person, application=shop_app, scopes=["purchases:write"], duration_days=30)
    old_public = bytes(PersonKey.objects.get(person=person).public_key or b"")
    locked, finished = threading.Event(), threading.Event()
    result: dict[str, Any] = {}

    def restart() -> None:
        with transaction.atomic():
            PersonKey.objects.select_for_update().get(person_id=person.pk)
            locked.set()
            finished.wait(timeout=0.8)  # the vendor's write must still be waiting after this
            with keys_scope():
                services.person_store_restart(person=_fresh(person), password=NEW_PASSWORD)
        connections.close_all()

    def vendor_write() -> None:
        locked.wait(timeout=10)
        with keys_scope():
            result["doc"] = services.record_create(
                owner=_fresh(person), category="purchases", data=purchase_data(product_name="Racing")
            )
        finished.set()
        connections.close_all()

    threads = [threading.Thread(target=restart), threading.Thread(target=vendor_write)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    new_public = bytes(PersonKey.objects.get(person=person).public_key or b"")
    assert new_public != old_public
    row = Purchase.objects.get(pk=result["doc"]["id"])
    assert row.owner_id == person.pk  # in the new store, not set aside
    with keys_scope():
        services.person_unlock(person=_fresh(person), password=NEW_PASSWORD)  # settles it
        doc = selectors.record_get_for_owner(owner=_fresh(person), category="purchases", record_id=row.pk)
    assert doc["product_name"] == "Racing"
    assert store.row_sealed_to_person(Purchase.objects.get(pk=row.pk)) is False
