"""Shares: what one reader may see, copied and sealed under a key of its own.

A share is described by plain filters (the store knows nothing of consent; consent keeps one
share per live grant). Making one needs the person's opened keys (they are signed in): every
record the filters cover is opened and its document sealed under the share key. The share key
is wrapped by a master key, so a reader (a vendor's token) can open the copies while the person
is away, and only the copies. Records the person adds, edits or hides update the copies of every
share that covers them (`shares_sync_record`); a vendor's write adds its copy too. Destroying a
share deletes its key and copies in the caller's transaction, so nothing of it can be opened
afterwards, not even from a backup taken later.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import connection, transaction

from accounts.models import User
from core import crypto
from core.keys import master_keyring
from core.statements import Select, Source
from personal_data import store
from personal_data.categories import RECORD_CATEGORIES, category_get
from personal_data.keys import StoreError
from personal_data.models import EncryptedRecord, Preferences, Share, SharedCopy
from personal_data.schemas import preferences_for_vendor

PREFERENCES = "preferences"


@dataclass(frozen=True)
class ShareFilters:
    """Which records a share covers: categories (record categories and "preferences"), gifts or
    not, the earliest date (records without a date are left out when set), and named records."""

    categories: tuple[str, ...]
    include_gifts: bool = False
    since: dt.date | None = None
    record_ids: tuple[str, ...] | None = None

    def covers(
        self, category: str, *, shared: bool, is_gift: bool, date: dt.date | None, record_id: str
    ) -> bool:
        if category not in self.categories or not shared or (is_gift and not self.include_gifts):
            return False
        if self.since is not None and (date is None or date < self.since):
            return False
        return self.record_ids is None or record_id in self.record_ids


def share_filters(share: Share) -> ShareFilters:
    ids = share.record_ids
    return ShareFilters(
        categories=tuple(share.categories),
        include_gifts=share.include_gifts,
        since=share.since,
        record_ids=None if ids is None else tuple(str(i) for i in ids),
    )


def _share_key(share: Share) -> bytes:
    try:
        return master_keyring().unwrap(
            share.master_key_id, bytes(share.wrapped_key), context=f"share/{share.pk}"
        )
    except crypto.CryptoError as exc:
        raise StoreError(f"the key of share {share.pk} cannot be unwrapped: {exc}") from exc


def _aad(share_id: uuid.UUID | str, category: str, record_id: uuid.UUID | str) -> bytes:
    return f"vrm/share-copy/v1|{share_id}|{category}|{record_id}".encode()


def _copy(
    share: Share,
    key: bytes,
    category: str,
    row: EncryptedRecord | None,
    doc: Mapping[str, Any],
    record_id: Any,
) -> SharedCopy:
    cat = RECORD_CATEGORIES.get(category)
    date = getattr(row, cat.date_field) if cat is not None and row is not None else None
    return SharedCopy(
        share=share,
        category=category,
        record_id=record_id,
        payload=store.seal_under(key, aad=_aad(share.pk, category, record_id), doc=doc),
        date=date,
        created_at=getattr(row, "created_at", None) or share.created_at,
        gtin_index=getattr(row, "gtin_index", None),
        is_gift=bool(getattr(row, "is_gift", False)),
    )


def _rows_covered(owner: User, category: str, filters: ShareFilters) -> Iterable[EncryptedRecord]:
    cat = category_get(category)
    rows = cat.model.objects.filter(owner_id=owner.pk, shared=True)
    if filters.since is not None:
        rows = rows.filter(**{f"{cat.date_field}__gte": filters.since})
    if not filters.include_gifts and "is_gift" in cat.flags:
        rows = rows.filter(**{"is_gift": False})
    if filters.record_ids is not None:
        rows = rows.filter(pk__in=list(filters.record_ids))
    return rows.iterator(chunk_size=1000)


def _fill(
    share: Share, owner: User, filters: ShareFilters, on_progress: Callable[[int, int], None] | None
) -> int:
    """Copy every record the filters cover into the share; return how many."""
    keys = store.owner_keys(owner)
    key = _share_key(share)
    categories = [c for c in filters.categories if c in RECORD_CATEGORIES]
    total = sum(
        category_get(c).model.objects.filter(owner_id=owner.pk, shared=True).count() for c in categories
    )
    done = 0
    if on_progress:
        on_progress(0, total)
    for category in categories:
        cat = RECORD_CATEGORIES[category]
        batch: list[SharedCopy] = []
        for row in _rows_covered(owner, category, filters):
            doc = store.row_open(cat, row, keys)
            batch.append(_copy(share, key, category, row, doc, row.pk))
            if len(batch) == 1000:
                SharedCopy.objects.bulk_create(batch)
                done += len(batch)
                batch = []
                if on_progress:
                    on_progress(done, total)
        SharedCopy.objects.bulk_create(batch)
        done += len(batch)
    if PREFERENCES in filters.categories:
        prefs = Preferences.objects.filter(owner_id=owner.pk).first()
        doc = store.preferences_open(keys, prefs) if prefs is not None else store.preferences_default()
        _copy(share, key, PREFERENCES, None, preferences_for_vendor(doc), owner.pk).save(force_insert=True)
    if on_progress:
        on_progress(total, total)
    return done


def _share_new(owner: User, filters: ShareFilters, *, filled: bool) -> Share:
    share = Share(
        owner_id=owner.pk,
        categories=list(filters.categories),
        include_gifts=filters.include_gifts,
        since=filters.since,
        record_ids=None if filters.record_ids is None else list(filters.record_ids),
        filled=filled,
    )
    share.master_key_id, share.wrapped_key = master_keyring().wrap(
        crypto.random_key(), context=f"share/{share.pk}"
    )
    share.save(force_insert=True)
    return share


@transaction.atomic
def share_create(
    *, owner: User, filters: ShareFilters, on_progress: Callable[[int, int], None] | None = None
) -> Share:
    """Make a share of the owner's records (they must be signed in) and copy what it covers."""
    store.owner_keys(owner)  # StoreLocked before anything is written
    share = _share_new(owner, filters, filled=True)
    _fill(share, owner, filters, on_progress)
    return share


