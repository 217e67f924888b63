"""Reads from the ledger: the newest checkpoint, Merkle proofs, and entries by subject or grant.

Checkpoints and proofs are public: they reveal hashes, sizes and entry ids, never the content
of an entry. Hashes are standard base64 (RFC 4648 section 4, with padding). Entries are found by
pseudonym; computing a person's pseudonym is the caller's business.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet
from django.db.models.functions import TruncDate
from django.http import Http404

from audit import ledger, tiles
from audit.models import (
    LedgerAlarm,
    LedgerCheckpoint,
    LedgerCosignature,
    LedgerEntry,
    LedgerLeaf,
    LedgerPublicKey,
    LedgerTile,
    Witness,
)
from core.crypto import b64url, handover_verify, jwk_thumbprint, public_key_pem

_LEAVES = LedgerLeaf._meta.db_table
_TILES = LedgerTile._meta.db_table


def checkpoint_latest() -> LedgerCheckpoint | None:
    """Return the newest checkpoint, or None before the first seal."""
    return LedgerCheckpoint.objects.order_by("-tree_size").first()


def _checkpoint_at(tree_size: int | None) -> LedgerCheckpoint:
    checkpoints = LedgerCheckpoint.objects.only("tree_size", "root_hash")
    checkpoint = (
        checkpoints.order_by("-tree_size").first()
        if tree_size is None
        else checkpoints.filter(tree_size=tree_size).first()
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
    """Return the stored leaf hashes of the tree of tree_size, in leaf order (tests and small trees)."""
    hashes = LedgerLeaf.objects.filter(leaf_index__lt=tree_size).order_by("leaf_index")
    return [bytes(h) for h in hashes.values_list("leaf_hash", flat=True)]


def _tiles_fetch(keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Return the stored hashes of tiles: leaf hashes at level 0, audit_ledgertile rows above.

    One statement, whatever the number of tiles: a proof is a handful of round trips, and at
    10M entries the ORM's building of an OR of ranges cost as much as the query itself
    (docs/performance.md, "Proofs from tiles").
    """
    width = tiles.TILE_WIDTH
    parts, params = [], []
    for level, index in keys:
        if level == 0:
            parts.append(
                f"SELECT 0, leaf_index / {width}, leaf_index, leaf_hash FROM {_LEAVES} "  # noqa: S608
                "WHERE leaf_index >= %s AND leaf_index < %s"
            )
            params += [index * width, (index + 1) * width]
        else:
            parts.append(
                f"SELECT level, tile_index, 0, hashes FROM {_TILES} WHERE level = %s AND tile_index = %s"  # noqa: S608
            )
            params += [level, index]
    if not parts:
        return {}
    chunks: dict[tuple[int, int], list[tuple[int, bytes]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        for level, index, position, blob in cursor.fetchall():
            chunks.setdefault((level, index), []).append((position, bytes(blob)))
    return {key: b"".join(blob for _, blob in sorted(rows)) for key, rows in chunks.items()}


def tile_tree(*, tree_size: int) -> tiles.TileTree:
    """Return the tree of the first tree_size leaves as read from tiles (O(log n) reads per proof)."""
    return tiles.TileTree(tree_size, _tiles_fetch)


class TilesNotBuilt(LookupError):
    """The tiles a proof needs are not stored yet (a ledger sealed before tiles existed)."""


def tile_get(*, level: int, index: int, width: int) -> bytes | None:
    """Return the first `width` hashes of a tile as the newest checkpoint's tree has them, or None.

    None when that tree has fewer hashes there: a tile beyond the tree, or a partial tile wider
    than the tree's (C2SP: clients fetch only tiles a checkpoint they verified needs).
    """
    checkpoint = checkpoint_latest()
    if checkpoint is None or not 0 <= level <= tiles.MAX_LEVEL or not 1 <= width <= tiles.TILE_WIDTH:
        return None
    available = (checkpoint.tree_size >> (tiles.TILE_HEIGHT * level)) - index * tiles.TILE_WIDTH
    if index < 0 or width > available:
        return None
    blob = _tiles_fetch([(level, index)]).get((level, index), b"")[: width * tiles.HASH_BYTES]
    return blob if len(blob) == width * tiles.HASH_BYTES else None


def ledger_root_at(*, tree_size: int) -> bytes:
    """Return the root of the ledger's tree over its first tree_size leaves, from tiles.

    tree_size may be any size up to the newest checkpoint's, not only a checkpoint's: a witness or
    a kept checkpoint is compared with what the ledger holds now. Raise ValueError beyond it and
    TilesNotBuilt before the sealer has built the tiles.
    """
    newest = checkpoint_latest()
    if newest is None or not 0 < tree_size <= newest.tree_size:
        raise ValueError(f"tree size {tree_size} is not within the ledger's tree")
    try:
        return tile_tree(tree_size=newest.tree_size).root(tree_size)
    except LookupError as exc:
        raise TilesNotBuilt(str(exc)) from None


def ledger_inclusion_proof(*, entry_id: int, tree_size: int | None = None) -> dict[str, Any]:
    """Prove that a sealed entry is in the tree of a checkpoint (the newest by default), from tiles.

    Raise Http404 when the entry is not sealed, the checkpoint does not exist, or the entry was
    sealed after it; TilesNotBuilt before the sealer has built the tiles.
    """
    checkpoint = _checkpoint_at(tree_size)
    leaf = LedgerLeaf.objects.filter(entry_id=entry_id).values_list("leaf_index", "leaf_hash").first()
    if leaf is None or leaf[0] >= checkpoint.tree_size:
        raise Http404("That entry is not sealed in that checkpoint.")
    leaf_index, digest = leaf
    try:
        proof = tile_tree(tree_size=checkpoint.tree_size).inclusion_proof(leaf_index)
    except LookupError as exc:
        raise TilesNotBuilt(str(exc)) from None
    return {
        "entry_id": entry_id,
        "leaf_index": leaf_index,
        "leaf_hash": ledger.b64(bytes(digest)),
        "tree_size": checkpoint.tree_size,
        "root_hash": ledger.b64(bytes(checkpoint.root_hash)),
        "proof": [ledger.b64(h) for h in proof],
    }


def ledger_consistency_proof(*, first: int, second: int | None = None) -> dict[str, Any]:
    """Prove that the tree of the first `first` leaves is a prefix of checkpoint `second` (newest by default).

    `second` must be a checkpoint's tree size (its root is signed); `first` may be any size from 1
    to it, so a witness can check the tree it cosigned even if that checkpoint is gone. Raise
    Http404 otherwise; TilesNotBuilt before the sealer has built the tiles.
    """
    new = _checkpoint_at(second)
    if not 0 < first <= new.tree_size:
        raise Http404("The first tree size must be between 1 and the second.")
    tree = tile_tree(tree_size=new.tree_size)
    try:
        proof = tree.consistency_proof(first)
        old_root = bytes(new.root_hash) if first == new.tree_size else tree.root(first)
    except LookupError as exc:
        raise TilesNotBuilt(str(exc)) from None
    return {
        "first": first,
        "second": new.tree_size,
        "first_root_hash": ledger.b64(old_root),
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
