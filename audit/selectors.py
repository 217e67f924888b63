"""Reads from the ledger: the newest checkpoint, Merkle proofs, and entries by subject or grant.

Checkpoints and proofs are public: they reveal hashes, sizes and entry ids, never the content
of an entry. Hashes are standard base64 (RFC 4648 section 4, with padding). Entries are found by
pseudonym; computing a person's pseudonym is the caller's business.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet
from django.db.models.functions import TruncDate
from django.http import Http404

from audit import ledger
from audit.merkle import consistency_proof, inclusion_proof, root_from_leaf_hashes
from audit.models import (
    LedgerAlarm,
    LedgerCheckpoint,
    LedgerCosignature,
    LedgerEntry,
    LedgerLeaf,
    LedgerPublicKey,
    Witness,
)
from core.crypto import b64url, handover_verify, jwk_thumbprint, public_key_pem


def checkpoint_latest() -> LedgerCheckpoint | None:
    """Return the newest checkpoint, or None before the first seal."""
    return LedgerCheckpoint.objects.order_by("-tree_size").first()


def _checkpoint_at(tree_size: int | None) -> LedgerCheckpoint:
    checkpoint = (
        checkpoint_latest()
        if tree_size is None
        else LedgerCheckpoint.objects.filter(tree_size=tree_size).first()
    )
    if checkpoint is None:
        raise Http404("No checkpoint at that tree size.")
    return checkpoint


def signing_keys() -> list[LedgerPublicKey]:
    """Return the key history as stored, oldest first, trusted or not (signing_key_chain says which)."""
    return list(LedgerPublicKey.objects.order_by("created_at", "id"))


def signing_keys_public() -> list[bytes]:
    """Return the raw public keys of the key history as stored, oldest first."""
    return [bytes(k.public_key) for k in signing_keys()]


def _first_key(keys: list[LedgerPublicKey]) -> LedgerPublicKey | None:
    first = LedgerCheckpoint.objects.order_by("tree_size").only("note").first()
    if first is None:
        # Before the first seal: the key registered first (ids are handed out in order, so a
        # row inserted later cannot claim to be older, whatever its created_at says).
        return next((k for k in keys if k.predecessor_id is None), None)
    try:
        note = ledger.note_parse(first.note)
    except ValueError:
        return None
    return next((k for k in keys if ledger.note_signer(note, [bytes(k.public_key)]) is not None), None)


def _handed_over(old: LedgerPublicKey, new: LedgerPublicKey) -> bool:
    if new.handover_signature is None or new.possession_signature is None:
        return False
    return handover_verify(
        old_public=bytes(old.public_key),
        new_public=bytes(new.public_key),
        handover_signature=bytes(new.handover_signature),
        possession_signature=bytes(new.possession_signature),
    )


def signing_key_chain() -> list[LedgerPublicKey]:
    """Return the trusted keys, oldest first: the first key and each key it handed over to, in turn.

    The first key is the one that signed the first checkpoint (before any seal, the first key
    registered): trusted on first use, as an auditor pins it by keeping that checkpoint. Every
    later key is trusted only if its predecessor's handover signature and its own possession
    signature verify; what the database says about it (a ledger entry, retired_at) grants nothing.
    """
    keys = list(LedgerPublicKey.objects.order_by("id"))
    chain: list[LedgerPublicKey] = []
    current = _first_key(keys)
    while current is not None and current.kid == jwk_thumbprint(bytes(current.public_key)):
        chain.append(current)
        tip = current
        # Two valid successors would take the old private key; the first wins, the other stays
        # untrusted and verify_ledger names it.
        current = next(
            (k for k in keys if k.predecessor_id == tip.pk and k not in chain and _handed_over(tip, k)),
            None,
        )
    return chain


def signing_keys_trusted_public() -> list[bytes]:
    """Return the raw public keys of the chain of trusted keys, oldest first."""
    return [bytes(k.public_key) for k in signing_key_chain()]


def signing_key_known(*, public_raw: bytes) -> bool | None:
    """Tell whether a public key is in the key history; None while the history is empty."""
    if LedgerPublicKey.objects.filter(public_key=public_raw).exists():
        return True
    return False if LedgerPublicKey.objects.exists() else None


def signing_key_by_kid(*, kid: str) -> bytes | None:
    """Return the trusted raw public key whose RFC 7638 thumbprint is kid (a receipt's `kid`), if any."""
    return next((bytes(k.public_key) for k in signing_key_chain() if k.kid == kid), None)


def signing_key_jwk(public_raw: bytes, kid: str) -> dict[str, str]:
    """Return a public key as the JWK (RFC 8037) that verifies consent receipts."""
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(public_raw), "kid": kid, "alg": "EdDSA", "use": "sig"}