@transaction.atomic
def share_create_empty(*, owner: User, filters: ShareFilters) -> Share:
    """Make a share without copies (the person is away); share_refill fills it at sign-in."""
    return _share_new(owner, filters, filled=False)


@transaction.atomic
def share_refill(
    *, share: Share, owner: User, filters: ShareFilters, on_progress: Callable[[int, int], None] | None = None
) -> Share:
    """Give a share new filters (the grant was amended): its copies are made anew under its key."""
    store.owner_keys(owner)
    SharedCopy.objects.filter(share=share).delete()
    share.categories, share.include_gifts, share.since = (
        list(filters.categories),
        filters.include_gifts,
        filters.since,
    )
    share.record_ids = None if filters.record_ids is None else list(filters.record_ids)
    share.filled = True
    # Never the key columns: the instance may predate a rotation that has since rewrapped its
    # key, and writing them back would put the key under a master key about to be dropped.
    share.save(update_fields=["categories", "include_gifts", "since", "record_ids", "filled"])
    _fill(share, owner, filters, on_progress)
    return share


@transaction.atomic
def share_narrow(*, share: Share, categories: Iterable[str]) -> Share:
    """Drop the copies of categories no longer covered (needs no key: copies are only deleted)."""
    keep = [c for c in share.categories if c in set(categories)]
    SharedCopy.objects.filter(share=share).exclude(category__in=keep).delete()
    share.categories = keep
    share.save(update_fields=["categories"])
    return share


def share_destroy(*, share: Share) -> None:
    """Delete the share's key and every copy (in the caller's transaction)."""
    Share.objects.filter(pk=share.pk).delete()


def shares_sync_record(
    *, owner_id: Any, category: str, row: EncryptedRecord, doc: Mapping[str, Any] | None
) -> None:
    """Bring every share of the owner in line with one record: copy it where covered, else drop it.

    `doc` is the record's document, or None when it was deleted.
    """
    shares_sync_records(owner_id=owner_id, category=category, rows=[(row, doc)])


def shares_sync_records(
    *, owner_id: Any, category: str, rows: list[tuple[EncryptedRecord, Mapping[str, Any] | None]]
) -> None:
    """shares_sync_record for many records of one category, reading the owner's shares once."""
    shares = [s for s in Share.objects.filter(owner_id=owner_id) if category in s.categories]
    if not shares or not rows:
        return
    cat = category_get(category)
    for share in shares:
        filters, key = share_filters(share), _share_key(share)
        SharedCopy.objects.filter(
            share=share, category=category, record_id__in=[r.pk for r, _ in rows]
        ).delete()
        copies = [
            _copy(share, key, category, row, doc, row.pk)
            for row, doc in rows
            if doc is not None
            and filters.covers(
                category,
                shared=bool(doc["shared"]),
                is_gift=bool(doc.get("is_gift", False)),
                date=getattr(row, cat.date_field),
                record_id=str(row.pk),
            )
        ]
        SharedCopy.objects.bulk_create(copies)


