"""Writes to the person's store. Every function validates first and writes nothing on error."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.db import connection, transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from audit.services import ledger_append
from core import crypto
from core.ids import uuid_or_404
from core.keys import master_keyring
from personal_data import store
from personal_data.categories import RECORD_CATEGORIES, category_get
from personal_data.keys import (
    Keys,
    StoreLocked,
    WrongSecret,
    keys_hold,
    keys_recover,
    keys_replace,
    keys_unlock,
    person_key_new,
    recovery_rewrap,
    wrap_with_password,
)
from personal_data.models import (
    AwaitingRewrap,
    EncryptedRecord,
    PendingImport,
    PersonKey,
    Preferences,
    Reminder,
    ReminderDue,
    ReminderKind,
    RetiredRecord,
    RetiredStore,
    Share,
    SharedCopy,
)
from personal_data.pseudonyms import ledger_pseudonym
from personal_data.schemas import PreferencesSchema
from personal_data.selectors import record_row_for_owner
from personal_data.shares import (
    PREFERENCES,
    shares_sync_preferences,
    shares_sync_record,
    shares_sync_records,
)
from personal_data.store import Document
from personal_data.transfer import ImportPlan


@transaction.atomic
def person_store_open(*, person: User, password: str | None) -> str | None:
    """Give a person their own keys, once, and hold them open for this request.

    Return the recovery code to show the person once (None if the store already existed).
    Without a password (bulk seeding) the data key is wrapped by the recovery code alone.
    """
    if store.person_key_get(person.pk) is not None:
        return None
    person_key, code, keys = person_key_new(person.pk, password=password)
    person_key.save(force_insert=True)
    keys_hold(person, keys)
    return code


@transaction.atomic
def person_unlock(*, person: User, password: str) -> str | None:
    """Open the person's keys with their password (at sign-in) and hold them for this request.

    An account made before person-held keys moves to them now: its data key is wrapped by the
    password and a new recovery code, the master-key wrap is dropped, and the code is returned
    to be shown once. Records a vendor wrote while the person was away move under the data key.
    Raise WrongSecret if the password does not open the store.
    """
    person_key = PersonKey.objects.select_for_update().filter(person_id=person.pk).first()
    if person_key is None:  # a person's account made without a store gets one now
        return person_store_open(person=person, password=password)
    keys, code = keys_unlock(person_key, password)
    if code is not None:
        person_key.save()
        _entry_by_person(
            person,
            "key.rotated",
            reason="data key moved from the master key to the person: password and recovery code",
        )
    store.person_key_forget(person)
    keys_hold(person, keys)
    records_settle(owner=person)
    if person_key.due_dates_checked_at is None:
        due_dates_backfill(owner=person)
    return code


@transaction.atomic
def person_recover(*, person: User, code: str, new_password: str) -> str:
    """Open the store with the recovery code, wrap it under a new password and a new code.

    Return the new recovery code (the old one no longer opens anything). Raise WrongSecret.
    """
    person_key = PersonKey.objects.select_for_update().get(person_id=person.pk)
    keys = keys_recover(person_key, code)
    wrap_with_password(person_key, keys.data, new_password)
    new_code = recovery_rewrap(person_key, keys.data)
    person_key.save()
    store.person_key_forget(person)
    keys_hold(person, keys)
    return new_code


@transaction.atomic
def person_password_rewrap(*, person: User, new_password: str) -> None:
    """Wrap the person's open data key under a new password (a password change while signed in)."""
    keys = store.owner_keys(person)
    person_key = PersonKey.objects.select_for_update().get(person_id=person.pk)
    wrap_with_password(person_key, keys.data, new_password)
    person_key.save()


