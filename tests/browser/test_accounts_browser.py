"""A person signs up, logs out, logs in and sees their dashboard, in a real browser."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import User
from personal_data.services import record_create
from tests.browser.conftest import person_sign_up, screenshot
from tests.conftest import PASSWORD, purchase_data

pytestmark = pytest.mark.django_db(transaction=True)

NEW = "a new passphrase here"


def test_sign_up_log_out_and_back_in(page: Any) -> None:
    person_sign_up(page, "carol@example.com", "Carol")
    page.get_by_role("link", name="I have kept my code, continue").click()
    page.wait_for_url("**/dashboard/")
    assert page.get_by_role("heading", name="Hello, Carol").is_visible()

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")
    page.get_by_label("E-mail address").fill("carol@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/")


def test_dashboard_shows_the_persons_counts(page: Any, alice: Any) -> None:
    for _ in range(3):
        record_create(owner=alice, category="purchases", data=purchase_data())
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill("alice@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/")
    tile = page.locator(".tile", has_text="Purchases")
    assert tile.locator(".count").inner_text() == "3"
    screenshot(page, "dashboard")


def test_wrong_password_shows_a_clear_message(page: Any, alice: Any) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill("alice@example.com")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("alert").first.wait_for()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_recovery_code_and_unlock_pages_read_well(page: Any, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    code = person_sign_up(page, "hana@example.com")
    # The whole code is visible on one screen, nothing scrolls sideways.
    assert page.get_by_label("Recovery code").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, f"recovery-code-{width}")
    page.get_by_role("link", name="I have kept my code, continue").click()
    page.wait_for_url("**/dashboard/")

    # A password reset by e-mail: the new password cannot open the store; the code can.
    person = User.objects.get(email="hana@example.com")
    person.set_password("a new passphrase here")
    person.save()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")
    page.get_by_label("E-mail address").fill("hana@example.com")
    page.get_by_label("Password").fill("a new passphrase here")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/account/unlock/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, f"store-unlock-{width}")
    page.get_by_label("Your recovery code").fill(code.lower().replace("-", " "))
    page.get_by_label("Your current password").fill("a new passphrase here")
    page.get_by_role("button", name="Open my store").click()
    # The next page comes after an Argon2id derivation: wait for it (is_visible does not wait).
    page.get_by_role("heading", name="Your recovery code").wait_for()
    assert page.get_by_label("Recovery code").inner_text().strip() != code


@pytest.mark.parametrize("width", [1280, 390])
def test_a_reset_without_the_code_starts_an_empty_store_and_the_code_brings_it_back(
    page: Any, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    code = person_sign_up(page, "ines@example.com")
    page.get_by_role("link", name="I have kept my code, continue").click()
    page.wait_for_url("**/dashboard/")
    page.goto("/data/purchases/add/")
    page.get_by_label("Product name").fill("Ines Ice Tea")
    page.get_by_label("Merchant").fill("Corner Shop")
    page.get_by_label("Bought on").fill("2026-05-01")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/data/purchases/")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")

    # The reset: both pages say the code is needed; this person goes on without it.
    mail.outbox.clear()
    page.goto("/accounts/password_reset/")
    assert page.get_by_text("Keep your recovery code at hand").is_visible()
    page.get_by_label("Email").fill("ines@example.com")
    page.get_by_role("button", name="Send the link").click()
    link = re.search(r"http://[^/\s]+(/accounts/reset/\S+/)", mail.outbox[-1].body)
    assert link is not None
    page.goto(link.group(1))
    assert page.get_by_label("Your recovery code").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, f"reset-with-code-{width}")
    page.get_by_label("New password", exact=True).fill(NEW)
    page.get_by_label("New password confirmation").fill(NEW)
    page.get_by_role("button", name="Save password").click()
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill("ines@example.com")
    page.get_by_label("Password").fill(NEW)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/account/unlock/")
    page.get_by_role("link", name="start an empty store").click()
    page.wait_for_url("**/account/unlock/start-empty/")
    until = f"{timezone.now() + dt.timedelta(days=30):%-d %B %Y}"
    assert page.get_by_text(f"stay locked until {until}").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, f"start-empty-{width}")
    page.get_by_label("Your current password").fill(NEW)
    page.get_by_label("I understand").check()
    page.get_by_role("button", name="Start an empty store").click()
    page.get_by_role("heading", name="Your recovery code").wait_for()
    assert page.get_by_text(f"locked until {until}").is_visible()
    screenshot(page, f"started-empty-{width}")
    page.get_by_role("link", name="I have kept my code, continue").click()
    page.wait_for_url("**/dashboard/")
    assert page.get_by_text(f"will be destroyed on {until}").is_visible()
    screenshot(page, f"dashboard-set-aside-{width}")

    page.get_by_role("link", name="Bring it back").click()
    page.wait_for_url("**/account/earlier-records/")
    screenshot(page, f"earlier-records-{width}")
    page.get_by_label("Your recovery code").fill(code)
    page.get_by_role("button", name="Bring them back").click()
    page.wait_for_url("**/dashboard/")
    assert page.get_by_text("1 record from before is back in your store").is_visible()
    page.goto("/data/purchases/")
    assert page.get_by_role("cell", name="Ines Ice Tea", exact=True).is_visible()
