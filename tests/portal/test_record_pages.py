"""The person's lists read one page: keyset positions, clear filters in SQL, streamed search."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personal_data import selectors, store
from personal_data.models import ClosetItem, Purchase
from personal_data.selectors import Position, records_page_for_owner
from personal_data.services import record_create
from tests.conftest import purchase_data

TODAY = dt.date(2026, 6, 1)
T0 = timezone.now().replace(microsecond=0) - dt.timedelta(days=1)


def _closet(owner: Any, specs: list[tuple[int | None, int]]) -> list[tuple[dt.date | None, dt.datetime, str]]:
    """Closet items with the given (days before TODAY or undated, seconds after T0) positions."""
    made = []
    for n, (days, seconds) in enumerate(specs):
        date = None if days is None else TODAY - dt.timedelta(days=days)
        doc = record_create(
            owner=owner,
            category="closet",
            data={"kind": "top", "name": f"Item {n}", "acquired_on": date.isoformat() if date else None},
        )
        created = T0 + dt.timedelta(seconds=seconds)
        ClosetItem.objects.filter(pk=doc["id"]).update(created_at=created)
        made.append((date, created, doc["id"]))
    return made


def _expected(made: list[tuple[dt.date | None, dt.datetime, str]]) -> list[str]:
    """The lists' order, worked out in Python: undated first, then by date, time and id, newest first."""
    return [
        row_id
        for date, created, row_id in sorted(
            made, key=lambda m: (m[0] is None, m[0] or dt.date.min, m[1], m[2]), reverse=True
        )
    ]


def _walk(owner: Any, size: int, **kwargs: Any) -> tuple[list[list[str]], list[list[str]]]:
    """Every page going older from the newest, then every page going newer back from the oldest."""
    down: list[list[str]] = []
    page = records_page_for_owner(owner=owner, category="closet", size=size, **kwargs)
    while True:
        down.append([d["id"] for d in page.documents])
        if page.older is None:
            break
        page = records_page_for_owner(owner=owner, category="closet", size=size, after=page.older, **kwargs)
    up = [down[-1]]
    while page.newer is not None:
        page = records_page_for_owner(owner=owner, category="closet", size=size, before=page.newer, **kwargs)
        up.append([d["id"] for d in page.documents])
    return down, up


positions = st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 4)), st.integers(0, 3)), max_size=14)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=positions, size=st.integers(1, 5))
def test_walking_the_pages_either_way_visits_every_record_once_in_order(
    alice: Any, specs: list[tuple[int | None, int]], size: int
) -> None:
    ClosetItem.objects.filter(owner_id=alice.pk).delete()
    made = _closet(alice, specs)
    down, up = _walk(alice, size)
    assert [row_id for page in down for row_id in page] == _expected(made)
    assert all(len(page) == size for page in down[:-1])
    # Back up from the oldest page: whole pages of neighbours, every record seen, ending at the newest.
    order = _expected(made)
    assert up[-1] == down[0]
    assert all(len(page) == min(size, len(order)) for page in up[1:])
    for page in up:
        start = order.index(page[0]) if page else 0
        assert page == order[start : start + len(page)]
    assert set(sum(up, [])) == set(order)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=positions, size=st.integers(1, 4), budget=st.integers(2, 6))
def test_a_search_pages_through_exactly_the_matching_records(
    alice: Any, specs: list[tuple[int | None, int]], size: int, budget: int, monkeypatch: Any
) -> None:
    monkeypatch.setattr(selectors, "SEARCH_BUDGET", budget)
    ClosetItem.objects.filter(owner_id=alice.pk).delete()
    made = _closet(alice, specs)
    wanted = {row_id for n, (_, _, row_id) in enumerate(made) if n % 3 == 0}
    down, _ = _walk(alice, size, match=lambda doc: doc["id"] in wanted)
    got = [row_id for page in down for row_id in page]
    assert got == [row_id for row_id in _expected(made) if row_id in wanted]


def test_a_page_opens_only_its_own_records(client: Client, alice: Any, monkeypatch: Any) -> None:
    for n in range(80):
        record_create(owner=alice, category="purchases", data=purchase_data(product_name=f"Item {n:02d}"))
    opened: list[Any] = []
    real_open = store.row_open
    monkeypatch.setattr(store, "row_open", lambda *a: opened.append(a) or real_open(*a))
    client.force_login(alice)
    first = client.get("/data/purchases/")
    assert first.status_code == 200 and "80 records" in first.content.decode()
    assert len(opened) == 26  # the page and one more, to know there is an older page
    opened.clear()
    older = re.search(r'href="\?after=([^"]+)" rel="next"', first.content.decode())
    assert older
    second = client.get(f"/data/purchases/?after={older.group(1)}")
    assert second.status_code == 200 and len(opened) == 26


