"""Writes to the ledger: append an entry, seal entries into signed checkpoints, verify it all.

`ledger_append` runs inside the caller's transaction, so an action and its entry commit or roll
back together. The sealer takes no lock that appends need (docs/ledger.md, "Sealing").
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Sum, Window
from django.db.models.functions import Lead, Length
from django.utils import timezone

from audit import ledger, summaries, tiles
from audit.merkle import CompactRange, consistency_proof, leaf_hash, root_from_leaf_hashes, verify_consistency
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
from audit.selectors import (
    TilesNotBuilt,
    checkpoint_latest,
    leaf_hashes,
    ledger_root_at,
    signing_key_chain,
    signing_keys_public,
    signing_keys_trusted_public,
    tile_tree,
)
from core.crypto import (
    SigningKey,
    handover_statement,
    jwk_thumbprint,
    possession_statement,
    public_key_check,
    sha256,
    verify_signature,
)
from core.keys import signing_key

MAX_SCOPES = 32
MAX_RECORD_IDS = 200
CHUNK_SIZE = 10_000
# Ids, codes and pseudonyms only: no spaces, no '@', so an e-mail or a sentence cannot slip in.
_ID = re.compile(r"[A-Za-z0-9_.:/+=-]{1,64}")
# A list of them joined by commas (which no id holds): a page's 50 ids checked in one match.
_ID_LIST = re.compile(rf"{_ID.pattern}(?:,{_ID.pattern})*")
_SCOPE = re.compile(r"[a-z0-9_.:-]{1,64}")
_SUBJECT = re.compile(r"p-[a-z2-7]{32}")
# A short reason code or phrase ("insufficient_scope", "grant expired"), never free text.
_REASON = re.compile(r"[A-Za-z0-9_.:,/ -]{0,120}")
_KINDS = frozenset(LedgerEntry.Kind.values)
_ACTOR_TYPES = frozenset(LedgerEntry.ActorType.values)
_OUTCOMES = frozenset(LedgerEntry.Outcome.values)
# pg_advisory_xact_lock key of the sealer: "ledger" in ASCII.
_SEALER_LOCK = 0x6C6564676572

Progress = Callable[[int], None]


def _check(value: str, pattern: re.Pattern[str], what: str, *, blank: bool = False) -> str:
    if blank and value == "":
        return value
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"ledger {what} {value!r} is not a plain id or code")
    return value


def ledger_append(
    *,
    kind: str,
    actor_type: str,
    actor_id: str | uuid.UUID,
    subject: str = "",
    grant_id: str | uuid.UUID = "",
    scopes: Iterable[str] = (),
    record_ids: Iterable[str | uuid.UUID] = (),
    record_count: int | None = None,
    outcome: str = LedgerEntry.Outcome.ALLOWED,
    reason: str = "",
    request_id: str = "",
    alone: bool = False,
) -> LedgerEntry:
    """Record one action in the ledger, inside the caller's transaction.

    Refuse to run outside `transaction.atomic`: an entry must commit or roll back with the action
    it records. Only an action that writes nothing else (a read) may pass `alone=True`: outside a
    transaction its entry is then one INSERT that commits on its own, before the answer is sent.
    Keep at most MAX_RECORD_IDS ids; `record_count` defaults to the number of ids given, so it
    stays the full count when the list is cut.
    """
    if not alone and not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger_append must run inside the caller's transaction.atomic block")
    if kind not in _KINDS:
        raise ValueError(f"unknown ledger entry kind {kind!r}")
    if actor_type not in _ACTOR_TYPES:
        raise ValueError(f"unknown ledger actor type {actor_type!r}")
    if outcome not in _OUTCOMES:
        raise ValueError(f"unknown ledger outcome {outcome!r}")
    scope_list = sorted({_check(s, _SCOPE, "scope") for s in scopes})
    if len(scope_list) > MAX_SCOPES:
        raise ValueError(f"a ledger entry holds at most {MAX_SCOPES} scopes")
    ids = [str(r) for r in record_ids]
    joined = ",".join(ids)
    # The count catches an id that itself holds a comma ("a,b" would pass as two ids).
    if ids and (joined.count(",") != len(ids) - 1 or not _ID_LIST.fullmatch(joined)):
        for r in ids:  # name the one that is not an id
            _check(r, _ID, "record id")
    count = len(ids) if record_count is None else record_count
    if count < 0:
        raise ValueError("record_count cannot be negative")
    entry = _entry_insert(
        {
            "created_at": timezone.now(),
            "kind": kind,
            "actor_type": actor_type,
            "actor_id": _check(str(actor_id), _ID, "actor id"),
            "subject": _check(subject, _SUBJECT, "subject", blank=True),
            "grant_id": _check(str(grant_id), _ID, "grant id", blank=True),
            "scopes": scope_list,
            "record_ids": ids[:MAX_RECORD_IDS],
            "record_count": count,
            "outcome": outcome,
            "reason": _check(reason, _REASON, "reason", blank=True),
            "request_id": _check(request_id, _ID, "request id", blank=True),
        }
    )
    if kind in summaries.SUMMARY_KINDS:
        summaries.grant_entry_apply(entry=entry)
    return entry


# Every vendor request appends an entry; Model.save compiled this INSERT anew each time, about a
# twentieth of a request (docs/performance.md). It is written once, from the model's columns.
_ENTRY_FIELDS = tuple(f for f in LedgerEntry._meta.concrete_fields if not f.primary_key)


@lru_cache(maxsize=4)
def _entry_insert_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.get_attname_column()[1] or f.attname) for f in _ENTRY_FIELDS)
    marks = ", ".join(["%s"] * len(_ENTRY_FIELDS))
    table = quote(LedgerEntry._meta.db_table)
    return f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING {quote('id')}"  # noqa: S608


def _entry_insert(values: dict[str, Any]) -> LedgerEntry:
    """Insert one entry of every column's value (as Model.save would prepare them); return it."""
    params = [f.get_db_prep_save(values[f.attname], connection) for f in _ENTRY_FIELDS]
    with connection.cursor() as cursor:
        cursor.execute(_entry_insert_sql(connection.vendor), params)
        (pk,) = cursor.fetchone()
    attnames = ["id", *(f.attname for f in _ENTRY_FIELDS)]
    return LedgerEntry.from_db(connection.alias, attnames, [pk, *(values[f.attname] for f in _ENTRY_FIELDS)])


