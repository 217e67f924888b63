"""The person's portal as a person uses it: records, gifts, import, export and deletion, clicking."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from personal_data.models import PendingImport
from personal_data.selectors import records_for_owner
from personal_data.services import person_unlock
from tests.browser.conftest import log_in, person_sign_up, screenshot
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "dora@example.com"
HEADER = b"merchant,product_name,gtin,quantity,unit_price,currency,purchased_on,is_gift\n"
OAT_MILK = b"Green Grocer,Oat Milk,7390044001501,1,2.19,EUR,2026-01-05,false\n"
BAD_EGGS = b"Green Grocer,Eggs,5012345001235,2,4.10,EUR,2026-01-06,true\n"  # wrong check digit
GOOD_EGGS = b"Green Grocer,Eggs,5012345001234,2,4.10,EUR,2026-01-06,true\n"

# Every control a person fills in must have a name a screen reader can announce.
UNLABELLED = """() => Array.from(document.querySelectorAll(
    "main input:not([type=hidden]), main select, main textarea"))
  .filter((el) => el.labels.length === 0 && !el.getAttribute("aria-label")
                  && !el.getAttribute("aria-labelledby"))
  .map((el) => el.name || el.id || el.outerHTML)"""


@pytest.fixture
def page(chromium: Any, live_server: Any) -> Iterator[Any]:
    """The shared `page`, except that a page the server sends with status 400 is no error.

    An invalid form is shown again with status 400 on purpose (the tests check for it), and
    Chromium logs every 4xx document as "Failed to load resource". Any other console error,
    such as a CSP violation or a script error, still fails the test.
    """
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    refused_pages: set[str] = set()
    errors: list[str] = []

    def on_response(response: Any) -> None:
        if response.status == 400 and response.request.resource_type == "document":
            refused_pages.add(response.url)

    def on_console(message: Any) -> None:
        expected = message.text.startswith("Failed to load resource") and "status of 400" in message.text
        if message.type == "error" and not (expected and message.location.get("url") in refused_pages):
            errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("response", on_response)
    page.on("console", on_console)
    yield page
    context.close()
    assert errors == []


def _csv(*rows: bytes) -> dict[str, Any]:
    return {"name": "purchases.csv", "mimeType": "text/csv", "buffer": HEADER + b"".join(rows)}


def _sign_up(page: Any, email: str = EMAIL, name: str = "Dora") -> None:
    person_sign_up(page, email, name)
    page.get_by_role("link", name="I have kept my code, continue").click()
    page.wait_for_url("**/dashboard/")


def _as_the_person(email: str) -> Any:
    """The account with its store opened by its password, as the person's own sign-in opens it:
    the test reads the store behind the browser's back, and only the password opens it."""
    person = User.objects.get(email=email)
    person_unlock(person=person, password=PASSWORD)
    return person


