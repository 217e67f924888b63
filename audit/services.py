"""Writes to the ledger: append an entry, seal entries into signed checkpoints, verify it all.

`ledger_append` runs inside the caller's transaction, so an action and its entry commit or roll
back together. The sealer takes no lock that appends need (docs/ledger.md, "Sealing").
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Exists, Max, OuterRef
from django.utils import timezone

from audit import ledger
from audit.merkle import CompactRange, leaf_hash
from audit.models import LedgerCheckpoint, LedgerEntry, LedgerLeaf
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
) -> LedgerEntry:
    """Record one action in the ledger, inside the caller's transaction.

    Refuse to run outside `transaction.atomic`: an entry must commit or roll back with the action
    it records. Keep at most MAX_RECORD_IDS ids; `record_count` defaults to the number of ids
    given, so it stays the full count when the list is cut.
    """
    if not transaction.get_connection().in_atomic_block:
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
    return _entry_insert(
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


@transaction.atomic
def ledger_seal(
    *, chunk_size: int = CHUNK_SIZE, on_progress: Progress | None = None
) -> LedgerCheckpoint | None:
    """Give every committed, unsealed entry the next leaf index and sign a checkpoint over them.

    Return the new checkpoint, or None when there was nothing to seal. Entries are taken in id
    order; one whose transaction commits after a seal simply gets a later index at the next.
    """
    _take_sealer_lock()
    tree = _tree_state()
    start = tree.size
    for rows in _unsealed_chunks(chunk_size):
        leaves = []
        for row in rows:
            digest = leaf_hash(ledger.leaf_data(row))
            leaves.append((tree.size, row[0], digest))
            tree.append(digest)
        _leaves_insert(leaves)
        if on_progress:
            on_progress(len(rows))
    if tree.size == start:
        return None
    root = tree.root()
    note, signature = ledger.note_sign(
        key=signing_key(), origin=ledger.origin(), tree_size=tree.size, root_hash=root
    )
    return LedgerCheckpoint.objects.create(
        tree_size=tree.size,
        root_hash=root,
        compact_range=ledger.join_hashes(tree.to_list()),
        note=note,
        signature=signature,
    )


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    checkpoints: int
    first_problem: str | None = None


class _Problem(Exception):
    pass


@dataclass
class _Tally:
    entries: int = 0
    checkpoints: int = 0


def _sealed_chunks(size: int, chunk_size: int) -> Iterator[list[tuple[Any, ...]]]:
    columns = [f"entry__{name}" for name in ledger.ENTRY_COLUMNS]
    for lo in range(0, size, chunk_size):
        yield list(
            LedgerLeaf.objects.filter(leaf_index__gte=lo, leaf_index__lt=min(lo + chunk_size, size))
            .order_by("leaf_index")
            .values_list("leaf_index", "leaf_hash", *columns)
        )


def _check_checkpoint(cp: tuple[Any, ...], tree: CompactRange, previous: int, public_raw: bytes) -> None:
    tree_size, root_hash, compact_range, note, signature = cp
    root = tree.root()
    where = f"checkpoint at tree size {tree_size}"
    if bytes(root_hash) != root:
        raise _Problem(
            f"{where}: its root does not match the entries; leaves {previous}..{tree_size - 1} "
            "were changed, reordered or removed after it was signed"
        )
    if bytes(compact_range) != ledger.join_hashes(tree.to_list()):
        raise _Problem(f"{where}: its stored tree state does not match the entries")
    why = ledger.note_problem(
        note=note, public_raw=public_raw, tree_size=tree_size, root_hash=root, signature=bytes(signature)
    )
    if why:
        raise _Problem(f"{where}: {why}")


def _verify(tally: _Tally, chunk_size: int, on_progress: Progress | None) -> None:
    public_raw = signing_key().public_raw()
    checkpoints = list(
        LedgerCheckpoint.objects.order_by("tree_size").values_list(
            "tree_size", "root_hash", "compact_range", "note", "signature"
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
            tree.append(digest)
            tally.entries = tree.size
            while cp is not None and cp[0] == tree.size:
                _check_checkpoint(cp, tree, previous, public_raw)
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


def ledger_verify(*, chunk_size: int = CHUNK_SIZE, on_progress: Progress | None = None) -> VerifyResult:
    """Recompute every leaf and checkpoint root from the entries and check every signature.

    Stop at the first problem and name it (entry id and leaf index, or checkpoint tree size);
    `entries` and `checkpoints` then count what was found intact before it.
    """
    tally = _Tally()
    try:
        _verify(tally, chunk_size, on_progress)
    except _Problem as problem:
        return VerifyResult(False, tally.entries, tally.checkpoints, first_problem=str(problem))
    return VerifyResult(True, tally.entries, tally.checkpoints)