@transaction.atomic
def records_settle(*, owner: User) -> int:
    """Move records sealed to the owner's public key under their data key; return how many."""
    keys = store.owner_keys(owner)
    waiting = list(AwaitingRewrap.objects.select_for_update().filter(owner_id=owner.pk))
    for item in waiting:
        cat = category_get(item.category)
        row = cat.model.objects.filter(owner_id=owner.pk, pk=item.record_id).first()
        if row is not None and store.row_sealed_to_person(row):
            doc = store.row_open(cat, row, keys)
            store.row_fill(cat, row, keys.data, {k: v for k, v in doc.items() if k not in store.META_FIELDS})
            row.save(update_fields=["payload"])
            _due_date_sync(
                owner_id=owner.pk, category=cat.name, record_id=row.pk, doc=store.row_open(cat, row, keys)
            )
        item.delete()
    return len(waiting)


# The date in a record that a reminder is about, by category.
DUE_DATE_FIELDS = {
    "prescriptions": (ReminderKind.REFILL, "next_refill_on"),
    "appliances": (ReminderKind.WARRANTY, "warranty_until"),
}


def _due_date_sync(
    *, owner_id: uuid.UUID, category: str, record_id: uuid.UUID, doc: Mapping[str, Any]
) -> None:
    """Keep the clear due date of a record (for reminders sent while the person is away) in step."""
    if category not in DUE_DATE_FIELDS:
        return
    kind, field = DUE_DATE_FIELDS[category]
    due = doc.get(field)
    if due:
        ReminderDue.objects.update_or_create(
            owner_id=owner_id, kind=kind, record_id=record_id, defaults={"due_on": dt.date.fromisoformat(due)}
        )
    else:
        ReminderDue.objects.filter(owner_id=owner_id, kind=kind, record_id=record_id).delete()


@transaction.atomic
def due_dates_backfill(*, owner: User) -> int:
    """Give every record of the owner's store that lacks one its clear due date; return how many.

    Records stored before due dates were kept have none until they are written again, and only
    the person's key opens them: this runs once, at the first sign-in that finds the store
    unchecked, opens only the records without a due date row, and marks the store checked.
    """
    keys = store.owner_keys(owner)
    added = 0
    for name, (kind, field_name) in DUE_DATE_FIELDS.items():
        cat = category_get(name)
        known = ReminderDue.objects.filter(owner_id=owner.pk, kind=kind).values("record_id")
        rows = cat.model.objects.filter(owner_id=owner.pk).exclude(pk__in=known)
        for row in rows.values(*store.open_columns(cat)).iterator(chunk_size=_BATCH):
            doc = store.row_open(cat, row, keys)
            if doc.get(field_name):
                _due_date_sync(owner_id=owner.pk, category=name, record_id=row["id"], doc=doc)
                added += 1
    PersonKey.objects.filter(person_id=owner.pk).update(due_dates_checked_at=timezone.now())
    return added


@transaction.atomic
def record_create(
    *,
    owner: User,
    category: str,
    data: object,
    source: str = "manual",
    source_vendor: str = "",
) -> Document:
    """Validate and store a new record in the owner's store; return its document."""
    cat = category_get(category)
    doc = store.validate(cat.schema, data)
    if cat.name == "purchases":
        doc["source_vendor"] = source_vendor
    row = cat.model(owner_id=owner.pk)
    if cat.name == "purchases":
        row.source = source  # type: ignore[attr-defined]
    try:
        keys = store.owner_keys(owner)
        store.row_fill(cat, row, keys.data, doc)
    except StoreLocked:
        # The person is away (a vendor's write): seal to their public key; it moves under the
        # data key when they next sign in. The key row is locked so that a store being set
        # aside at this moment (person_store_restart) either moves this record or is done and
        # gives the new public key.
        key_row = PersonKey.objects.select_for_update().get(person_id=owner.pk)
        store.row_fill(cat, row, None, doc, public_key=bytes(key_row.public_key or b""))
        AwaitingRewrap.objects.create(owner_id=owner.pk, category=cat.name, record_id=row.pk)
    row.save(force_insert=True)
    document = store.row_document(cat, row, doc)
    shares_sync_record(owner_id=owner.pk, category=cat.name, row=row, doc=document)
    if not store.row_sealed_to_person(row):
        # A record sealed to the public key gets its due date when it settles at sign-in.
        _due_date_sync(owner_id=owner.pk, category=cat.name, record_id=row.pk, doc=document)
    return document