def _take_sealer_lock() -> None:
    # Only sealers take this lock; appends never wait for it. SQLite lets one writer in anyway.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SEALER_LOCK])


def _tree_state() -> CompactRange:
    last = LedgerCheckpoint.objects.order_by("-tree_size").first()
    if last is None:
        tree = CompactRange()
    else:
        tree = CompactRange.from_list(last.tree_size, ledger.split_hashes(bytes(last.compact_range)))
    top = LedgerLeaf.objects.aggregate(top=Max("leaf_index"))["top"]
    leaves = 0 if top is None else top + 1
    if leaves != tree.size:
        raise RuntimeError(
            f"the ledger has {leaves} leaves but its newest checkpoint covers {tree.size}; run verify_ledger"
        )
    return tree


def _tiles_write(changed: list[tuple[int, int, bytes]]) -> None:
    # A tile only grows (trigger, migration 0013): an upsert extends the right-edge tile.
    LedgerTile.objects.bulk_create(
        [LedgerTile(level=level, tile_index=index, hashes=hashes) for level, index, hashes in changed],
        update_conflicts=True,
        unique_fields=["level", "tile_index"],
        update_fields=["hashes"],
    )


def _tiles_in_step(tree_size: int) -> bool:
    """Tell whether the stored tiles are exactly the tree's of tree_size (count and bytes per level)."""
    stored = {
        row["level"]: (row["n"], row["total"] or 0)
        for row in LedgerTile.objects.values("level").annotate(n=Count("id"), total=Sum(Length("hashes")))
    }
    expected = {}
    for level in range(1, tiles.top_level(tree_size) + 1):
        hashes = tree_size >> (tiles.TILE_HEIGHT * level)
        expected[level] = (tiles.tiles_at(tree_size, level), hashes * tiles.HASH_BYTES)
    return stored == expected


def _tiles_edge(tree_size: int) -> dict[int, bytes]:
    """Return the partial tile of each level (>= 1) of the tree of tree_size, as stored."""
    edge: dict[int, bytes] = {}
    for level in range(1, tiles.top_level(tree_size) + 1):
        width = tiles.edge_width(tree_size, level)
        if width:
            index = tree_size >> (tiles.TILE_HEIGHT * (level + 1))
            stored = LedgerTile.objects.get(level=level, tile_index=index)
            edge[level] = bytes(stored.hashes)
    return edge


def _tiles_rebuild(tree_size: int, chunk_size: int) -> None:
    """Write every tile of the tree of tree_size from the stored leaves (a ledger sealed before tiles)."""
    writer = tiles.TileWriter(0, {})
    tree = CompactRange()
    for lo in range(0, tree_size, chunk_size):
        hashes = (
            LedgerLeaf.objects.filter(leaf_index__gte=lo, leaf_index__lt=min(lo + chunk_size, tree_size))
            .order_by("leaf_index")
            .values_list("leaf_hash", flat=True)
        )
        for digest in hashes:
            tree.append(bytes(digest), writer)
        _tiles_write(writer.take())


def _tile_writer(tree_size: int, chunk_size: int) -> tiles.TileWriter:
    """Return the writer that continues the tiles from tree_size, building missing tiles first."""
    if not _tiles_in_step(tree_size):
        try:
            with transaction.atomic():
                _tiles_rebuild(tree_size, chunk_size)
        except DatabaseError as exc:
            raise RuntimeError(
                f"the stored tiles do not match the leaves ({exc}); run verify_ledger"
            ) from None
        if not _tiles_in_step(tree_size):
            raise RuntimeError("the stored tiles cover more than the newest checkpoint; run verify_ledger")
    return tiles.TileWriter(tree_size, _tiles_edge(tree_size))


def _unsealed_chunks(chunk_size: int) -> Iterator[list[tuple[Any, ...]]]:
    leaves = LedgerLeaf.objects.filter(entry_id=OuterRef("pk"))
    entries = LedgerEntry.objects.order_by("id")
    after: int | None = None
    while True:
        # Bounding both sides by the page start keeps each page's anti-join about its own size.
        if after is None:
            page = entries.filter(~Exists(leaves))
        else:
            page = entries.filter(~Exists(leaves.filter(entry_id__gt=after)), id__gt=after)
        rows = list(page.values_list(*ledger.ENTRY_COLUMNS)[:chunk_size])
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def _leaves_insert(leaves: list[tuple[int, int, bytes]]) -> None:
    # COPY on PostgreSQL, executemany elsewhere: model instances and bulk_create cost more than
    # hashing the entries does.
    table = connection.ops.quote_name(LedgerLeaf._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} (leaf_index, entry_id, leaf_hash) FROM STDIN") as copy:
                for leaf in leaves:
                    copy.write_row(leaf)
        else:
            cursor.executemany(
                f"INSERT INTO {table} (leaf_index, entry_id, leaf_hash) VALUES (%s, %s, %s)",  # noqa: S608
                leaves,
            )


def ledger_seal(
    *, chunk_size: int = CHUNK_SIZE, on_progress: Progress | None = None
) -> LedgerCheckpoint | None:
    """Seal every committed, unsealed entry (see _seal), rebuilding the summaries first if asked.

    The grant summary is rebuilt before the sealing transaction, a batch of grants per short
    transaction, so grant changes never wait for the whole rebuild (audit.summaries).
    """
    if summaries.rebuild_pending():
        summaries.grants_rebuild()
    return _seal(chunk_size=chunk_size, on_progress=on_progress)


