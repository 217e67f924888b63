"""Keyed pseudonyms for a person: one for the ledger, one per vendor organisation.

Both derive from VRM_INDEX_KEY and the person's random salt (kept beside their data key), so
they cannot be computed without the index key and cannot be linked to anyone after erasure.
"""

from __future__ import annotations

import base64
import uuid

from accounts.models import User
from core import crypto
from core.keys import index_subkey
from personal_data.models import PersonKey
from personal_data.store import person_key_of


def _encode(digest: bytes) -> str:
    return base64.b32encode(digest[:20]).decode("ascii").lower()


def _salt(person_id: uuid.UUID | None, person: User | None = None) -> bytes:
    if person is not None:
        person_key = person_key_of(person)
        salt = None if person_key is None else person_key.pseudonym_salt
    else:
        salt = PersonKey.objects.filter(person_id=person_id).values_list("pseudonym_salt", flat=True).first()
    if salt is None:
        raise LookupError(
            f"{person_id or getattr(person, 'pk', None)} has no store (never opened, or erased)"
        )
    return bytes(salt)


def ledger_pseudonym(*, person_id: uuid.UUID | None = None, person: User | None = None) -> str:
    """Return the ledger-wide pseudonym of a person (never shown to vendors)."""
    return "p-" + _encode(crypto.keyed_hash(index_subkey("pseudonym/ledger"), _salt(person_id, person)))


def person_subject(person: User) -> str:
    """Return the ledger pseudonym to pass as `subject` for a person (a user object)."""
    return ledger_pseudonym(person=person)


def pairwise_subject(
    *, person_id: uuid.UUID | None = None, organisation_id: uuid.UUID | str, person: User | None = None
) -> str:
    """Return the stable pseudonym one vendor organisation knows a person by."""
    message = _salt(person_id, person) + b"|" + str(organisation_id).encode()
    return _encode(crypto.keyed_hash(index_subkey("pseudonym/pairwise"), message))