@transaction.atomic
def record_update(
    *, owner: User, category: str, record_id: uuid.UUID | str, data: Mapping[str, Any]
) -> Document:
    """Change some fields of one of the owner's records; the result is validated as a whole."""
    cat = category_get(category)
    row = record_row_for_owner(owner=owner, category=category, record_id=record_id, lock=True)
    keys = store.owner_keys(owner)
    current = store.row_open(cat, row, keys)
    doc = store.validate(cat.schema, {**store.editable(current), **data})
    if cat.name == "purchases":
        doc["source_vendor"] = current.get("source_vendor", "")
    store.row_fill(cat, row, keys.data, doc)
    row.updated_at = timezone.now()
    row.save()
    document = store.row_open(cat, row, keys)
    shares_sync_record(owner_id=owner.pk, category=cat.name, row=row, doc=document)
    _due_date_sync(owner_id=owner.pk, category=cat.name, record_id=row.pk, doc=document)
    return document


@transaction.atomic
def record_delete(*, owner: User, category: str, record_id: uuid.UUID | str) -> None:
    """Delete one of the owner's records (and its copies in every share)."""
    row = record_row_for_owner(owner=owner, category=category, record_id=record_id, lock=True)
    shares_sync_record(owner_id=owner.pk, category=category_get(category).name, row=row, doc=None)
    ReminderDue.objects.filter(owner_id=owner.pk, record_id=row.pk).delete()
    row.delete()


@transaction.atomic
def preferences_update(*, owner: User, data: Mapping[str, Any]) -> Document:
    """Replace the owner's preferences document."""
    doc = store.validate(PreferencesSchema, data)
    keys = store.owner_keys(owner)
    Preferences.objects.update_or_create(
        owner_id=owner.pk,
        defaults={
            "payload": store.preferences_seal(keys.data, owner.pk, doc),
            "contact": doc.get("contact") or {},
            "updated_at": timezone.now(),
        },
    )
    shares_sync_preferences(owner_id=owner.pk, doc=doc)
    return doc


@dataclass
class ErasureReport:
    records: dict[str, int] = field(default_factory=dict)
    key_destroyed: bool = False


def _sqlite_log_truncate() -> None:
    # secure_delete zeroes the erased rows in the database file, but WAL keeps the earlier page
    # images in the -wal file until a checkpoint copies the log back and the log restarts.
    # Truncating it now takes them off the disk with the erasure (docs/security.md, "SQLite").
    # A reader in the middle of a read makes it wait (busy timeout) and then give up without an
    # error; the log is overwritten from its start after the next complete checkpoint anyway.
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@transaction.atomic
def person_erase(*, person: User, actor_type: str = "person") -> ErasureReport:
    """Crypto-shred a person's store: destroy their data key and delete every record.

    The ledger keeps the entry under the person's pseudonym, which nothing links to them once
    the salt beside the data key is gone.
    """
    report = ErasureReport()
    subject = ledger_pseudonym(person_id=person.pk) if store.person_key_get(person.pk) else ""
    for name, cat in RECORD_CATEGORIES.items():
        report.records[name], _ = cat.model.objects.filter(owner_id=person.pk).delete()
    report.records["preferences"], _ = Preferences.objects.filter(owner_id=person.pk).delete()
    PendingImport.objects.filter(owner_id=person.pk).delete()
    Share.objects.filter(owner_id=person.pk).delete()
    RetiredStore.objects.filter(owner_id=person.pk).delete()
    AwaitingRewrap.objects.filter(owner_id=person.pk).delete()
    ReminderDue.objects.filter(owner_id=person.pk).delete()
    Reminder.objects.filter(owner_id=person.pk).delete()
    deleted, _ = PersonKey.objects.filter(person_id=person.pk).delete()
    store.person_key_forget(person)
    report.key_destroyed = bool(deleted)
    ledger_append(
        kind="person.erased",
        actor_type=actor_type,
        actor_id=subject or "unknown",
        subject=subject,
        record_count=sum(report.records.values()),
    )
    transaction.on_commit(_sqlite_log_truncate)
    return report


