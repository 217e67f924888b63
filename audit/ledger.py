"""The ledger's byte-level formats: the leaf content of an entry and the signed checkpoint note.

Pure functions over plain values, shared by the sealer, the verifier and the proof selectors.
docs/ledger.md is the outside reader's copy of these formats; change both together.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from json.encoder import encode_basestring
from typing import Any

from django.conf import settings

from audit.merkle import canonical_json
from core import formats
from core.crypto import SigningKey, sha256, verify_signature

LEAF_FORMAT_VERSION = 1
# The entry columns a leaf covers, in the order the sealer and the verifier read them.
ENTRY_COLUMNS = (
    "id",
    "created_at",
    "kind",
    "actor_type",
    "actor_id",
    "subject",
    "grant_id",
    "scopes",
    "record_ids",
    "record_count",
    "outcome",
    "reason",
    "request_id",
)
HASH_BYTES = 32
_MAX_SAFE_INT = 2**53 - 1
# The C string encoder behind json.dumps(s, ensure_ascii=False), which canonical_json uses too.
_str = encode_basestring
# C2SP signed-note signature type for Ed25519.
_ED25519_TYPE = b"\x01"
_EM_DASH = "\u2014"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def rfc3339(moment: dt.datetime) -> str:
    """Return the ledger's fixed-width time, e.g. 2026-01-02T03:04:05.000006Z (always six digits)."""
    return formats.rfc3339(moment, timespec="microseconds")


def leaf_document(row: Sequence[Any]) -> dict[str, Any]:
    """Return the JSON object an entry's leaf covers; row follows ENTRY_COLUMNS."""
    (
        entry_id,
        created_at,
        kind,
        actor_type,
        actor_id,
        subject,
        grant_id,
        scopes,
        record_ids,
        record_count,
        outcome,
        reason,
        request_id,
    ) = row
    return {
        "v": LEAF_FORMAT_VERSION,
        "id": entry_id,
        "time": rfc3339(created_at),
        "kind": kind,
        "actor_type": actor_type,
        "actor_id": actor_id,
        "subject": subject,
        "grant_id": grant_id,
        "scopes": scopes,
        "record_ids": record_ids,
        "record_count": record_count,
        "outcome": outcome,
        "reason": reason,
        "request_id": request_id,
    }


def leaf_data(row: Sequence[Any]) -> bytes:
    """Return canonical_json(leaf_document(row)), the bytes an entry's leaf hash covers.

    Sealing and verifying a million entries spend most of their time here, so the usual shape
    (str fields, lists of str, small ints) takes a direct path that writes the same bytes as
    canonical_json (tests/audit/test_ledger_format.py checks this); anything else falls back.
    """
    (
        entry_id,
        created_at,
        kind,
        actor_type,
        actor_id,
        subject,
        grant_id,
        scopes,
        record_ids,
        record_count,
        outcome,
        reason,
        request_id,
    ) = row
    if (
        type(entry_id) is int
        and type(record_count) is int
        and type(scopes) is list
        and type(record_ids) is list
        and 0 <= entry_id <= _MAX_SAFE_INT
        and 0 <= record_count <= _MAX_SAFE_INT
    ):
        try:
            # Keys in canonical (sorted) order.
            text = (
                f'{{"actor_id":{_str(actor_id)},"actor_type":{_str(actor_type)},'
                f'"grant_id":{_str(grant_id)},"id":{entry_id},"kind":{_str(kind)},'
                f'"outcome":{_str(outcome)},"reason":{_str(reason)},"record_count":{record_count},'
                f'"record_ids":[{",".join(map(_str, record_ids))}],"request_id":{_str(request_id)},'
                f'"scopes":[{",".join(map(_str, scopes))}],"subject":{_str(subject)},'
                f'"time":"{rfc3339(created_at)}","v":{LEAF_FORMAT_VERSION}}}'
            )
        except TypeError:
            pass
        else:
            return text.encode("utf-8")
    return canonical_json(leaf_document(row))


def origin() -> str:
    """Return the checkpoint origin line (and signing key name) of this deployment."""
    return settings.VRM_ISSUER + "/ledger"


def join_hashes(hashes: Sequence[bytes]) -> bytes:
    return b"".join(hashes)


def split_hashes(blob: bytes) -> list[bytes]:
    return [blob[i : i + HASH_BYTES] for i in range(0, len(blob), HASH_BYTES)]


def checkpoint_body(*, origin: str, tree_size: int, root_hash: bytes) -> str:
    """Return the signed text of a checkpoint: origin, tree size and base64 root, one per line."""
    return f"{origin}\n{tree_size}\n{b64(root_hash)}\n"


def key_id(*, name: str, public_raw: bytes) -> bytes:
    """Return the 4-byte C2SP key id: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return sha256(name.encode() + b"\n" + _ED25519_TYPE + public_raw)[:4]


def signature_line(*, name: str, public_raw: bytes, signature: bytes) -> str:
    return f"{_EM_DASH} {name} {b64(key_id(name=name, public_raw=public_raw) + signature)}\n"


def note_sign(*, key: SigningKey, origin: str, tree_size: int, root_hash: bytes) -> tuple[str, bytes]:
    """Sign a checkpoint; return the whole note (body, blank line, signature line) and the signature."""
    body = checkpoint_body(origin=origin, tree_size=tree_size, root_hash=root_hash)
    signature = key.sign(body.encode())
    line = signature_line(name=origin, public_raw=key.public_raw(), signature=signature)
    return f"{body}\n{line}", signature


def note_problem(
    *, note: str, public_raw: bytes, tree_size: int, root_hash: bytes, signature: bytes
) -> str | None:
    """Return why note is not a valid signed checkpoint of tree_size and root_hash, or None."""
    note_origin = note.split("\n", 1)[0]
    body = checkpoint_body(origin=note_origin, tree_size=tree_size, root_hash=root_hash)
    expected = f"{body}\n{signature_line(name=note_origin, public_raw=public_raw, signature=signature)}"
    if note != expected:
        return "its note does not state this tree size, root and signature under the ledger key"
    if not verify_signature(public_raw, signature, body.encode()):
        return "its signature does not verify with the ledger public key"
    return None
