"""Keyed pseudonyms for a person: one for the ledger, one per vendor organisation.

Both derive from VRM_INDEX_KEY and the person's random salt (kept beside their data key), so
they cannot be computed without the index key and cannot be linked to anyone after erasure.
"""

from __future__ import annotations

import base64
from typing import Any

from personal_data import crypto
from personal_data.keys import index_subkey
from personal_data.models import PersonKey


def _encode(digest: bytes) -> str:
    return base64.b32encode(digest[:20]).decode("ascii").lower()


def _salt(person_id: Any) -> bytes:
    salt = PersonKey.objects.filter(person_id=person_id).values_list("pseudonym_salt", flat=True).first()
    if salt is None:
        raise LookupError(f"{person_id} has no store (never opened, or erased)")
    return bytes(salt)


def ledger_pseudonym(*, person_id: Any) -> str:
    """Return the ledger-wide pseudonym of a person (never shown to vendors)."""
    return "p-" + _encode(crypto.keyed_hash(index_subkey("pseudonym/ledger"), _salt(person_id)))


def pairwise_subject(*, person_id: Any, organisation_id: Any) -> str:
    """Return the stable pseudonym one vendor organisation knows a person by."""
    message = _salt(person_id) + b"|" + str(organisation_id).encode()
    return _encode(crypto.keyed_hash(index_subkey("pseudonym/pairwise"), message))