@transaction.atomic
def _seal(*, chunk_size: int, on_progress: Progress | None) -> LedgerCheckpoint | None:
    """Give every committed, unsealed entry the next leaf index and sign a checkpoint over them.

    Write the tiles of the grown tree in the same transaction (building them from the leaves first
    on a ledger sealed before tiles existed), and add the sealed entries to the auditor's counts
    (rebuilding every summary first when a rebuild is pending). Return the new checkpoint, or
    None when there was nothing to seal. Entries are taken in id order; one whose transaction
    commits after a seal simply gets a later index at the next.
    """
    _take_sealer_lock()
    # Every run checks the key (and registers it on first use), not only runs that sign: a
    # sealer configured with a key the history does not know fails at once, loudly.
    key = signing_key_use()
    tree = _tree_state()
    start = tree.size
    writer = _tile_writer(tree.size, chunk_size)
    if summaries.rebuild_pending():
        summaries.counts_rebuild()
    counts = summaries.SealCounts()
    for rows in _unsealed_chunks(chunk_size):
        leaves = []
        counts.prepare(rows)
        for row in rows:
            digest = leaf_hash(ledger.leaf_data(row))
            leaves.append((tree.size, row[0], digest))
            tree.append(digest, writer)
            counts.add(row)
        _leaves_insert(leaves)
        _tiles_write(writer.take())
        counts.write()
        if on_progress:
            on_progress(len(rows))
    if tree.size == start:
        return None
    root = tree.root()
    origin = ledger.origin()
    note, signature = ledger.note_sign(key=key, origin=origin, tree_size=tree.size, root_hash=root)
    return LedgerCheckpoint.objects.create(
        tree_size=tree.size,
        root_hash=root,
        compact_range=ledger.join_hashes(tree.to_list()),
        note=note,
        signature=signature,
        key_id=ledger.key_id(name=origin, public_raw=key.public_raw()),
    )


# --- signing keys ------------------------------------------------------------------------------


class SigningKeyUnknown(RuntimeError):
    """The configured signing key's public half is not in the key history."""


@transaction.atomic
def signing_key_use() -> SigningKey:
    """Return the configured signing key, refusing one whose public half is not in the key history.

    On first use with an empty history, register the key: at once on a ledger with no checkpoint
    yet, and on one sealed before the history existed only if it signed the newest checkpoint.
    Raise SigningKeyUnknown otherwise: signing with a key nobody can look up would leave
    checkpoints and receipts that no longer verify (docs/ledger.md, "Signing keys").
    """
    key = signing_key()
    public_raw = key.public_raw()
    if LedgerPublicKey.objects.filter(public_key=public_raw).exists():
        return key
    kid = jwk_thumbprint(public_raw)
    if LedgerPublicKey.objects.exists():
        raise SigningKeyUnknown(
            f"the configured VRM_LEDGER_SIGNING_KEY (kid {kid}) is not in the key history: configure "
            "the key the history names as current, or introduce a new key with rotate_signing_key"
        )
    newest = checkpoint_latest()
    if newest is not None:
        try:
            signer = ledger.note_signer(ledger.note_parse(newest.note), [public_raw])
        except ValueError:
            signer = None
        if signer is None:
            raise SigningKeyUnknown(
                f"the configured VRM_LEDGER_SIGNING_KEY (kid {kid}) did not sign the newest "
                f"checkpoint (tree size {newest.tree_size}); configure the key that did"
            )
    # ignore_conflicts: two processes may register the same key on their first use at once.
    LedgerPublicKey.objects.bulk_create(
        [LedgerPublicKey(public_key=public_raw, kid=kid)], ignore_conflicts=True
    )
    return key


@dataclass(frozen=True)
class SigningKeyRotation:
    old_kid: str
    new_kid: str
    handover: LedgerCheckpoint


ROTATION_ACTOR = "rotate_signing_key"


@transaction.atomic
def signing_key_rotate(*, public_raw: bytes, possession_signature: bytes) -> SigningKeyRotation:
    """Make a new public key the current signing key, handed over by the old one.

    The configured (old) key signs core.crypto.handover_statement naming the new key; the new
    key's holder must have signed possession_statement (`possession_signature`). Both signatures
    are stored on the new key's row, and that is what makes it trusted. Record the rotation in a
    `key.signing_rotated` entry sealed under the old key, then retire the old key. The new
    private key never reaches this function.
    """
    try:
        public_key_check(public_raw)
    except ValueError as exc:
        raise ValueError(f"the new key is not usable: {exc}") from None
    old = signing_key_use()
    old_public = old.public_raw()
    old_kid, new_kid = jwk_thumbprint(old_public), jwk_thumbprint(public_raw)
    chain = signing_key_chain()
    if not chain or bytes(chain[-1].public_key) != old_public:
        raise SigningKeyUnknown(
            f"the configured VRM_LEDGER_SIGNING_KEY (kid {old_kid}) is not the newest key of the chain "
            "of handovers, so a key it hands over to would not be trusted; run verify_ledger"
        )
    if LedgerPublicKey.objects.filter(public_key=public_raw).exists():
        raise ValueError("the new key is already in the key history; generate a fresh one")
    if not verify_signature(
        public_raw, possession_signature, possession_statement(old_public=old_public, new_public=public_raw)
    ):
        raise ValueError("the new key's possession signature does not verify")
    handover_signature = old.sign(handover_statement(old_public=old_public, new_public=public_raw))
    ledger_append(
        kind=LedgerEntry.Kind.SIGNING_KEY_ROTATED,
        actor_type=LedgerEntry.ActorType.OPERATOR,
        actor_id=ROTATION_ACTOR,
        reason=f"old {old_kid} new {new_kid}",
    )
    handover = ledger_seal()
    assert handover is not None  # noqa: S101 (the entry just appended is there to seal)
    now = timezone.now()
    LedgerPublicKey.objects.filter(pk=chain[-1].pk, retired_at__isnull=True).update(retired_at=now)
    LedgerPublicKey.objects.create(
        public_key=public_raw,
        kid=new_kid,
        created_at=now,
        predecessor=chain[-1],
        handover_signature=handover_signature,
        possession_signature=possession_signature,
    )
    return SigningKeyRotation(old_kid=old_kid, new_kid=new_kid, handover=handover)


# --- witnesses ---------------------------------------------------------------------------------
# docs/ledger.md, "Witnesses": an auditor registers a witness's cosignature key; the witness posts
# the checkpoints it cosigned; a checkpoint the ledger cannot stand behind raises an alarm.

# How far ahead of this server's clock a cosignature's time may be.
COSIGNATURE_FUTURE_SECONDS = 600
ALARM_ACTOR = "witnesses"


class WitnessKeyTaken(ValueError):
    """The name or the key is already registered to a witness."""


