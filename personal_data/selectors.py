"""Reads from the person's store.

The store knows nothing of consent: callers pass plain filters (since, include_gifts, ...), and
the API turns a grant into those filters. Every single-record read raises Http404 when the
caller may not see the record, so "not yours" and "does not exist" look the same.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Min, OrderBy, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from core.ids import uuid_or_404
from core.keys import master_keyring
from personal_data import store
from personal_data.categories import RECORD_CATEGORIES, Category, category_get
from personal_data.keys import Keys, is_legacy
from personal_data.models import (
    AwaitingRewrap,
    EncryptedRecord,
    PersonKey,
    Preferences,
    RetiredStore,
    Share,
)
from personal_data.store import Document


def _uuid_or_404(record_id: uuid.UUID | str) -> uuid.UUID:
    return uuid_or_404(record_id, message="No such record.")


def record_row_for_owner(
    *, owner: User, category: str, record_id: uuid.UUID | str, lock: bool = False
) -> EncryptedRecord:
    """Return the owner's row or raise Http404 (also for other people's and malformed ids)."""
    cat = category_get(category)
    rows = cat.model.objects.filter(owner_id=owner.pk, pk=_uuid_or_404(record_id))
    row = (rows.select_for_update() if lock else rows).first()
    if row is None:
        raise Http404("No such record.")
    return row


def record_get_for_owner(*, owner: User, category: str, record_id: uuid.UUID | str) -> Document:
    """Return one of the owner's own records, decrypted, or raise Http404."""
    cat = category_get(category)
    row = record_row_for_owner(owner=owner, category=category, record_id=record_id)
    return store.rows_open(cat, [row], owner)[0]