def _entry_by_person(person: User, kind: str, **fields: Any) -> None:
    """Append an entry of something the person did to their own store, under their pseudonym."""
    subject = ledger_pseudonym(person_id=person.pk)
    ledger_append(kind=kind, actor_type="person", actor_id=subject, subject=subject, **fields)


# A store set aside after a reset without the recovery code.

RETIRED_KEEP_DAYS = 30
_BATCH = 2000


@dataclass
class StoreRestart:
    """What person_store_restart did: the new recovery code, and the store set aside (if any)."""

    code: str | None
    retired: RetiredStore | None


def _retired_columns(category: str, row: EncryptedRecord) -> dict[str, Any]:
    cat = RECORD_CATEGORIES[category]
    columns: dict[str, Any] = {
        "shared": row.shared,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }
    for flag in cat.flags:
        columns[flag] = getattr(row, flag)
    if category == "purchases":
        columns["source"] = row.source  # type: ignore[attr-defined]
    return columns


def _set_aside(person: User, retired: RetiredStore) -> tuple[int, dict[str, Any]]:
    """Move every record and the preferences of the person into `retired`, sealed as they are.

    Return how many records moved and the contact choices, which the new store keeps.
    """
    moved = 0
    for name, cat in RECORD_CATEGORIES.items():
        rows = cat.model.objects.filter(owner_id=person.pk)
        batch: list[RetiredRecord] = []
        for row in rows.iterator(chunk_size=_BATCH):
            batch.append(
                RetiredRecord(
                    store=retired,
                    category=name,
                    record_id=row.pk,
                    payload=bytes(row.payload),
                    columns=_retired_columns(name, row),
                )
            )
            if len(batch) == _BATCH:
                RetiredRecord.objects.bulk_create(batch)
                batch = []
        RetiredRecord.objects.bulk_create(batch)
        moved += rows.delete()[0]
    contact: dict[str, Any] = {}
    prefs = Preferences.objects.filter(owner_id=person.pk).first()
    if prefs is not None:
        contact = dict(prefs.contact or {})
        RetiredRecord.objects.create(
            store=retired,
            category=PREFERENCES,
            record_id=person.pk,
            payload=bytes(prefs.payload),
            columns={"updated_at": prefs.updated_at.isoformat()},
        )
        prefs.delete()
    return moved, contact


@transaction.atomic
def person_store_restart(*, person: User, password: str) -> StoreRestart:
    """Set aside a store the password cannot open (a reset without the recovery code) and give
    the person an empty one, wrapped by this password and a new recovery code.

    The old records stay sealed as they were, under the old key that only the old recovery code
    opens, for RETIRED_KEEP_DAYS days: until then person_store_restore brings them back, and then
    retired_stores_destroy deletes them. Live grants keep going over the new, empty store (their
    copies of the old records are deleted now). If the password does open the store, nothing is
    set aside: the store is opened as at sign-in.
    """
    try:
        return StoreRestart(code=person_unlock(person=person, password=password), retired=None)
    except WrongSecret:
        pass
    person_key = PersonKey.objects.select_for_update().get(person_id=person.pk)
    now = timezone.now()
    retired = RetiredStore.objects.create(
        owner_id=person.pk,
        recovery_wrap=person_key.recovery_wrap,
        private_wrap=person_key.private_wrap,
        retired_at=now,
        destroy_after=now + dt.timedelta(days=RETIRED_KEEP_DAYS),
    )
    moved, contact = _set_aside(person, retired)
    retired.record_count = moved
    retired.save(update_fields=["record_count"])
    PendingImport.objects.filter(owner_id=person.pk).delete()
    AwaitingRewrap.objects.filter(owner_id=person.pk).delete()
    # The records set aside fall due no more; they get their dates again if they come back.
    ReminderDue.objects.filter(owner_id=person.pk).delete()
    SharedCopy.objects.filter(share__owner_id=person.pk).delete()
    keys, code = keys_replace(person_key, password)
    person_key.save()
    store.person_key_forget(person)
    keys_hold(person, keys)
    if contact:
        preferences_update(owner=person, data={"contact": contact})
    _entry_by_person(
        person,
        "person.store_restarted",
        record_count=moved,
        reason=f"reset without recovery code, earlier records kept until {retired.destroy_after:%Y-%m-%d}",
    )
    return StoreRestart(code=code, retired=retired)