@transaction.atomic
def witness_register(*, name: str, public_raw: bytes, by: Any) -> Witness:
    """Register a witness's cosignature key, for the auditor `by`; record it in the ledger.

    Raise ValueError for a bad name or key, WitnessKeyTaken for a name or key already registered
    (retired witnesses included: a key id names one witness forever).
    """
    ledger.witness_name_check(name)
    try:
        public_key_check(public_raw)
    except ValueError as exc:
        raise ValueError(f"the witness key is not usable: {exc}") from None
    if Witness.objects.filter(name=name).exists():
        raise WitnessKeyTaken(f"a witness named {name} is already registered")
    if Witness.objects.filter(public_key=public_raw).exists():
        raise WitnessKeyTaken("that public key is already registered to a witness")
    key_id = ledger.witness_key_id(name=name, public_raw=public_raw)
    witness = Witness.objects.create(name=name, public_key=public_raw, key_id=key_id, registered_by=by)
    ledger_append(
        kind=LedgerEntry.Kind.WITNESS_REGISTERED,
        actor_type=LedgerEntry.ActorType.AUDITOR,
        actor_id=str(by.pk),
        record_ids=[key_id.hex()],
    )
    return witness


@transaction.atomic
def witness_retire(*, witness: Witness, by: Any) -> bool:
    """Retire a witness (its cosignatures stay evidence; it can post no more); False if it was already."""
    updated = Witness.objects.filter(pk=witness.pk, retired_at__isnull=True).update(retired_at=timezone.now())
    if not updated:
        return False
    ledger_append(
        kind=LedgerEntry.Kind.WITNESS_RETIRED,
        actor_type=LedgerEntry.ActorType.AUDITOR,
        actor_id=str(by.pk),
        record_ids=[bytes(witness.key_id).hex()],
    )
    return True


