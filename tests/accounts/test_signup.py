"""Sign-up answers alike whether or not the address has an account (#13 item 11).

Both sign-ups, a person's (/accounts/signup/) and vendor staff's (/vendor/signup/), go through
accounts/signup.py: the page always says "check your e-mail"; the e-mail differs.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import hashers
from django.core import mail, signing
from django.test import Client
from django.urls import reverse

from accounts import signup as signup_module
from accounts.models import User
from personal_data.models import PersonKey
from tests.conftest import PASSWORD, signup_link

NEW = "zelda@example.com"  # as long as alice@example.com, so the pages are the same length too
TAKEN = "alice@example.com"
assert len(NEW) == len(TAKEN)


@dataclass(frozen=True)
class Kind:
    form: str
    sent: str
    role: str
    done: str
    fields: tuple[tuple[str, str], ...] = ()


PERSON = Kind("signup", "signup-sent", User.Role.PERSON, "/dashboard/", (("display_name", "Zed"),))
VENDOR = Kind("vendors:signup", "vendors:signup_sent", User.Role.VENDOR_STAFF, "/vendor/organisation/new/")
KINDS = pytest.mark.parametrize("kind", [PERSON, VENDOR], ids=["person", "vendor"])


def _post(kind: Kind, email: str, password: str = PASSWORD, confirm: str | None = None) -> Any:
    data = {"email": email, "password1": password, "password2": confirm or password, **dict(kind.fields)}
    return Client().post(reverse(kind.form), data)


def _page(response: Any, email: str) -> str:
    """The page as the visitor sees it, without what differs on every request anyway."""
    text = response.content.decode().replace(email, "EMAIL")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", text)


def _headers(response: Any) -> dict[str, str]:
    # The date and the server's request id differ on every response, whoever asks.
    return {k: v for k, v in response.headers.items() if k.lower() not in {"date", "x-request-id"}}


@KINDS
def test_an_address_with_an_account_gets_the_same_answer_as_a_new_one(kind: Kind, alice: User) -> None:
    new, taken = _post(kind, NEW), _post(kind, TAKEN)
    assert new.status_code == taken.status_code == 302
    assert new["Location"] == taken["Location"] == reverse(kind.sent)
    assert _headers(new) == _headers(taken)
    assert sorted(new.cookies) == sorted(taken.cookies)
    sent = Client().get(new["Location"])
    assert sent.status_code == 200 and "Check your e-mail" in sent.content.decode()
    # Neither answer signed anyone in.
    assert Client().get(reverse(kind.sent)).content == sent.content


@KINDS
def test_form_errors_are_the_same_for_both_addresses(kind: Kind, alice: User) -> None:
    for password, confirm in (("short", "short"), (PASSWORD, PASSWORD + "!")):
        new, taken = _post(kind, NEW, password, confirm), _post(kind, TAKEN, password, confirm)
        assert new.status_code == taken.status_code == 200
        assert _page(new, NEW) == _page(taken, TAKEN)
        assert _headers(new).keys() == _headers(taken).keys()
    assert not mail.outbox


@KINDS
def test_both_answers_hash_the_password(kind: Kind, alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[str] = []

    def spy(password: str, *args: Any, **kwargs: Any) -> str:
        hashed.append(password)
        return hashers.make_password(password, *args, **kwargs)

    monkeypatch.setattr(signup_module, "make_password", spy)
    _post(kind, NEW)
    _post(kind, TAKEN)
    assert hashed == [PASSWORD, PASSWORD]  # the taken address answers no faster


@KINDS
def test_the_existing_account_is_untouched_and_its_owner_is_told(kind: Kind, alice: User) -> None:
    before = User.objects.values().get(pk=alice.pk)
    _post(kind, "Alice@Example.com", "a different passphrase")
    assert User.objects.values().get(pk=alice.pk) == before
    assert User.objects.count() == 1
    (message,) = mail.outbox
    assert message.to == [TAKEN] and "already has one" in message.body
    assert reverse("login") in message.body and reverse("password_reset") in message.body
    assert "/signup/confirm/" not in message.body


def _entered(response: Any, kind: Kind) -> bool:
    """Signed up and in: a person first sees their recovery code (once), then goes on."""
    if kind is PERSON:
        page = response.content.decode()
        return response.status_code == 200 and "Your recovery code" in page and f'href="{kind.done}"' in page
    return response.status_code == 302 and response["Location"] == kind.done


@KINDS
def test_a_new_address_gets_a_link_that_creates_the_account_and_signs_in(
    kind: Kind, db: Any, production_password_hashers: list[str]
) -> None:
    _post(kind, "Zelda@Example.com")
    (message,) = mail.outbox
    assert message.to == [NEW] and "within 24 hours" in message.body
    assert not User.objects.exists()  # nothing until the owner of the address opens the link

    path = signup_link(NEW)
    browser = Client()
    page = browser.get(path)  # a mail scanner fetching the link creates nothing
    assert page.status_code == 200 and NEW in page.content.decode() and not User.objects.exists()
    response = browser.post(path, {"password": PASSWORD})
    assert _entered(response, kind)
    user = User.objects.get(email=NEW)
    assert user.role == kind.role and user.password.startswith("argon2") and user.check_password(PASSWORD)
    assert browser.session["_auth_user_id"] == str(user.pk)
    assert PersonKey.objects.filter(person=user).exists() == (kind is PERSON)
    if kind is PERSON:
        assert user.display_name == "Zed"
    # The link carries the password hash sealed, never readable.
    token = path.rstrip("/").rsplit("/", 1)[1]
    payload = json.dumps(signing.loads(token, salt="vrm.accounts.signup"))
    assert user.password not in payload and user.password.split("$")[-1] not in payload


@KINDS
def test_a_link_creates_one_account_once(kind: Kind, db: Any) -> None:
    _post(kind, NEW)
    path = signup_link(NEW)
    assert _entered(Client().post(path, {"password": PASSWORD}), kind)
    created = User.objects.values().get(email=NEW)
    again = Client().post(path, {"password": PASSWORD})
    assert again.status_code == 302 and again["Location"] == reverse("login")
    assert "_auth_user_id" not in again.wsgi_request.session
    assert User.objects.values().get(email=NEW) == created


def test_of_two_links_for_one_address_the_first_used_wins(db: Any) -> None:
    _post(PERSON, NEW, "first passphrase here")
    first = signup_link(NEW)
    _post(PERSON, NEW, "second passphrase here")
    second = signup_link(NEW)
    assert first != second
    Client().post(second, {"password": "second passphrase here"})
    assert Client().post(first, {"password": "first passphrase here"})["Location"] == reverse("login")
    assert User.objects.get(email=NEW).check_password("second passphrase here")


@pytest.mark.parametrize("damage", ["tampered", "expired", "other kind"])
def test_a_damaged_expired_or_misplaced_link_creates_nothing(damage: str, db: Any, time_machine: Any) -> None:
    time_machine.move_to(dt.datetime.now(dt.UTC), tick=False)
    _post(PERSON, NEW)
    path = signup_link(NEW)
    if damage == "tampered":
        path = path[:-3] + ("A" if path[-3] != "A" else "B") + path[-2:]
    elif damage == "expired":
        time_machine.shift(dt.timedelta(hours=24, seconds=1))
    else:
        path = path.replace("/accounts/signup/confirm/", "/vendor/signup/confirm/")
    for method in ("get", "post"):
        response = getattr(Client(), method)(path)
        assert response.status_code == 400 and "does not work" in response.content.decode()
    assert not User.objects.exists()


def test_sign_up_never_makes_an_auditor_or_an_operator(db: Any) -> None:
    from django.core.exceptions import ValidationError

    from accounts.services import account_signup
    from accounts.signup import PendingSignup

    for role in (User.Role.AUDITOR, User.Role.OPERATOR):
        with pytest.raises(ValidationError):
            account_signup(pending=PendingSignup(email=NEW, display_name="", password_hash="x", role=role))
    assert not User.objects.exists()


@KINDS
def test_someone_who_signs_up_a_victims_address_cannot_own_the_account(kind: Kind, db: Any) -> None:
    # The attacker signs up the victim's address with a password of their own; the link goes to
    # the victim, who opens it. Without the attacker's password nothing is created, so the
    # attacker can never sign in to an account the victim then uses (account pre-hijacking).
    _post(kind, NEW, "attackers own passphrase")
    path = signup_link(NEW)
    victim = Client()
    assert victim.post(path).status_code == 400  # no password: the form asks for it
    response = victim.post(path, {"password": "the victims guess here"})
    assert response.status_code == 400
    assert "not the password chosen when signing up" in response.content.decode()
    assert not User.objects.filter(email=NEW).exists()
    assert "_auth_user_id" not in victim.session


@pytest.fixture
def signup_rates(settings: Any) -> None:
    settings.VRM_SIGNUP_ADDRESS_RATE = "5/h"
    settings.VRM_SIGNUP_RECIPIENT_RATE = "2/h"


@KINDS
def test_the_form_cannot_flood_a_mailbox_and_still_answers_alike(
    kind: Kind, db: Any, signup_rates: None, alice: User
) -> None:
    for email in (NEW, NEW, NEW, TAKEN, TAKEN, TAKEN):
        response = Client(REMOTE_ADDR=f"10.0.0.{len(mail.outbox) + 1}").post(
            reverse(kind.form),
            {"email": email, "password1": PASSWORD, "password2": PASSWORD, **dict(kind.fields)},
        )
        assert response.status_code == 302 and response["Location"] == reverse(kind.sent)
    # Two mails per recipient an hour, whichever answer they carry; the third is not sent.
    assert sorted(m.to[0] for m in mail.outbox) == sorted([NEW, NEW, TAKEN, TAKEN])


@KINDS
def test_one_address_signing_up_many_is_slowed(kind: Kind, db: Any, signup_rates: None) -> None:
    client = Client(REMOTE_ADDR="10.9.9.9")
    for n in range(5):
        data = {"email": f"p{n}@example.com", "password1": PASSWORD, "password2": PASSWORD}
        assert client.post(reverse(kind.form), {**data, **dict(kind.fields)}).status_code == 302
    data = {"email": "p9@example.com", "password1": PASSWORD, "password2": PASSWORD, **dict(kind.fields)}
    refused = client.post(reverse(kind.form), data)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert len(mail.outbox) == 5
    # Another address is not affected.
    other = Client(REMOTE_ADDR="10.9.9.10").post(reverse(kind.form), data)
    assert other.status_code == 302


@KINDS
def test_an_address_only_the_database_would_fold_onto_an_account_is_another_address(
    kind: Kind, alice: User
) -> None:
    # PostgreSQL's UPPER() makes `alıce` `ALICE`: sign-up must not tell that mailbox about alice.
    spelling = "al\u0131ce@example.com"
    _post(kind, spelling)
    (message,) = mail.outbox
    assert (
        message.to == [spelling]
        and "/signup/confirm/" in message.body
        and "already has one" not in message.body
    )
