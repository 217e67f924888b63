"""Writes to the person's store. Every function validates first and writes nothing on error."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from audit.services import ledger_append
from core.keys import master_keyring
from personal_data import store
from personal_data.categories import RECORD_CATEGORIES, category_get
from personal_data.models import PendingImport, PersonKey, Preferences
from personal_data.pseudonyms import ledger_pseudonym
from personal_data.schemas import PreferencesSchema
from personal_data.selectors import record_row_for_owner
from personal_data.store import Document
from personal_data.transfer import ImportPlan


@transaction.atomic
def person_store_open(*, person: User) -> PersonKey:
    """Give a person their own random data key (wrapped by the newest master key), once."""
    existing = store.person_key_get(person.pk)
    if existing is not None:
        return existing
    person_key = store.person_key_new(person.pk)
    person_key.save(force_insert=True)
    return person_key


def _key_for_write(owner: User) -> bytes:
    return store.data_key(person_store_open(person=owner))


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
    key = _key_for_write(owner)
    store.row_fill(cat, row, key, doc)
    row.save(force_insert=True)
    return store.row_open(cat, row, key)


@transaction.atomic
def record_update(
    *, owner: User, category: str, record_id: uuid.UUID | str, data: Mapping[str, Any]
) -> Document:
    """Change some fields of one of the owner's records; the result is validated as a whole."""
    cat = category_get(category)
    row = record_row_for_owner(owner=owner, category=category, record_id=record_id, lock=True)
    key = _key_for_write(owner)
    current = store.row_open(cat, row, key)
    doc = store.validate(cat.schema, {**store.editable(current), **data})
    if cat.name == "purchases":
        doc["source_vendor"] = current.get("source_vendor", "")
    store.row_fill(cat, row, key, doc)
    row.updated_at = timezone.now()
    row.save()
    return store.row_open(cat, row, key)


@transaction.atomic
def record_delete(*, owner: User, category: str, record_id: uuid.UUID | str) -> None:
    """Delete one of the owner's records."""
    record_row_for_owner(owner=owner, category=category, record_id=record_id, lock=True).delete()


@transaction.atomic
def preferences_update(*, owner: User, data: Mapping[str, Any]) -> Document:
    """Replace the owner's preferences document."""
    doc = store.validate(PreferencesSchema, data)
    key = _key_for_write(owner)
    Preferences.objects.update_or_create(
        owner_id=owner.pk,
        defaults={
            "payload": store.preferences_seal(key, owner.pk, doc),
            "updated_at": timezone.now(),
        },
    )
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


@dataclass
class RotationReport:
    rewrapped: int = 0
    already_current: int = 0
    failed: list[str] = field(default_factory=list)


def master_key_rotate(
    *, batch_size: int = 500, on_batch: Callable[[int, int], None] | None = None
) -> RotationReport:
    """Rewrap every data key under the newest master key, one committed batch at a time.

    Interrupting loses nothing: each batch commits on its own and a re-run picks up the keys
    still wrapped by an older master key.
    """
    ring = master_keyring()
    newest = ring.newest_id
    report = RotationReport(already_current=PersonKey.objects.filter(master_key_id=newest).count())
    pending = PersonKey.objects.exclude(master_key_id=newest)
    total = pending.count()
    if on_batch:
        on_batch(0, total)
    failed_ids: list[uuid.UUID] = []
    while True:
        with transaction.atomic():
            batch = list(
                pending.exclude(person_id__in=failed_ids)
                .order_by("person_id")
                .select_for_update()[:batch_size]
            )
            if not batch:
                break
            now = timezone.now()
            done = []
            for person_key in batch:
                try:
                    plain = store.data_key(person_key)
                except store.StoreError:
                    failed_ids.append(person_key.person_id)
                    report.failed.append(str(person_key.person_id))
                    continue
                person_key.master_key_id, person_key.wrapped_key = ring.wrap(
                    plain, context=str(person_key.person_id)
                )
                person_key.rewrapped_at = now
                done.append(person_key)
            PersonKey.objects.bulk_update(done, ["master_key_id", "wrapped_key", "rewrapped_at"])
            if done:
                ledger_append(
                    kind="key.rotated",
                    actor_type="operator",
                    actor_id="rotate_master_key",
                    record_count=len(done),
                    reason=f"data keys rewrapped under {newest}",
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
    key = _key_for_write(owner)
    total, done = sum(len(docs) for docs in plan.records.values()), 0
    for name, documents in plan.records.items():
        cat = RECORD_CATEGORIES[name]
        for start in range(0, len(documents), batch_size):
            rows = []
            for doc in documents[start : start + batch_size]:
                doc = dict(doc)
                row = cat.model(owner_id=owner.pk)
                if name == "purchases":
                    row.source = doc.pop("source", "import")  # type: ignore[attr-defined]
                store.row_fill(cat, row, key, doc)
                rows.append(row)
            cat.model.objects.bulk_create(rows)
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


@transaction.atomic
def import_stage(*, owner: User, plan: ImportPlan, filename: str) -> PendingImport:
    """Keep a validated plan, sealed under the owner's key, until they confirm it."""
    PendingImport.objects.filter(owner_id=owner.pk).delete()  # one pending import at a time
    pending = PendingImport(owner_id=owner.pk, counts=plan.counts, filename=filename[:200])
    doc = {"records": plan.records, "preferences": plan.preferences}
    pending.payload = store.document_seal(
        key=_key_for_write(owner), table=PENDING_TABLE, row_id=pending.pk, owner_id=owner.pk, doc=doc
    )
    pending.save(force_insert=True)
    return pending


@transaction.atomic
def import_confirm(
    *,
    owner: User,
    pending_id: uuid.UUID | str,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Store a staged import (all or nothing) and forget it."""
    try:
        pk = pending_id if isinstance(pending_id, uuid.UUID) else uuid.UUID(str(pending_id))
    except ValueError:  # a malformed id is not found, like anyone else's
        raise Http404("No import is waiting for confirmation.") from None
    pending = PendingImport.objects.select_for_update().filter(owner_id=owner.pk, pk=pk).first()
    if pending is None:
        raise Http404("No import is waiting for confirmation.")
    doc = store.document_open(
        key=_key_for_write(owner),
        table=PENDING_TABLE,
        row_id=pending.pk,
        owner_id=owner.pk,
        payload=bytes(pending.payload),
    )
    plan = ImportPlan(records=doc["records"], preferences=doc["preferences"])
    counts = records_import(owner=owner, plan=plan, on_progress=on_progress)
    pending.delete()
    return counts
