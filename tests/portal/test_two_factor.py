"""Two-step sign-in (issue #15): the password, then a code; the store opens after both.

Real pages through every middleware, the real django-otp, the real database. Time is frozen
(time-machine) and moved on by whole 30-second steps where a test needs a fresh code.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.twofactor import PENDING, two_factor_enabled
from audit.models import LedgerEntry
from personal_data import services, store
from personal_data.pseudonyms import ledger_pseudonym
from portal import keyviews
from portal.keysession import COOKIE, PENDING_FIELD, SESSION_FIELD
from tests.conftest import PASSWORD, purchase_data
from tests.twofactor import code_for, two_factor_on

START = dt.datetime(2026, 5, 4, 9, 0, 0, tzinfo=dt.UTC)  # on a 30-second step boundary
LOGIN, CODE = "/accounts/login/", "/accounts/login/code/"


@pytest.fixture
def clock(time_machine: Any) -> Any:
    time_machine.move_to(START, tick=False)
    return time_machine


def _step(clock: Any, steps: int = 1) -> None:
    clock.shift(30 * steps)


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)


@pytest.fixture
def carol(db: Any, clock: Any) -> tuple[User, TOTPDevice, list[str]]:
    """A person with a purchase and two-step sign-in on, signed out (no keys held)."""
    from personal_data.keys import keys_scope
    from portal.services import person_signup

    with keys_scope():
        person = person_signup(email="carol@example.com", password=PASSWORD, display_name="Carol")
        services.record_create(
            owner=person, category="purchases", data=purchase_data(product_name="Carol Cocoa")
        )
        device, codes = two_factor_on(person)
    _step(clock)  # the code that turned it on is spent
    return _fresh(person), device, codes


def _password(client: Client, email: str = "carol@example.com", password: str = PASSWORD) -> Any:
    return client.post(LOGIN, {"username": email, "password": password})


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_the_login_form_is_unchanged_for_accounts_without_two_step(alice: User) -> None:
    client = Client()
    page = client.get(LOGIN).content.decode()
    assert 'name="username"' in page and 'name="password"' in page and 'name="code"' not in page
    response = _password(client, alice.email)
    assert response.status_code == 302 and response["Location"] == "/"
    assert _signed_in(client) and PENDING not in client.session


def test_the_password_alone_signs_nobody_in_and_opens_nothing(carol: Any) -> None:
    person, _, _ = carol
    client = Client()
    response = _password(client)
    assert response.status_code == 302 and response["Location"] == CODE
    assert not _signed_in(client)
    # Every page still wants a sign-in: the second step cannot be skipped by going elsewhere.
    for path in ("/dashboard/", "/data/purchases/", "/account/two-factor/", "/data/export/", "/grants/"):
        page = client.get(path)
        assert page.status_code == 302 and page["Location"].startswith(LOGIN), path
    assert client.get("/").status_code == 200  # the welcome page of a visitor
    # The store key waits sealed: the session row alone holds no key, and no signed-in keys.
    row = Session.objects.get(session_key=client.session.session_key)
    data_key = _data_key(person)
    assert data_key not in row.session_data.encode() and data_key.hex() not in row.session_data
    assert SESSION_FIELD not in client.session and PENDING_FIELD in client.session
    code_page = client.get(CODE)
    assert code_page.status_code == 200 and 'name="code"' in code_page.content.decode()
    assert "no-store" in code_page["Cache-Control"]


def _data_key(person: User) -> bytes:
    from personal_data.keys import keys_scope

    with keys_scope():
        services.person_unlock(person=_fresh(person), password=PASSWORD)
        return store.owner_keys(person).data


def test_the_code_step_cannot_be_reached_without_the_password(carol: Any) -> None:
    _, device, _ = carol
    client = Client()
    for response in (client.get(CODE), client.post(CODE, {"code": code_for(device)})):
        assert response.status_code == 302 and response["Location"] == LOGIN
    assert not _signed_in(client)
    # A wrong password starts nothing either.
    assert _password(client, password="not it").status_code == 200
    assert client.post(CODE, {"code": code_for(device)})["Location"] == LOGIN
    assert not _signed_in(client)


def test_the_right_code_signs_in_and_the_store_opens_once(carol: Any, monkeypatch: Any) -> None:
    person, device, _ = carol
    unlocks = []
    real_unlock = keyviews.person_unlock

    def counted(**kwargs: Any) -> Any:
        unlocks.append(kwargs["person"].pk)
        return real_unlock(**kwargs)

    monkeypatch.setattr(keyviews, "person_unlock", counted)
    client = Client()
    _password(client)
    assert unlocks == [person.pk]  # opened with the password, the one time it is at hand
    response = client.post(CODE, {"code": code_for(device)})
    assert response.status_code == 302 and response["Location"] == "/"
    assert _signed_in(client) and PENDING not in client.session and PENDING_FIELD not in client.session
    assert "Carol Cocoa" in client.get("/data/purchases/").content.decode()
    assert unlocks == [person.pk]  # and not again
    assert client.cookies[COOKIE]["httponly"]


def test_a_next_page_is_kept_through_both_steps(carol: Any) -> None:
    _, device, _ = carol
    client = Client()
    client.post(LOGIN, {"username": "carol@example.com", "password": PASSWORD, "next": "/activity/"})
    assert client.post(CODE, {"code": code_for(device)})["Location"] == "/activity/"


def test_a_wrong_code_changes_nothing_and_the_right_one_then_works(carol: Any, clock: Any) -> None:
    _, device, _ = carol
    client = Client()
    _password(client)
    before = dict(client.session.items())
    right = code_for(device)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for attempt in (wrong, "", "abcdef", "12345", "1" * 40):
        response = client.post(CODE, {"code": attempt})
        assert response.status_code == 400, attempt
        assert not _signed_in(client)
    assert dict(client.session.items()) == before
    clock.shift(20)  # django-otp makes the next try wait after a wrong code
    assert client.post(CODE, {"code": code_for(device)}).status_code == 302
    assert _signed_in(client)


def test_a_code_works_only_once(carol: Any) -> None:
    _, device, _ = carol
    code = code_for(device)
    first = Client()
    _password(first)
    assert first.post(CODE, {"code": code}).status_code == 302
    replay = Client()
    _password(replay)
    response = replay.post(CODE, {"code": code})
    assert response.status_code == 400 and not _signed_in(replay)
    assert "used already" in response.content.decode()


def test_the_second_step_expires_after_five_minutes(carol: Any, clock: Any) -> None:
    _, device, _ = carol
    client = Client()
    _password(client)
    clock.shift(5 * 60 + 1)
    response = client.post(CODE, {"code": code_for(device)})
    assert response.status_code == 302 and response["Location"] == LOGIN
    assert not _signed_in(client) and PENDING not in client.session
    assert PENDING_FIELD not in client.session  # the sealed keys go with it


def test_a_backup_code_works_once_and_is_stored_only_as_a_hash(carol: Any) -> None:
    person, _, codes = carol
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = set(StaticToken.objects.filter(device__user=person).values_list("token", flat=True))
    assert len(stored) == 10
    assert not {c.replace("-", "") for c in codes} & stored and not set(codes) & stored
    client = Client()
    _password(client)
    response = client.post(CODE, {"code": codes[3].upper().replace("-", " ")}, follow=True)
    assert _signed_in(client) and "9 are left" in response.content.decode()
    again = Client()
    _password(again)
    assert again.post(CODE, {"code": codes[3]}).status_code == 400
    assert not _signed_in(again)


def test_wrong_codes_count_like_wrong_passwords(carol: Any, clock: Any) -> None:
    _, device, _ = carol
    client = Client()
    _password(client)
    for _ in range(4):
        right = code_for(device)
        assert client.post(CODE, {"code": f"{(int(right) + 1) % 1_000_000:06d}"}).status_code == 400
        clock.shift(40)  # past django-otp's own wait, so each guess is checked and counted
    right = code_for(device)
    fifth = client.post(CODE, {"code": f"{(int(right) + 1) % 1_000_000:06d}"})
    assert fifth.status_code == 429 and int(fifth["Retry-After"]) > 0
    clock.shift(40)
    # Paused: neither the right code nor the right password gets through from this address.
    assert client.post(CODE, {"code": code_for(device)}).status_code == 429
    assert _password(Client()).status_code == 429
    assert not _signed_in(client)


def test_after_a_password_reset_sign_in_still_asks_for_the_code(carol: Any) -> None:
    person, device, _ = carol
    person.set_password("a brand new passphrase")  # what the e-mailed link does
    person.save()
    client = Client()
    response = _password(client, password="a brand new passphrase")
    assert response["Location"] == CODE and not _signed_in(client)
    response = client.post(CODE, {"code": code_for(device)})
    # Signed in, and the store (still under the old password) asks for the recovery code.
    assert _signed_in(client) and response["Location"] == "/account/unlock/"
    assert "recovery code" in client.get("/account/unlock/").content.decode()


def test_vendor_staff_and_auditors_get_the_second_step_too(vendor_staff: User, clock: Any) -> None:
    device, _ = two_factor_on(vendor_staff)
    _step(clock)
    client = Client()
    assert _password(client, vendor_staff.email)["Location"] == CODE
    assert client.get("/vendor/").status_code == 302 and not _signed_in(client)
    assert client.post(CODE, {"code": code_for(device)})["Location"] == "/"
    assert _signed_in(client)


# The account page.


def test_setting_up_shows_a_qr_code_and_the_key_and_needs_a_right_code(alice: User, clock: Any) -> None:
    client = Client()
    client.force_login(alice)
    page = client.get("/account/two-factor/setup/")
    html = page.content.decode()
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    assert '<svg role="img" aria-label="QR code' in html
    device = TOTPDevice.objects.get(user=alice, confirmed=False)
    secret = re.search(r'aria-label="Secret key"><code>([A-Z2-7 ]+)</code>', html)
    assert secret is not None
    from tests.twofactor import code_from_secret

    right = code_from_secret(secret.group(1))
    assert right == code_for(device)
    # Reloading keeps the same key (an app may have scanned it already).
    assert secret.group(1) in client.get("/account/two-factor/setup/").content.decode()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert client.post("/account/two-factor/setup/", {"code": wrong}).status_code == 400
    assert not two_factor_enabled(alice)
    clock.shift(20)
    done = client.post("/account/two-factor/setup/", {"code": code_for(device)})
    assert done.status_code == 200 and "no-store" in done["Cache-Control"]
    codes = re.findall(r"<li><code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code></li>", done.content.decode())
    assert len(codes) == 10 and two_factor_enabled(alice)
    entry = LedgerEntry.objects.get(kind="person.two_factor_on")
    assert entry.subject == ledger_pseudonym(person_id=alice.pk)
    assert "two-step sign-in" in client.get("/activity/").content.decode().lower()
    assert any("Two-step sign-in is on" in m.subject for m in mail.outbox)
    # The codes are shown once: the page now says how many are left, never which.
    status = client.get("/account/two-factor/").content.decode()
    assert "10 backup codes" in status and codes[0] not in status


def test_setting_up_asks_for_the_password_if_not_given_lately(alice: User, clock: Any) -> None:
    client = Client()
    client.force_login(alice)
    clock.shift(11 * 60)
    response = client.get("/account/two-factor/setup/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/confirm/")
    assert not TOTPDevice.objects.filter(user=alice).exists()


def _signed_in_with_two_step(user: User, clock: Any) -> tuple[Client, TOTPDevice, list[str]]:
    device, codes = two_factor_on(user)
    _step(clock)
    client = Client()
    client.force_login(user)
    return client, device, codes


def test_turning_off_needs_the_password_and_a_code(alice: User, clock: Any) -> None:
    client, device, _ = _signed_in_with_two_step(alice, clock)
    url = "/account/two-factor/turn-off/"
    right = code_for(device)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert client.post(url, {"password": PASSWORD}).status_code == 400
    assert client.post(url, {"code": right}).status_code == 400
    assert client.post(url, {"password": "not it", "code": right}).status_code == 400
    assert client.post(url, {"password": PASSWORD, "code": wrong}).status_code == 400
    assert two_factor_enabled(alice)
    clock.shift(40)
    response = client.post(url, {"password": PASSWORD, "code": code_for(device)})
    assert response.status_code == 302 and not two_factor_enabled(alice)
    assert not StaticToken.objects.filter(device__user=alice).exists()
    assert LedgerEntry.objects.filter(kind="person.two_factor_off").count() == 1
    # And the password alone signs in again.
    fresh = Client()
    assert _password(fresh, alice.email)["Location"] == "/" and _signed_in(fresh)


def test_codes_asked_on_the_account_page_are_counted(alice: User, clock: Any, settings: Any) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # django-otp's own growing wait aside: the count alone
    client, device, _ = _signed_in_with_two_step(alice, clock)
    right = code_for(device)
    for _ in range(5):
        response = client.post(
            "/account/two-factor/turn-off/",
            {"password": PASSWORD, "code": f"{(int(right) + 1) % 1_000_000:06d}"},
        )
        assert response.status_code == 400
    refused = client.post("/account/two-factor/turn-off/", {"password": PASSWORD, "code": code_for(device)})
    assert refused.status_code == 429 and two_factor_enabled(alice)


def test_new_backup_codes_replace_the_old_ones(alice: User, clock: Any) -> None:
    client, device, old = _signed_in_with_two_step(alice, clock)
    url = "/account/two-factor/backup-codes/"
    assert client.post(url, {"password": "not it", "code": code_for(device)}).status_code == 400
    response = client.post(url, {"password": PASSWORD, "code": old[0]})  # a backup code will do
    new = re.findall(r"<li><code>([a-z2-9-]{14})</code></li>", response.content.decode())
    assert response.status_code == 200 and len(new) == 10 and not set(new) & set(old)
    assert LedgerEntry.objects.filter(kind="person.backup_codes_new").count() == 1
    fresh = Client()
    _password(fresh, alice.email)
    assert fresh.post(CODE, {"code": old[1]}).status_code == 400
    clock.shift(5)  # django-otp makes the next try wait after a wrong code
    assert fresh.post(CODE, {"code": new[1]}).status_code == 302 and _signed_in(fresh)


def test_every_role_has_the_page(alice: User, vendor_staff: User, auditor: User, operator: User) -> None:
    # Operators too: /admin/login/ is the site's login, so their second step is asked there.
    for user in (alice, vendor_staff, auditor, operator):
        client = Client()
        client.force_login(user)
        page = client.get("/account/two-factor/")
        assert page.status_code == 200, user.role
        assert 'href="/account/two-factor/"' in page.content.decode()  # linked from the footer


def test_an_operator_turns_it_off_from_the_admin_with_a_ledger_entry(
    alice: User, operator: User, clock: Any
) -> None:
    two_factor_on(alice)
    client = Client()
    client.force_login(operator)
    response = client.post(
        "/admin/accounts/user/", {"action": "remove_two_factor", "_selected_action": [alice.pk]}, follow=True
    )
    assert response.status_code == 200 and not two_factor_enabled(alice)
    entry = LedgerEntry.objects.get(kind="operator.two_factor_removed")
    assert entry.actor_id == str(operator.pk) and entry.subject == ledger_pseudonym(person_id=alice.pk)
    assert any("Two-step sign-in was turned off" in m.subject for m in mail.outbox)


def test_the_admin_never_shows_the_secret(alice: User, operator: User) -> None:
    device, codes = two_factor_on(alice)
    client = Client()
    client.force_login(operator)
    for path in ("/admin/otp_totp/totpdevice/", "/admin/otp_static/staticdevice/"):
        assert client.get(path).status_code == 404
    page = client.get(f"/admin/accounts/user/{alice.pk}/change/").content.decode()
    assert device.key not in page and codes[0] not in page


def test_a_right_code_straight_after_a_wrong_one_is_told_to_wait_not_called_wrong(
    client: Client, auditor: User
) -> None:
    client.force_login(auditor)  # a fresh sign-in counts as a recent password
    client.get("/account/two-factor/setup/")
    device = TOTPDevice.objects.get(user=auditor)
    right = code_for(device)
    wrong = client.post("/account/two-factor/setup/", {"code": "000000" if right != "000000" else "111111"})
    assert "That code is not right" in wrong.content.decode()
    page = client.post("/account/two-factor/setup/", {"code": right}).content.decode()
    assert "Wait 1 second after a wrong code" in page and "That code is not right" not in page
    assert not two_factor_enabled(auditor)
