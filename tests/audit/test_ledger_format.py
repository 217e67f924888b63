"""The leaf bytes of an entry are exactly canonical_json of its documented leaf object."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from audit import ledger
from audit.merkle import canonical_json

texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
moments = st.datetimes(
    min_value=dt.datetime(2000, 1, 1),  # noqa: DTZ001 (hypothesis wants naive bounds)
    max_value=dt.datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5, minutes=-30))]),
)
ints = st.integers(0, 2**53 - 1)
odd = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.dictionaries(texts, texts, max_size=2))


def _row(**fields: Any) -> tuple[Any, ...]:
    return tuple(fields[name] for name in ledger.ENTRY_COLUMNS)


rows = st.builds(
    _row,
    id=ints,
    created_at=moments,
    kind=texts,
    actor_type=texts,
    actor_id=texts,
    subject=texts,
    grant_id=texts,
    scopes=st.lists(texts, max_size=4),
    record_ids=st.lists(texts, max_size=4),
    record_count=ints,
    outcome=texts,
    reason=texts,
    request_id=texts,
)


@given(rows)
def test_leaf_data_is_canonical_json_of_the_leaf_document(row: tuple[Any, ...]) -> None:
    assert ledger.leaf_data(row) == canonical_json(ledger.leaf_document(row))


@given(rows, st.sampled_from(ledger.ENTRY_COLUMNS), odd)
def test_unusual_values_fall_back_to_canonical_json(row: tuple[Any, ...], column: str, value: Any) -> None:
    if column == "created_at":
        return
    changed = list(row)
    changed[ledger.ENTRY_COLUMNS.index(column)] = value
    assert ledger.leaf_data(changed) == canonical_json(ledger.leaf_document(changed))


def test_times_are_utc_with_microseconds_and_z() -> None:
    moment = dt.datetime(2026, 5, 6, 7, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert ledger.rfc3339(moment) == "2026-05-06T05:08:09.000000Z"
