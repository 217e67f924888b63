"""The ledger's byte-level formats: the leaf content of an entry and the signed checkpoint note.

Pure functions over plain values, shared by the sealer, the verifier and the proof selectors.
docs/ledger.md is the outside reader's copy of these formats; change both together.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
# Ours are about 130 characters; a note with witness cosignatures stays far below this.
MAX_NOTE_CHARS = 16_384


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
    """Sign a checkpoint; return the whole note (body, blank line, signature line) and the signature.

    The signature line carries the key id (`key_id`), so a verifier picks the key it was
    signed with from the key history.
    """
    body = checkpoint_body(origin=origin, tree_size=tree_size, root_hash=root_hash)
    signature = key.sign(body.encode())
    line = signature_line(name=origin, public_raw=key.public_raw(), signature=signature)
    return f"{body}\n{line}", signature


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class Note:
    """A parsed checkpoint note: what its body states and who signed it."""

    origin: str
    tree_size: int
    root_hash: bytes
    body: str
    signatures: tuple[NoteSignature, ...]


def note_parse(text: str) -> Note:
    """Parse a C2SP checkpoint note; raise ValueError saying what is malformed.

    Trailing blank lines are ignored (`jq -r .note > file` adds one); everything else must be
    exact, since the signature covers the body byte for byte.
    """
    if len(text) > MAX_NOTE_CHARS:
        raise ValueError(f"a checkpoint note is at most {MAX_NOTE_CHARS} characters")
    text = text.rstrip("\n") + "\n"
    body, blank, signed = text.partition("\n\n")
    if not blank:
        raise ValueError("no blank line between the note body and its signatures")
    lines = body.split("\n")
    if len(lines) != 3:
        raise ValueError("the note body must have three lines: origin, tree size, root hash")
    origin, size_text, root_text = lines
    if not origin or origin != origin.strip():
        raise ValueError("the note's origin line is empty or padded")
    if not (size_text.isascii() and size_text.isdigit()) or (size_text != "0" and size_text[0] == "0"):
        raise ValueError(f"the note's tree size {size_text[:40]!r} is not a decimal number")
    root_hash = _b64_exact(root_text, "root hash")
    if len(root_hash) != HASH_BYTES:
        raise ValueError("the note's root hash is not 32 bytes")
    signatures = []
    for line in signed.rstrip("\n").split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _EM_DASH or not parts[1]:
            raise ValueError("a signature line must read: em dash, space, key name, space, base64")
        blob = _b64_exact(parts[2], "signature")
        if len(blob) < 5:
            raise ValueError("a signature line holds less than a key id and a signature")
        signatures.append(NoteSignature(name=parts[1], key_id=blob[:4], signature=blob[4:]))
    return Note(
        origin=origin,
        tree_size=int(size_text),
        root_hash=root_hash,
        body=body + "\n",
        signatures=tuple(signatures),
    )


def _b64_exact(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the note's {what} is not standard base64") from None
    if b64(raw) != text:
        raise ValueError(f"the note's {what} is not canonical base64")
    return raw


def note_signer(note: Note, keys: Iterable[bytes]) -> bytes | None:
    """Return the public key (from keys) whose Ed25519 signature of the note verifies, or None.

    Only signature lines under the note's own origin count; others (witness cosignatures) are
    ignored, as C2SP signed-note verifiers do with keys they do not know.
    """
    by_id: dict[bytes, list[bytes]] = {}
    for public_raw in keys:
        by_id.setdefault(key_id(name=note.origin, public_raw=public_raw), []).append(public_raw)
    for line in note.signatures:
        if line.name != note.origin:
            continue
        for public_raw in by_id.get(line.key_id, []):
            if verify_signature(public_raw, line.signature, note.body.encode()):
                return public_raw
    return None


def note_problem(
    *,
    note: str,
    keys: Iterable[bytes],
    tree_size: int,
    root_hash: bytes,
    signature: bytes,
    stored_key_id: bytes | None,
) -> tuple[str | None, bytes | None]:
    """Check a stored checkpoint's note against its row and the key history.

    Return (why it is not a valid signed checkpoint of tree_size and root_hash, None) or
    (None, the public key that signed it).
    """
    try:
        parsed = note_parse(note)
    except ValueError as exc:
        return f"its note cannot be read: {exc}", None
    if (
        parsed.tree_size != tree_size
        or parsed.root_hash != root_hash
        or len(parsed.signatures) != 1
        or parsed.signatures[0].name != parsed.origin
        or parsed.signatures[0].signature != signature
    ):
        return "its note does not state this tree size, root and signature", None
    note_key_id = parsed.signatures[0].key_id
    if stored_key_id is not None and stored_key_id != note_key_id:
        return f"its key id {stored_key_id.hex()} differs from its note's, {note_key_id.hex()}", None
    keys = list(keys)
    if not any(key_id(name=parsed.origin, public_raw=k) == note_key_id for k in keys):
        return f"its key id {note_key_id.hex()} is not in the key history", None
    signer = note_signer(parsed, keys)
    if signer is None:
        return f"its signature does not verify with the key of its key id, {note_key_id.hex()}", None
    return None, signer


# --- witness cosignatures (C2SP tlog-cosignature v1, Ed25519) -----------------------------------
# A witness checks that each checkpoint it sees extends the last one it cosigned, then signs
# "cosignature/v1\ntime <T>\n" + the checkpoint body. Its signature line is
# "— <name> base64(key id(4) || uint64 big-endian T || Ed25519 signature(64))", and its key id is
# SHA-256(name || 0x0A || 0x04 || public key)[:4]. docs/ledger.md, "Witnesses", is the outside copy.

_COSIGNATURE_TYPE = b"\x04"
COSIGNATURE_CONTEXT = "cosignature/v1\n"
_TIMESTAMP_BYTES = 8
_SIGNATURE_BYTES = 64
# A witness key name: schema-less URL-ish, no spaces and no '+' (the vkey separator).
WITNESS_NAME = re.compile(r"[A-Za-z0-9._/:-]{1,100}")


def witness_key_id(*, name: str, public_raw: bytes) -> bytes:
    """Return the 4-byte key id of a witness's cosignature key: SHA-256(name || 0x0A || 0x04 || key)[:4]."""
    return sha256(name.encode() + b"\n" + _COSIGNATURE_TYPE + public_raw)[:4]