class CosignatureRefused(Exception):
    """A posted cosigned checkpoint that is malformed (400) or not trusted (403)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class CosignatureOutcome:
    """What came of a posted cosigned checkpoint.

    `alarm` is None when the ledger holds that very checkpoint; `created` tells whether any
    cosignature was stored anew (201) or all were there already (200).
    """

    tree_size: int
    root_hash: bytes
    cosignatures: tuple[LedgerCosignature, ...]
    created: bool
    alarm: LedgerAlarm | None = None


def _alarm_raise(
    *, kind: str, tree_size: int, detail: str, evidence: str, reported_by: Witness | None
) -> LedgerAlarm:
    """Store an alarm once per kind and evidence; record it in the ledger the first time."""
    dedupe = sha256(f"{kind}\n{evidence}".encode()).hex()
    with transaction.atomic():
        alarm, created = LedgerAlarm.objects.get_or_create(
            dedupe=dedupe,
            defaults={
                "kind": kind,
                "tree_size": tree_size,
                "detail": detail,
                "evidence": evidence,
                "reported_by": reported_by,
            },
        )
        if created:
            ledger_append(
                kind=LedgerEntry.Kind.LEDGER_ALARM,
                actor_type=LedgerEntry.ActorType.SYSTEM,
                actor_id=ALARM_ACTOR,
                reason=f"{kind} at tree size {tree_size}",
            )
    return alarm


def _cosignatures_store(
    note: ledger.Note, signed: list[tuple[Witness, ledger.Cosignature]]
) -> tuple[list[LedgerCosignature], bool]:
    stored, created_any = [], False
    for witness, line in signed:
        with transaction.atomic():
            row, created = LedgerCosignature.objects.get_or_create(
                witness=witness,
                tree_size=note.tree_size,
                defaults={
                    "root_hash": note.root_hash,
                    "note_body": note.body,
                    "timestamp": line.timestamp,
                    "signature": line.signature,
                },
            )
        stored.append(row)
        created_any = created_any or created
    return stored, created_any


def cosignature_submit(text: str, *, now: float | None = None) -> CosignatureOutcome:
    """Take a checkpoint note the log signed and witnesses cosigned; store or raise an alarm.

    Raise CosignatureRefused(400) for a malformed note or a cosignature dated more than
    COSIGNATURE_FUTURE_SECONDS ahead, (403) unless the log's signature verifies with a trusted key
    and at least one line is a valid cosignature of a registered, non-retired witness (any line
    of a retired witness, or a bad signature, refuses the whole note). Lines of unknown keys are
    ignored. If the ledger holds this checkpoint, store the cosignatures (idempotently: a witness
    cosigns a tree size once). Otherwise raise an alarm saying how the log misbehaved.
    """
    try:
        note = ledger.note_parse(text)
    except ValueError as exc:
        raise CosignatureRefused(400, f"the checkpoint note cannot be read: {exc}") from None
    if note.origin != ledger.origin():
        raise CosignatureRefused(
            403, f"the checkpoint is for {note.origin!r}, not for this ledger ({ledger.origin()!r})"
        )
    log_key = ledger.note_signer(note, signing_keys_trusted_public())
    if log_key is None:
        raise CosignatureRefused(
            403, "the log's signature of the checkpoint does not verify with a trusted key"
        )
    signed: list[tuple[Witness, ledger.Cosignature]] = []
    for line in note.signatures:
        if line.name == note.origin:
            continue
        witness = Witness.objects.filter(name=line.name, key_id=line.key_id).first()
        if witness is None:
            continue  # an unknown key: ignored, as C2SP verifiers do
        if witness.retired_at is not None:
            raise CosignatureRefused(403, f"witness {witness.name} is retired")
        cosignature = ledger.cosignature_split(line)
        if cosignature is None or not ledger.cosignature_verify(
            public_raw=bytes(witness.public_key),
            body=note.body,
            timestamp=cosignature.timestamp,
            signature=cosignature.signature,
        ):
            raise CosignatureRefused(403, f"the cosignature of witness {witness.name} does not verify")
        if any(w.pk == witness.pk for w, _ in signed):
            raise CosignatureRefused(400, f"witness {witness.name} cosigned the note twice")
        signed.append((witness, cosignature))
    if not signed:
        raise CosignatureRefused(403, "the note carries no cosignature of a registered witness")
    clock = time.time() if now is None else now
    for witness, cosignature in signed:
        if cosignature.timestamp > clock + COSIGNATURE_FUTURE_SECONDS:
            raise CosignatureRefused(
                400, f"the cosignature of witness {witness.name} is dated more than ten minutes ahead"
            )
    return _cosigned_checkpoint(note, log_key, signed)


def _ledger_root_at(size: int) -> bytes:
    """The ledger's root at any size up to the newest checkpoint's (ValueError beyond it)."""
    if size == 0:
        return CompactRange().root()
    try:
        return ledger_root_at(tree_size=size)
    except TilesNotBuilt:
        # A ledger sealed before tiles existed: from the stored leaf hashes, as before tiles.
        hashes = leaf_hashes(size)
        if len(hashes) != size:
            raise ValueError(f"the ledger holds {len(hashes)} leaves, fewer than {size}") from None
        return root_from_leaf_hashes(hashes)


def _cosigned_checkpoint(
    note: ledger.Note, log_key: bytes, signed: list[tuple[Witness, ledger.Cosignature]]
) -> CosignatureOutcome:
    size, root = note.tree_size, note.root_hash
    reporter = signed[0][0]
    evidence = ledger.note_log_signed(note, log_key)
    root_b64 = ledger.b64(root)
    checkpoint = LedgerCheckpoint.objects.filter(tree_size=size).first()
    if checkpoint is not None:
        ours = checkpoint.note.partition("\n\n")[0] + "\n"
        if ours == note.body:
            stored, created = _cosignatures_store(note, signed)
            return CosignatureOutcome(size, root, tuple(stored), created)
        alarm = _alarm_raise(
            kind=LedgerAlarm.Kind.FORK,
            tree_size=size,
            detail=(
                f"The log signed two different checkpoints of tree size {size}: root {root_b64} "
                f"(cosigned by witness {reporter.name}) and root "
                f"{ledger.b64(bytes(checkpoint.root_hash))} (the ledger's checkpoint)."
            ),
            evidence=f"{evidence}\n{checkpoint.note}",
            reported_by=reporter,
        )
        return CosignatureOutcome(size, root, (), False, alarm)
    newest = checkpoint_latest()
    try:
        if newest is None or size > newest.tree_size:
            raise ValueError("beyond the newest checkpoint")
        ours_root = _ledger_root_at(size)
    except ValueError:
        largest = 0 if newest is None else newest.tree_size
        alarm = _alarm_raise(
            kind=LedgerAlarm.Kind.TRUNCATED,
            tree_size=size,
            detail=(
                f"The log signed a checkpoint of tree size {size} (cosigned by witness {reporter.name}), "
                f"larger than the ledger's tree ({largest} entries): the log was truncated."
            ),
            evidence=evidence,
            reported_by=reporter,
        )
        return CosignatureOutcome(size, root, (), False, alarm)
    if ours_root != root:
        alarm = _alarm_raise(
            kind=LedgerAlarm.Kind.INCONSISTENT,
            tree_size=size,
            detail=(
                f"The log signed a checkpoint of tree size {size} with root {root_b64} (cosigned by "
                f"witness {reporter.name}), but the ledger's tree at size {size} has root "
                f"{ledger.b64(ours_root)}: the log was rewritten after it was witnessed."
            ),
            evidence=evidence,
            reported_by=reporter,
        )
        return CosignatureOutcome(size, root, (), False, alarm)
    stored, created = _cosignatures_store(note, signed)
    alarm = _alarm_raise(
        kind=LedgerAlarm.Kind.CHECKPOINT_MISSING,
        tree_size=size,
        detail=(
            f"The log signed a checkpoint of tree size {size} (cosigned by witness {reporter.name}) "
            "that matches the ledger's tree, but the ledger holds no checkpoint of that size: it was deleted."
        ),
        evidence=evidence,
        reported_by=reporter,
    )
    return CosignatureOutcome(size, root, tuple(stored), created, alarm)


# --- verification ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    """What ledger_verify found.

    `ok` only when at least one sealed entry was checked and nothing was wrong: an empty ledger
    is not "intact", it is unverified (`empty`), since deleting everything would look the same.
    `warnings` are findings that are not proof of tampering (gaps in entry ids).
    """

    ok: bool
    entries: int
    checkpoints: int
    first_problem: str | None = None
    warnings: tuple[str, ...] = ()
    unsealed: int = 0
    # The tree size of the outside checkpoint proved consistent, when one was given.
    outside_size: int | None = None
    # The newest checkpoint's tree size and root as recomputed (0 and None before the first seal).
    tree_size: int = 0
    root_hash: bytes | None = None
    # The keys the checked checkpoints verified under, oldest first: (kid, note key id in hex, count).
    signers: tuple[tuple[str, str, int], ...] = ()
    # The newest checkpoint valid cosignatures of non-retired witnesses cover (at least
    # `witnesses_required` of them, or one): its tree size and the witnesses' names; 0 and () if none.
    witnessed_size: int = 0
    witnessed_by: tuple[str, ...] = ()
    witnesses_required: int = 0
    # Every alarm raised (ledger.alarm), newest first, as sentences: each makes the run fail.
    alarms: tuple[str, ...] = ()
    # How long the run took; not part of what was found.
    seconds: float = field(default=0.0, compare=False)

    @property
    def empty(self) -> bool:
        return self.first_problem is None and self.entries == 0

    @property
    def witnessed_count(self) -> int:
        return len(self.witnessed_by)

    @property
    def awaiting_witnesses(self) -> int:
        """Entries sealed after the newest witnessed checkpoint."""
        return max(0, self.tree_size - self.witnessed_size)

    @property
    def witnessed_sentence(self) -> str:
        """Say which checkpoint witnesses cover: "tree size 40 by 2 witnesses (a, b); 3 entries after it…"."""
        if not self.witnessed_by:
            return "no checkpoint is cosigned by a witness yet"
        count = self.witnessed_count
        return (
            f"tree size {self.witnessed_size} by {count} witness{'es' if count != 1 else ''} "
            f"({', '.join(self.witnessed_by)}); {self.awaiting_witnesses} entries after it await witnesses"
        )


class _Problem(Exception):
    pass


@dataclass
class _Tally:
    entries: int = 0
    checkpoints: int = 0
    outside_size: int | None = None
    signers: dict[bytes, int] = field(default_factory=dict)
    # The tiles of the tree as recomputed, to compare with the stored ones.
    tile_writer: tiles.TileWriter = field(default_factory=lambda: tiles.TileWriter(0, {}))
    tile_warning: str = ""
    summary_warning: str = ""
    # Per checkpoint tree size: the non-retired witnesses whose valid cosignature covers it.
    witnessed: dict[int, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Cosigned:
    witness: str
    retired: bool
    tree_size: int
    root_hash: bytes


def _cosignatures_checked() -> dict[int, list[_Cosigned]]:
    """Check each stored cosignature on its own (key id, note body, signature); group them by size.

    Whether its root is the ledger's tree at that size is checked while the tree is rebuilt.
    """
    by_size: dict[int, list[_Cosigned]] = {}
    rows = LedgerCosignature.objects.select_related("witness").order_by("tree_size", "id")
    for row in rows.iterator(chunk_size=1000):
        witness = row.witness
        public_raw, root = bytes(witness.public_key), bytes(row.root_hash)
        where = f"the cosignature of witness {witness.name} of tree size {row.tree_size}"
        if bytes(witness.key_id) != ledger.witness_key_id(name=witness.name, public_raw=public_raw):
            raise _Problem(f"witness {witness.name}: its key id does not match its name and key")
        # Its own origin line: checkpoints sealed before a change of VRM_ISSUER keep theirs too.
        origin = row.note_body.split("\n", 1)[0]
        expected = ledger.checkpoint_body(origin=origin, tree_size=row.tree_size, root_hash=root)
        if not origin or row.note_body != expected:
            raise _Problem(f"{where}: the note body it stores does not state its size and root")
        if not ledger.cosignature_verify(
            public_raw=public_raw, body=row.note_body, timestamp=row.timestamp, signature=bytes(row.signature)
        ):
            raise _Problem(f"{where}: its signature does not verify with the witness's key")
        by_size.setdefault(row.tree_size, []).append(
            _Cosigned(witness.name, witness.retired_at is not None, row.tree_size, root)
        )
    return by_size


def _cosigned_root_check(cosigned: list[_Cosigned], size: int, root: bytes) -> None:
    for c in cosigned:
        if c.root_hash != root:
            raise _Problem(
                f"witness {c.witness} cosigned tree size {size} with root {ledger.b64(c.root_hash)}, but "
                f"the ledger's tree at size {size} has root {ledger.b64(root)}: the log was rewritten or "
                "forked after it was witnessed"
            )


@dataclass
class _KeyChain:
    """Which keys may sign the next checkpoint.

    `keys` is the whole key history (to name the key of any key id), `trusted` the kids of the
    chain of handovers from the first key, in order (audit.selectors.signing_key_chain). A
    checkpoint must be signed by a trusted key no older than the signer of the checkpoint before
    it: once the new key has signed, the old one may not sign again.
    """

    keys: list[bytes]
    trusted: list[str]
    position: int = 0

    def checkpoint(self, where: str, signer: bytes) -> None:
        kid = jwk_thumbprint(signer)
        if kid not in self.trusted:
            raise _Problem(
                f"{where}: it is signed by key {kid}, which no valid handover signature from the "
                "first key reaches"
            )
        index = self.trusted.index(kid)
        if index < self.position:
            raise _Problem(f"{where}: it is signed by key {kid}, which a newer key has replaced")
        self.position = index


def _sealed_chunks(size: int, chunk_size: int) -> Iterator[list[tuple[Any, ...]]]:
    columns = [f"entry__{name}" for name in ledger.ENTRY_COLUMNS]
    for lo in range(0, size, chunk_size):
        yield list(
            LedgerLeaf.objects.filter(leaf_index__gte=lo, leaf_index__lt=min(lo + chunk_size, size))
            .order_by("leaf_index")
            .values_list("leaf_index", "leaf_hash", *columns)
        )


def _check_checkpoint(cp: tuple[Any, ...], tree: CompactRange, previous: int, chain: _KeyChain) -> bytes:
    tree_size, root_hash, compact_range, note, signature, key_id = cp
    root = tree.root()
    where = f"checkpoint at tree size {tree_size}"
    if bytes(root_hash) != root:
        raise _Problem(
            f"{where}: its root does not match the entries; leaves {previous}..{tree_size - 1} "
            "were changed, reordered or removed after it was signed"
        )
    if bytes(compact_range) != ledger.join_hashes(tree.to_list()):
        raise _Problem(f"{where}: its stored tree state does not match the entries")
    why, signer = ledger.note_problem(
        note=note,
        keys=chain.keys,
        tree_size=tree_size,
        root_hash=root,
        signature=bytes(signature),
        stored_key_id=None if key_id is None else bytes(key_id),
    )
    if why or signer is None:
        if not chain.keys:
            why = f"{why} (the key history is empty: run seal_ledger once to register the configured key)"
        raise _Problem(f"{where}: {why}")
    chain.checkpoint(where, signer)
    return signer


def _verify(tally: _Tally, chunk_size: int, on_progress: Progress | None) -> tuple[int, bytes]:
    """Check every sealed entry and checkpoint; return the newest checkpoint's size and root."""
    chain = _KeyChain(keys=signing_keys_public(), trusted=[k.kid for k in signing_key_chain()])
    checkpoints = list(
        LedgerCheckpoint.objects.order_by("tree_size").values_list(
            "tree_size", "root_hash", "compact_range", "note", "signature", "key_id"
        )
    )
    size = checkpoints[-1][0] if checkpoints else 0
    twice = (
        LedgerLeaf.objects.values("entry_id")
        .annotate(n=Count("leaf_index"))
        .filter(n__gt=1)
        .order_by("entry_id")
        .first()
    )
    if twice:
        raise _Problem(f"entry {twice['entry_id']} is sealed {twice['n']} times")
    cosigned = _cosignatures_checked()
    checkpoint_sizes = {c[0] for c in checkpoints}
    beyond = [c for s, cs in cosigned.items() if s > size for c in cs]
    if beyond:
        c = beyond[0]
        raise _Problem(
            f"witness {c.witness} cosigned tree size {c.tree_size}, which is larger than the ledger's "
            f"tree ({size} entries): the log was truncated"
        )
    if 0 in cosigned:
        _cosigned_root_check(cosigned[0], 0, CompactRange().root())
    tree = CompactRange()
    pending = iter(checkpoints)
    cp = next(pending, None)
    previous = 0
    for rows in _sealed_chunks(size, chunk_size):
        for leaf_index, stored, *entry in rows:
            if leaf_index != tree.size:
                raise _Problem(
                    f"leaf index {tree.size} is missing (next is {leaf_index}): its entry was "
                    "deleted or the leaves renumbered"
                )
            if entry[0] is None:
                raise _Problem(f"leaf index {leaf_index}: its entry was deleted")
            digest = leaf_hash(ledger.leaf_data(entry))
            if digest != bytes(stored):
                raise _Problem(
                    f"entry {entry[0]} at leaf index {leaf_index}: its content does not match its leaf hash"
                )
            tree.append(digest, tally.tile_writer)
            tally.entries = tree.size
            if tree.size in cosigned:
                _cosigned_root_check(cosigned[tree.size], tree.size, tree.root())
                if tree.size in checkpoint_sizes:
                    tally.witnessed[tree.size] = [c.witness for c in cosigned[tree.size] if not c.retired]
            while cp is not None and cp[0] == tree.size:
                signer = _check_checkpoint(cp, tree, previous, chain)
                tally.signers[signer] = tally.signers.get(signer, 0) + 1
                tally.checkpoints += 1
                previous = tree.size
                cp = next(pending, None)
        if on_progress:
            on_progress(len(rows))
    if cp is not None:
        raise _Problem(
            f"leaf index {tree.size} is missing: the checkpoint at tree size {cp[0]} covers "
            f"{cp[0]} leaves, only {tree.size} are present"
        )
    # Leaves and their checkpoint commit together, so read leaves first, the newest checkpoint after.
    stray = LedgerLeaf.objects.filter(leaf_index__gte=size).order_by("leaf_index").first()
    if stray and not LedgerCheckpoint.objects.filter(tree_size__gt=stray.leaf_index).exists():
        raise _Problem(
            f"leaf index {stray.leaf_index} (entry {stray.entry_id}) is not covered by any checkpoint"
        )
    if checkpoints:
        for public_raw in chain.keys:
            kid = jwk_thumbprint(public_raw)
            if kid not in chain.trusted:
                raise _Problem(
                    f"the key history holds key {kid}, which no valid handover signature from the "
                    "first key reaches"
                )
    return size, tree.root()