def _restore_rows(person: User, keys: Keys, old: Keys, retired: RetiredStore) -> tuple[int, bool]:
    """Re-seal the retired records under the current data key, in the live tables."""
    restored, preferences = 0, False
    for name, cat in RECORD_CATEGORIES.items():
        items = retired.records.filter(category=name).order_by("pk")
        for start in range(0, items.count(), _BATCH):
            rows, docs = [], []
            for item in items[start : start + _BATCH]:
                content = store.document_open(
                    keys=old,
                    table=cat.table,
                    row_id=item.record_id,
                    owner_id=person.pk,
                    payload=bytes(item.payload),
                )
                columns = item.columns
                row = cat.model(
                    id=item.record_id,
                    owner_id=person.pk,
                    created_at=dt.datetime.fromisoformat(columns["created_at"]),
                    updated_at=dt.datetime.fromisoformat(columns["updated_at"]),
                )
                if name == "purchases":
                    row.source = columns.get("source", "manual")  # type: ignore[attr-defined]
                doc = {**content, "shared": columns["shared"], **{f: columns[f] for f in cat.flags}}
                store.row_fill(cat, row, keys.data, doc)
                rows.append(row)
                docs.append(store.row_document(cat, row, content))
            cat.model.objects.bulk_create(rows)
            shares_sync_records(owner_id=person.pk, category=name, rows=list(zip(rows, docs, strict=True)))
            for row, document in zip(rows, docs, strict=True):
                _due_date_sync(owner_id=person.pk, category=name, record_id=row.pk, doc=document)
            restored += len(rows)
    prefs = retired.records.filter(category=PREFERENCES).first()
    if prefs is not None:
        doc = store.document_open(
            keys=old,
            table=store.PREFERENCES_TABLE,
            row_id=person.pk,
            owner_id=person.pk,
            payload=bytes(prefs.payload),
        )
        current = Preferences.objects.filter(owner_id=person.pk).first()
        # The contact choices are the ones made since: they decide what is e-mailed now.
        contact = current.contact if current is not None else doc.get("contact") or {}
        preferences_update(owner=person, data={**doc, "contact": contact})
        preferences = True
    return restored, preferences


@dataclass
class StoreRestore:
    records: int
    preferences: bool


@transaction.atomic
def person_store_restore(*, person: User, code: str) -> StoreRestore:
    """Bring back a store set aside after a reset, with its old recovery code, while it is kept.

    The person must be signed in (their current store open): each record is opened with the old
    key and sealed under the current one, keeping its id and times; the preferences come back
    with the contact choices made since. Live grants get copies of what they cover. Raise
    WrongSecret if the code opens no store kept for this person.
    """
    keys = store.owner_keys(person)
    kept = RetiredStore.objects.select_for_update().filter(
        owner_id=person.pk, destroy_after__gt=timezone.now()
    )
    for retired in kept.order_by("-retired_at"):
        old_key = PersonKey(
            person_id=person.pk, recovery_wrap=retired.recovery_wrap, private_wrap=retired.private_wrap
        )
        try:
            old = keys_recover(old_key, code)
        except WrongSecret:
            continue
        restored, preferences = _restore_rows(person, keys, old, retired)
        retired.delete()
        _entry_by_person(
            person,
            "person.store_restored",
            record_count=restored,
            reason="earlier records brought back with their recovery code",
        )
        return StoreRestore(records=restored, preferences=preferences)
    raise WrongSecret("the recovery code opens no store kept for this person")