def records_for_owner_qs(
    *,
    owner: User,
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
        rows = rows.filter(**{"is_gift": is_gift})
    return rows.order_by(*_newest_first(cat))


def _newest_first(cat: Category) -> tuple[OrderBy, ...]:
    """The owner's lists' order: by the record's date (undated first), then newest stored.

    Explicit about NULLs so PostgreSQL and SQLite agree; the `<category>_owner_list` index has
    the same shape, so a page is an index range scan however many records the person has.
    """
    return (
        F(cat.date_field).desc(nulls_first=True),
        F("created_at").desc(),
        F("id").desc(),
    )


@dataclass(frozen=True)
class Position:
    """Where a list page starts or ends: one record's place in the list's order."""

    date: dt.date | None
    created_at: dt.datetime
    id: uuid.UUID

    def token(self) -> str:
        date = self.date.isoformat() if self.date else ""
        return f"{date}~{self.created_at.isoformat()}~{self.id}"

    @classmethod
    def parse(cls, token: str | None) -> Position | None:
        """Read a token from a page's link; anything malformed reads as "no position"."""
        if not token or len(token) > 120:
            return None
        try:
            date, created, row_id = token.split("~")
            created_at = dt.datetime.fromisoformat(created)
            if created_at.tzinfo is None:
                return None
            return cls(dt.date.fromisoformat(date) if date else None, created_at, uuid.UUID(row_id))
        except ValueError:
            return None


def _beyond(cat: Category, at: Position, *, older: bool) -> Q:
    """The records after `at` in the list's order (older=True), or before it (older=False)."""
    date = cat.date_field
    side = "lt" if older else "gt"
    tie = Q(**{f"created_at__{side}": at.created_at}) | Q(created_at=at.created_at, **{f"id__{side}": at.id})
    if at.date is None:
        same_date = Q(**{f"{date}__isnull": True})
        # Undated records come first: everything dated is older than any of them.
        other = Q(**{f"{date}__isnull": False}) if older else Q(pk__in=[])
    else:
        same_date = Q(**{date: at.date})
        other = (
            Q(**{f"{date}__lt": at.date})
            if older
            else Q(**{f"{date}__gt": at.date}) | Q(**{f"{date}__isnull": True})
        )
    return other | (same_date & tie)


@dataclass
class RecordPage:
    """One page of a person's list: documents, and the positions to link to either side."""

    documents: list[Document]
    newer: Position | None
    older: Position | None
    # When a text search stopped at its scan budget before filling the page.
    searched_to: Position | None = None
    # The number of records the clear filters select (None while a text search runs).
    total: int | None = None


SEARCH_BUDGET = 2000


def records_page_for_owner(
    *,
    owner: User,
    category: str,
    size: int,
    after: Position | None = None,
    before: Position | None = None,
    match: Callable[[Document], bool] | None = None,
    **filters: Any,
) -> RecordPage:
    """One page of the owner's records, newest first, opening only what the page needs.

    Dates, `shared` and the clear flags filter in SQL and the page is a keyset range (`after`
    a position for older records, `before` one for newer): one page is read and opened,
    whatever the store's size. A `match` on the content (text search) opens records in
    growing chunks in the list's order and stops when the page is full, or after
    SEARCH_BUDGET records, when `searched_to` says where to go on.
    """
    cat = category_get(category)
    base = records_for_owner_qs(owner=owner, category=category, **filters)
    older = before is None
    rows = base
    if after is not None and older:
        rows = rows.filter(_beyond(cat, after, older=True))
    if before is not None:
        rows = rows.filter(_beyond(cat, before, older=False)).order_by(
            F(cat.date_field).asc(nulls_last=True), F("created_at").asc(), F("id").asc()
        )
    columns = (*store.open_columns(cat), cat.date_field, "created_at")
    keys: Keys | None = None
    found: list[tuple[Position, Document]] = []
    scanned, chunk = 0, size + 1
    last: Position | None = None
    searched_to: Position | None = None
    while True:
        window = rows if last is None else rows.filter(_beyond(cat, last, older=older))
        batch = list(window.values(*columns)[:chunk])
        for row in batch:
            last = Position(row[cat.date_field], row["created_at"], row["id"])
            keys = keys or store.owner_keys(owner)
            doc = store.row_open(cat, row, keys)
            if match is None or match(doc):
                found.append((last, doc))
                if len(found) > size:
                    break
        scanned += len(batch)
        if len(batch) < chunk or len(found) > size:
            break
        if scanned >= SEARCH_BUDGET:
            searched_to = last
            break
        chunk = min(chunk * 4, SEARCH_BUDGET - scanned)
    more = len(found) > size
    found = found[:size]
    if older:
        newer_link = found[0][0] if after is not None and found else after
        older_link = found[-1][0] if more else searched_to
    else:
        if not more and searched_to is None:
            # Fewer newer records than a page: the newest page, full.
            return records_page_for_owner(owner=owner, category=category, size=size, match=match, **filters)
        found.reverse()
        newer_link = found[0][0] if more else searched_to
        older_link = found[-1][0] if found else before
    return RecordPage(
        documents=[doc for _, doc in found],
        newer=newer_link,
        older=older_link,
        searched_to=searched_to,
        total=base.count() if match is None else None,
    )


def records_for_owner(*, owner: User, category: str, **filters: Any) -> list[Document]:
    """Return all of the owner's records of a category, newest first, decrypted."""
    return store.rows_open(
        category_get(category),
        records_for_owner_qs(owner=owner, category=category, **filters),
        owner,
    )


def records_shared_qs(
    *,
    owner: User,
    category: str,
    since: dt.date | None = None,
    until: dt.date | None = None,
    include_gifts: bool = False,
    ids: list[str] | None = None,
    gtin: str | None = None,
) -> QuerySet[EncryptedRecord]:
    """Records a vendor may be shown: shared ones, gifts only if asked, within the window.

    `ids` limits the set to named records (one-off grants); `gtin` matches through the blind
    index. Vendor reads open a grant's copies of this set instead (personal_data.shares).
    """
    cat = category_get(category)
    rows = cat.model.objects.filter(owner_id=owner.pk, shared=True)
    if since is not None:
        rows = rows.filter(**{f"{cat.date_field}__gte": since})
    if until is not None:
        rows = rows.filter(**{f"{cat.date_field}__lte": until})
    # Fields of some categories only (mypy sees the abstract record): passed by name.
    if not include_gifts and "is_gift" in cat.flags:
        rows = rows.filter(**{"is_gift": False})
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    if gtin:
        rows = rows.filter(**{"gtin_index": store.blind_index("gtin", gtin)})
    return rows


def purchases_owns(
    *,
    owner: User,
    gtin: str,
    since: dt.date | None = None,
    include_gifts: bool = False,
    ids: list[str] | None = None,
) -> bool:
    """Answer whether the owner has a shared purchase of gtin, through the blind index only."""
    rows = records_shared_qs(
        owner=owner, category="purchases", since=since, include_gifts=include_gifts, ids=ids, gtin=gtin
    )
    return rows.exists()


def category_counts(*, owner: User) -> dict[str, int]:
    """Return how many records the owner keeps in each category."""
    return {
        name: cat.model.objects.filter(owner_id=owner.pk).count() for name, cat in RECORD_CATEGORIES.items()
    }


def preferences_get(*, owner: User) -> Document:
    """Return the owner's preferences (the empty document if they never set any)."""
    row = Preferences.objects.filter(owner_id=owner.pk).first()
    if row is None:
        return store.preferences_default()
    return store.preferences_open(store.owner_keys(owner), row)


def contact_preferences(*, owner: User) -> dict[str, Any]:
    """The person's contact choices, readable while they are away (a clear column)."""
    row = Preferences.objects.filter(owner_id=owner.pk).only("contact").first()
    if row is None or not row.contact:
        return dict(store.preferences_default().get("contact") or {})
    return dict(row.contact)


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
        # Fields of purchases and appliances only (mypy sees the abstract record): passed by name.
        lookups: dict[str, object] = {"gtin_index__in": gtin_keys}
        if lot_keys:
            lookups["lot_index__in"] = lot_keys
        if purchased_from:
            lookups["purchased_on__gte"] = purchased_from
        if purchased_to:
            lookups["purchased_on__lte"] = purchased_to
        rows = cat.model.objects.filter(**lookups)
        matches.extend(
            (name, owner_id, str(pk)) for owner_id, pk in rows.values_list("owner_id", "pk").iterator()
        )
    return matches


def key_status() -> dict[str, Any]:
    """Who holds which key: how many people hold their own key, how many are still wrapped by a
    master key (accounts not signed in since person-held keys), how many grant keys are live,
    each master key's share of both, and how many records wait, sealed to a person, for them.

    Counts only: nothing here opens a key or reads content.
    """
    ring = master_keyring()
    people = User.objects.filter(role=User.Role.PERSON)
    keys = PersonKey.objects.all()
    legacy = keys.filter(password_wrap__isnull=True).exclude(master_key_id="")
    per_key: dict[str, dict[str, Any]] = {
        key_id: {"newest": key_id == ring.newest_id, "in_ring": True, "grant_keys": 0, "people": 0}
        for key_id, _ in ring.keys
    }
    counted = (
        ("grant_keys", Share.objects.values_list("master_key_id", flat=True)),
        ("people", legacy.values_list("master_key_id", flat=True)),
    )
    for what, key_ids in counted:
        for key_id in key_ids:
            entry = per_key.setdefault(
                key_id, {"newest": False, "in_ring": False, "grant_keys": 0, "people": 0}
            )
            entry[what] += 1
    waiting = AwaitingRewrap.objects.all()
    retired = RetiredStore.objects.all()
    next_destruction = retired.aggregate(at=Min("destroy_after"))["at"]
    return {
        "people": people.count(),
        "people_holding_their_key": keys.filter(master_key_id="").count(),
        "people_wrapped_by_master_key": legacy.count(),
        "people_without_key": people.filter(data_key__isnull=True).count(),
        "grant_keys_live": Share.objects.count(),
        "grant_keys_unfilled": Share.objects.filter(filled=False).count(),
        "records_awaiting_rewrap": waiting.count(),
        "people_with_records_awaiting_rewrap": waiting.values("owner_id").distinct().count(),
        "stores_set_aside": retired.count(),
        "records_set_aside": retired.aggregate(n=Sum("record_count"))["n"] or 0,
        "next_destruction": next_destruction.isoformat() if next_destruction else None,
        "master_keys": per_key,
    }


def person_key_for_sign_in(*, username: str) -> PersonKey | None:
    """The key row of the active person a sign-in names (found as the login finds accounts)."""
    if not isinstance(username, str) or len(username) > 254:
        return None
    return (
        PersonKey.objects.filter(person__in=User.objects.with_email(username), person__is_active=True)
        .filter(person__role=User.Role.PERSON)
        .first()
    )


def store_needs_recovery_code(*, person: User) -> bool:
    """Whether only the password or the recovery code opens the person's store (a new password
    alone cannot); false for an account still wrapped by a master key, or without a store."""
    person_key = store.person_key_get(person.pk)
    return person_key is not None and not is_legacy(person_key)


def retired_stores_for_person(*, person: User) -> list[RetiredStore]:
    """The person's stores set aside after a reset and still kept, soonest destroyed first."""
    return list(
        RetiredStore.objects.filter(owner_id=person.pk, destroy_after__gt=timezone.now()).order_by(
            "destroy_after"
        )
    )
