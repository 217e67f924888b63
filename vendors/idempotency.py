"""Idempotent vendor writes (the Idempotency-Key header)."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.db import IntegrityError, transaction

from accounts.models import User
from core import crypto
from core.keys import index_subkey
from core.problems import IdempotencyConflict
from personal_data.keys import StoreError
from personal_data.models import Share
from personal_data.shares import share_open, share_seal
from personal_data.store import Document
from vendors.models import Application, IdempotencyKey


def request_hash(body: object) -> str:
    """A keyed hash of the request body, so the stored value reveals nothing of the content."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    return crypto.keyed_hash(index_subkey("idempotency"), canonical).hex()


_TABLE = IdempotencyKey._meta.db_table


def _aad(owner_id: object, record_id: object) -> bytes:
    return f"vrm/{_TABLE}/v1|{record_id}|{owner_id}".encode()


def _replay(existing: IdempotencyKey, *, digest: str, owner: User, share: Share) -> Document:
    if existing.request_hash != digest or existing.owner_id != owner.pk:
        raise IdempotencyConflict()
    if not existing.response:
        raise IdempotencyConflict("This Idempotency-Key was used before its answer was kept.")
    try:
        document: Document = share_open(
            share=share, aad=_aad(owner.pk, existing.record_id), blob=bytes(existing.response)
        )
    except StoreError:  # kept under another grant's key, since ended
        raise IdempotencyConflict("This Idempotency-Key was used under another grant.") from None
    return document


def idempotent_create(
    *,
    application: Application,
    owner: User,
    share: Share,
    key: str,
    body: object,
    create: Callable[[], Document],
) -> tuple[Document, bool]:
    """Run create() once per (application, key); a retry with the same body gets the same answer.

    Return the document and whether it was created now. A retry returns the document as it was
    first given, never the record as it is now: the person may have hidden it or added to it, and
    a write-only grant must not read that. The first answer is kept sealed under the key of the
    grant's share, so it dies with the grant. Raise IdempotencyConflict when the key was used with
    another body (or for another person), or when its first answer was not kept.
    """
    digest = request_hash(body)
    with transaction.atomic():
        existing = IdempotencyKey.objects.select_for_update().filter(application=application, key=key).first()
        if existing is not None:
            return _replay(existing, digest=digest, owner=owner, share=share), False
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
                    response=share_seal(share=share, aad=_aad(owner.pk, document["id"]), doc=document),
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
            return _replay(existing, digest=digest, owner=owner, share=share), False
        return document, True
