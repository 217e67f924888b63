"""Sign-up, login, throttling, logout, password reset and the role checks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache

from accounts.models import User
from personal_data.models import PersonKey
from tests.conftest import PASSWORD, PRODUCTION_PASSWORD_HASHERS, signup_link


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()


def test_signup_creates_a_person_with_their_own_key(
    client: Any, db: Any, production_password_hashers: list[str]
) -> None:
    response = client.post(
        "/accounts/signup/",
        {
            "email": "New.Person@Example.com",
            "display_name": "New Person",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/signup/sent/"
    response = client.post(signup_link("new.person@example.com"), {"password": PASSWORD})
    # The person sees their recovery code once, then goes on to the dashboard.
    assert response.status_code == 200 and 'href="/dashboard/"' in response.content.decode()
    code = re.search(r"<code>([A-Z2-9-]{35})</code>", response.content.decode())
    assert code is not None
    user = User.objects.get(email="new.person@example.com")
    assert user.role == User.Role.PERSON and user.password.startswith("argon2")
    assert PersonKey.objects.filter(person=user).exists()
    assert client.get("/dashboard/").status_code == 200


def test_production_hashes_with_argon2_and_the_tests_with_md5(alice: Any) -> None:
    assert PRODUCTION_PASSWORD_HASHERS[0] == "accounts.hashers.VrmArgon2PasswordHasher"
    assert alice.password.startswith("md5$") and alice.check_password(PASSWORD)


def test_signup_applies_password_validators(client: Any, db: Any) -> None:
    response = client.post(
        "/accounts/signup/", {"email": "x@example.com", "password1": "123", "password2": "123"}
    )
    assert response.status_code == 200 and "too short" in response.content.decode()
    assert not mail.outbox


def test_login_with_email_any_case(client: Any, alice: Any) -> None:
    response = client.post("/accounts/login/", {"username": "Alice@Example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/", follow=True).request["PATH_INFO"] == "/dashboard/"


def test_five_failures_lock_the_account_for_15_minutes(client: Any, alice: Any) -> None:
    for _ in range(5):
        response = client.post("/accounts/login/", {"username": "alice@example.com", "password": "wrong"})
    response = client.post("/accounts/login/", {"username": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 429
    assert "paused for 15 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_logout_is_a_post(client: Any, alice: Any) -> None:
    client.force_login(alice)
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/dashboard/").status_code == 302


def test_password_reset_sends_a_link(client: Any, alice: Any) -> None:
    response = client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and "alice@example.com" in mail.outbox[0].to


ROLE_PAGES = {"/dashboard/": "person", "/vendor/": "vendor_staff", "/audit/": "auditor"}


@pytest.mark.parametrize("path", ROLE_PAGES)
def test_anonymous_visitors_are_sent_to_login(client: Any, db: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("path", ROLE_PAGES)
@pytest.mark.parametrize("persona", ["alice", "vendor_staff", "auditor", "operator"])
def test_each_role_sees_only_its_own_pages(client: Any, request: Any, path: str, persona: str) -> None:
    user = request.getfixturevalue(persona)
    client.force_login(user)
    expected = 200 if ROLE_PAGES[path] == user.role else 403
    assert client.get(path).status_code == expected


def test_home_sends_each_role_to_its_start(client: Any, alice: Any, auditor: Any) -> None:
    assert client.get("/").status_code == 200
    client.force_login(alice)
    assert client.get("/")["Location"] == "/dashboard/"
    client.force_login(auditor)
    assert client.get("/")["Location"] == "/audit/"


def test_dashboard_shows_own_counts(client: Any, alice: Any, bob: Any) -> None:
    from personal_data.services import record_create
    from tests.conftest import purchase_data

    record_create(owner=alice, category="purchases", data=purchase_data())
    record_create(owner=bob, category="purchases", data=purchase_data())
    record_create(owner=bob, category="purchases", data=purchase_data())
    client.force_login(alice)
    page = client.get("/dashboard/").content.decode()
    assert '<span class="count">1</span><span class="label">Purchases</span>' in page