def retired_stores_destroy(*, now: dt.datetime | None = None) -> tuple[int, int]:
    """Destroy every store set aside whose time is up: its key wraps and every record, one
    store per transaction. Return how many stores and records were destroyed."""
    now = now or timezone.now()
    stores = records = 0
    while True:
        with transaction.atomic():
            retired = (
                RetiredStore.objects.select_for_update(skip_locked=True)
                .filter(destroy_after__lte=now)
                .order_by("destroy_after")
                .first()
            )
            if retired is None:
                break
            subject = ledger_pseudonym(person_id=retired.owner_id)
            count = retired.record_count
            retired.delete()
            ledger_append(
                kind="person.store_destroyed",
                actor_type="system",
                actor_id="destroy_retired_stores",
                subject=subject,
                record_count=count,
                reason="records set aside after a reset: kept 30 days, now destroyed",
            )
            transaction.on_commit(_sqlite_log_truncate)
        stores, records = stores + 1, records + count
    return stores, records


@dataclass
class RotationReport:
    rewrapped: int = 0
    already_current: int = 0
    failed: list[str] = field(default_factory=list)


def master_key_rotate(
    *, batch_size: int = 500, on_batch: Callable[[int, int], None] | None = None
) -> RotationReport:
    """Rewrap every key the master key wraps under the newest master key, a committed batch at a time.

    Those are the grant shares' keys and, until their owners next sign in, the data keys of
    accounts made before person-held keys. Interrupting loses nothing: each batch commits on its
    own and a re-run picks up the keys still wrapped by an older master key.
    """
    ring = master_keyring()
    newest = ring.newest_id
    legacy = PersonKey.objects.exclude(master_key_id__in=[newest, ""])
    shares = Share.objects.exclude(master_key_id=newest)
    report = RotationReport(
        already_current=PersonKey.objects.filter(master_key_id=newest).count()
        + Share.objects.filter(master_key_id=newest).count()
    )
    total = legacy.count() + shares.count()
    if on_batch:
        on_batch(0, total)
    kinds: tuple[tuple[QuerySet[Any], Callable[[Any], str], str], ...] = (
        (legacy, lambda key: str(key.person_id), "data keys"),
        (shares, lambda share: f"share/{share.pk}", "share keys"),
    )
    for pending, context, what in kinds:
        failed: list[Any] = []
        while True:
            with transaction.atomic():
                batch = list(pending.exclude(pk__in=failed).order_by("pk").select_for_update()[:batch_size])
                if not batch:
                    break
                done = []
                for item in batch:
                    try:
                        plain = ring.unwrap(
                            item.master_key_id, bytes(item.wrapped_key), context=context(item)
                        )
                    except crypto.CryptoError:
                        failed.append(item.pk)
                        report.failed.append(str(item.pk))
                        continue
                    item.master_key_id, item.wrapped_key = ring.wrap(plain, context=context(item))
                    done.append(item)
                type(batch[0]).objects.bulk_update(done, ["master_key_id", "wrapped_key"])
                if done:
                    ledger_append(
                        kind="key.rotated",
                        actor_type="operator",
                        actor_id="rotate_master_key",
                        record_count=len(done),
                        reason=f"{what} rewrapped under {newest}",
                    )
                report.rewrapped += len(done)
            if on_batch:
                on_batch(len(batch), total)
    return report


