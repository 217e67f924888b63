"""Real-browser tests: Playwright driving Debian's Chromium against Django's live server."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from tests.conftest import PASSWORD, signup_link

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
# Installed by `make test` (npm ci, at the version package-lock.json pins).
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# The machine has no network but the package registries: keep Chromium from calling home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(
                "CI must run the browser tests: /usr/bin/chromium is missing (apt-get install chromium)"
            )
        pytest.skip("Debian's chromium is not installed here (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # Playwright leaves its event loop marked as running in this thread until it stops, and
        # while a loop runs Django keeps the thread's connections in a separate, context-local
        # store. Close those now: once the loop stops they are out of reach, and an open one
        # keeps the test database from being dropped at the end of the run.
        connections.close_all()


@pytest.fixture
def page(chromium: Any, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    # A form shown again with its errors answers 400 on purpose, and the auditor's counting pages
    # answer 503 while their counts are rebuilt; Chromium logs those as failed loads.
    # A test that shows a refusal page on purpose names its status: @pytest.mark.answers(403).
    answers = request.node.get_closest_marker("answers")
    expected = tuple(
        f"the server responded with a status of {status}"
        for status in (400, 503, *(answers.args if answers else ()))
    )
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not any(e in msg.text for e in expected)
            else None
        ),
    )
    yield page
    context.close()
    # A CSP violation or script error shows up as a console error: none is acceptable.
    assert errors == []


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is shown now; return its violations of those impacts.

    The page's Content-Security-Policy (script-src 'self') refuses an inline script, which is
    what Playwright's add_script_tag inserts. page.evaluate runs axe's source through the
    DevTools protocol instead, which the policy does not govern, so the page keeps its real
    policy while it is checked (a bypass_csp context would hide the CSP errors the tests catch).
    """
    if not AXE.is_file():
        pytest.fail(f"{AXE.relative_to(ROOT)} is missing: run `make test` (or `npm ci`) first")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    found: list[dict[str, Any]] = page.evaluate(
        """async (impacts) => (await axe.run(document, {resultTypes: ["violations"]})).violations
             .filter((v) => impacts.includes(v.impact))
             .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                           targets: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
                           summary: (v.nodes[0] || {}).failureSummary || ""}))""",
        list(impacts),
    )
    return found


RECOVERY_CODE = re.compile(r"[A-Z2-9]{5}(-[A-Z2-9]{5}){5}")


def person_sign_up(page: Any, email: str, name: str = "") -> str:
    """Sign up as a person through the pages and the e-mailed link; stop on the recovery-code
    page (shown once, before anything else) and return the code."""
    page.goto("/accounts/signup/")
    page.get_by_label("E-mail address").fill(email)
    if name:
        page.get_by_label("Your name (optional)").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/accounts/signup/sent/")
    assert page.get_by_role("heading", name="Check your e-mail").is_visible()
    page.goto(signup_link(email))
    page.get_by_label("The password you chose when you signed up").fill(PASSWORD)
    page.get_by_role("button", name="Create my store").click()
    page.get_by_role("heading", name="Your recovery code").wait_for()
    code: str = page.get_by_label("Recovery code").inner_text().strip()
    assert RECOVERY_CODE.fullmatch(code)
    return code


def log_in(page: Any, email: str, password: str = PASSWORD) -> None:
    """Sign in through the login form and wait for the role's landing page."""
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/(dashboard|vendor|audit)/$"))
