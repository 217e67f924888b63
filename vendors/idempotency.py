"""Idempotent vendor writes (the Idempotency-Key header)."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.db import IntegrityError, transaction

from accounts.models import User
from core import crypto
from core.keys import index_subkey
from core.problems import IdempotencyConflict
from personal_data.store import Document
from vendors.models import Application, IdempotencyKey


def request_hash(body: object) -> str:
    """A keyed hash of the request body, so the stored value reveals nothing of the content."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    return crypto.keyed_hash(index_subkey("idempotency"), canonical).hex()


def idempotent_create(
    *,
    application: Application,
    owner: User,
    key: str,
    body: object,
    create: Callable[[], Document],
    replay: Callable[[str], Document],
) -> tuple[Document, bool]:
    """Run create() once per (application, key); a retry with the same body replays the result.

    Return the document and whether it was created now. Raise IdempotencyConflict when the key
    was used with another body (or for another person).
    """
    digest = request_hash(body)
    with transaction.atomic():
        existing = IdempotencyKey.objects.select_for_update().filter(application=application, key=key).first()
        if existing is not None:
            if existing.request_hash != digest or existing.owner_id != owner.pk:
                raise IdempotencyConflict()
            return replay(str(existing.record_id)), False
        document = create()
        try:
            with transaction.atomic():
                IdempotencyKey.objects.create(
                    application=application,
                    key=key,
                    request_hash=digest,
                    record_id=document["id"],
                    owner=owner,
                )
        except IntegrityError:
            # A concurrent retry won the race: undo ours and answer as a replay.
            raise IdempotencyConflict(
                "A request with this Idempotency-Key is still being processed."
            ) from None
        return document, True