def _check_outside(tally: _Tally, note_text: str, size: int, root: bytes) -> None:
    """Prove the database's tree (size, root) consistent with a checkpoint kept outside it."""
    try:
        note = ledger.note_parse(note_text)
    except ValueError as exc:
        raise _Problem(f"the checkpoint given cannot be read: {exc}") from None
    where = f"the checkpoint given (tree size {note.tree_size})"
    if note.origin != ledger.origin():
        raise _Problem(f"{where} is for {note.origin!r}, not for this ledger ({ledger.origin()!r})")
    # Only a trusted key: a rewritten history (a new first key) fails against a kept checkpoint.
    keys = signing_keys_trusted_public()
    if ledger.note_signer(note, keys) is None:
        ours = [line.key_id for line in note.signatures if line.name == note.origin]
        known = {ledger.key_id(name=note.origin, public_raw=k) for k in keys}
        if not any(key_id in known for key_id in ours):
            named = ", ".join(key_id.hex() for key_id in ours) or "none"
            raise _Problem(f"{where}: its key id ({named}) is not in the key history's chain of trusted keys")
        raise _Problem(f"{where}: its signature does not verify with the key of its key id")
    if note.tree_size > size:
        raise _Problem(
            f"{where} is larger than the ledger's tree ({size} entries): entries it covered were "
            "removed, with the checkpoints over them"
        )
    if note.tree_size > 0:
        # RFC 9162 section 2.1.4: the proof a log would serve, from the tiles (checked against the
        # recomputed leaves just before), checked against the outside root and the newest
        # checkpoint's root (verified above).
        proof = _consistency_proof(note.tree_size, size)
        if not verify_consistency(note.tree_size, size, note.root_hash, root, proof):
            raise _Problem(
                f"{where} is not consistent with the ledger's tree at size {size}: entries it "
                "covered were changed, reordered or removed, or the log was forked"
            )
    tally.outside_size = note.tree_size