def _nav(page: Any, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def _footer(page: Any, name: str) -> None:
    page.locator("footer").get_by_role("link", name=name, exact=True).click()


def _purchase_names(email: str) -> set[str]:
    return {r["product_name"] for r in records_for_owner(owner=_as_the_person(email), category="purchases")}


def test_a_person_keeps_imports_exports_and_deletes_their_records(page: Any) -> None:
    _sign_up(page)

    # A purchase by hand: the bad product code is refused with the field's own message.
    _nav(page, "Purchases")
    page.wait_for_url("**/data/purchases/")
    assert page.get_by_text("You have not kept any purchases yet").is_visible()
    page.get_by_role("link", name="Add", exact=True).click()
    page.wait_for_url("**/data/purchases/add/")
    page.get_by_label("Merchant").fill("Corner Books")
    page.get_by_label("Product name").fill("The Gruffalo")
    page.get_by_label("Product code (GTIN / EAN / UPC / ISBN)").fill("9780333710934")
    page.get_by_label("Bought on").fill("2026-10-03")
    page.get_by_role("button", name="Save").click()
    error = page.get_by_role("alert").filter(has_text="check digit is wrong")
    error.wait_for()
    gtin = page.get_by_label("Product code (GTIN / EAN / UPC / ISBN)")
    assert gtin.get_attribute("aria-invalid") == "true"
    assert gtin.get_attribute("aria-describedby") == "err_gtin"
    assert page.get_by_label("Product name").input_value() == "The Gruffalo"  # kept for the fix
    assert _purchase_names(EMAIL) == set()

    gtin.fill("9780333710937")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/data/purchases/")
    assert page.get_by_role("status").filter(has_text="Saved.").is_visible()
    row = page.locator("tbody tr", has_text="The Gruffalo")
    assert row.get_by_text("GTIN 9780333710937").is_visible()

    # It was a present: one click on the row's switch.
    row.get_by_role("button", name="Not a gift").click()
    gift = page.locator("tbody tr", has_text="The Gruffalo").get_by_role("button", name="Gift", exact=True)
    gift.wait_for()
    assert gift.get_attribute("aria-pressed") == "true"
    assert records_for_owner(owner=_as_the_person(EMAIL), category="purchases")[0]["is_gift"] is True
    screenshot(page, "portal-purchase-added")

    # A CSV with one bad row: the row and field are named and nothing is stored.
    _footer(page, "Import")
    page.wait_for_url("**/data/import/")
    # Without a file, nothing pretends to upload: the page says what is missing.
    page.get_by_role("button", name="Check the file").click()
    page.get_by_role("alert").filter(has_text="Choose a file to import.").wait_for()
    page.get_by_label("File (JSON or CSV)").set_input_files(_csv(OAT_MILK, BAD_EGGS))
    page.get_by_role("button", name="Check the file").click()  # the kind is told by the columns
    report = page.get_by_role("alert").filter(has_text="Nothing was imported")
    report.wait_for()
    problem = report.locator("table.problems tbody tr")
    assert problem.count() == 1
    assert problem.locator("td").all_inner_texts()[:4] == [
        "3",
        "Purchases",
        "Product code (GTIN / EAN / UPC / ISBN) gtin",
        "5012345001235",
    ]
    assert "check digit is wrong" in problem.inner_text()
    assert _purchase_names(EMAIL) == {"The Gruffalo"}
    assert not PendingImport.objects.exists()

    # Fixed, it is previewed, then stored once the person confirms.
    page.get_by_label("File (JSON or CSV)").set_input_files(_csv(OAT_MILK, GOOD_EGGS))
    page.get_by_role("button", name="Check the file").click()
    preview = page.get_by_role("status").filter(has_text="Ready to import “purchases.csv”")
    preview.wait_for()
    assert preview.get_by_text("Read as purchases, from the file's columns.").is_visible()
    assert preview.get_by_text("2 purchases").is_visible()
    screenshot(page, "import-preview")
    assert _purchase_names(EMAIL) == {"The Gruffalo"}  # nothing until confirmed
    page.get_by_role("button", name="Import these records").click()
    page.wait_for_url("**/dashboard/")
    assert page.get_by_role("status").filter(has_text="Imported 2 records: 2 purchases.").is_visible()
    assert page.locator(".tile", has_text="Purchases").locator(".count").inner_text() == "3"
    _nav(page, "Purchases")
    page.wait_for_url("**/data/purchases/")
    assert page.get_by_text("3 records.").is_visible()
    for name in ("Oat Milk", "Eggs", "The Gruffalo"):
        assert page.locator("tbody tr", has_text=name).count() == 1
    assert _purchase_names(EMAIL) == {"The Gruffalo", "Oat Milk", "Eggs"}

    # The same file again: the page says it is all there already, and nothing is doubled.
    _footer(page, "Import")
    page.get_by_label("File (JSON or CSV)").set_input_files(_csv(OAT_MILK, GOOD_EGGS))
    page.get_by_role("button", name="Check the file").click()
    again = page.get_by_role("note").filter(has_text="Already in your store:")
    again.wait_for()
    assert "everything in this file" in again.inner_text()
    screenshot(page, "import-again")
    page.get_by_role("link", name="Keep my store as it is").click()
    page.wait_for_url("**/dashboard/")
    assert len(records_for_owner(owner=_as_the_person(EMAIL), category="purchases")) == 3

    # Download everything: a fresh sign-up counts as a recent password.
    _footer(page, "Download everything")
    page.wait_for_url("**/data/export/")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download as JSON (vrm-export/1)").click()
    download = info.value
    assert download.suggested_filename.startswith("vrm-export-") and download.suggested_filename.endswith(
        ".json"
    )
    exported = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    assert exported["format"] == "vrm-export/1"
    assert exported["person"]["email"] == EMAIL and exported["person"]["name"] == "Dora"
    purchases = {p["product_name"]: p for p in exported["purchases"]}
    assert set(purchases) == {"The Gruffalo", "Oat Milk", "Eggs"}
    assert purchases["Eggs"]["gtin"] == "5012345001234" and purchases["Eggs"]["is_gift"] is True
    assert purchases["Oat Milk"]["source"] == "import" and purchases["The Gruffalo"]["source"] == "manual"
    assert purchases["The Gruffalo"]["is_gift"] is True
    assert exported["closet"] == [] and exported["grants"] == []

    # Delete the account: the wrong password deletes nothing, the right one everything.
    _footer(page, "Delete my account")
    page.wait_for_url("**/account/delete/")
    page.get_by_label("Your password").fill("not my password")
    page.get_by_role("button", name="Delete my account for good").click()
    page.get_by_role("alert").filter(has_text="nothing was deleted").wait_for()
    assert User.objects.filter(email=EMAIL).exists()
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Delete my account for good").click()
    page.get_by_role("heading", name="Your account is deleted").wait_for()
    assert not User.objects.filter(email=EMAIL).exists()
    assert page.get_by_role("button", name="Log out").count() == 0

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Log in").click()
    page.wait_for_url("**/accounts/login/")
    page.get_by_label("E-mail address").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("alert").first.wait_for()
    assert "/accounts/login/" in page.url
    page.goto("/dashboard/")
    assert "/accounts/login/" in page.url


@pytest.fixture
def seeded(alice: Any) -> Any:
    """Alice with the demo records and one vendor grant, so every page has something to show."""
    from consent.services import grant_authorize
    from devtools.records import demo_records_seed
    from tests.consent.conftest import make_app
    from vendors.models import Organisation

    demo_records_seed(person=alice)
    org = Organisation.objects.create(
        name="Corner Shop",
        website="https://corner.example",
        privacy_contact="p@corner.example",
        verified=True,
    )
    grant_authorize(
        person=alice,
        application=make_app(org),
        scopes=["profile:read", "purchases:read", "preferences:read"],
        duration_days=30,
    )
    return alice


# The outermost elements that stick out past the right edge of the window.
WIDE_ELEMENTS = """() => {
  const limit = document.documentElement.clientWidth;
  return Array.from(document.querySelectorAll("body *"))
    .filter((el) => el.getBoundingClientRect().right > limit + 1
                    && el.parentElement.getBoundingClientRect().right <= limit + 1)
    .map((el) => `${el.tagName.toLowerCase()}.${el.className}`
                 + ` (${Math.round(el.getBoundingClientRect().right)}px)`);
}"""


def _no_sideways_scroll(page: Any) -> None:
    width = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[0] <= width[1], (
        f"{page.url} scrolls sideways: {width[0]}px of content in {width[1]}px; "
        f"too wide: {page.evaluate(WIDE_ELEMENTS)}"
    )


def test_screenshots_of_the_portal(page: Any, seeded: Any) -> None:
    log_in(page, seeded.email)
    tiles = page.locator(".tile")
    assert dict(
        zip(
            page.locator(".tile .label").all_inner_texts(),
            page.locator(".tile .count").all_inner_texts(),
            strict=True,
        )
    ) == {
        "Purchases": "44",
        "Closet": "15",
        "Appliances": "6",
        "Prescriptions": "3",
    }, tiles.all_inner_texts()
    assert page.locator("ul.grants li", has_text="Corner Shop").is_visible()
    screenshot(page, "dashboard")

    _nav(page, "Purchases")
    page.wait_for_url("**/data/purchases/")
    assert page.get_by_text("44 records.").is_visible()
    assert page.get_by_role("link", name="Older →").is_visible()
    screenshot(page, "data-list")

    _nav(page, "Closet")
    page.wait_for_url("**/data/closet/")
    picture = page.get_by_role("img", name="What's in my closet")
    assert picture.is_visible()
    assert picture.locator("g.swatch").count() == 15
    assert picture.locator("g.swatch.faded").count() == 1  # the donated boots
    screenshot(page, "closet")

    page.set_viewport_size({"width": 390, "height": 844})
    _nav(page, "Dashboard")
    page.wait_for_url("**/dashboard/")
    _no_sideways_scroll(page)
    screenshot(page, "dashboard-phone")
    for path in ("/data/purchases/", "/data/closet/", "/data/purchases/add/", "/data/import/"):
        page.goto(path)
        _no_sideways_scroll(page)
    # On a phone each record is a card: every row's Edit and Delete, and its toggles, in reach.
    page.goto("/data/purchases/")
    for name in ("Edit", "Delete"):
        box = page.locator("main").get_by_role("link", name=name).first.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (name, box)
    toggle = page.get_by_role("button", name="Shared").first.bounding_box()
    assert toggle and toggle["x"] + toggle["width"] <= 390
    assert (
        page.get_by_role("navigation", name="Main")
        .get_by_role("link", name="Purchases")
        .get_attribute("aria-current")
        == "page"
    )
    screenshot(page, "data-list-390")
    page.locator("table.records tbody tr").first.scroll_into_view_if_needed()
    page.screenshot(path="test-artifacts/data-list-390-cards.png")  # what a phone shows at once


def test_record_form_is_usable_with_the_keyboard(page: Any, alice: Any) -> None:
    log_in(page, alice.email)
    _nav(page, "Purchases")
    page.get_by_role("link", name="Add", exact=True).click()
    page.wait_for_url("**/data/purchases/add/")
    fields = page.locator("form.grid-form").locator("input:not([type=hidden]), select, textarea")
    expected = fields.evaluate_all("(els) => els.map((el) => el.id)")
    reached: list[str] = []
    unstyled: list[str] = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => { const el = document.activeElement, s = getComputedStyle(el);
                  return {id: el.id, tag: el.tagName, text: (el.textContent || "").trim().slice(0, 30),
                          inside: !el.matches(":focus"),
                          visible: s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2}; }"""
        )
        if focused["inside"]:
            # The browser's own part of a control (the date input's calendar button): not styleable.
            continue
        if not focused["visible"]:
            unstyled.append(f"{focused['tag']}#{focused['id']} {focused['text']}")
        if focused["id"] and (not reached or reached[-1] != focused["id"]):
            reached.append(focused["id"])  # a date input takes a Tab per part: count it once
        if focused["tag"] == "BUTTON" and focused["text"] == "Save":
            break
    else:
        pytest.fail(f"Tab never reached the Save button; reached {reached}")
    assert unstyled == [], f"focused without a visible outline: {unstyled}"
    # The fields are reached in the order they are shown.
    assert [i for i in reached if i in expected] == expected

    # Typing and ticking by keyboard alone saves a record.
    page.get_by_label("Merchant").focus()
    page.keyboard.type("Green Grocer")
    page.keyboard.press("Tab")
    page.keyboard.type("Oat Milk")
    page.get_by_label("Bought on").fill("2026-10-01")
    page.get_by_label("This was a gift").focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Save").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/data/purchases/")
    assert records_for_owner(owner=alice, category="purchases")[0]["is_gift"] is True


SWATCH_OVERFLOW = """() => Array.from(document.querySelectorAll("g.swatch")).filter((g) => {
    const box = g.querySelector("rect").getBBox();
    return Array.from(g.querySelectorAll("text")).some((t) => {
      const b = t.getBBox();
      return b.x + b.width > box.x + box.width + 0.5 || b.y + b.height > box.y + box.height + 0.5;
    });
  }).map((g) => g.querySelector("title").textContent)"""


def test_closet_swatch_names_fit_their_swatches(page: Any, seeded: Any) -> None:
    log_in(page, seeded.email)
    _nav(page, "Closet")
    page.wait_for_url("**/data/closet/")
    # Text running past a swatch is cut off or lost against the page (white on white).
    assert page.evaluate(SWATCH_OVERFLOW) == []


@pytest.mark.parametrize(
    "path",
    [
        "/data/purchases/add/",
        "/data/closet/add/",
        "/data/appliances/add/",
        "/data/prescriptions/add/",
        "/data/import/",
        "/data/preferences/",
        "/account/delete/",
        "/data/purchases/",
    ],
)
def test_every_form_control_has_a_label(page: Any, alice: Any, path: str) -> None:
    log_in(page, alice.email)
    page.goto(path)
    assert page.locator("main form").count() > 0
    assert page.evaluate(UNLABELLED) == []
