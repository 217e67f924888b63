"""A person turns on two-step sign-in with an authenticator and signs in with it, in a browser.

The test is the authenticator app: it reads the key the page shows and computes the codes.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.browser.conftest import person_sign_up, screenshot
from tests.conftest import PASSWORD
from tests.twofactor import code_from_secret

pytestmark = pytest.mark.django_db(transaction=True)

NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.mark.parametrize("width", [1280, 390])
def test_turn_on_two_step_sign_in_and_sign_in_with_a_code(page: Any, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    email = f"erin{width}@example.com"
    person_sign_up(page, email, "Erin")
    page.get_by_role("link", name="I have kept my code, continue").click()
    page.wait_for_url("**/dashboard/")

    page.get_by_role("link", name="Two-step sign-in").click()
    page.wait_for_url("**/account/two-factor/")
    screenshot(page, f"two-factor-off-{width}")
    page.get_by_role("link", name="Set up two-step sign-in").click()
    page.wait_for_url("**/account/two-factor/setup/")
    assert page.get_by_role("img", name="QR code to scan with your authenticator app").is_visible()
    secret = page.get_by_label("Secret key").inner_text()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    screenshot(page, f"two-factor-setup-{width}")
    page.get_by_label("Code from your authenticator app").fill(code_from_secret(secret))
    page.get_by_role("button", name="Turn on").click()

    page.get_by_role("heading", name="Your backup codes").wait_for()
    codes = page.get_by_label("Backup codes").locator("code").all_inner_texts()
    assert len(codes) == 10
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    screenshot(page, f"two-factor-codes-{width}")
    page.get_by_role("link", name="I have kept my codes, continue").click()
    page.wait_for_url("**/account/two-factor/")
    assert page.get_by_text("10 backup codes").is_visible()
    screenshot(page, f"two-factor-on-{width}")

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/accounts/login/code/")
    # The code that turned it on is spent; the app's next one (within the allowed drift) works.
    page.get_by_label("Code").fill("123456" if code_from_secret(secret) != "123456" else "654321")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("alert").first.wait_for()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    screenshot(page, f"login-code-refused-{width}")
    time.sleep(1.1)  # django-otp's wait after a wrong code
    page.get_by_label("Code").fill(code_from_secret(secret, at=time.time() + 30))
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/")
    assert page.get_by_role("heading", name="Hello, Erin").is_visible()
    # The store is open: its pages show, without asking for the password again.
    page.goto("/data/purchases/")
    assert page.url.endswith("/data/purchases/")