def _consistency_proof(old_size: int, size: int) -> list[bytes]:
    try:
        return tile_tree(tree_size=size).consistency_proof(old_size)
    except LookupError:
        # Tiles not built yet (sealed before tiles existed; the next seal builds them).
        return consistency_proof(old_size, leaf_hashes(size))


def _check_tiles(tally: _Tally, size: int) -> None:
    """Compare the stored tiles with those of the tree just recomputed from the entries."""
    expected = {(level, index): hashes for level, index, hashes in tally.tile_writer.take()}
    stored = LedgerTile.objects.order_by("level", "tile_index").values_list("level", "tile_index", "hashes")
    found = 0
    for level, index, hashes in stored.iterator(chunk_size=1000):
        want = expected.get((level, index))
        width = len(want if want is not None else hashes) // tiles.HASH_BYTES
        where = f"tile {tiles.tile_path(level, index, width)}"
        if want is None:
            raise _Problem(f"{where} lies beyond the ledger's tree of {size} entries")
        if bytes(hashes) != want:
            raise _Problem(f"{where} does not match the entries: proofs served from it would not verify")
        found += 1
    if found < len(expected):
        tally.tile_warning = (
            f"{len(expected) - found} of {len(expected)} tiles are not stored yet (a ledger sealed "
            "before tiles existed): the next seal_ledger run builds them"
        )


def _check_summaries(tally: _Tally) -> None:
    """Recompute the auditor's summaries from the entries and compare them with the stored ones."""
    if summaries.rebuild_pending():
        tally.summary_warning = (
            "the auditor's summaries (grants, vendor days, late reads) wait to be rebuilt from the "
            "entries: the next seal_ledger run rebuilds them"
        )
        return
    differences = summaries.summaries_differences()
    if differences:
        raise _Problem(
            f"{'; '.join(differences)}: the auditor's pages would show what the entries do not say "
            "(seal_ledger --rebuild-summaries rebuilds the summaries from the entries)"
        )


