"""The hot path's statements read and write exactly what the ORM would, on the real database."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import User
from audit.models import LedgerEntry
from consent.models import Grant
from core.statements import (
    Condition,
    JoinedRead,
    Rows,
    Table,
    TextValue,
    in_pipelined_atomic,
    insert,
    pipelined_atomic,
)
from personal_data import services, store
from personal_data.categories import RECORD_CATEGORIES
from personal_data.models import PersonKey, Purchase
from tests.conftest import purchase_data

PURCHASES = RECORD_CATEGORIES["purchases"]
COLUMNS = (*store.open_columns(PURCHASES), "created_at")
ORDER = ("-created_at", "-id")


def _purchases(owner: Any, specs: list[tuple[bool, bool, int]]) -> list[str]:
    """Store purchases (shared, gift, days old), one second apart; return their ids."""
    start = timezone.now() - dt.timedelta(days=1)
    ids = []
    for n, (shared, gift, age) in enumerate(specs):
        day = (timezone.now() - dt.timedelta(days=age)).date().isoformat()
        doc = services.record_create(
            owner=owner,
            category="purchases",
            data=purchase_data(shared=shared, is_gift=gift, purchased_on=day),
        )
        # Equal creation times in pairs, so ordering has to break ties by id.
        Purchase.objects.filter(pk=doc["id"]).update(created_at=start + dt.timedelta(seconds=n // 2))
        ids.append(doc["id"])
    return ids


specs = st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(0, 60)), max_size=9)
filters = st.fixed_dictionaries(
    {},
    optional={
        "shared": st.booleans(),
        "is_gift": st.booleans(),
        "purchased_on__gte": st.integers(0, 60),
        "purchased_on__lt": st.integers(0, 60),
        "pick": st.lists(st.integers(0, 8), max_size=4),
    },
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=specs, chosen=filters, low=st.integers(0, 5), size=st.integers(1, 6), reverse=st.booleans())
def test_rows_select_what_the_queryset_selects(
    alice: Any,
    specs: list[tuple[bool, bool, int]],
    chosen: dict[str, Any],
    low: int,
    size: int,
    reverse: bool,
) -> None:
    Purchase.objects.filter(owner_id=alice.pk).delete()
    ids = _purchases(alice, specs)
    conditions = [Condition("owner_id", "exact", alice.pk)]
    for keyword, value in chosen.items():
        if keyword == "pick":
            conditions.append(Condition("id", "in", [ids[i] for i in value if i < len(ids)]))
            continue
        attname, _, lookup = keyword.partition("__")
        if attname == "purchased_on":
            value = timezone.now().date() - dt.timedelta(days=value)
        conditions.append(Condition(attname, lookup or "exact", value))
    rows = Rows(Purchase, columns=COLUMNS, conditions=tuple(conditions))
    ordering = ("created_at", "id") if reverse else ORDER

    page = rows.order_by(*ordering)[low : low + size]
    expected = list(rows.queryset().order_by(*ordering).values(*COLUMNS)[low : low + size])
    assert page == expected
    assert [r["id"] for r in rows.order_by(*ordering).filter(shared=True)[0:100]] == list(
        rows.queryset().filter(shared=True).order_by(*ordering).values_list("id", flat=True)
    )


def test_rows_convert_values_as_the_orm_does(alice: Any) -> None:
    (purchase_id,) = _purchases(alice, [(True, False, 3)])
    (row,) = Rows(Purchase, columns=COLUMNS, conditions=(Condition("owner_id", "exact", alice.pk),))[0:1]
    assert isinstance(row["id"], uuid.UUID) and str(row["id"]) == purchase_id
    assert row["shared"] is True and row["is_gift"] is False
    assert row["created_at"].tzinfo is not None
    assert list(store.rows_open_json(PURCHASES, [row], alice)) == [purchase_id]


def test_lazy_columns_give_the_orms_value_where_used(alice: Any) -> None:
    _purchases(alice, [(True, False, 3), (True, True, 1)])
    conditions = (Condition("owner_id", "exact", alice.pk),)
    lazy = Rows(Purchase, columns=COLUMNS, conditions=conditions, lazy=("created_at",)).order_by(*ORDER)
    eager = Rows(Purchase, columns=COLUMNS, conditions=conditions).order_by(*ORDER)
    for row, expected in zip(lazy[0:10], eager[0:10], strict=True):
        assert isinstance(row["created_at"], TextValue)
        assert (
            row["created_at"].value == expected["created_at"] and row["created_at"].value.tzinfo is not None
        )
        assert str(row["created_at"]) == str(expected["created_at"])  # the cursor's position text
        assert {k: v for k, v in row.items() if k != "created_at"} == {
            k: v for k, v in expected.items() if k != "created_at"
        }


def test_rows_read_exact_none_as_the_orm_does(alice: Any) -> None:
    _purchases(alice, [(True, False, 1)])
    Purchase.objects.filter(owner_id=alice.pk).update(lot_index=None)
    rows = Rows(Purchase, columns=("id",), conditions=(Condition("lot_index", "exact", None),))
    assert [r["id"] for r in rows[0:10]] == list(rows.queryset().values_list("id", flat=True))
    assert len(rows[0:10]) == 1
    with pytest.raises(ValueError, match="cannot compare with None"):
        Rows(Purchase, columns=("id",), conditions=(Condition("lot_index", "lt", None),))[0:1]


def test_rows_by_an_empty_id_list_are_none_and_ask_nothing(alice: Any) -> None:
    _purchases(alice, [(True, False, 1)])
    rows = Rows(Purchase, columns=COLUMNS, conditions=(Condition("id", "in", []),))
    with CaptureQueriesContext(transaction.get_connection()) as queries:
        assert rows[0:10] == []
    assert len(queries) == 0


def test_rows_refuse_what_they_cannot_express(alice: Any) -> None:
    rows = Rows(Purchase, columns=COLUMNS, conditions=())
    with pytest.raises(ValueError, match="unsupported lookup"):
        rows.filter(notes__icontains="x")
    with pytest.raises(ValueError, match="unsupported lookup"):
        Rows(Purchase, columns=COLUMNS, conditions=(Condition("shared", "isnull", False),))[0:1]
    with pytest.raises(ValueError, match="no column"):
        Rows(Purchase, columns=("nope",), conditions=())[0:1]
    with pytest.raises(TypeError):
        rows[3]  # type: ignore[index]
    with pytest.raises(ValidationError):  # a malformed id fails as it would through the ORM
        Rows(Purchase, columns=COLUMNS, conditions=(Condition("id", "in", ["not-a-uuid"]),))[0:1]


# JoinedRead


JOIN = JoinedRead(
    Table(Grant, "g"),
    Table(PersonKey, "k", on=("g", "person_id", "person_id")),
    where=[("g", "id")],
)


def test_a_joined_read_builds_complete_instances(alice: Any, flow: Any) -> None:
    flow.tokens()
    grant = Grant.objects.get(person=alice)
    found = JOIN.one([grant.pk])
    assert found is not None
    got, key = found["g"], found["k"]
    assert isinstance(got, Grant) and isinstance(key, PersonKey)
    reference = Grant.objects.get(pk=grant.pk)
    for field in Grant._meta.concrete_fields:
        assert getattr(got, field.attname) == getattr(reference, field.attname), field.name
    assert bytes(key.wrapped_key) == bytes(PersonKey.objects.get(person=alice).wrapped_key)
    assert got._state.adding is False


def test_a_joined_read_without_a_match_or_a_joined_row(alice: Any, flow: Any) -> None:
    assert JOIN.one([uuid.uuid4()]) is None
    flow.tokens()
    grant = Grant.objects.get(person=alice)
    PersonKey.objects.filter(person=alice).delete()
    found = JOIN.one([grant.pk])
    assert found is not None and found["g"] is not None and found["k"] is None


# insert


def test_insert_stores_the_row_the_orm_would_store(db: Any) -> None:
    moment = timezone.now()
    with transaction.atomic():
        entry = insert(
            LedgerEntry,
            {
                "created_at": moment,
                "kind": "access.read",
                "actor_type": "client",
                "actor_id": "c1",
                "scopes": ["purchases:read"],
                "record_ids": ["a", "b"],
                "record_count": 2,
            },
        )
    assert isinstance(entry, LedgerEntry) and entry.pk is not None and entry._state.adding is False
    stored = LedgerEntry.objects.get(pk=entry.pk)
    for field in LedgerEntry._meta.concrete_fields:
        assert getattr(stored, field.attname) == getattr(entry, field.attname), field.name
    assert stored.created_at == moment
    assert stored.outcome == "allowed" and stored.subject == ""  # the fields' defaults


def test_insert_takes_its_defaults_from_the_model(db: Any) -> None:
    with transaction.atomic():
        entry = insert(LedgerEntry, {"kind": "access.read", "actor_type": "client", "actor_id": "c1"})
    stored = LedgerEntry.objects.get(pk=entry.pk)
    assert stored.scopes == [] and stored.record_ids == [] and stored.record_count == 0
    assert abs(stored.created_at - timezone.now()) < dt.timedelta(minutes=1)


def test_rows_order_and_filter_a_lazy_column_by_its_value_not_its_text(db: Any) -> None:
    # Ordering by a column read as text must still order by the column: in SQL an unqualified
    # ORDER BY name means the output column first, which here would be the text (and, on
    # PostgreSQL, would also keep the page read off its (owner, created_at, id) index).
    with transaction.atomic():
        for count in (9, 10, 100):
            insert(
                LedgerEntry,
                {"kind": "access.read", "actor_type": "client", "actor_id": "c", "record_count": count},
            )
    rows = Rows(LedgerEntry, columns=("id", "record_count"), conditions=(), lazy=("record_count",))
    assert [r["record_count"].value for r in rows.order_by("record_count")[0:10]] == [9, 10, 100]
    assert [r["record_count"].value for r in rows.order_by("-record_count")[0:10]] == [100, 10, 9]
    assert [r["record_count"].value for r in rows.order_by("id").filter(record_count__lt=10)[0:10]] == [9]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements and plans of PostgreSQL")
def test_a_page_read_is_planned_once_not_on_every_request(alice: Any) -> None:
    # Booleans are written into the statement: as parameters, PostgreSQL judged its plan for
    # any value worse than one for shared=TRUE and planned the page anew on every execution.
    # The table looks like a real one: many people, nearly every record shared, few gifts.
    others = User.objects.bulk_create(User(email=f"p{n}@example.com", password="!") for n in range(300))
    now = timezone.now()
    Purchase.objects.bulk_create(
        (
            Purchase(
                owner=owner,
                payload=b"x",
                shared=n % 20 != 0,
                is_gift=n % 25 == 0,
                created_at=now,
                updated_at=now,
                purchased_on=now.date(),
            )
            for owner in [alice, *others]
            for n in range(100)
        ),
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE personal_data_purchase")
    conditions = (
        Condition("owner_id", "exact", alice.pk),
        Condition("shared", "exact", True),
        Condition("is_gift", "exact", False),
    )
    rows = Rows(Purchase, columns=COLUMNS, conditions=conditions, lazy=("created_at",)).order_by(*ORDER)
    for _ in range(20):  # psycopg prepares it from the 6th; PostgreSQL plans 5 times, then decides
        assert len(rows[0:51]) == 51
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ['%FROM "personal_data_purchase" WHERE%'],
        )
        ((generic, custom),) = cursor.fetchall()
    assert generic > custom


# pipelined_atomic: one transaction whose commit travels with its last statement.

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="pipeline mode of PostgreSQL")


def _entry(**values: Any) -> dict[str, Any]:
    return {"kind": "access.read", "actor_type": "client", "actor_id": "pipelined", **values}


def _stored() -> list[int]:
    return list(LedgerEntry.objects.filter(actor_id="pipelined").values_list("record_count", flat=True))


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_pipelined_read_and_write_commit_as_one_transaction(alice: Any) -> None:
    _purchases(alice, [(True, False, 1)])
    rows = Rows(Purchase, columns=("id",), conditions=(Condition("owner_id", "exact", alice.pk),))
    with pipelined_atomic():
        assert in_pipelined_atomic() and not connection.in_atomic_block
        with connection.cursor() as cursor:
            cursor.execute("SELECT txid_current()")
            ((read_in,),) = cursor.fetchall()
        assert len(rows[0:10]) == 1  # a fetch inside the pipeline
        entry = insert(LedgerEntry, _entry(record_count=1))
        assert entry.pk is None  # not read back: that would cost the round trip saved
        with connection.cursor() as cursor:
            cursor.execute("SELECT txid_current()")
            ((written_in,),) = cursor.fetchall()
        with pipelined_atomic():  # nested: the same transaction
            insert(LedgerEntry, _entry(record_count=2))
    assert read_in == written_in  # one transaction, not one per statement
    assert not in_pipelined_atomic()
    assert sorted(_stored()) == [1, 2]
    with connection.cursor() as cursor:  # the connection is back in autocommit, usable
        cursor.execute("SELECT txid_current_if_assigned()")
        assert cursor.fetchone() == (None,)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_exception_after_the_write_rolls_the_pipelined_transaction_back(db: Any) -> None:
    with pytest.raises(ZeroDivisionError), pipelined_atomic():
        insert(LedgerEntry, _entry(record_count=2))
        _ = 1 / 0
    assert _stored() == []


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_failed_statement_rolls_the_pipelined_transaction_back(db: Any) -> None:
    # The second insert breaks the record_count >= 0 constraint; the error comes back with the
    # commit, as Django's IntegrityError, and the first insert is gone with it.
    with pytest.raises(IntegrityError), pipelined_atomic():
        insert(LedgerEntry, _entry(record_count=3))
        insert(LedgerEntry, _entry(record_count=-1))
    assert _stored() == []
    with pytest.raises(ProgrammingError), pipelined_atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT no_such_column FROM audit_ledgerentry")
        cursor.fetchall()
    with pipelined_atomic():  # and the connection works afterwards
        insert(LedgerEntry, _entry(record_count=4))
    assert _stored() == [4]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_pipelined_block_refuses_a_nested_atomic_block(db: Any) -> None:
    with pytest.raises(ProgrammingError), pipelined_atomic():
        insert(LedgerEntry, _entry(record_count=5))
        with transaction.atomic():
            pass
    assert _stored() == []


def test_pipelined_atomic_is_atomic_inside_an_atomic_block_or_elsewhere(db: Any) -> None:
    with transaction.atomic(), pipelined_atomic():
        assert connection.in_atomic_block
        entry = insert(LedgerEntry, _entry(record_count=6))
        assert entry.pk is not None
    with pytest.raises(ZeroDivisionError), pipelined_atomic():
        insert(LedgerEntry, _entry(record_count=7))
        _ = 1 / 0
    assert _stored() == [6]
