"""The store's services and selectors against the real database."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import Http404
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import User
from personal_data import selectors, services, store
from personal_data.categories import RECORD_CATEGORIES
from personal_data.keys import WrongSecret
from personal_data.models import PersonKey, Preferences, Purchase, SharedCopy
from personal_data.shares import ShareFilters, copies_open_json, copies_page, copy_get, share_create
from tests.conftest import PASSWORD, purchase_data

VALID = {
    "purchases": purchase_data(),
    "closet": {
        "kind": "top",
        "name": "Linen shirt",
        "brand": "Arket",
        "size": "M",
        "color": "blue",
        "rating": 4,
        "acquired_on": "2025-05-01",
    },
    "appliances": {
        "kind": "fridge",
        "brand": "Bosch",
        "model_number": "KGN39",
        "serial_number": "SN991",
        "gtin": "4242002123455",
        "purchased_on": "2024-01-10",
        "warranty_until": "2027-01-10",
        "energy_kwh_per_year": 160,
    },
    "prescriptions": {
        "medication": "Atorvastatin",
        "rxnorm": "617312",
        "strength": "20 mg",
        "directions": "one each evening",
        "prescribed_on": "2026-01-02",
        "days_supply": 30,
        "refills_remaining": 2,
        "last_filled_on": "2026-02-01",
    },
}


@pytest.mark.parametrize("category", list(VALID))
def test_create_read_update_delete_round_trip(alice: Any, category: str) -> None:
    doc = services.record_create(owner=alice, category=category, data=VALID[category])
    assert {k: doc[k] for k in VALID[category]} == {**VALID[category]}
    assert selectors.record_get_for_owner(owner=alice, category=category, record_id=doc["id"]) == doc

    changed = services.record_update(
        owner=alice, category=category, record_id=doc["id"], data={"notes": "corrected", "shared": False}
    )
    assert changed["notes"] == "corrected" and changed["shared"] is False
    assert selectors.records_for_owner(owner=alice, category=category) == [changed]

    services.record_delete(owner=alice, category=category, record_id=doc["id"])
    assert selectors.records_for_owner(owner=alice, category=category) == []


def test_documents_carry_the_documented_fields(alice: Any) -> None:
    doc = services.record_create(owner=alice, category="purchases", data=purchase_data())
    assert set(doc) == {
        "id",
        "merchant",
        "product_name",
        "brand",
        "gtin",
        "sku",
        "category",
        "quantity",
        "unit_price",
        "currency",
        "lot",
        "purchased_on",
        "order_ref",
        "is_gift",
        "shared",
        "source",
        "source_vendor",
        "notes",
    }
    rx = services.record_create(owner=alice, category="prescriptions", data=VALID["prescriptions"])
    assert rx["next_refill_on"] == "2026-03-03"


def test_money_is_a_decimal_string(alice: Any) -> None:
    doc = services.record_create(owner=alice, category="purchases", data=purchase_data(unit_price=5))
    assert doc["unit_price"] == "5.00"
    doc = services.record_create(owner=alice, category="purchases", data=purchase_data(unit_price="1.2345"))
    assert doc["unit_price"] == "1.2345"


BAD_INPUT = [
    ("purchases", {"gtin": "5012345001235"}, "gtin"),  # wrong check digit
    ("purchases", {"gtin": "12345"}, "gtin"),
    ("purchases", {"gtin": "50123450012ab"}, "gtin"),
    ("purchases", {"quantity": 0}, "quantity"),
    ("purchases", {"quantity": "many"}, "quantity"),
    ("purchases", {"currency": "EURO"}, "currency"),
    ("purchases", {"currency": "XYZ"}, "currency"),
    ("purchases", {"unit_price": "-1"}, "unit_price"),
    ("purchases", {"purchased_on": "1850-01-01"}, "purchased_on"),
    ("purchases", {"purchased_on": "2999-01-01"}, "purchased_on"),
    ("purchases", {"purchased_on": "not a date"}, "purchased_on"),
    ("purchases", {"product_name": "x" * 301}, "product_name"),
    ("purchases", {"product_name": {"nested": True}}, "product_name"),
    ("purchases", {"merchant": ""}, "merchant"),
    ("purchases", {"is_gift": "perhaps"}, "is_gift"),
    ("purchases", {"favourite": True}, "favourite"),
    ("closet", {"rating": 6}, "rating"),
    ("closet", {"kind": "hat"}, "kind"),
    ("closet", {"status": "lost"}, "status"),
    ("appliances", {"warranty_until": "2200-01-01"}, "warranty_until"),
    ("appliances", {"energy_kwh_per_year": -5}, "energy_kwh_per_year"),
    ("prescriptions", {"rxnorm": "abc"}, "rxnorm"),
    ("prescriptions", {"rxnorm": "٦١٧٣١٢"}, "rxnorm"),  # digits, but not ASCII ones
    ("prescriptions", {"days_supply": 0}, "days_supply"),
    ("prescriptions", {"notes": "n" * 2001}, "notes"),
]


@pytest.mark.parametrize(("category", "change", "field"), BAD_INPUT)
def test_bad_input_gives_a_field_error_and_writes_nothing(
    alice: Any, category: str, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        services.record_create(owner=alice, category=category, data={**VALID[category], **change})
    assert field in excinfo.value.message_dict
    assert RECORD_CATEGORIES[category].model.objects.count() == 0


@pytest.mark.parametrize(("category", "change", "field"), BAD_INPUT)
def test_bad_update_gives_a_field_error_and_changes_nothing(
    alice: Any, category: str, change: dict[str, Any], field: str
) -> None:
    doc = services.record_create(owner=alice, category=category, data=VALID[category])
    with pytest.raises(ValidationError) as excinfo:
        services.record_update(owner=alice, category=category, record_id=doc["id"], data=change)
    assert field in excinfo.value.message_dict
    assert selectors.record_get_for_owner(owner=alice, category=category, record_id=doc["id"]) == doc


@pytest.mark.parametrize("data", [None, [], "text", 42])
def test_non_object_input_is_refused(alice: Any, data: Any) -> None:
    with pytest.raises(ValidationError):
        services.record_create(owner=alice, category="purchases", data=data)


def test_a_price_needs_a_currency(alice: Any) -> None:
    with pytest.raises(ValidationError) as excinfo:
        services.record_create(owner=alice, category="purchases", data=purchase_data(currency=""))
    assert "currency" in excinfo.value.message_dict


def test_preferences_validate_and_round_trip(alice: Any) -> None:
    assert selectors.preferences_get(owner=alice)["dietary"] == []
    doc = {
        "dietary": ["vegan", "gluten_free"],
        "allergies": ["peanuts"],
        "sizes": {"shoe": "42"},
        "brands_liked": ["Veja"],
        "brands_avoided": [],
        "contact": {
            "email": False,
            "safety_alerts_only": True,
            "reminders": ["refill", "grant_summary"],
            "reminders_email": True,
            "messages_email": True,
        },
    }
    assert services.preferences_update(owner=alice, data=doc) == doc
    assert selectors.preferences_get(owner=alice) == doc
    for bad, field in [
        ({"dietary": ["carnivore"]}, "dietary.0"),
        ({"contact": {"sms": True}}, "contact.sms"),
        ({"allergies": ["x" * 101]}, "allergies.0"),
        ({"colour": "red"}, "colour"),
    ]:
        with pytest.raises(ValidationError) as excinfo:
            services.preferences_update(owner=alice, data=bad)
        assert field in excinfo.value.message_dict
    assert selectors.preferences_get(owner=alice) == doc


OPERATIONS = ["get", "update", "delete"]


@pytest.mark.parametrize("category", list(VALID))
@pytest.mark.parametrize("operation", OPERATIONS)
def test_nobody_reaches_another_persons_record(alice: Any, bob: Any, category: str, operation: str) -> None:
    doc = services.record_create(owner=alice, category=category, data=VALID[category])
    attempt = {
        "get": lambda: selectors.record_get_for_owner(owner=bob, category=category, record_id=doc["id"]),
        "update": lambda: services.record_update(
            owner=bob, category=category, record_id=doc["id"], data={"notes": "mine now"}
        ),
        "delete": lambda: services.record_delete(owner=bob, category=category, record_id=doc["id"]),
    }[operation]
    with pytest.raises(Http404):
        attempt()
    assert selectors.record_get_for_owner(owner=alice, category=category, record_id=doc["id"]) == doc
    assert selectors.records_for_owner(owner=bob, category=category) == []


@pytest.mark.parametrize("record_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "", None])
def test_malformed_or_unknown_ids_are_404(alice: Any, record_id: Any) -> None:
    with pytest.raises(Http404):
        selectors.record_get_for_owner(owner=alice, category="purchases", record_id=record_id)


def test_unknown_category_is_404(alice: Any) -> None:
    with pytest.raises(Http404):
        services.record_create(owner=alice, category="passwords", data={})


def test_shared_reads_leave_out_hidden_gifts_and_old_records(alice: Any) -> None:
    plain = services.record_create(owner=alice, category="purchases", data=purchase_data())
    hidden = services.record_create(owner=alice, category="purchases", data=purchase_data(shared=False))
    gift = services.record_create(owner=alice, category="purchases", data=purchase_data(is_gift=True))
    old = services.record_create(
        owner=alice, category="purchases", data=purchase_data(purchased_on="2020-01-01")
    )
    import datetime as dt

    def visible(**filters: Any) -> set[str]:
        return {
            str(pk)
            for pk in selectors.records_shared_qs(owner=alice, category="purchases", **filters).values_list(
                "pk", flat=True
            )
        }

    assert visible() == {plain["id"], old["id"]}
    assert visible(include_gifts=True) == {plain["id"], old["id"], gift["id"]}
    assert visible(since=dt.date(2025, 1, 1)) == {plain["id"]}
    share = share_create(
        owner=alice, filters=ShareFilters(categories=("purchases",), since=dt.date(2025, 1, 1))
    )
    for record in (hidden, gift, old):
        assert copy_get(share=share, category="purchases", record_id=record["id"]) is None
    assert copy_get(share=share, category="purchases", record_id=plain["id"]) == plain


def test_owns_check_uses_the_blind_index_across_gtin_spellings(alice: Any, bob: Any) -> None:
    services.record_create(owner=alice, category="purchases", data=purchase_data(gtin="036000291452"))
    assert selectors.purchases_owns(owner=alice, gtin="0036000291452")  # EAN-13 spelling of a UPC-A
    assert not selectors.purchases_owns(owner=alice, gtin="5012345001234")
    assert not selectors.purchases_owns(owner=bob, gtin="036000291452")


# Ciphertext at rest.

SEEDED_TEXT = [
    "Crunchy Peanut Butter",
    "Nutty Farms",
    "Green Grocer",
    "5012345001234",
    "L4471",
    "Linen shirt",
    "Arket",
    "KGN39",
    "SN991",
    "Atorvastatin",
    "617312",
    "one each evening",
    "peanuts",
    "Veja",
    "for the pantry",
]


def _raw_table_bytes(table: str) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
        rows = cursor.fetchall()
    blob = bytearray()
    for row in rows:
        for value in row:
            blob += bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
    return bytes(blob)


def test_raw_tables_hold_no_plaintext(alice: Any) -> None:
    for category, data in VALID.items():
        services.record_create(owner=alice, category=category, data=data)
    services.preferences_update(owner=alice, data={"allergies": ["peanuts"], "brands_liked": ["Veja"]})
    tables = [c.table for c in RECORD_CATEGORIES.values()] + [
        Preferences._meta.db_table,
        PersonKey._meta.db_table,
    ]
    raw = b"".join(_raw_table_bytes(t) for t in tables)
    assert len(raw) > 1000
    for text in SEEDED_TEXT:
        assert text.encode() not in raw, text
        assert text.lower().encode() not in raw.lower(), text


# A grant's copies (what the vendor API reads) are the documents row_open gives.


def _through_a_share(owner: Any, category: str) -> tuple[list[Any], list[Any]]:
    """The owner's shared documents, and the documents of a new share's copies, both by id."""
    cat = RECORD_CATEGORIES[category]
    expected = sorted(
        (d for d in store.rows_open(cat, cat.model.objects.filter(owner_id=owner.pk), owner) if d["shared"]),
        key=lambda d: d["id"],
    )
    share = share_create(owner=owner, filters=ShareFilters(categories=(category,), include_gifts=True))
    rows = copies_page(share=share, category=category, limit=1000)
    copies = sorted(
        (orjson.loads(d) for d in copies_open_json(share=share, category=category, rows=rows).values()),
        key=lambda d: d["id"],
    )
    return expected, copies


@pytest.mark.parametrize("category", list(VALID))
def test_a_grants_copies_are_the_documents(alice: Any, category: str) -> None:
    services.record_create(owner=alice, category=category, data=VALID[category])
    services.record_create(owner=alice, category=category, data={**VALID[category], "shared": False})
    expected, copies = _through_a_share(alice, category)
    assert len(expected) == 1 and copies == expected


awkward_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
) | st.sampled_from(['"source_vendor":"x"', '\\"source_vendor\\":', "{}", '","shared":false,"', "\u2028"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(notes=awkward_text, merchant=awkward_text.filter(lambda t: t.strip()), vendor=awkward_text)
def test_copies_survive_any_text(alice: Any, notes: str, merchant: str, vendor: str) -> None:
    Purchase.objects.filter(owner_id=alice.pk).delete()
    services.record_create(
        owner=alice,
        category="purchases",
        data=purchase_data(notes=notes, merchant=merchant),
        source="vendor",
        source_vendor=vendor[:200],
    )
    expected, copies = _through_a_share(alice, "purchases")
    assert copies == expected


def test_a_purchase_sealed_without_source_vendor_reads_as_blank(alice: Any) -> None:
    # Purchases stored before vendors could give records back have no source_vendor member.
    cat = RECORD_CATEGORIES["purchases"]
    doc = store.validate(cat.schema, purchase_data(notes='"source_vendor":"not a member"'))
    row = Purchase(owner_id=alice.pk)
    store.row_fill(cat, row, store.owner_keys(alice).data, doc)
    row.save(force_insert=True)
    expected, copies = _through_a_share(alice, "purchases")
    assert expected[0]["source_vendor"] == "" and copies == expected


def test_a_tampered_row_cannot_be_copied_into_a_grant(alice: Any) -> None:
    created = services.record_create(owner=alice, category="purchases", data=purchase_data())
    row = Purchase.objects.get(pk=created["id"])
    payload = bytearray(row.payload)
    payload[-1] ^= 0x01
    Purchase.objects.filter(pk=row.pk).update(payload=bytes(payload))
    with pytest.raises(store.StoreError, match="cannot be opened"):
        _through_a_share(alice, "purchases")


def test_a_copy_moved_to_another_grant_does_not_open(alice: Any, bob: Any) -> None:
    # A copy is bound to its share, category and record: moved anywhere else it fails.
    services.record_create(owner=alice, category="purchases", data=purchase_data())
    services.record_create(owner=bob, category="purchases", data=purchase_data())
    filters = ShareFilters(categories=("purchases",))
    alices, bobs = share_create(owner=alice, filters=filters), share_create(owner=bob, filters=filters)
    SharedCopy.objects.filter(share=bobs).update(share=alices)
    rows = copies_page(share=alices, category="purchases", limit=10)
    assert len(rows) == 2
    with pytest.raises(store.StoreError, match="cannot be opened"):
        copies_open_json(share=alices, category="purchases", rows=rows)


# Tampering, swapping and wrong keys.


def _two_purchases(alice: Any, bob: Any) -> tuple[Purchase, Purchase, Purchase]:
    a1 = services.record_create(owner=alice, category="purchases", data=purchase_data())
    a2 = services.record_create(owner=alice, category="purchases", data=purchase_data(merchant="Other"))
    b1 = services.record_create(owner=bob, category="purchases", data=purchase_data())
    return tuple(Purchase.objects.get(pk=r["id"]) for r in (a1, a2, b1))  # type: ignore[return-value]


def _read(owner: Any, row: Purchase) -> Any:
    return selectors.record_get_for_owner(owner=owner, category="purchases", record_id=row.pk)


def test_one_flipped_byte_is_a_clear_error(alice: Any, bob: Any) -> None:
    row, _, _ = _two_purchases(alice, bob)
    payload = bytearray(row.payload)
    payload[20] ^= 0x01
    Purchase.objects.filter(pk=row.pk).update(payload=bytes(payload))
    with pytest.raises(store.StoreError, match="cannot be opened"):
        _read(alice, row)


def test_ciphertext_swapped_between_records_fails(alice: Any, bob: Any) -> None:
    a1, a2, _ = _two_purchases(alice, bob)
    Purchase.objects.filter(pk=a1.pk).update(payload=a2.payload)
    with pytest.raises(store.StoreError):
        _read(alice, a1)


def test_ciphertext_swapped_between_people_fails(alice: Any, bob: Any) -> None:
    a1, _, b1 = _two_purchases(alice, bob)
    Purchase.objects.filter(pk=a1.pk).update(payload=b1.payload)
    with pytest.raises(store.StoreError):
        _read(alice, a1)


def test_another_persons_wrapped_key_cannot_open_a_store(alice: Any, bob: Any) -> None:
    # Wraps are bound to their person: bob's wraps copied onto alice's row open nothing, even
    # with the password both happen to use.
    _two_purchases(alice, bob)
    bobs = PersonKey.objects.get(person=bob)
    PersonKey.objects.filter(person=alice).update(
        password_kdf=bobs.password_kdf, password_wrap=bobs.password_wrap, recovery_wrap=bobs.recovery_wrap
    )
    with pytest.raises(WrongSecret):
        services.person_unlock(person=User.objects.get(pk=alice.pk), password=PASSWORD)


def test_another_persons_data_key_cannot_open_a_record(alice: Any, bob: Any) -> None:
    a1, _, _ = _two_purchases(alice, bob)
    with pytest.raises(store.StoreError, match="cannot be opened"):
        store.row_open(RECORD_CATEGORIES["purchases"], a1, store.owner_keys(bob))