def _key_document(
    key: LedgerPublicKey, origin: str, *, predecessor: LedgerPublicKey | None, current: bool
) -> dict[str, Any]:
    public_raw = bytes(key.public_key)
    return {
        "key_id": ledger.key_id(name=origin, public_raw=public_raw).hex(),
        "kid": key.kid,
        "public_key": ledger.b64(public_raw),
        "public_key_pem": public_key_pem(public_raw),
        "jwk": signing_key_jwk(public_raw, key.kid),
        "created_at": ledger.rfc3339(key.created_at),
        "retired_at": None if key.retired_at is None else ledger.rfc3339(key.retired_at),
        "current": current,
        # The handover, so an outsider who pinned the first key can check every later one.
        "predecessor_kid": None if predecessor is None else predecessor.kid,
        "handover_signature": _b64_or_none(key.handover_signature),
        "possession_signature": _b64_or_none(key.possession_signature),
    }


def _b64_or_none(value: bytes | memoryview | None) -> str | None:
    return None if value is None else ledger.b64(bytes(value))


def checkpoint_document(*, checkpoint: LedgerCheckpoint) -> dict[str, Any]:
    """Return a checkpoint with everything an outside party needs to check its signature.

    `public_key` and `key_id` name the key that signed this checkpoint; `keys` is the chain of
    trusted keys (old keys verify old checkpoints and receipts), each with its handover, the
    newest marked current. A key in the history that no valid handover reaches is left out.
    """
    origin = checkpoint.note.split("\n", 1)[0]
    chain = signing_key_chain()
    keys = [
        _key_document(k, origin, predecessor=chain[i - 1] if i else None, current=i == len(chain) - 1)
        for i, k in enumerate(chain)
    ]
    try:
        note_key_id = ledger.note_parse(checkpoint.note).signatures[0].key_id.hex()
    except (ValueError, IndexError):
        note_key_id = ""
    signer = next((k for k in keys if k["key_id"] == note_key_id), None)
    witnessed = checkpoint_witnessed()
    return {
        "origin": origin,
        "tree_size": checkpoint.tree_size,
        "root_hash": ledger.b64(bytes(checkpoint.root_hash)),
        "created_at": ledger.rfc3339(checkpoint.created_at),
        "note": checkpoint.note,
        "signature": ledger.b64(bytes(checkpoint.signature)),
        "key_id": note_key_id,
        "public_key": signer["public_key"] if signer else None,
        "public_key_pem": signer["public_key_pem"] if signer else None,
        "keys": keys,
        "cosignatures": [cosignature_document(c) for c in cosignatures_of(checkpoint=checkpoint)],
        "witnessed": None if witnessed is None else _witnessed_document(witnessed),
        "witnesses": [witness_document(w) for w in witnesses_all()],
    }


# --- witnesses ---------------------------------------------------------------------------------


def witnesses_all() -> list[Witness]:
    """Return every registered witness, retired or not, oldest first."""
    return list(Witness.objects.order_by("created_at", "id"))


def witness_taken(*, name: str, public_raw: bytes) -> str | None:
    """Tell whether a name ("name") or a key ("key") is registered to a witness already (retired too)."""
    if Witness.objects.filter(name=name).exists():
        return "name"
    if Witness.objects.filter(public_key=public_raw).exists():
        return "key"
    return None


def witness_by_id(*, witness_id: int) -> Witness | None:
    return Witness.objects.filter(pk=witness_id).first()


def witness_by_key(*, name: str, key_id: bytes) -> Witness | None:
    """Return the registered witness of a cosignature line's name and key id, retired or not."""
    return Witness.objects.filter(name=name, key_id=key_id).first()


def witness_document(witness: Witness) -> dict[str, Any]:
    public_raw = bytes(witness.public_key)
    return {
        "name": witness.name,
        "key_id": bytes(witness.key_id).hex(),
        "public_key": ledger.b64(public_raw),
        "vkey": ledger.witness_vkey(name=witness.name, public_raw=public_raw),
        "created_at": ledger.rfc3339(witness.created_at),
        "retired_at": None if witness.retired_at is None else ledger.rfc3339(witness.retired_at),
    }


def cosignature_line_of(cosignature: LedgerCosignature) -> str:
    """Return a stored cosignature as the signature line the witness wrote (ends with a newline)."""
    return ledger.cosignature_line(
        name=cosignature.witness.name,
        public_raw=bytes(cosignature.witness.public_key),
        timestamp=cosignature.timestamp,
        signature=bytes(cosignature.signature),
    )


