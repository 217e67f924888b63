"""The hot path's fixed statements read exactly what the ORM would, on the real database."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.models import Grant
from core.statements import Select, Source
from personal_data import selectors, services
from personal_data.categories import RECORD_CATEGORIES
from personal_data.models import PersonKey, Purchase, Share, SharedCopy
from personal_data.shares import ShareFilters, copies_open_json, copies_page, share_create
from tests.conftest import purchase_data
from vendors.api.pagination import cursor_decode

PURCHASES = RECORD_CATEGORIES["purchases"]
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


def _share(owner: Any, **filters: Any) -> Share:
    """A share of the owner's purchases with these filters (what a grant makes)."""
    return share_create(owner=owner, filters=ShareFilters(categories=("purchases",), **filters))


def _pages(share: Share, size: int, **filters: Any) -> list[list[dict[str, Any]]]:
    """Every keyset page of the share's copies, following each page's last row as the API does."""
    pages: list[list[dict[str, Any]]] = []
    after = None
    while True:
        rows = copies_page(share=share, category="purchases", limit=size + 1, after=after, **filters)
        pages.append(rows[:size])
        if len(rows) <= size:
            return pages
        last = rows[size - 1]
        after = (cursor_decode_row(last), uuid.UUID(str(last["id"])))


def cursor_decode_row(row: dict[str, Any]) -> dt.datetime:
    from vendors.api.pagination import cursor_encode

    return cursor_decode(cursor_encode(row["created_at"], str(row["id"])))[0]


specs = st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(0, 60)), max_size=9)
filters = st.fixed_dictionaries(
    {},
    optional={
        "include_gifts": st.booleans(),
        "since": st.integers(0, 60),
        "until": st.integers(0, 60),
        "pick": st.lists(st.integers(0, 8), max_size=4),
    },
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=specs, chosen=filters, size=st.integers(1, 6))
def test_keyset_pages_of_copies_select_what_the_queryset_selects(
    alice: Any, specs: list[tuple[bool, bool, int]], chosen: dict[str, Any], size: int
) -> None:
    Purchase.objects.filter(owner_id=alice.pk).delete()
    Share.objects.filter(owner_id=alice.pk).delete()
    ids = _purchases(alice, specs)
    made: dict[str, Any] = {}  # what the share is made with (a grant's choices)
    read: dict[str, Any] = {}  # what a read asks of it (the API's filters)
    for name, value in chosen.items():
        if name == "pick":
            made["record_ids"] = tuple(ids[i] for i in value if i < len(ids))
        elif name == "since":
            made["since"] = timezone.now().date() - dt.timedelta(days=value)
        elif name == "until":
            read["until"] = timezone.now().date() - dt.timedelta(days=value)
        else:
            made[name] = value
    pages = _pages(_share(alice, **made), size, **read)
    expected = selectors.records_shared_qs(
        owner=alice,
        category="purchases",
        since=made.get("since"),
        until=read.get("until"),
        include_gifts=made.get("include_gifts", False),
        ids=list(made["record_ids"]) if "record_ids" in made else None,
    ).order_by(*ORDER)
    got = [str(row["id"]) for page in pages for row in page]
    assert got == [str(pk) for pk in expected.values_list("pk", flat=True)]
    assert all(len(page) <= size for page in pages)


def test_a_page_converts_values_as_the_orm_does(alice: Any) -> None:
    (purchase_id,) = _purchases(alice, [(True, False, 3)])
    share = _share(alice)
    (row,) = copies_page(share=share, category="purchases", limit=10)
    assert isinstance(row["id"], uuid.UUID) and str(row["id"]) == purchase_id
    # The paging key stays the database's text; it parses to the ORM's value.
    stored = Purchase.objects.get(pk=purchase_id).created_at
    assert isinstance(row["created_at"], str) and cursor_decode_row(row) == stored
    assert list(copies_open_json(share=share, category="purchases", rows=[row])) == [purchase_id]


