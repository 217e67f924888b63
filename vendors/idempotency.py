"""Idempotent vendor writes (the Idempotency-Key header)."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.db import IntegrityError, transaction

from accounts.models import User
from core import crypto
from core.keys import index_subkey
from core.problems import IdempotencyConflict
from personal_data import store
from personal_data.store import Document
from vendors.models import Application, IdempotencyKey


def request_hash(body: object) -> str:
    """A keyed hash of the request body, so the stored value reveals nothing of the content."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    return crypto.keyed_hash(index_subkey("idempotency"), canonical).hex()


_TABLE = IdempotencyKey._meta.db_table


def _response_open(existing: IdempotencyKey, owner: User) -> Document:
    document: Document = store.document_open(
        key=store.owner_data_key(owner),
        table=_TABLE,
        row_id=str(existing.record_id),
        owner_id=owner.pk,
        payload=bytes(existing.response),
    )
    return document


def _replay(existing: IdempotencyKey, *, digest: str, owner: User) -> Document:
    if existing.request_hash != digest or existing.owner_id != owner.pk:
        raise IdempotencyConflict()
    if not existing.response:
        raise IdempotencyConflict("This Idempotency-Key was used before its answer was kept.")
    return _response_open(existing, owner)


def idempotent_create(
    *,
    application: Application,
    owner: User,
    key: str,
    body: object,
    create: Callable[[], Document],
) -> tuple[Document, bool]:
    """Run create() once per (application, key); a retry with the same body gets the same answer.

    Return the document and whether it was created now. A retry returns the document as it was
    first given, never the record as it is now: the person may have hidden it or added to it, and
    a write-only grant must not read that. Raise IdempotencyConflict when the key was used with
    another body (or for another person), or when its first answer was not kept.
    """
    digest = request_hash(body)
    with transaction.atomic():
        existing = IdempotencyKey.objects.select_for_update().filter(application=application, key=key).first()
        if existing is not None:
            return _replay(existing, digest=digest, owner=owner), False
        try:
            # The record and its key in one savepoint: if the key is taken, neither stays.
            with transaction.atomic():
                document = create()
                IdempotencyKey.objects.create(
                    application=application,
                    key=key,
                    request_hash=digest,
                    record_id=document["id"],
                    owner=owner,
                    response=store.document_seal(
                        key=store.owner_data_key(owner),
                        table=_TABLE,
                        row_id=document["id"],
                        owner_id=owner.pk,
                        doc=document,
                    ),
                )
        except IntegrityError:
            # A concurrent request with this key got there first (no row to lock when both
            # looked). PostgreSQL let our insert wait for its transaction, so it has committed:
            # answer as its replay, as a retry after it would have been answered.
            existing = IdempotencyKey.objects.filter(application=application, key=key).first()
            if existing is None:
                raise IdempotencyConflict(
                    "A request with this Idempotency-Key is still being processed."
                ) from None
            return _replay(existing, digest=digest, owner=owner), False
        return document, True