def cosignature_document(cosignature: LedgerCosignature) -> dict[str, Any]:
    return {
        "witness": cosignature.witness.name,
        "key_id": bytes(cosignature.witness.key_id).hex(),
        "timestamp": cosignature.timestamp,
        "line": cosignature_line_of(cosignature).rstrip("\n"),
    }


def cosignatures_of(*, checkpoint: LedgerCheckpoint) -> list[LedgerCosignature]:
    """Return the stored cosignatures of exactly this checkpoint (its size and root), by witness age."""
    return list(
        LedgerCosignature.objects.filter(
            tree_size=checkpoint.tree_size, root_hash=bytes(checkpoint.root_hash)
        )
        .select_related("witness")
        .order_by("witness__created_at", "witness_id")
    )


def checkpoint_witnessed() -> LedgerCheckpoint | None:
    """Return the newest checkpoint that any witness cosigned (same size and root), or None."""
    cosigned = LedgerCosignature.objects.filter(
        tree_size=OuterRef("tree_size"), root_hash=OuterRef("root_hash")
    )
    return LedgerCheckpoint.objects.filter(Exists(cosigned)).order_by("-tree_size").first()


def checkpoint_note_cosigned(checkpoint: LedgerCheckpoint) -> str:
    """Return a checkpoint's signed note with its witnesses' cosignature lines appended (C2SP)."""
    lines = [cosignature_line_of(c) for c in cosignatures_of(checkpoint=checkpoint)]
    return ledger.note_with_cosignatures(checkpoint.note, lines)


def _witnessed_document(checkpoint: LedgerCheckpoint) -> dict[str, Any]:
    cosignatures = cosignatures_of(checkpoint=checkpoint)
    return {
        "tree_size": checkpoint.tree_size,
        "root_hash": ledger.b64(bytes(checkpoint.root_hash)),
        "note": ledger.note_with_cosignatures(
            checkpoint.note, [cosignature_line_of(c) for c in cosignatures]
        ),
        "cosignatures": [cosignature_document(c) for c in cosignatures],
    }


def witness_coverage() -> list[int]:
    """Return each non-retired witness's newest cosigned tree size, smallest first (one query).

    An entry at leaf index i is covered by the witnesses whose size is greater than i. A witness
    that has cosigned nothing is left out.
    """
    sizes = (
        Witness.objects.filter(retired_at__isnull=True)
        .annotate(newest=Max("cosignatures__tree_size"))
        .filter(newest__isnull=False)
        .values_list("newest", flat=True)
    )
    return sorted(sizes)


def witnesses_overview() -> list[dict[str, Any]]:
    """Return every witness with its cosignature count and its newest cosignature (size, when)."""
    rows = []
    witnesses = (
        Witness.objects.select_related("registered_by")
        .annotate(count=Count("cosignatures"), newest=Max("cosignatures__tree_size"))
        .order_by("created_at", "id")
    )
    for witness in witnesses:
        newest = (
            LedgerCosignature.objects.filter(witness=witness, tree_size=witness.newest).first()
            if witness.newest is not None
            else None
        )
        rows.append(
            {
                "witness": witness,
                "key_id": bytes(witness.key_id).hex(),
                "vkey": ledger.witness_vkey(name=witness.name, public_raw=bytes(witness.public_key)),
                "registered_by": witness.registered_by.get_username(),
                "count": witness.count,
                "newest_size": witness.newest,
                "newest_at": None if newest is None else newest.created_at,
            }
        )
    return rows


def alarms_all() -> QuerySet[LedgerAlarm]:
    """Return every alarm, newest first, with the witness that reported it."""
    return LedgerAlarm.objects.select_related("reported_by").order_by("-created_at", "-id")


def alarm_count() -> int:
    return LedgerAlarm.objects.count()


def leaf_hashes(tree_size: int) -> list[bytes]:
    """Return the stored leaf hashes of the tree of tree_size, in leaf order."""
    # Fine up to a few million leaves (32 bytes each); beyond that, store interior nodes.
    hashes = LedgerLeaf.objects.filter(leaf_index__lt=tree_size).order_by("leaf_index")
    return [bytes(h) for h in hashes.values_list("leaf_hash", flat=True)]


def ledger_root_at(*, tree_size: int) -> bytes:
    """Return the root of the ledger's tree of the first tree_size stored leaves.

    Raise ValueError if fewer leaves are stored.
    """
    hashes = leaf_hashes(tree_size)
    if len(hashes) != tree_size:
        raise ValueError(f"the ledger holds {len(hashes)} leaves, fewer than {tree_size}")
    return root_from_leaf_hashes(hashes)