MAX_GAPS_REPORTED = 10


def _issued_id_high() -> int | None:
    """Return the highest entry id the database has handed out, or None if it cannot tell."""
    table = LedgerEntry._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_sequence_last_value(pg_get_serial_sequence(%s, 'id')::regclass)", [table]
            )
        elif connection.vendor == "sqlite":
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        else:
            return None
        row = cursor.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _id_gap_warnings() -> list[str]:
    """Name the ranges of entry ids missing between the lowest and the highest ever issued.

    Not proof of deletion: PostgreSQL hands out sequence values outside transactions, so every
    rolled-back append leaves a gap (docs/ledger.md, "Gaps in entry ids").
    """
    why = (
        "a rolled-back transaction leaves such a gap on PostgreSQL; deleting entries not yet sealed would too"
    )
    gaps = (
        LedgerEntry.objects.annotate(next_id=Window(Lead("id"), order_by=F("id").asc()))
        .filter(next_id__gt=F("id") + 1)
        .order_by("id")
        .values_list("id", "next_id")
    )
    ranges = [(lo + 1, hi - 1) for lo, hi in gaps]
    top = LedgerEntry.objects.aggregate(top=Max("id"))["top"]
    issued = _issued_id_high()
    if top is not None and issued is not None and issued > top:
        ranges.append((top + 1, issued))
    warnings = [
        f"entry ids {lo}..{hi} are missing ({hi - lo + 1}): {why}"
        if lo != hi
        else f"entry id {lo} is missing: {why}"
        for lo, hi in ranges[:MAX_GAPS_REPORTED]
    ]
    if len(ranges) > MAX_GAPS_REPORTED:
        missing = sum(hi - lo + 1 for lo, hi in ranges[MAX_GAPS_REPORTED:])
        warnings.append(f"and {len(ranges) - MAX_GAPS_REPORTED} more gaps in entry ids ({missing} ids)")
    return warnings


def _alarm_sentences() -> tuple[str, ...]:
    return tuple(
        f"alarm: {a.kind} at tree size {a.tree_size}"
        + (f" reported by witness {a.reported_by.name}" if a.reported_by else "")
        + f" ({ledger.rfc3339(a.created_at)}): {a.detail}"
        for a in LedgerAlarm.objects.select_related("reported_by").order_by("-created_at", "-id")
    )


def _witnessed(tally: _Tally, required: int) -> tuple[int, tuple[str, ...]]:
    """Return the newest checkpoint with at least `required` (or one) witnesses, and their names."""
    for size in sorted(tally.witnessed, reverse=True):
        names = tally.witnessed[size]
        if names and len(names) >= max(required, 1):
            return size, tuple(sorted(names))
    return 0, ()


def ledger_verify(
    *,
    chunk_size: int = CHUNK_SIZE,
    on_progress: Progress | None = None,
    outside_checkpoint: str | None = None,
    witnesses: int = 0,
    on_stage: Callable[[str], None] | None = None,
) -> VerifyResult:
    """Recompute every leaf and checkpoint root from the entries and check every signature.

    Stop at the first problem and name it (entry id and leaf index, or checkpoint tree size);
    `entries` and `checkpoints` then count what was found intact before it. With
    `outside_checkpoint` (a signed note kept outside the database), also prove the database's
    tree consistent with it. Gaps in entry ids come back as warnings.

    Every witness cosignature is checked too (its key id, its signature, and that the ledger's
    tree at its size has its root), and any alarm fails the run. With `witnesses` N, the run
    fails unless a checkpoint carries valid cosignatures of at least N non-retired witnesses.
    The auditor's summaries are recomputed and compared last; `on_stage` hears when that starts.
    """
    started = time.perf_counter()
    tally = _Tally()
    unsealed = LedgerEntry.objects.filter(leaf__isnull=True).count()
    warnings = tuple(_id_gap_warnings())
    alarms = _alarm_sentences()
    try:
        size, root = _verify(tally, chunk_size, on_progress)
        _check_tiles(tally, size)
        if on_stage:
            # Recomputing the summaries reads the entries again: about a minute at 10M, after the bar.
            on_stage("comparing the auditor's summaries with the entries")
        _check_summaries(tally)
        if outside_checkpoint is not None:
            _check_outside(tally, outside_checkpoint, size, root)
        witnessed_size, witnessed_by = _witnessed(tally, witnesses)
        if alarms:
            more = f" (and {len(alarms) - 1} more)" if len(alarms) > 1 else ""
            raise _Problem(f"{alarms[0]}{more}")
        if witnesses and not witnessed_by:
            most = max((len(names) for names in tally.witnessed.values()), default=0)
            plural = "es" if witnesses != 1 else ""
            raise _Problem(
                f"no checkpoint is cosigned by {witnesses} independent witness{plural} "
                f"(the most any checkpoint has is {most})"
            )
    except _Problem as problem:
        return VerifyResult(
            False,
            tally.entries,
            tally.checkpoints,
            first_problem=str(problem),
            warnings=warnings,
            unsealed=unsealed,
            signers=_signers(tally),
            witnesses_required=witnesses,
            alarms=alarms,
            seconds=time.perf_counter() - started,
        )
    warnings = (*warnings, *(w for w in (tally.tile_warning, tally.summary_warning) if w))
    return VerifyResult(
        tally.entries > 0,
        tally.entries,
        tally.checkpoints,
        warnings=warnings,
        unsealed=unsealed,
        outside_size=tally.outside_size,
        tree_size=size,
        root_hash=root if size else None,
        signers=_signers(tally),
        witnessed_size=witnessed_size,
        witnessed_by=witnessed_by,
        witnesses_required=witnesses,
        alarms=alarms,
        seconds=time.perf_counter() - started,
    )


def _signers(tally: _Tally) -> tuple[tuple[str, str, int], ...]:
    origin = ledger.origin()
    return tuple(
        (jwk_thumbprint(public_raw), ledger.key_id(name=origin, public_raw=public_raw).hex(), count)
        for public_raw, count in tally.signers.items()
    )
