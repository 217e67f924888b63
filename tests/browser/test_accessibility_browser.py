"""Every page of every role, at a desktop and a phone width, through axe-core.

One seeded dataset and one test: seeding the demo records, the demo vendor, a grant, a recall
and a sealed ledger costs more than a visit, and the live server's database is emptied after
each test. Every page is checked at 1280 px and 390 px, with a screenshot of each into
test-artifacts/, and the test fails at the end with every serious or critical violation found
(and every page that scrolls sideways on a phone), so one run shows all there is to fix.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import User
from audit.selectors import checkpoint_latest
from audit.services import ledger_seal, witness_register
from consent.services import grant_authorize
from devtools.records import demo_records_seed
from devtools.vendor import DEMO_APP, DEMO_RECALL_CLIENT, demo_vendor_seed
from personal_data.models import Reminder
from personal_data.services import record_create
from portal.closet import contrast
from portal.keysession import COOKIE
from portal.keyviews import STALE
from portal.reminders import reminders_send
from tests.audit.test_witnesses import Cosigner, log_signed
from tests.audit.test_witnesses import post as cosign_post
from tests.browser.conftest import axe_violations, log_in, person_sign_up, screenshot
from tests.conftest import PASSWORD, purchase_data
from tests.consent.conftest import REDIRECT, pkce_pair
from tests.twofactor import code_from_secret
from vendors.messages import message_send
from vendors.models import Alert, Application
from vendors.recalls import recall_publish_and_match

# tests.vrm.error_urls: the site's URLs plus views that fail on purpose (400, 403, 500).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.vrm.error_urls")]

WIDTHS = {1280: 900, 390: 844}
RECALL = {
    "title": "Peanut butter recall",
    "message": "Salmonella risk. Do not eat.",
    "severity": "warning",
    "gtins": [purchase_data()["gtin"]],
    "lots": [],
    "purchased_from": None,
    "purchased_to": None,
    "remedy_url": "https://shop.example/recall",
}
SCROLLS_SIDEWAYS = "() => document.documentElement.scrollWidth > document.documentElement.clientWidth"
# The outermost elements that stick out past the right edge of the window.
WIDE_ELEMENTS = """() => {
  const limit = document.documentElement.clientWidth;
  return Array.from(document.querySelectorAll("body *"))
    .filter((el) => el.getBoundingClientRect().right > limit + 1
                    && el.parentElement.getBoundingClientRect().right <= limit + 1)
    .map((el) => `${el.tagName.toLowerCase()}.${el.className}`);
}"""


class Pages:
    """Visits pages in one browser context per role and collects what is wrong with them."""

    def __init__(self, chromium: Any, base_url: str) -> None:
        self.chromium, self.base_url = chromium, base_url
        self.problems: list[str] = []
        self.visited = 0

    def open(self, role: str) -> Any:
        context = self.chromium.new_context(base_url=self.base_url, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.role = role
        # Error pages are visited on purpose; Chromium logs each as a failed load.
        refused: set[str] = set()

        def on_response(response: Any) -> None:
            if response.status >= 400 and response.request.resource_type == "document":
                refused.add(response.url)

        def on_console(message: Any) -> None:
            expected = message.text.startswith("Failed to load resource")
            if message.type == "error" and not (expected and message.location.get("url") in refused):
                self.problems.append(f"{role} {page.url}: console error {message.text}")

        page.on("response", on_response)
        page.on("console", on_console)
        return page

    def visit(self, page: Any, path: str, name: str, status: int = 200) -> None:
        response = page.goto(path)
        if response.status != status:
            self.problems.append(f"{page.role} {path}: status {response.status}, expected {status}")
        self.check(page, name)

    def check(self, page: Any, name: str) -> None:
        """Check the page as it is now, at each width, and keep a screenshot of each."""
        self.visited += 1
        where = f"{page.role} {name} ({page.url.removeprefix(self.base_url)})"
        for width, height in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            for v in axe_violations(page):
                self.problems.append(
                    f"{where} at {width}px: {v['impact']} {v['id']}: {v['help']} {v['targets']}\n"
                    f"    {v['summary']}"
                )
            if width < 600 and page.evaluate(SCROLLS_SIDEWAYS):
                self.problems.append(f"{where} at {width}px scrolls sideways: {page.evaluate(WIDE_ELEMENTS)}")
            screenshot(page, f"a11y-{page.role}-{name}-{width}")
        page.set_viewport_size({"width": 1280, "height": 900})


@pytest.fixture
def pages(chromium: Any, live_server: Any) -> Iterator[Pages]:
    yield Pages(chromium, live_server.url)
    for context in chromium.contexts:
        context.close()


@pytest.fixture
def world(alice: User, auditor: User) -> dict[str, Any]:
    """Alice's demo records, the demo shop with a grant from her and a recall she has bought,
    and a sealed ledger: every page has something to show."""
    demo_records_seed(person=alice)
    record_create(owner=alice, category="purchases", data=purchase_data())
    vendor = demo_vendor_seed()
    app = Application.objects.get(name=DEMO_APP)
    grant = grant_authorize(
        person=alice,
        application=app,
        scopes=["profile:read", "purchases:read", "preferences:read", "messages:send"],
        duration_days=30,
    )
    message = message_send(
        grant=grant,
        application=app,
        data={
            "kind": "offer",
            "title": "Your size is back in stock",
            "body": "The navy jumper in M is back.\nTen percent off until Sunday.",
            "link": "https://shop.example/jumper",
            "expires_at": (timezone.now() + dt.timedelta(days=5)).isoformat(),
        },
    )
    recall_publish_and_match(application=Application.objects.get(name=DEMO_RECALL_CLIENT), data=RECALL)
    assert Alert.objects.filter(person=alice).exists()
    # A refill due in two days, so the inbox has a reminder beside the alert.
    today = timezone.localdate()
    record_create(
        owner=alice,
        category="prescriptions",
        data={
            "medication": "Amoxicillin 500 mg",
            "last_filled_on": (today - dt.timedelta(days=28)).isoformat(),
            "days_supply": 30,
            "refills_remaining": 1,
        },
    )
    reminders_send()
    ledger_seal()
    return {
        "grant": grant,
        "app": app,
        "staff": vendor["vendor_staff"],
        "reminder": Reminder.objects.filter(owner=alice).first(),
        "message": message,
    }


# Each swatch's text and rect as the browser paints them (axe does not measure SVG text).
SWATCH_COLOURS = """() => Array.from(document.querySelectorAll("g.swatch")).flatMap((g) => {
  const rect = getComputedStyle(g.querySelector("rect")).fill;
  return Array.from(g.querySelectorAll("text")).map((t) => ({
    name: g.querySelector("title").textContent, text: getComputedStyle(t).fill, rect,
    opacity: [g, t].map((el) => getComputedStyle(el).opacity).join(" ")}));
})"""


def _hex(rgb: str) -> str:
    return "#" + "".join(f"{int(c):02x}" for c in re.findall(r"\d+", rgb)[:3])


def _closet_text_is_readable(pages: Pages, page: Any) -> None:
    swatches = page.evaluate(SWATCH_COLOURS)
    assert len(swatches) > 10
    for s in swatches:
        ratio = contrast(_hex(s["text"]), _hex(s["rect"]))
        if ratio < 4.5 or s["opacity"] != "1 1":
            pages.problems.append(f"closet swatch {s['name']}: {s} has contrast {ratio:.2f}")


def _person(pages: Pages, alice: User, world: dict[str, Any]) -> None:
    page = pages.open("person")
    log_in(page, alice.email)
    pages.check(page, "dashboard")
    for category in ("purchases", "closet", "appliances", "prescriptions"):
        pages.visit(page, f"/data/{category}/", f"list-{category}")
        if category == "closet":
            _closet_text_is_readable(pages, page)
        pages.visit(page, f"/data/{category}/add/", f"add-{category}")
    pages.visit(page, "/data/purchases/?q=peanut&gift=no", "list-purchases-filtered")
    # An empty form, shown again with its errors.
    pages.visit(page, "/data/purchases/add/", "add-purchases")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("alert").first.wait_for()
    pages.check(page, "add-purchases-errors")
    pages.visit(page, "/data/purchases/", "list-purchases")
    page.locator("tbody tr a", has_text="Edit").first.click()
    page.wait_for_url("**/edit/")
    pages.check(page, "edit-purchase")
    pages.visit(page, page.url.replace("/edit/", "/delete/"), "delete-purchase")
    pages.visit(page, "/data/preferences/", "preferences")
    pages.visit(page, "/settings/terms/", "terms-settings")
    pages.visit(page, "/data/import/", "import")
    page.get_by_label("File (JSON or CSV)").set_input_files(
        {
            "name": "purchases.csv",
            "mimeType": "text/csv",
            "buffer": b"merchant,product_name,gtin,quantity,unit_price,currency,purchased_on,is_gift\n"
            b"Green Grocer,Oat Milk,7390044001501,1,2.19,EUR,2026-01-05,false\n",
        }
    )
    page.get_by_label("What a CSV file holds").select_option(label="Purchases")
    page.get_by_role("button", name="Check the file").click()
    page.get_by_role("status").filter(has_text="Ready to import").wait_for()  # sent by XMLHttpRequest
    pages.check(page, "import-preview")
    pages.visit(page, "/data/export/", "export")
    pages.visit(page, "/grants/", "grants")
    grant_id = world["grant"].pk
    pages.visit(page, f"/grants/{grant_id}/", "grant")
    pages.visit(page, f"/grants/{grant_id}/revoke/", "grant-revoke")
    pages.visit(page, f"/grants/{grant_id}/report/", "grant-report")
    pages.visit(page, "/reports/", "reports")
    pages.visit(page, "/activity/", "activity")
    pages.visit(page, "/inbox/", "inbox")
    pages.visit(page, "/inbox/?kind=refill&unread=1", "inbox-filtered")
    pages.visit(page, f"/inbox/reminders/{world['reminder'].pk}/", "inbox-reminder")
    pages.visit(page, f"/inbox/messages/{world['message'].pk}/", "inbox-message")
    pages.visit(page, f"/inbox/messages/{world['message'].pk}/report/", "inbox-message-report")
    pages.visit(page, "/alerts/", "alerts")
    pages.visit(page, "/account/delete/", "account-delete")
    pages.visit(page, "/account/earlier-records/", "earlier-records")
    pages.visit(page, "/accounts/confirm/?next=/account/delete/", "reauth")
    pages.visit(page, "/accounts/password_change/", "password-change")

    # The OAuth consent page, and the page for a request that names no known app.
    _, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": world["app"].client_id,
        "redirect_uri": REDIRECT,
        "scope": "profile:read purchases:read prescriptions:read",
        "state": "a11y",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    pages.visit(page, "/o/authorize/?" + urlencode(query), "consent")
    pages.visit(page, "/o/authorize/?" + urlencode({**query, "client_id": "nobody"}), "consent-error", 400)
    pages.visit(page, "/audit/", "forbidden", 403)

    # The pages that open the store: the session lost its keys (a browser restart) ...
    page.context.clear_cookies(name=COOKIE)
    pages.visit(page, "/account/unlock/", "store-open")
    # ... or the password no longer opens it (after a reset by e-mail).
    session_key = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    session = SessionStore(session_key=session_key)
    session[STALE] = True
    session.save()
    pages.visit(page, "/account/unlock/", "store-unlock")
    pages.visit(page, "/account/unlock/start-empty/", "store-start-empty")


def _newcomer(pages: Pages) -> None:
    """Sign-up, the recovery code shown once, and the first-run pages of an empty store."""
    page = pages.open("newcomer")
    pages.visit(page, "/accounts/signup/", "signup")
    person_sign_up(page, "dora@example.com", "Dora")
    pages.check(page, "recovery-code")
    page.get_by_role("link", name="I have kept my code, continue").click()
    page.wait_for_url("**/dashboard/")
    pages.check(page, "dashboard-empty")
    pages.visit(page, "/data/purchases/", "list-empty")
    pages.visit(page, "/grants/", "grants-empty")
    pages.visit(page, "/alerts/", "alerts-empty")
    pages.visit(page, "/inbox/", "inbox-empty")


def _anonymous(pages: Pages, alice: User) -> None:
    page = pages.open("anonymous")
    pages.visit(page, "/", "home")
    pages.visit(page, "/accounts/login/", "login")
    page.get_by_label("E-mail address").fill(alice.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("alert").first.wait_for()
    pages.check(page, "login-refused")
    pages.visit(page, "/accounts/signup/sent/", "signup-sent")
    pages.visit(page, "/accounts/password_reset/", "password-reset")
    pages.visit(page, "/accounts/password_reset/done/", "password-reset-sent")
    uid = urlsafe_base64_encode(force_bytes(alice.pk))
    pages.visit(
        page, f"/accounts/reset/{uid}/{default_token_generator.make_token(alice)}/", "password-reset-set"
    )
    pages.visit(page, f"/accounts/reset/{uid}/expired-token/", "password-reset-expired")
    pages.visit(page, "/accounts/reset/done/", "password-reset-done")
    pages.visit(page, "/vendor/signup/", "vendor-signup")
    pages.visit(page, "/terms/", "terms")
    pages.visit(page, "/terms/sd-base/", "terms-detail")
    pages.visit(page, "/vendor/signup/sent/", "vendor-signup-sent")
    pages.visit(page, "/no-such-page/", "not-found", 404)
    pages.visit(page, "/test-errors/400/", "bad-request", 400)
    pages.visit(page, "/test-errors/403/", "forbidden", 403)
    pages.visit(page, "/test-errors/500/", "server-error", 500)


def _vendor(pages: Pages, world: dict[str, Any], vendor_staff: User) -> None:
    page = pages.open("vendor")
    log_in(page, world["staff"]["email"], world["staff"]["password"])
    pages.check(page, "portal")
    pages.visit(page, "/vendor/apps/new/", "app-new")
    pages.visit(page, f"/vendor/apps/{world['app'].client_id}/", "app")
    pages.visit(page, "/vendor/recalls/new/", "recall-new")
    pages.visit(page, "/vendor/terms/", "terms-accept")
    # Staff who have not described their organisation yet.
    page = pages.open("vendor-new")
    log_in(page, vendor_staff.email)
    pages.check(page, "first-page")
    pages.visit(page, "/vendor/organisation/new/", "organisation-new")


def _auditor(pages: Pages, auditor: User) -> None:
    page = pages.open("auditor")
    log_in(page, auditor.email)
    pages.check(page, "portal")
    pages.visit(page, "/audit/grants/", "grants")
    page.locator("tbody a").first.click()
    page.wait_for_load_state()
    pages.check(page, "grant")
    pages.visit(page, "/audit/activity/", "activity")
    pages.visit(page, "/audit/entries/", "entries")
    pages.visit(page, "/audit/vendors/", "vendors")
    page.locator("tbody a").first.click()
    page.wait_for_load_state()
    pages.check(page, "vendor")
    pages.visit(page, "/audit/witnesses/", "witnesses-none")
    pages.visit(page, "/audit/alarms/", "alarms-none")
    # A witness that cosigned the newest checkpoint, then reported a fork: the banner shows.
    witness = Cosigner("witness.example.org/a11y")
    row = witness_register(name=witness.name, public_raw=witness.public, by=auditor)
    newest = checkpoint_latest()
    assert newest is not None
    assert cosign_post(Client(), witness.cosign(newest.note)).status_code == 201
    forked = log_signed(newest.tree_size, bytes(32))
    assert cosign_post(Client(), witness.cosign(forked)).status_code == 409
    pages.visit(page, "/audit/witnesses/", "witnesses")
    page.get_by_label("Public key").fill("not a key")
    page.get_by_role("button", name="Register the witness").click()
    page.get_by_role("alert").first.wait_for()
    pages.check(page, "witnesses-errors")
    pages.visit(page, f"/audit/witnesses/retire/?witness={row.pk}", "witness-retire")
    pages.visit(page, "/audit/alarms/", "alarms")
    pages.visit(page, "/audit/", "portal-alarm")


def _two_step(pages: Pages, auditor: User) -> None:
    """Two-step sign-in, every page of it: set up, the codes shown once, renew, turn off, the code
    asked at sign-in (as the auditor: every role has them)."""
    page = pages.open("two-step")
    log_in(page, auditor.email)
    pages.visit(page, "/account/two-factor/", "two-factor-off")
    pages.visit(page, "/account/two-factor/setup/", "two-factor-setup")
    secret = page.get_by_label("Secret key").inner_text()
    page.get_by_label("Code from your authenticator app").fill(
        "000000" if code_from_secret(secret) != "000000" else "111111"
    )
    page.get_by_role("button", name="Turn on").click()
    page.get_by_role("alert").first.wait_for()
    pages.check(page, "two-factor-setup-refused")
    page.wait_for_timeout(1100)  # django-otp's wait after a wrong code (1 s after the first)
    page.get_by_label("Code from your authenticator app").fill(code_from_secret(secret))
    page.get_by_role("button", name="Turn on").click()
    page.get_by_role("heading", name="Your backup codes").wait_for()
    pages.check(page, "two-factor-codes")
    pages.visit(page, "/account/two-factor/", "two-factor-on")
    pages.visit(page, "/account/two-factor/backup-codes/", "two-factor-renew")
    pages.visit(page, "/account/two-factor/turn-off/", "two-factor-turn-off")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")
    page.get_by_label("E-mail address").fill(auditor.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/accounts/login/code/")
    pages.check(page, "login-code")


# One test per role, so that the run's workers share the walk (it was one 75-second test).
ROLES = ("anonymous", "newcomer", "person", "vendor", "auditor", "two_step")


@pytest.mark.parametrize("role", ROLES)
def test_every_page_of_every_role_passes_axe_at_both_widths(
    role: str, pages: Pages, world: dict[str, Any], alice: User, auditor: User, vendor_staff: User
) -> None:
    started = time.monotonic()
    if role == "anonymous":
        _anonymous(pages, alice)
    elif role == "newcomer":
        _newcomer(pages)
    elif role == "person":
        _person(pages, alice, world)
    elif role == "vendor":
        _vendor(pages, world, vendor_staff)
    elif role == "auditor":
        _auditor(pages, auditor)
    else:
        _two_step(pages, auditor)
    print(f"{role}: {pages.visited} pages checked in {time.monotonic() - started:.1f}s")
    assert pages.visited > 0
    assert pages.problems == [], "\n".join(pages.problems)