def test_clear_filters_page_in_the_database(client: Client, alice: Any) -> None:
    for n in range(30):
        record_create(
            owner=alice,
            category="purchases",
            data=purchase_data(product_name=f"Item {n:02d}", is_gift=n < 27, shared=n != 4),
        )
    client.force_login(alice)
    gifts = client.get("/data/purchases/?gift=yes").content.decode()
    assert "27 records match." in gifts and gifts.count("Item ") >= 25 and 'rel="next"' in gifts
    older = re.search(r'href="\?gift=yes&amp;after=([^"]+)" rel="next"', gifts)
    assert older, "the next page keeps the filter"
    rest = client.get(f"/data/purchases/?gift=yes&after={older.group(1)}").content.decode()
    assert rest.count('<tr role="row">') - 1 == 2
    assert "1 record matches." in client.get("/data/purchases/?shared=no").content.decode()


def test_a_search_says_how_far_it_looked_and_goes_on(client: Client, alice: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(selectors, "SEARCH_BUDGET", 20)
    for n in range(50):
        record_create(
            owner=alice,
            category="purchases",
            data=purchase_data(
                product_name="Needle" if n == 0 else f"Hay {n}",
                purchased_on=(TODAY - dt.timedelta(days=50 - n)).isoformat(),
            ),
        )
    client.force_login(alice)
    first = client.get("/data/purchases/?q=needle").content.decode()
    assert "Needle" not in first and "Searched records back to" in first
    assert "No purchases match these filters among the records searched so far" in first
    link = re.search(r'href="\?q=needle&amp;after=([^"]+)" rel="next">Search older records', first)
    assert link
    second = client.get(f"/data/purchases/?q=needle&after={link.group(1)}").content.decode()
    third_link = re.search(r'href="\?q=needle&amp;after=([^"]+)" rel="next"', second)
    third = second
    if third_link:
        third = client.get(f"/data/purchases/?q=needle&after={third_link.group(1)}").content.decode()
    assert "Needle" in third


@pytest.mark.parametrize(
    "token",
    [
        "",
        "x",
        "~~",
        "2026-01-01~now~1",
        "~2026-01-01T00:00:00~not-a-uuid",
        "9" * 500,
        "2026-13-01~2026-01-01T00:00:00+00:00~" + "0" * 32,
    ],
)
def test_a_malformed_position_shows_the_newest_page(client: Client, alice: Any, token: str) -> None:
    record_create(owner=alice, category="purchases", data=purchase_data())
    client.force_login(alice)
    for name in ("after", "before"):
        response = client.get("/data/purchases/", {name: token})
        assert response.status_code == 200 and "Crunchy Peanut Butter" in response.content.decode()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.text(max_size=200))
def test_no_position_token_breaks_the_page(client: Client, alice: Any, token: str) -> None:
    client.force_login(alice)
    response = client.get("/data/closet/", {"after": token, "before": token})
    # 400 only for what no page takes (a NUL character, refused before any view).
    assert response.status_code == (400 if "\x00" in token else 200)


def test_a_position_from_another_persons_list_shows_only_your_own(
    client: Client, alice: Any, bob: Any
) -> None:
    mine = record_create(owner=alice, category="purchases", data=purchase_data(product_name="Mine"))
    theirs = record_create(owner=bob, category="purchases", data=purchase_data(product_name="Theirs"))
    row = Purchase.objects.get(pk=theirs["id"])
    token = Position(row.purchased_on, row.created_at, row.id).token()
    client.force_login(alice)
    for name in ("after", "before"):
        page = client.get("/data/purchases/", {name: token}).content.decode()
        assert "Theirs" not in page
    assert mine["id"]


def test_an_empty_list_invites_a_first_record(client: Client, alice: Any) -> None:
    client.force_login(alice)
    page = client.get("/data/purchases/").content.decode()
    assert "You have not kept any purchases yet" in page and "match" not in page
    filtered = client.get("/data/purchases/?merchant=nobody").content.decode()
    assert "No purchases match these filters" in filtered
