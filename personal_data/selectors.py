"""Reads from the person's store.

The store knows nothing of consent: callers pass plain filters (since, include_gifts, ...), and
the API turns a grant into those filters. Every single-record read raises Http404 when the
caller may not see the record, so "not yours" and "does not exist" look the same.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from core.statements import Condition, Rows
from personal_data import store
from personal_data.categories import RECORD_CATEGORIES, category_get
from personal_data.models import EncryptedRecord, Preferences
from personal_data.store import Document


def _uuid_or_404(record_id: Any) -> uuid.UUID:
    try:
        return record_id if isinstance(record_id, uuid.UUID) else uuid.UUID(str(record_id))
    except ValueError:
        raise Http404("No such record.") from None


def record_row_for_owner(*, owner: Any, category: str, record_id: Any, lock: bool = False) -> EncryptedRecord:
    """Return the owner's row or raise Http404 (also for other people's and malformed ids)."""
    cat = category_get(category)
    rows = cat.model.objects.filter(owner_id=owner.pk, pk=_uuid_or_404(record_id))
    row = (rows.select_for_update() if lock else rows).first()
    if row is None:
        raise Http404("No such record.")
    return row


def record_get_for_owner(*, owner: Any, category: str, record_id: Any) -> Document:
    """Return one of the owner's own records, decrypted, or raise Http404."""
    cat = category_get(category)
    row = record_row_for_owner(owner=owner, category=category, record_id=record_id)
    return store.rows_open(cat, [row], owner)[0]


def records_for_owner_qs(
    *,
    owner: Any,
    category: str,
    since: dt.date | None = None,
    until: dt.date | None = None,
    shared: bool | None = None,
    is_gift: bool | None = None,
) -> QuerySet[EncryptedRecord]:
    cat = category_get(category)
    rows = cat.model.objects.filter(owner_id=owner.pk)
    if since:
        rows = rows.filter(**{f"{cat.date_field}__gte": since})
    if until:
        rows = rows.filter(**{f"{cat.date_field}__lte": until})
    if shared is not None:
        rows = rows.filter(shared=shared)
    if is_gift is not None and "is_gift" in cat.flags:
        rows = rows.filter(is_gift=is_gift)
    return rows.order_by(f"-{cat.date_field}", "-created_at", "pk")


def records_for_owner(*, owner: Any, category: str, **filters: Any) -> list[Document]:
    """Return all of the owner's records of a category, newest first, decrypted."""
    return store.rows_open(
        category_get(category),
        records_for_owner_qs(owner=owner, category=category, **filters),
        owner,
    )


def records_shared_rows(
    *,
    owner: Any,
    category: str,
    since: dt.date | None = None,
    until: dt.date | None = None,
    include_gifts: bool = False,
    ids: list[str] | None = None,
    gtin: str | None = None,
) -> Rows:
    """Rows a vendor may be shown: shared ones, gifts only if asked, within the window.

    `ids` limits the set to named records (one-off grants); `gtin` matches through the blind index.
    Rows are mappings of the columns a document opens from, plus `created_at` (the API's paging
    key, converted only where the cursor reads it), read without the ORM's query compiler or a
    model instance per row (core.statements): the vendor API's hot path. `.queryset()` gives
    the same set as a QuerySet of model instances (counts, single records).
    """
    cat = category_get(category)
    conditions = [Condition("owner_id", "exact", owner.pk), Condition("shared", "exact", True)]
    if since is not None:
        conditions.append(Condition(cat.date_field, "gte", since))
    if until is not None:
        conditions.append(Condition(cat.date_field, "lte", until))
    if not include_gifts and "is_gift" in cat.flags:
        conditions.append(Condition("is_gift", "exact", False))
    if ids is not None:
        conditions.append(Condition("id", "in", ids))
    if gtin:
        conditions.append(Condition("gtin_index", "exact", store.blind_index("gtin", gtin)))
    return Rows(
        cat.model,
        columns=(*store.open_columns(cat), "created_at"),
        conditions=tuple(conditions),
        lazy=("created_at",),
    )


def records_open_json(*, owner: Any, category: str, rows: Any) -> dict[str, bytes]:
    """Decrypt rows of one owner (a page of records_shared_rows) into {id: JSON document}."""
    return store.rows_open_json(category_get(category), rows, owner)


def record_get_shared(
    *,
    owner: Any,
    category: str,
    record_id: Any,
    since: dt.date | None = None,
    include_gifts: bool = False,
    ids: list[str] | None = None,
) -> Document:
    """Return one shared record or raise Http404, exactly as for a record that does not exist."""
    cat = category_get(category)
    rows = records_shared_rows(
        owner=owner, category=category, since=since, include_gifts=include_gifts, ids=ids
    ).queryset()
    row = rows.filter(pk=_uuid_or_404(record_id)).first()
    if row is None:
        raise Http404("No such record.")
    return store.rows_open(cat, [row], owner)[0]


def purchases_owns(
    *,
    owner: Any,
    gtin: str,
    since: dt.date | None = None,
    include_gifts: bool = False,
    ids: list[str] | None = None,
) -> bool:
    """Answer whether the owner has a shared purchase of gtin, through the blind index only."""
    rows = records_shared_rows(
        owner=owner, category="purchases", since=since, include_gifts=include_gifts, ids=ids, gtin=gtin
    )
    return rows.queryset().exists()


def category_counts(*, owner: Any) -> dict[str, int]:
    """Return how many records the owner keeps in each category."""
    return {
        name: cat.model.objects.filter(owner_id=owner.pk).count() for name, cat in RECORD_CATEGORIES.items()
    }


def preferences_get(*, owner: Any) -> Document:
    """Return the owner's preferences (the empty document if they never set any)."""
    row = Preferences.objects.filter(owner_id=owner.pk).first()
    if row is None:
        return store.preferences_default()
    return store.preferences_open(store.owner_data_key(owner), row)


def records_matching_codes(
    *,
    gtins: list[str],
    lots: list[str] | None = None,
    purchased_from: dt.date | None = None,
    purchased_to: dt.date | None = None,
) -> list[tuple[str, Any, str]]:
    """Find everyone's purchases and appliances of these products through the blind indexes.

    Nothing is decrypted; gifts and hidden records are included (a person should know). Lots
    narrow purchases (appliances carry no lot, so a recall of named lots does not match them).
    Return (category, owner id, record id) triples.
    """
    gtin_keys = [store.blind_index("gtin", g) for g in gtins]
    lot_keys = [store.blind_index("lot", lot) for lot in lots or []]
    matches: list[tuple[str, Any, str]] = []
    for name in ("purchases", "appliances"):
        if name == "appliances" and lot_keys:
            continue
        cat = RECORD_CATEGORIES[name]
        rows = cat.model.objects.filter(gtin_index__in=gtin_keys)
        if lot_keys:
            rows = rows.filter(lot_index__in=lot_keys)
        if purchased_from:
            rows = rows.filter(purchased_on__gte=purchased_from)
        if purchased_to:
            rows = rows.filter(purchased_on__lte=purchased_to)
        matches.extend(
            (name, owner_id, str(pk)) for owner_id, pk in rows.values_list("owner_id", "pk").iterator()
        )
    return matches
