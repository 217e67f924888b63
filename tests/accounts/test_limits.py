"""Password guessing is limited without handing anyone a way to lock others out (#13 item 5)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client, RequestFactory

from accounts.limits import login_username
from accounts.models import User, email_key
from accounts.reauth import SESSION_KEY
from portal.services import person_signup
from tests.conftest import PASSWORD

ATTACKER = "203.0.113.9"
VICTIM = "198.51.100.7"
PROXY = "10.0.0.1"
LOGIN = "/accounts/login/"


@pytest.fixture(autouse=True)
def _fresh_cache(time_machine: Any) -> Iterator[None]:
    # Fixed windows: a frozen clock keeps a test's attempts in one window.
    time_machine.move_to(dt.datetime.now(dt.UTC), tick=False)
    cache.clear()
    yield
    cache.clear()


def _login(client: Client, email: str, password: str, **extra: str) -> Any:
    return client.post(LOGIN, {"username": email, "password": password}, **extra)


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_an_attacker_locks_the_account_only_from_their_own_address(alice: User) -> None:
    attacker, victim = Client(REMOTE_ADDR=ATTACKER), Client(REMOTE_ADDR=VICTIM)
    for _ in range(5):
        _login(attacker, "alice@example.com", "wrong")
    refused = _login(attacker, "alice@example.com", PASSWORD)
    assert refused.status_code == 429 and int(refused["Retry-After"]) == 15 * 60
    assert "paused for 15 minutes" in refused.content.decode() and not _signed_in(attacker)

    response = _login(victim, "alice@example.com", PASSWORD)
    assert response.status_code == 302 and _signed_in(victim)


def test_the_case_of_the_e_mail_does_not_buy_more_guesses(alice: User) -> None:
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for spelling in ("alice@example.com", "Alice@example.com", "ALICE@example.com", "alice@Example.com"):
        _login(attacker, spelling, "wrong")
    assert _login(attacker, "aLiCe@example.com", "wrong").status_code == 429
    assert _login(attacker, "alice@EXAMPLE.com", PASSWORD).status_code == 429


def test_a_noisy_address_is_slowed_for_every_account_then_let_go(
    alice: User, bob: User, settings: Any, time_machine: Any
) -> None:
    settings.VRM_LOGIN_ADDRESS_RATE = "4/m"
    noisy, elsewhere = Client(REMOTE_ADDR=ATTACKER), Client(REMOTE_ADDR=VICTIM)
    for n in range(4):  # a few guesses at many accounts: no account reaches its own lock
        assert _login(noisy, f"person{n}@example.com", "wrong").status_code == 200
    slowed = _login(noisy, "bob@example.com", PASSWORD)
    assert slowed.status_code == 429 and not _signed_in(noisy)
    wait = int(slowed["Retry-After"])
    assert 1 <= wait <= 60 and "slowed down" in slowed.content.decode()
    # Only that address: bob logs in from his own.
    assert _login(elsewhere, "bob@example.com", PASSWORD).status_code == 302

    # Slowed, not locked: once the window is over the address may try again, and the attempts
    # refused meanwhile counted against no account.
    for _ in range(6):
        assert _login(noisy, "alice@example.com", "wrong").status_code == 429
    time_machine.shift(dt.timedelta(seconds=wait + 1))
    assert _login(noisy, "alice@example.com", PASSWORD).status_code == 302


def test_without_VRM_BEHIND_PROXY_x_forwarded_for_is_ignored(alice: User, settings: Any) -> None:
    settings.VRM_BEHIND_PROXY = False
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for n in range(5):  # a fresh forged address every time buys nothing
        _login(attacker, "alice@example.com", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    refused = _login(attacker, "alice@example.com", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert refused.status_code == 429
    # ...and a forged header cannot borrow the victim's address either.
    victim = Client(REMOTE_ADDR=VICTIM)
    assert _login(victim, "alice@example.com", PASSWORD, HTTP_X_FORWARDED_FOR=ATTACKER).status_code == 302


def test_behind_a_proxy_two_people_are_counted_by_their_forwarded_addresses(
    alice: User, settings: Any
) -> None:
    settings.VRM_BEHIND_PROXY = True
    settings.VRM_PROXY_COUNT = 1
    attacker = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=ATTACKER)
    victim = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=VICTIM)
    for _ in range(5):
        _login(attacker, "alice@example.com", "wrong")
    assert _login(attacker, "alice@example.com", PASSWORD).status_code == 429
    # What the client writes left of what the proxy appended is not believed.
    forged = {"HTTP_X_FORWARDED_FOR": f"{VICTIM}, {ATTACKER}"}
    assert _login(attacker, "alice@example.com", PASSWORD, **forged).status_code == 429
    assert _login(victim, "alice@example.com", PASSWORD).status_code == 302


def test_failed_admin_logins_count_against_the_address_too(alice: User, settings: Any) -> None:
    settings.VRM_LOGIN_ADDRESS_RATE = "2/m"
    noisy = Client(REMOTE_ADDR=ATTACKER)
    for n in range(2):
        noisy.post("/admin/login/", {"username": f"ops{n}@example.com", "password": "wrong"})
    assert _login(noisy, "alice@example.com", PASSWORD).status_code == 429
    assert noisy.post("/admin/login/", {"username": "x@example.com", "password": "y"}).status_code == 429


def _stale_session(client: Client, user: User) -> None:
    client.force_login(user)
    session = client.session
    session[SESSION_KEY] = 0  # confirmed long ago
    session.save()


def test_re_authentication_cannot_be_guessed_without_limit(alice: User) -> None:
    thief = Client(REMOTE_ADDR=ATTACKER)
    _stale_session(thief, alice)
    for _ in range(5):
        assert thief.post("/accounts/confirm/?next=/data/export/", {"password": "guess"}).status_code == 400
    refused = thief.post("/accounts/confirm/?next=/data/export/", {"password": PASSWORD})
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert thief.session[SESSION_KEY] == 0  # still not confirmed
    # Counted per account, not per address or session: another session of alice's is refused too.
    other = Client(REMOTE_ADDR=VICTIM)
    _stale_session(other, alice)
    assert other.post("/accounts/confirm/", {"password": PASSWORD}).status_code == 429


def test_the_deletion_password_cannot_be_guessed_without_limit(alice: User) -> None:
    thief = Client(REMOTE_ADDR=ATTACKER)
    thief.force_login(alice)  # a fresh login counts as a fresh confirmation
    for _ in range(5):
        assert thief.post("/account/delete/", {"password": "guess"}).status_code == 400
    refused = thief.post("/account/delete/", {"password": PASSWORD})
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert User.objects.filter(pk=alice.pk).exists()
    # Both pages share one count: re-authentication is refused as well.
    assert thief.post("/accounts/confirm/", {"password": PASSWORD}).status_code == 429


def test_a_right_password_confirms_while_attempts_are_left(alice: User) -> None:
    client = Client(REMOTE_ADDR=VICTIM)
    _stale_session(client, alice)
    for _ in range(4):
        client.post("/accounts/confirm/", {"password": "typo"})
    response = client.post("/accounts/confirm/?next=/data/export/", {"password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/data/export/"


NEW_PASSWORD = "a fresh and long passphrase"


def _change(client: Client, old: str, path: str = "/accounts/password_change/") -> Any:
    return client.post(
        path, {"old_password": old, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )


@pytest.mark.parametrize("path", ["/accounts/password_change/", "/admin/password_change/"])
def test_the_old_password_of_a_password_change_cannot_be_guessed_without_limit(
    alice: User, operator: User, path: str
) -> None:
    user = operator if path.startswith("/admin/") else alice
    thief = Client(REMOTE_ADDR=ATTACKER)
    thief.force_login(user)
    assert thief.get(path).status_code == 200
    for _ in range(5):
        guessed = _change(thief, "guess", path)
        assert guessed.status_code == 200 and "old_password" in guessed.context["form"].errors
    refused = _change(thief, PASSWORD, path)
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    user.refresh_from_db()
    assert user.check_password(PASSWORD) and not user.check_password(NEW_PASSWORD)
    # One count per account with re-authentication: that is refused as well.
    assert thief.post("/accounts/confirm/", {"password": PASSWORD}).status_code == 429


@pytest.mark.parametrize(
    ("path", "done"),
    [
        ("/accounts/password_change/", "/accounts/password_change/done/"),
        ("/admin/password_change/", "/admin/password_change/done/"),
    ],
)
def test_the_right_old_password_changes_it_while_attempts_are_left(
    alice: User, operator: User, path: str, done: str
) -> None:
    user = operator if path.startswith("/admin/") else alice
    client = Client(REMOTE_ADDR=VICTIM)
    client.force_login(user)
    for _ in range(4):
        _change(client, "typo", path)
    changed = _change(client, PASSWORD, path)
    assert changed.status_code == 302 and changed["Location"] == done
    assert client.get(done).status_code == 200 and _signed_in(client)  # the session survives
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_admin_logins_are_paused_per_account_and_address(operator: User) -> None:
    attacker, elsewhere = Client(REMOTE_ADDR=ATTACKER), Client(REMOTE_ADDR=VICTIM)
    for _ in range(5):
        attacker.post("/admin/login/", {"username": operator.email, "password": "wrong"})
    assert (
        attacker.post("/admin/login/", {"username": operator.email, "password": PASSWORD}).status_code == 429
    )
    signed_in = elsewhere.post("/admin/login/", {"username": operator.email, "password": PASSWORD})
    assert signed_in.status_code == 302 and _signed_in(elsewhere)


def _pause_from_attacker(email: str) -> Client:
    person_signup(email=email, password=PASSWORD)
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(5):
        _login(attacker, email, "wrong")
    assert _login(attacker, email, PASSWORD).status_code == 429
    return attacker


@pytest.mark.parametrize(
    ("email", "spelling"),
    [
        ("alicia@example.com", "al\u0131cia@example.com"),  # dotless ı: PostgreSQL's UPPER() gives I
        ("iris@example.com", "\u0131r\u0131s@example.com"),
    ],
)
def test_a_spelling_only_the_database_would_fold_does_not_reach_the_account(
    db: Any, email: str, spelling: str
) -> None:
    attacker = _pause_from_attacker(email)
    # No fresh guesses at the account under another spelling, and no way in with it.
    for client in (attacker, Client(REMOTE_ADDR=VICTIM)):
        response = _login(client, spelling, PASSWORD)
        assert response.status_code == 200 and not _signed_in(client)


@pytest.mark.parametrize(
    ("email", "spelling"),
    [
        ("stella@example.com", "\u017ftella@example.com"),  # long ſ, NFKC s
        ("kate@example.com", "\u212aATE@example.com"),  # Kelvin sign, NFKC K
        ("nina@example.com", "\u00a0NINA@EXAMPLE.COM"),  # a no-break space before it
    ],
)
def test_every_spelling_that_reaches_the_account_shares_its_count(db: Any, email: str, spelling: str) -> None:
    attacker = _pause_from_attacker(email)
    assert _login(attacker, spelling, PASSWORD).status_code == 429
    elsewhere = Client(REMOTE_ADDR=VICTIM)
    assert _login(elsewhere, spelling, PASSWORD).status_code == 302 and _signed_in(elsewhere)


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        (" Alice@Example.COM ", "alice@example.com"),
        ("\u017ftella@Example.com", "stella@example.com"),
        ("al\u0131ce@example.com", "al\u0131ce@example.com"),
        ("\u00c0lice@example.com", "\u00c0lice@example.com"),
    ],
)
def test_axes_counts_a_login_under_the_key_the_login_looks_up(typed: str, key: str) -> None:
    # Also when axes reads the raw form field, before Django's form normalised it.
    raw = RequestFactory().post(LOGIN, {"username": typed})
    assert login_username(raw, None) == login_username(raw, {"username": typed}) == email_key(typed) == key


def test_the_admin_signs_in_through_the_site_login_and_asks_an_operator_for_the_code(
    operator: User, time_machine: Any
) -> None:
    from tests.twofactor import code_for, two_factor_on

    time_machine.move_to("2026-12-03T09:00:00Z", tick=False)
    settings_page = Client()
    settings_page.force_login(operator)
    assert settings_page.get("/account/two-factor/").status_code == 200  # operators turn it on too
    device, _codes = two_factor_on(operator)
    time_machine.shift(30)  # the code that turned it on is spent
    client = Client()
    assert client.get("/admin/").status_code == 302
    answer = client.post("/admin/login/?next=/admin/", {"username": operator.email, "password": PASSWORD})
    # The password alone signs nobody in: the code step comes first, as on the site.
    assert answer.status_code == 302 and answer["Location"] == "/accounts/login/code/"
    assert not _signed_in(client)
    assert client.get("/admin/").status_code == 302
    done = client.post("/accounts/login/code/", {"code": code_for(device)})
    assert done.status_code == 302 and done["Location"] == "/admin/"
    assert _signed_in(client) and client.get("/admin/").status_code == 200