def test_a_page_orders_by_the_time_not_its_text(alice: Any) -> None:
    # The paging key is read as text, but ORDER BY must sort the column itself (qualified), or
    # "10:00:00.5" would sort before "10:00:00" and PostgreSQL would leave the index unused.
    ids = _purchases(alice, [(True, False, 1)] * 3)
    base = timezone.now().replace(microsecond=0)
    moments = [base, base + dt.timedelta(microseconds=500_000), base + dt.timedelta(seconds=1)]
    for pk, moment in zip(ids, moments, strict=True):
        Purchase.objects.filter(pk=pk).update(created_at=moment)
    rows = copies_page(share=_share(alice), category="purchases", limit=10)
    assert [str(r["id"]) for r in rows] == ids[::-1]


def test_a_page_never_holds_another_persons_rows(alice: Any, bob: Any) -> None:
    _purchases(alice, [(True, False, 1)])
    (bobs,) = _purchases(bob, [(True, False, 1)])
    _share(bob)
    rows = copies_page(share=_share(alice), category="purchases", limit=10)
    assert bobs not in {str(r["id"]) for r in rows} and len(rows) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements and plans of PostgreSQL")
def test_a_page_read_is_planned_once_not_on_every_request(alice: Any) -> None:
    # The page statement is prepared by psycopg and PostgreSQL settles on one generic plan for
    # it, instead of planning the page anew on every request. The table looks like a real one:
    # many grants, a hundred copies each.
    _purchases(alice, [(True, False, 1)])
    share = _share(alice)
    others = [_share(alice) for _ in range(30)]
    now = timezone.now()
    SharedCopy.objects.bulk_create(
        (
            SharedCopy(
                share=target,
                category="purchases",
                record_id=uuid.uuid4(),
                payload=b"x",
                created_at=now,
                date=now.date(),
            )
            for target in [share, *others]
            for _ in range(100)
        ),
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE personal_data_sharedcopy")
    for _ in range(20):  # psycopg prepares it from the 6th; PostgreSQL plans 5 times, then decides
        assert len(copies_page(share=share, category="purchases", limit=51)) == 51
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ['%FROM "personal_data_sharedcopy" "c" WHERE%'],
        )
        ((generic, custom),) = cursor.fetchall()
    assert generic > custom


# Select: instances of several models from one literal statement.

JOIN = Select(
    Source(Grant, "g", tuple(f.attname for f in Grant._meta.concrete_fields)),
    Source(PersonKey, "k", ("person_id", "pseudonym_salt", "master_key_id")),
    tail="FROM {g} LEFT JOIN {k} ON k.person_id = g.person_id WHERE g.id = %s",
)


def _db(pk: uuid.UUID) -> Any:
    """A grant id as the database takes it (parameters of a Select are database values)."""
    return Grant._meta.pk.get_db_prep_value(pk, connection)  # type: ignore[union-attr]


def test_a_select_builds_complete_instances(alice: Any, flow: Any) -> None:
    flow.tokens()
    grant = Grant.objects.get(person=alice)
    found = JOIN.instances([_db(grant.pk)])
    assert found is not None
    got, key = found["g"], found["k"]
    assert isinstance(got, Grant) and isinstance(key, PersonKey)
    reference = Grant.objects.get(pk=grant.pk)
    for field in Grant._meta.concrete_fields:
        assert getattr(got, field.attname) == getattr(reference, field.attname), field.name
    assert bytes(key.pseudonym_salt) == bytes(PersonKey.objects.get(person=alice).pseudonym_salt)
    assert got._state.adding is False
    # Columns not loaded are deferred, as with QuerySet.only: reading one is a query of its own.
    assert "password_wrap" in key.get_deferred_fields()


def test_a_select_without_a_match_or_a_joined_row(alice: Any, flow: Any) -> None:
    assert JOIN.instances([_db(uuid.uuid4())]) is None
    flow.tokens()
    grant = Grant.objects.get(person=alice)
    PersonKey.objects.filter(person=alice).delete()
    found = JOIN.instances([_db(grant.pk)])
    assert found is not None and found["g"] is not None and found["k"] is None


def test_a_select_refuses_a_column_the_model_lacks() -> None:
    with pytest.raises(ValueError, match="no column"):
        Select(Source(Grant, "g", ("id", "nope")), tail="FROM {g}")