def witness_vkey(*, name: str, public_raw: bytes) -> str:
    """Return a witness key as a C2SP verifier key: name+hex key id+base64(0x04 || key)."""
    key_hex = witness_key_id(name=name, public_raw=public_raw).hex()
    return f"{name}+{key_hex}+{b64(_COSIGNATURE_TYPE + public_raw)}"


def witness_name_check(name: str) -> str:
    """Return name if it is a valid witness key name; raise ValueError saying why not."""
    if not WITNESS_NAME.fullmatch(name):
        raise ValueError(
            "a witness name is 1-100 letters, digits and . _ / : - (no spaces, no '+'), "
            "e.g. witness.example.org/alice"
        )
    return name


def witness_vkey_parse(text: str) -> tuple[str, bytes]:
    """Parse a C2SP cosignature verifier key; return (name, raw 32-byte public key).

    Raise ValueError naming what is wrong: the form, the key type (0x04), the key's length, or a
    key id that does not match the name and key.
    """
    # The base64 key may itself hold '+': only the first two separate.
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise ValueError("a verifier key reads name+keyid+base64key")
    name, id_hex, key_text = parts
    witness_name_check(name)
    if not re.fullmatch(r"[0-9a-f]{8}", id_hex):
        raise ValueError("the verifier key's key id is not 8 lower-case hex digits")
    try:
        blob = base64.b64decode(key_text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the verifier key's key is not standard base64") from None
    if len(blob) != 1 + HASH_BYTES or blob[:1] != _COSIGNATURE_TYPE:
        raise ValueError(
            "the verifier key is not a cosignature/v1 key: base64 of 0x04 then a 32-byte Ed25519 key"
        )
    public_raw = blob[1:]
    if witness_key_id(name=name, public_raw=public_raw).hex() != id_hex:
        raise ValueError(f"the verifier key's key id {id_hex} does not match its name and key")
    return name, public_raw


def cosigned_message(*, body: str, timestamp: int) -> bytes:
    """Return the bytes a witness signs: the cosignature/v1 header, its time, the checkpoint body."""
    return f"{COSIGNATURE_CONTEXT}time {timestamp}\n{body}".encode()


def cosignature_line(*, name: str, public_raw: bytes, timestamp: int, signature: bytes) -> str:
    """Return a witness's signature line over a checkpoint (ends with a newline)."""
    blob = (
        witness_key_id(name=name, public_raw=public_raw)
        + timestamp.to_bytes(_TIMESTAMP_BYTES, "big")
        + signature
    )
    return f"{_EM_DASH} {name} {b64(blob)}\n"


def cosignature_sign(*, key: SigningKey, name: str, body: str, timestamp: int) -> str:
    """Cosign a checkpoint body as witness `name` at POSIX time `timestamp`; return the signature line."""
    signature = key.sign(cosigned_message(body=body, timestamp=timestamp))
    return cosignature_line(name=name, public_raw=key.public_raw(), timestamp=timestamp, signature=signature)


@dataclass(frozen=True)
class Cosignature:
    """A witness's signature line, split: whose key (name, key id), when, and the signature."""

    name: str
    key_id: bytes
    timestamp: int
    signature: bytes


def cosignature_split(line: NoteSignature) -> Cosignature | None:
    """Read a parsed signature line as a cosignature/v1 one; None if its length is not one."""
    if len(line.signature) != _TIMESTAMP_BYTES + _SIGNATURE_BYTES:
        return None
    return Cosignature(
        name=line.name,
        key_id=line.key_id,
        timestamp=int.from_bytes(line.signature[:_TIMESTAMP_BYTES], "big"),
        signature=line.signature[_TIMESTAMP_BYTES:],
    )


def cosignature_verify(*, public_raw: bytes, body: str, timestamp: int, signature: bytes) -> bool:
    """Return whether signature is the witness key's cosignature/v1 of body at timestamp."""
    return verify_signature(public_raw, signature, cosigned_message(body=body, timestamp=timestamp))


def note_log_signed(note: Note, log_key: bytes) -> str:
    """Return the note with only the log's own signature line(s) of log_key: the log-signed checkpoint."""
    lines = [
        f"{_EM_DASH} {s.name} {b64(s.key_id + s.signature)}\n"
        for s in note.signatures
        if s.name == note.origin and s.key_id == key_id(name=note.origin, public_raw=log_key)
    ]
    return note.body + "\n" + "".join(lines)


def note_with_cosignatures(note: str, lines: Iterable[str]) -> str:
    """Append cosignature lines to a signed note, C2SP style (after the log's own signature)."""
    return note.rstrip("\n") + "\n" + "".join(lines)
