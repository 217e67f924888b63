"""Reads from the ledger: the newest checkpoint, Merkle proofs, and entries by subject or grant.

Checkpoints and proofs are public: they reveal hashes, sizes and entry ids, never the content
of an entry. Hashes are standard base64 (RFC 4648 section 4, with padding). Entries are found by
pseudonym; computing a person's pseudonym is the caller's business.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Max, QuerySet
from django.http import Http404

from audit import ledger
from audit.merkle import consistency_proof, inclusion_proof
from audit.models import LedgerCheckpoint, LedgerEntry, LedgerLeaf
from core.keys import signing_key


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


def checkpoint_document(*, checkpoint: LedgerCheckpoint) -> dict[str, Any]:
    """Return a checkpoint with everything an outside party needs to check its signature."""
    key = signing_key()
    return {
        "origin": checkpoint.note.split("\n", 1)[0],
        "tree_size": checkpoint.tree_size,
        "root_hash": ledger.b64(bytes(checkpoint.root_hash)),
        "created_at": ledger.rfc3339(checkpoint.created_at),
        "note": checkpoint.note,
        "signature": ledger.b64(bytes(checkpoint.signature)),
        "public_key": ledger.b64(key.public_raw()),
        "public_key_pem": key.public_pem(),
    }


def _leaf_hashes(tree_size: int) -> list[bytes]:
    # Fine up to a few million leaves (32 bytes each); beyond that, store interior nodes.
    hashes = LedgerLeaf.objects.filter(leaf_index__lt=tree_size).order_by("leaf_index")
    return [bytes(h) for h in hashes.values_list("leaf_hash", flat=True)]


def ledger_inclusion_proof(*, entry_id: int, tree_size: int | None = None) -> dict[str, Any]:
    """Prove that a sealed entry is in the tree of a checkpoint (the newest by default).

    Raise Http404 when the entry is not sealed, the checkpoint does not exist, or the entry was
    sealed after it.
    """
    checkpoint = _checkpoint_at(tree_size)
    leaf = LedgerLeaf.objects.filter(entry_id=entry_id).first()
    if leaf is None or leaf.leaf_index >= checkpoint.tree_size:
        raise Http404("That entry is not sealed in that checkpoint.")
    proof = inclusion_proof(leaf.leaf_index, _leaf_hashes(checkpoint.tree_size))
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
    proof = consistency_proof(old.tree_size, _leaf_hashes(new.tree_size))
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
