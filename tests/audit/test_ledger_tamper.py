"""Tampering by someone who can switch the triggers off is caught by verify_ledger.

Each test seals thirty entries under checkpoints at tree sizes 10, 20 and 30, switches the
triggers off for its own transaction only (rolled back afterwards), alters the tables with raw
SQL as a superuser would, and expects verify_ledger to exit 1 naming the first bad item.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from audit import ledger
from audit.merkle import leaf_hash
from audit.models import LedgerEntry
from audit.services import ledger_verify
from core.crypto import SigningKey
from tests.audit.conftest import postgres_only

pytestmark = [postgres_only, pytest.mark.usefixtures("triggers_off")]


def _sql(sql: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _verify_fails(capsys: Any) -> str:
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_ledger")
    assert exit_info.value.code == 1
    return capsys.readouterr().err


def _leaf_entry(index: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT entry_id FROM audit_ledgerleaf WHERE leaf_index = %s", [index])
        return int(cursor.fetchone()[0])


def test_an_edited_entry_is_named(sealed_ledger: list[LedgerEntry], capsys: Any) -> None:
    victim = sealed_ledger[12].pk
    _sql("UPDATE audit_ledgerentry SET reason = 'nothing to see' WHERE id = %s", [victim])
    _sql("UPDATE audit_ledgerentry SET outcome = 'denied' WHERE id = %s", [sealed_ledger[25].pk])
    assert f"entry {victim} at leaf index 12: its content does not match its leaf hash" in _verify_fails(
        capsys
    )


def test_an_edited_entry_with_a_recomputed_leaf_hash_is_named_by_its_checkpoint(
    sealed_ledger: list[LedgerEntry], capsys: Any
) -> None:
    victim = sealed_ledger[12].pk
    _sql("UPDATE audit_ledgerentry SET actor_id = 'someone-else' WHERE id = %s", [victim])
    row = LedgerEntry.objects.filter(pk=victim).values_list(*ledger.ENTRY_COLUMNS).get()
    _sql(
        "UPDATE audit_ledgerleaf SET leaf_hash = %s WHERE entry_id = %s",
        [leaf_hash(ledger.leaf_data(row)), victim],
    )
    err = _verify_fails(capsys)
    assert "checkpoint at tree size 20: its root does not match the entries; leaves 10..19" in err


def test_a_deleted_entry_is_named(sealed_ledger: list[LedgerEntry], capsys: Any) -> None:
    _sql("DELETE FROM audit_ledgerentry WHERE id = %s", [sealed_ledger[7].pk])
    assert "leaf index 7 is missing (next is 8)" in _verify_fails(capsys)


def test_a_deleted_entry_and_leaf_is_named(sealed_ledger: list[LedgerEntry], capsys: Any) -> None:
    _sql("DELETE FROM audit_ledgerleaf WHERE leaf_index = 15")
    _sql("DELETE FROM audit_ledgerentry WHERE id = %s", [sealed_ledger[15].pk])
    assert "leaf index 15 is missing (next is 16)" in _verify_fails(capsys)


def test_deleting_the_newest_entry_is_named(sealed_ledger: list[LedgerEntry], capsys: Any) -> None:
    _sql("DELETE FROM audit_ledgerleaf WHERE leaf_index = 29")
    _sql("DELETE FROM audit_ledgerentry WHERE id = %s", [sealed_ledger[29].pk])
    assert "leaf index 29 is missing: the checkpoint at tree size 30" in _verify_fails(capsys)


def test_a_deleted_and_renumbered_entry_is_named_by_its_checkpoint(
    sealed_ledger: list[LedgerEntry], capsys: Any
) -> None:
    _sql("DELETE FROM audit_ledgerleaf WHERE leaf_index = 15")
    _sql("UPDATE audit_ledgerleaf SET leaf_index = leaf_index - 1 WHERE leaf_index > 15")
    assert "checkpoint at tree size 20: its root does not match" in _verify_fails(capsys)


def test_a_reordered_pair_of_entries_is_named(sealed_ledger: list[LedgerEntry], capsys: Any) -> None:
    first, second = _leaf_entry(12), _leaf_entry(13)
    # Swap which entry each leaf points at, leaving the leaf hashes where they were.
    _sql("UPDATE audit_ledgerleaf SET entry_id = -1 WHERE leaf_index = 12")
    _sql("UPDATE audit_ledgerleaf SET entry_id = %s WHERE leaf_index = 13", [first])
    _sql("UPDATE audit_ledgerleaf SET entry_id = %s WHERE leaf_index = 12", [second])
    assert f"entry {second} at leaf index 12: its content does not match" in _verify_fails(capsys)


def test_a_reordered_pair_of_leaves_is_named_by_its_checkpoint(
    sealed_ledger: list[LedgerEntry], capsys: Any
) -> None:
    # Swap the leaf indexes of two leaves, hashes and all: every leaf still matches its entry.
    _sql("UPDATE audit_ledgerleaf SET leaf_index = -1 WHERE leaf_index = 12")
    _sql("UPDATE audit_ledgerleaf SET leaf_index = 12 WHERE leaf_index = 13")
    _sql("UPDATE audit_ledgerleaf SET leaf_index = 13 WHERE leaf_index = -1")
    assert "checkpoint at tree size 20: its root does not match the entries" in _verify_fails(capsys)


def test_a_checkpoint_re_signed_with_a_key_outside_the_history_is_named(
    sealed_ledger: list[LedgerEntry], capsys: Any
) -> None:
    # Keep the true root, so only the signature can give the forgery away.
    with connection.cursor() as cursor:
        cursor.execute("SELECT root_hash FROM audit_ledgercheckpoint WHERE tree_size = 20")
        root = bytes(cursor.fetchone()[0])
    forger = SigningKey.generate()
    note, signature = ledger.note_sign(key=forger, origin=ledger.origin(), tree_size=20, root_hash=root)
    forged_id = ledger.key_id(name=ledger.origin(), public_raw=forger.public_raw())
    _sql(
        "UPDATE audit_ledgercheckpoint SET note = %s, signature = %s, key_id = %s WHERE tree_size = 20",
        [note, signature, forged_id],
    )
    err = _verify_fails(capsys)
    assert "checkpoint at tree size 20: its key id" in err and "is not in the key history" in err


def test_a_forged_root_re_signed_with_another_key_is_named(
    sealed_ledger: list[LedgerEntry], capsys: Any
) -> None:
    forged = b"\x42" * 32
    note, signature = ledger.note_sign(
        key=SigningKey.generate(), origin=ledger.origin(), tree_size=20, root_hash=forged
    )
    _sql(
        "UPDATE audit_ledgercheckpoint SET root_hash = %s, note = %s, signature = %s WHERE tree_size = 20",
        [forged, note, signature],
    )
    assert "checkpoint at tree size 20: its root does not match" in _verify_fails(capsys)


def test_a_checkpoint_with_a_changed_tree_size_is_named(
    sealed_ledger: list[LedgerEntry], capsys: Any
) -> None:
    _sql("UPDATE audit_ledgercheckpoint SET tree_size = 19 WHERE tree_size = 20")
    assert "checkpoint at tree size 19: its root does not match" in _verify_fails(capsys)


def test_a_note_edited_without_a_signature_is_named(sealed_ledger: list[LedgerEntry], capsys: Any) -> None:
    _sql(
        "UPDATE audit_ledgercheckpoint SET note = replace(note, E'\\n30\\n', E'\\n31\\n') "
        "WHERE tree_size = 30"
    )
    assert "checkpoint at tree size 30: its note does not state" in _verify_fails(capsys)


def test_the_same_tampering_leaves_the_service_result_naming_it(sealed_ledger: list[LedgerEntry]) -> None:
    _sql("UPDATE audit_ledgerentry SET kind = 'access.write' WHERE id = %s", [sealed_ledger[3].pk])
    result = ledger_verify()
    assert not result.ok
    assert result.entries == 3 and result.checkpoints == 0
    assert result.first_problem is not None and "leaf index 3" in result.first_problem