def ledger_inclusion_proof(*, entry_id: int, tree_size: int | None = None) -> dict[str, Any]:
    """Prove that a sealed entry is in the tree of a checkpoint (the newest by default).

    Raise Http404 when the entry is not sealed, the checkpoint does not exist, or the entry was
    sealed after it.
    """
    checkpoint = _checkpoint_at(tree_size)
    leaf = LedgerLeaf.objects.filter(entry_id=entry_id).first()
    if leaf is None or leaf.leaf_index >= checkpoint.tree_size:
        raise Http404("That entry is not sealed in that checkpoint.")
    proof = inclusion_proof(leaf.leaf_index, leaf_hashes(checkpoint.tree_size))
    return {
        "entry_id": entry_id,
        "leaf_index": leaf.leaf_index,
        "leaf_hash": ledger.b64(bytes(leaf.leaf_hash)),
        "tree_size": checkpoint.tree_size,
        "root_hash": ledger.b64(bytes(checkpoint.root_hash)),
        "proof": [ledger.b64(h) for h in proof],
    }


def ledger_consistency_proof(*, first: int, second: int | None = None) -> dict[str, Any]:
    """Prove that the tree of checkpoint `first` is a prefix of checkpoint `second` (newest by default).

    Raise Http404 unless both sizes are checkpoints and first <= second.
    """
    old, new = _checkpoint_at(first), _checkpoint_at(second)
    if old.tree_size > new.tree_size:
        raise Http404("The first tree size must not exceed the second.")
    proof = consistency_proof(old.tree_size, leaf_hashes(new.tree_size))
    return {
        "first": old.tree_size,
        "second": new.tree_size,
        "first_root_hash": ledger.b64(bytes(old.root_hash)),
        "second_root_hash": ledger.b64(bytes(new.root_hash)),
        "proof": [ledger.b64(h) for h in proof],
    }


def entries_for_subject(*, subject: str) -> QuerySet[LedgerEntry]:
    """Return every ledger entry about one pseudonymous subject, newest first (with its leaf)."""
    return LedgerEntry.objects.filter(subject=subject).select_related("leaf").order_by("-created_at", "-id")


def last_access_by_grant(*, grant_ids: list[str]) -> dict[str, dt.datetime]:
    """Return the time of the latest vendor access under each grant."""
    rows = (
        LedgerEntry.objects.filter(grant_id__in=grant_ids, kind__startswith="access.")
        .values("grant_id")
        .annotate(last=Max("created_at"))
    )
    return {row["grant_id"]: row["last"] for row in rows}


def client_accesses_by_day(
    *, client_ids: list[str], since: dt.datetime
) -> dict[tuple[str, dt.date], tuple[int, int]]:
    """Count the API requests recorded under grants per client and day (UTC) since a time.

    Return {(client_id, day): (requests, refused)}: every `access.*` entry a client's request
    wrote, and how many of them were refused (`access.denied`). Requests refused before a grant
    is known (a bad token, a rate limit) write no entry and are not counted.
    """
    rows = (
        LedgerEntry.objects.filter(
            created_at__gte=since, actor_type="client", actor_id__in=client_ids, kind__startswith="access."
        )
        .annotate(day=TruncDate("created_at", tzinfo=dt.UTC))
        .values("actor_id", "day")
        .annotate(requests=Count("id"), refused=Count("id", filter=Q(outcome="denied")))
    )
    return {(row["actor_id"], row["day"]): (row["requests"], row["refused"]) for row in rows}


def entry_leaf_text(*, entry_id: int) -> str:
    """The canonical JSON an entry's leaf hash covers, as text (the person's proof page shows it)."""
    row = LedgerEntry.objects.filter(pk=entry_id).values_list(*ledger.ENTRY_COLUMNS).first()
    if row is None:
        raise Http404("No such ledger entry.")
    return ledger.leaf_data(row).decode()


def accesses_for_grant(*, grant_id: str, since: dt.datetime, until: dt.datetime) -> dict[str, int]:
    """Count a grant's vendor accesses in [since, until) by kind (`access.read`, `access.denied`, …)."""
    rows = (
        LedgerEntry.objects.filter(
            grant_id=grant_id, kind__startswith="access.", created_at__gte=since, created_at__lt=until
        )
        .values("kind")
        .annotate(n=Count("id"))
    )
    return {row["kind"]: row["n"] for row in rows}
