"""The person's portal: records, preferences, import, export, deletion and re-authentication."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import User
from accounts.reauth import SESSION_KEY
from audit.models import LedgerEntry
from personal_data.models import PendingImport, Purchase
from personal_data.selectors import preferences_get, records_for_owner
from personal_data.services import person_erase, person_store_open, preferences_update, record_create
from tests.conftest import PASSWORD, purchase_data

HEADER = "merchant,product_name,gtin,quantity,unit_price,currency,purchased_on,is_gift\n"
GOOD_ROW = "Green Grocer,Oat Milk,7390044001501,1,2.19,EUR,2026-01-05,false\n"


@pytest.fixture
def person(client: Client, alice: Any) -> Any:
    client.force_login(alice)
    return alice


def _upload(
    client: Client, content: bytes | str, name: str = "purchases.csv", category: str = "purchases"
) -> Any:
    raw = content.encode() if isinstance(content, str) else content
    return client.post("/data/import/", {"file": SimpleUploadedFile(name, raw), "category": category})


# Records.


def test_add_with_a_bad_gtin_shows_the_error_then_a_good_one_saves(client: Client, person: Any) -> None:
    form = {k: v for k, v in purchase_data().items()}
    bad = client.post("/data/purchases/add/", {**form, "gtin": "5012345001235"})
    assert bad.status_code == 400 and "check digit is wrong" in bad.content.decode()
    assert not Purchase.objects.exists()
    good = client.post("/data/purchases/add/", form)
    assert good.status_code == 302
    assert records_for_owner(owner=person, category="purchases")[0]["product_name"] == "Crunchy Peanut Butter"


def test_list_search_filters_and_pagination(client: Client, person: Any) -> None:
    for n in range(30):
        record_create(
            owner=person,
            category="purchases",
            data=purchase_data(
                product_name=f"Item {n:02d}",
                merchant="Bakery" if n % 2 else "Grocer",
                is_gift=n == 3,
                shared=n != 4,
            ),
        )
    page = client.get("/data/purchases/").content.decode()
    assert "30 records" in page and 'rel="next"' in page and "Item 29" in page and "Item 04" not in page
    search = client.get("/data/purchases/?q=item 07").content.decode()
    assert "Item 07" in search and "Item 08" not in search
    bakery = client.get("/data/purchases/?merchant=bakery").content.decode()
    assert bakery.count('<tr role="row">') - 1 == 15 and 'rel="next"' not in bakery
    assert "1 record matches." in client.get("/data/purchases/?gift=yes").content.decode()
    assert "1 record matches." in client.get("/data/purchases/?shared=no").content.decode()
    assert "0 records match." in client.get("/data/purchases/?from=2027-01-01").content.decode()


def test_edit_toggle_and_delete(client: Client, person: Any) -> None:
    doc = record_create(owner=person, category="purchases", data=purchase_data())
    edit = client.post(
        f"/data/purchases/{doc['id']}/edit/", {**purchase_data(), "product_name": "Smooth PB", "shared": "on"}
    )
    assert edit.status_code == 302
    client.post(f"/data/purchases/{doc['id']}/toggle/is_gift/", {"next": "/data/purchases/?q=x"})
    client.post(f"/data/purchases/{doc['id']}/toggle/shared/")
    record = records_for_owner(owner=person, category="purchases")[0]
    assert record["product_name"] == "Smooth PB" and record["is_gift"] is True and record["shared"] is False
    assert client.post(f"/data/purchases/{doc['id']}/toggle/owner/").status_code == 404
    assert client.post(f"/data/purchases/{doc['id']}/delete/").status_code == 302
    assert not Purchase.objects.exists()


def test_toggle_refuses_an_offsite_next(client: Client, person: Any) -> None:
    doc = record_create(owner=person, category="purchases", data=purchase_data())
    response = client.post(f"/data/purchases/{doc['id']}/toggle/shared/", {"next": "https://evil.example/"})
    assert response["Location"] == "/data/purchases/"


@pytest.mark.parametrize("category", ["purchases", "closet", "appliances", "prescriptions"])
def test_every_category_page_renders(client: Client, person: Any, category: str) -> None:
    from devtools.records import demo_records_seed

    demo_records_seed(person=person)
    assert client.get(f"/data/{category}/").status_code == 200
    assert client.get(f"/data/{category}/add/").status_code == 200


def test_closet_picture_and_warranty_marker(client: Client, person: Any) -> None:
    from devtools.records import demo_records_seed

    demo_records_seed(person=person)
    closet = client.get("/data/closet/").content.decode()
    assert "<svg" in closet and "Outerwear" in closet and "★" in closet
    assert "faded" in closet  # the donated boots
    assert "ends within 60 days" in client.get("/data/appliances/").content.decode()
    assert "refill" in client.get("/data/prescriptions/").content.decode()


def test_preferences_form(client: Client, person: Any) -> None:
    response = client.post(
        "/data/preferences/",
        {
            "dietary": ["vegan"],
            "allergies": "peanuts, shellfish",
            "sizes": "shoes: 42\nshirt: M",
            "brands_liked": "Veja",
            "brands_avoided": "",
            "contact_email": "on",
        },
    )
    assert response.status_code == 302
    prefs = preferences_get(owner=person)
    assert prefs["dietary"] == ["vegan"] and prefs["allergies"] == ["peanuts", "shellfish"]
    assert prefs["sizes"] == {"shoes": "42", "shirt": "M"} and prefs["contact"]["email"] is True
    bad = client.post("/data/preferences/", {"dietary": ["carnivore"]})
    assert bad.status_code == 400


PERSON_PAGES = [
    "/data/purchases/",
    "/data/purchases/add/",
    "/data/preferences/",
    "/data/import/",
    "/data/export/",
    "/account/delete/",
    "/dashboard/",
    "/activity/",
]


@pytest.mark.parametrize("path", PERSON_PAGES)
def test_anonymous_visitors_are_sent_to_login(client: Client, db: Any, path: str) -> None:
    assert client.get(path)["Location"].startswith("/accounts/login/")


def test_other_peoples_records_are_404(client: Client, alice: Any, bob: Any) -> None:
    doc = record_create(owner=alice, category="purchases", data=purchase_data())
    client.force_login(bob)
    for path in (f"/data/purchases/{doc['id']}/edit/", f"/data/purchases/{doc['id']}/delete/"):
        assert client.get(path).status_code == 404
        assert client.post(path, purchase_data()).status_code == 404
    assert client.post(f"/data/purchases/{doc['id']}/toggle/shared/").status_code == 404
    assert client.get("/data/passwords/").status_code == 404
    assert records_for_owner(owner=alice, category="purchases") == [doc]


# Import.


def test_csv_with_one_bad_row_names_it_and_stores_nothing(client: Client, person: Any) -> None:
    bad = HEADER + GOOD_ROW + "Green Grocer,Eggs,5012345001235,0,4.10,EUR,2026-01-06,false\n"
    response = _upload(client, bad)
    page = response.content.decode()
    assert response.status_code == 400 and "Nothing was imported" in page
    # The field's label beside the file's column name, and the bad value as the file has it.
    gtin = "<td>3</td><td>Purchases</td><td>Product code (GTIN / EAN / UPC / ISBN) <code>gtin</code></td>"
    assert gtin + '<td><code class="bad-value">5012345001235</code></td>' in page
    assert "<td>Quantity <code>quantity</code></td>" in page and '<code class="bad-value">0</code>' in page
    assert not Purchase.objects.exists() and not PendingImport.objects.exists()

    fixed = HEADER + GOOD_ROW + "Green Grocer,Eggs,5012345001234,2,4.10,EUR,2026-01-06,true\n"
    preview = _upload(client, fixed)
    assert preview.status_code == 200 and "2 purchases" in preview.content.decode()
    assert not Purchase.objects.exists()  # nothing until the person confirms
    pending = PendingImport.objects.get()
    assert b"Oat Milk" not in bytes(pending.payload)
    assert client.post(f"/data/import/{pending.pk}/confirm/").status_code == 302
    records = records_for_owner(owner=person, category="purchases")
    assert {r["product_name"] for r in records} == {"Oat Milk", "Eggs"}
    assert {r["source"] for r in records} == {"import"}
    assert LedgerEntry.objects.get(kind="person.import").record_count == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("merchant,product\nA,B\n", "Unknown column(s) for purchases: product"),
        ("merchant,product_name\nA,B\n", "Missing required column(s): purchased_on"),
        ("", "no header row"),
        (HEADER + '=HYPERLINK("x"),Milk,,1,,,2026-01-01,false\n', "spreadsheet formula"),
        (HEADER + "@SUM(A1),Milk,,1,,,2026-01-01,false\n", "spreadsheet formula"),
        (HEADER + GOOD_ROW.strip() + ",extra\n", "more cells than the header"),
    ],
)
def test_bad_csv_files_get_clear_messages(client: Client, person: Any, content: str, expected: str) -> None:
    response = _upload(client, content)
    assert response.status_code == 400 and expected in response.content.decode()
    assert not Purchase.objects.exists()


def test_bad_encoding_is_refused(client: Client, person: Any) -> None:
    response = _upload(client, (HEADER + "Café Müller,Kaffee,,1,,,2026-01-01,false\n").encode("latin-1"))
    assert response.status_code == 400 and "not UTF-8" in response.content.decode()


def test_oversized_file_is_refused(client: Client, person: Any) -> None:
    response = _upload(client, HEADER + GOOD_ROW * (10 * 1024 * 1024 // len(GOOD_ROW) + 10))
    assert response.status_code == 400 and "larger than 10 MB" in response.content.decode()


def test_too_many_rows_are_refused(client: Client, person: Any) -> None:
    rows = "merchant,product_name,purchased_on\n" + "A,B,2026-01-01\n" * 50_001
    response = _upload(client, rows)
    assert response.status_code == 400 and "more than 50000 rows" in response.content.decode()


def test_duplicate_ids_in_json_are_refused(client: Client, person: Any) -> None:
    doc = {"id": "a", **purchase_data()}
    export = {"format": "vrm-export/1", "purchases": [doc, doc]}
    response = _upload(client, json.dumps(export), name="export.json", category="")
    assert response.status_code == 400 and "appears twice" in response.content.decode()


def test_json_must_be_a_vrm_export(client: Client, person: Any) -> None:
    response = _upload(client, '{"purchases": []}', name="x.json", category="")
    assert "vrm-export/1" in response.content.decode() and response.status_code == 400
    response = _upload(client, "{not json", name="x.json", category="")
    assert "not valid JSON" in response.content.decode()


def test_csv_without_a_category_is_read_by_its_columns(client: Client, person: Any) -> None:
    response = _upload(client, HEADER + GOOD_ROW, category="")
    page = response.content.decode()
    assert response.status_code == 200 and "Read as purchases, from the file" in page
    assert "1 purchase<" in page
    closet = _upload(client, "kind,name,size\ntop,Navy jumper,M\n", name="c.csv", category="")
    assert "Read as closet, from the file" in closet.content.decode()


def test_csv_whose_columns_fit_no_kind_asks_for_one(client: Client, person: Any) -> None:
    response = _upload(client, "what,when\nmilk,today\n", category="")
    assert response.status_code == 400
    assert "do not tell which kind of records it holds" in response.content.decode()
    assert not PendingImport.objects.exists()


def test_the_same_file_twice_is_not_stored_twice(client: Client, person: Any) -> None:
    two = HEADER + GOOD_ROW + "Green Grocer,Eggs,5012345001234,2,4.10,EUR,2026-01-06,true\n"
    _upload(client, two)
    client.post(f"/data/import/{PendingImport.objects.get().pk}/confirm/")
    assert Purchase.objects.count() == 2

    again = _upload(client, two).content.decode()
    assert "Already in your store:" in again and "2 purchases" in again and "everything in this file" in again
    assert "Keep my store as it is" in again and "Import them again, as copies" in again
    response = client.post(f"/data/import/{PendingImport.objects.get().pk}/confirm/")
    assert Purchase.objects.count() == 2  # skipped, unless asked for
    assert "Nothing was imported" in client.get(response["Location"]).content.decode()

    # One new row among the known ones: only it is stored.
    three = two + "Green Grocer,Bread,5012345007892,1,3.80,EUR,2026-01-07,false\n"
    page = _upload(client, three).content.decode()
    assert "New to your store:" in page and "They will be skipped." in page
    client.post(f"/data/import/{PendingImport.objects.get().pk}/confirm/")
    assert Purchase.objects.count() == 3

    # Asked for, the known ones come in as copies.
    _upload(client, two)
    client.post(f"/data/import/{PendingImport.objects.get().pk}/confirm/", {"include_duplicates": "on"})
    assert Purchase.objects.count() == 5


def test_a_row_twice_in_the_file_with_one_stored_adds_the_second(client: Client, person: Any) -> None:
    _upload(client, HEADER + GOOD_ROW)
    client.post(f"/data/import/{PendingImport.objects.get().pk}/confirm/")
    _upload(client, HEADER + GOOD_ROW + GOOD_ROW)
    client.post(f"/data/import/{PendingImport.objects.get().pk}/confirm/")
    assert Purchase.objects.count() == 2


def test_a_full_export_imported_back_adds_nothing(client: Client, person: Any) -> None:
    _upload(client, HEADER + GOOD_ROW)
    client.post(f"/data/import/{PendingImport.objects.get().pk}/confirm/")
    preferences_update(owner=person, data={"dietary": ["vegan"]})
    client.post("/accounts/reauth/", {"password": PASSWORD})
    exported = b"".join(client.get("/data/export/?format=json").streaming_content)
    page = _upload(client, exported, name="export.json").content.decode()
    assert "Already in your store:" in page
    client.post(f"/data/import/{PendingImport.objects.get().pk}/confirm/")
    assert Purchase.objects.count() == 1


def test_confirming_someone_elses_import_is_404(client: Client, alice: Any, bob: Any) -> None:
    client.force_login(alice)
    _upload(client, HEADER + GOOD_ROW)
    pending = PendingImport.objects.get()
    client.force_login(bob)
    assert client.post(f"/data/import/{pending.pk}/confirm/").status_code == 404
    assert not Purchase.objects.exists()


# Export, round trip, deletion.


def test_export_json_holds_everything(client: Client, person: Any) -> None:
    from devtools.records import demo_records_seed

    demo_records_seed(person=person)
    response = client.get("/data/export/?format=json")
    assert response.status_code == 200 and response.streaming
    data = json.loads(b"".join(response.streaming_content))
    assert data["format"] == "vrm-export/1" and data["person"]["email"] == "alice@example.com"
    assert set(data) >= {
        "exported_at",
        "purchases",
        "closet",
        "appliances",
        "prescriptions",
        "preferences",
        "grants",
        "receipts",
        "activity",
        "alerts",
        "reminders",
    }
    assert len(data["purchases"]) >= 40 and data["preferences"]["allergies"] == ["peanuts"]
    assert LedgerEntry.objects.filter(kind="person.export").count() == 1


def test_the_zip_holds_everything_the_page_promises(client: Client, person: Any, shop_app: Any) -> None:
    from consent.receipts import receipt_verify
    from consent.services import grant_authorize, grant_revoke

    record_create(owner=person, category="purchases", data=purchase_data())
    grant = grant_authorize(person=person, application=shop_app, scopes=["purchases:read"], duration_days=7)
    grant_revoke(grant=grant, by=person)
    client.post("/accounts/reauth/", {"password": PASSWORD})
    archive = zipfile.ZipFile(io.BytesIO(client.get("/data/export/?format=zip").content))
    names = set(archive.namelist())
    assert {
        "README.txt",
        "grants.csv",
        "activity.csv",
        "alerts.json",
        "reminders.json",
        "preferences.json",
    } <= names
    grants = archive.read("grants.csv").decode()
    assert str(grant.pk) in grants and "Acme Shop" in grants and "revoked" in grants
    for number in (1, 2):  # granted, revoked
        jws = archive.read(f"receipts/{grant.pk}-{number}.jws").decode()
        document = json.loads(archive.read(f"receipts/{grant.pk}-{number}.json"))
        assert receipt_verify(jws) == document
    activity = archive.read("activity.csv").decode()
    assert "You granted Acme Shop (Shop app): Your purchases" in activity
    assert "You revoked Acme Shop (Shop app)'s grant" in activity
    assert "You downloaded everything" in activity or "person.export" in activity


def test_export_erase_import_round_trip(client: Client, person: Any) -> None:
    from devtools.records import demo_records_seed

    demo_records_seed(person=person)
    # Text a spreadsheet would run as a formula, as a vendor may write it, survives both trips.
    tricky = purchase_data(merchant="-Minus Market", notes='=HYPERLINK("http://evil.example","x")', lot="+L1")
    record_create(owner=person, category="purchases", data=tricky, source="vendor", source_vendor="@Shop")
    before = {
        name: records_for_owner(owner=person, category=name)
        for name in ("purchases", "closet", "appliances", "prescriptions")
    }
    prefs = preferences_get(owner=person)
    exported = b"".join(client.get("/data/export/?format=json").streaming_content)
    archive = zipfile.ZipFile(io.BytesIO(client.get("/data/export/?format=zip").content))
    assert set(archive.namelist()) >= {"purchases.csv", "closet.csv", "appliances.csv", "prescriptions.csv"}

    person_erase(person=person)
    person_store_open(person=person, password=PASSWORD)
    client.force_login(person)  # the session carries the new store's keys
    assert _upload(client, exported, name="export.json", category="").status_code == 200
    client.post(f"/data/import/{PendingImport.objects.get().pk}/confirm/")

    def strip(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(({k: v for k, v in d.items() if k != "id"} for d in docs), key=json.dumps)

    for name, docs in before.items():
        assert strip(records_for_owner(owner=person, category=name)) == strip(docs), name
    assert preferences_get(owner=person) == prefs

    # The CSV files import back too.
    person_erase(person=person)
    person_store_open(person=person, password=PASSWORD)
    client.force_login(person)  # the session carries the new store's keys
    for name in before:
        assert (
            _upload(client, archive.read(f"{name}.csv"), name=f"{name}.csv", category=name).status_code == 200
        )
        client.post(f"/data/import/{PendingImport.objects.get().pk}/confirm/")
    for name, docs in before.items():
        assert strip(records_for_owner(owner=person, category=name)) == strip(docs), name


def test_export_and_deletion_need_a_recent_password(client: Client, person: Any) -> None:
    session = client.session
    session[SESSION_KEY] = 0  # confirmed long ago
    session.save()
    for path in ("/data/export/?format=json", "/account/delete/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/confirm/")
    wrong = client.post("/accounts/confirm/?next=/data/export/", {"password": "nope"})
    assert wrong.status_code == 400
    right = client.post("/accounts/confirm/?next=/data/export/", {"password": PASSWORD})
    assert right["Location"] == "/data/export/"
    assert client.get("/data/export/").status_code == 200


def test_delete_account_needs_the_password_then_shreds_everything(client: Client, person: Any) -> None:
    record_create(owner=person, category="purchases", data=purchase_data())
    preferences_update(owner=person, data={"allergies": ["peanuts"]})
    page = client.get("/account/delete/").content.decode()
    assert "your keys are destroyed" in page and "Download everything first" in page
    assert client.post("/account/delete/", {"password": "wrong"}).status_code == 400
    assert User.objects.filter(pk=person.pk).exists()
    response = client.post("/account/delete/", {"password": PASSWORD})
    assert "Your account is deleted" in response.content.decode()
    assert not User.objects.filter(email="alice@example.com").exists() and not Purchase.objects.exists()
    assert LedgerEntry.objects.filter(kind="person.erased").exists()
    assert client.get("/dashboard/").status_code == 302
    login = client.post("/accounts/login/", {"username": "alice@example.com", "password": PASSWORD})
    assert login.status_code == 200 and "_auth_user_id" not in client.session


def test_dashboard_says_what_vendors_can_see(client: Client, person: Any) -> None:
    from consent.services import grant_authorize
    from tests.consent.conftest import make_app
    from vendors.models import Organisation

    for n in range(3):
        record_create(owner=person, category="purchases", data=purchase_data(is_gift=n == 0))
    org = Organisation.objects.create(
        name="Corner Shop", website="https://corner.example", privacy_contact="p@corner.example"
    )
    grant_authorize(
        person=person,
        application=make_app(org),
        scopes=["purchases:read", "preferences:read"],
        duration_days=30,
    )
    page = client.get("/dashboard/").content.decode()
    assert "Corner Shop" in page and "<li>2 purchases</li>" in page and "<li>preferences</li>" in page
    assert "/revoke/" in page


def test_records_of_another_person_never_count_as_already_stored(
    client: Client, person: Any, bob: Any
) -> None:
    same = dict(zip(HEADER.strip().split(","), GOOD_ROW.strip().split(","), strict=True))
    record_create(owner=bob, category="purchases", data={**same, "is_gift": False, "quantity": 1})
    page = _upload(client, HEADER + GOOD_ROW).content.decode()
    assert "Already in your store" not in page and "New to your store:" in page