@transaction.atomic
def records_import(
    *,
    owner: User,
    plan: ImportPlan,
    batch_size: int = 2000,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Store every record of a validated import plan, all or nothing; return counts per category."""
    if not plan.ok:
        raise ValueError("only a plan without problems can be imported")
    key = store.owner_keys(owner).data
    total, done = sum(len(docs) for docs in plan.records.values()), 0
    for name, documents in plan.records.items():
        cat = RECORD_CATEGORIES[name]
        for start in range(0, len(documents), batch_size):
            rows, docs = [], []
            for doc in documents[start : start + batch_size]:
                doc = dict(doc)
                row = cat.model(owner_id=owner.pk)
                if name == "purchases":
                    row.source = doc.pop("source", "import")  # type: ignore[attr-defined]
                store.row_fill(cat, row, key, doc)
                rows.append(row)
                docs.append(store.row_document(cat, row, doc))
            cat.model.objects.bulk_create(rows)
            shares_sync_records(owner_id=owner.pk, category=name, rows=list(zip(rows, docs, strict=True)))
            for row, document in zip(rows, docs, strict=True):
                _due_date_sync(owner_id=owner.pk, category=name, record_id=row.pk, doc=document)
            done += len(rows)
            if on_progress:
                on_progress(done, total)
    if plan.preferences is not None:
        preferences_update(owner=owner, data=plan.preferences)
    counts = plan.counts
    ledger_append(
        kind="person.import",
        actor_type="person",
        actor_id=ledger_pseudonym(person=owner),
        subject=ledger_pseudonym(person=owner),
        record_count=sum(counts.values()),
        reason=", ".join(f"{n} {c}" for n, c in sorted(counts.items())),
    )
    return counts


@transaction.atomic
def person_export_record(*, person: User) -> None:
    """Record in the ledger that the person downloaded everything held about them."""
    subject = ledger_pseudonym(person_id=person.pk)
    ledger_append(kind="person.export", actor_type="person", actor_id=subject, subject=subject)


PENDING_TABLE = PendingImport._meta.db_table


# What makes two records the same for an import: their content, not where they came from.
_NOT_CONTENT = frozenset({"shared", "source", "source_vendor"})


def _content_key(doc: Mapping[str, Any]) -> bytes:
    content = {
        k: v for k, v in store.editable(doc).items() if k not in _NOT_CONTENT and v not in (None, "", [])
    }
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


def import_duplicates_find(*, owner: User, plan: ImportPlan) -> None:
    """Mark in the plan the records the owner's store already holds (the same content).

    Importing the same file twice, or an export that overlaps what is stored, would otherwise
    store everything twice. Each stored record matches at most one record of the file, so a
    file with two identical purchases where the store has one adds the second.
    """
    keys = store.owner_keys(owner)
    for name, documents in plan.records.items():
        cat = RECORD_CATEGORIES[name]
        stored: Counter[bytes] = Counter()
        rows = cat.model.objects.filter(owner_id=owner.pk).values(*store.open_columns(cat))
        for row in rows.iterator(chunk_size=2000):
            stored[_content_key(store.row_open(cat, row, keys))] += 1
        found = []
        for n, doc in enumerate(documents):
            content = _content_key(doc)
            if stored[content]:
                stored[content] -= 1
                found.append(n)
        plan.duplicates[name] = found


@transaction.atomic
def import_stage(*, owner: User, plan: ImportPlan, filename: str) -> PendingImport:
    """Keep a validated plan, sealed under the owner's key, until they confirm it."""
    PendingImport.objects.filter(owner_id=owner.pk).delete()  # one pending import at a time
    pending = PendingImport(owner_id=owner.pk, counts=plan.counts, filename=filename[:200])
    doc = {"records": plan.records, "preferences": plan.preferences, "duplicates": plan.duplicates}
    pending.payload = store.document_seal(
        key=store.owner_keys(owner).data, table=PENDING_TABLE, row_id=pending.pk, owner_id=owner.pk, doc=doc
    )
    pending.save(force_insert=True)
    return pending


@transaction.atomic
def import_confirm(
    *,
    owner: User,
    pending_id: uuid.UUID | str,
    on_progress: Callable[[int, int], None] | None = None,
    include_duplicates: bool = False,
) -> dict[str, int]:
    """Store a staged import (all or nothing) and forget it.

    Records the store already held when the file was checked are left out, unless the owner
    asked for them as copies (`include_duplicates`).
    """
    pk = uuid_or_404(pending_id, message="No import is waiting for confirmation.")
    pending = PendingImport.objects.select_for_update().filter(owner_id=owner.pk, pk=pk).first()
    if pending is None:
        raise Http404("No import is waiting for confirmation.")
    doc = store.document_open(
        keys=store.owner_keys(owner),
        table=PENDING_TABLE,
        row_id=pending.pk,
        owner_id=owner.pk,
        payload=bytes(pending.payload),
    )
    plan = ImportPlan(
        records=doc["records"], preferences=doc["preferences"], duplicates=doc.get("duplicates") or {}
    )
    if not include_duplicates:
        plan = plan.without_duplicates()
    counts = records_import(owner=owner, plan=plan, on_progress=on_progress) if plan.ok else {}
    pending.delete()
    return counts