def shares_sync_preferences(*, owner_id: Any, doc: Mapping[str, Any]) -> None:
    for share in Share.objects.filter(owner_id=owner_id):
        if PREFERENCES not in share.categories:
            continue
        SharedCopy.objects.filter(share=share, category=PREFERENCES).delete()
        _copy(share, _share_key(share), PREFERENCES, None, preferences_for_vendor(doc), owner_id).save(
            force_insert=True
        )


def share_seal(*, share: Share, aad: bytes, doc: Any) -> bytes:
    """Seal any document under the share's key (a vendor's first response, kept for replays)."""
    return store.seal_under(_share_key(share), aad=aad, doc=doc)


def share_open(*, share: Share, aad: bytes, blob: bytes) -> Any:
    return store.open_under(_share_key(share), aad=aad, blob=blob)


# Reads.


@lru_cache(maxsize=64)
def _page_statement(*, since: bool, until: bool, gtin: bool, after: bool) -> Select:
    """One keyset page of a share's copies of one category: literal SQL, built once per shape."""
    where = ["c.share_id = %s", "c.category = %s"]
    if since:
        where.append("c.date >= %s")
    if until:
        where.append("c.date <= %s")
    if gtin:
        where.append("c.gtin_index = %s")
    if after:
        where.append("(c.created_at, c.record_id) < (%s, %s)")
    return Select(
        Source(SharedCopy, "c", ("record_id", "payload")),
        extra=["CAST(c.created_at AS TEXT)"],
        tail=f"FROM {{c}} WHERE {' AND '.join(where)} ORDER BY c.created_at DESC, c.record_id DESC LIMIT %s",
    )


def _prep(attname: str, value: object) -> object:
    field = next(f for f in SharedCopy._meta.concrete_fields if f.attname == attname)
    return field.get_db_prep_value(value, connection)


def copies_page(
    *,
    share: Share,
    category: str,
    limit: int,
    after: tuple[dt.datetime, uuid.UUID] | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    gtin: str | None = None,
) -> list[dict[str, Any]]:
    """One keyset page of the share's copies, newest stored first, as {"id", "created_at", "payload"}."""
    statement = _page_statement(
        since=since is not None, until=until is not None, gtin=bool(gtin), after=after is not None
    )
    params: list[object] = [_prep("share_id", share.pk), category]
    params += [_prep("date", day) for day in (since, until) if day is not None]
    if gtin:
        params.append(store.blind_index("gtin", gtin))
    if after is not None:
        params += [_prep("created_at", after[0]), _prep("record_id", after[1])]
    params.append(limit)
    return [
        {"id": record_id, "payload": payload, "created_at": created_at}
        for record_id, payload, created_at in statement.rows(params)
    ]


def copies_open_json(*, share: Share, category: str, rows: list[dict[str, Any]]) -> dict[str, bytes]:
    """Open a page of copies into {id: the record's JSON document}."""
    unseal = crypto.unsealer(_share_key(share))
    out = {}
    for row in rows:
        record_id = str(row["id"])
        try:
            out[record_id] = unseal(bytes(row["payload"]), _aad(share.pk, category, record_id))
        except crypto.CryptoError as exc:
            raise StoreError(f"copy of {record_id} in share {share.pk} cannot be opened: {exc}") from exc
    return out


def copy_get(
    *, share: Share, category: str, record_id: str, since: dt.date | None = None
) -> dict[str, Any] | None:
    """One copy's document, or None when the share holds no such record (within `since`)."""
    copies = SharedCopy.objects.filter(share=share, category=category, record_id=record_id)
    if since is not None:
        copies = copies.filter(date__gte=since)
    copy = copies.only("payload", "record_id").first()
    if copy is None:
        return None
    document: dict[str, Any] = store.open_under(
        _share_key(share), aad=_aad(share.pk, category, record_id), blob=bytes(copy.payload)
    )
    return document


def share_counts(*, share: Share) -> dict[str, int]:
    """How many copies the share holds per category (what its reader can see now)."""
    counts: dict[str, int] = {}
    for category in SharedCopy.objects.filter(share=share).values_list("category", flat=True):
        counts[category] = counts.get(category, 0) + 1
    return counts
