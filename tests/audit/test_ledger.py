"""The ledger: appends, sealing, checkpoints, proofs, the public endpoints and the triggers."""

from __future__ import annotations

import base64
import datetime as dt
import threading
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.http import Http404
from django.test import Client
from django.urls import reverse
from jwcrypto import jwk

from audit import ledger
from audit.merkle import leaf_hash, root_from_leaf_hashes, verify_consistency, verify_inclusion
from audit.models import LedgerCheckpoint, LedgerEntry, LedgerLeaf
from audit.selectors import ledger_consistency_proof, ledger_inclusion_proof
from audit.services import (
    MAX_RECORD_IDS,
    VerifyResult,
    ledger_append,
    ledger_seal,
    ledger_verify,
)
from core.crypto import jwk_thumbprint, verify_signature
from core.keys import signing_key
from personal_data.pseudonyms import ledger_pseudonym, person_subject
from tests.audit.conftest import LEDGER_TABLES, append, postgres_only


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _leaves() -> list[tuple[int, int]]:
    return list(LedgerLeaf.objects.order_by("leaf_index").values_list("leaf_index", "entry_id"))


# Appending


@pytest.mark.django_db
def test_an_action_that_raises_after_ledger_append_leaves_no_entry() -> None:
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        append(1)
        assert LedgerEntry.objects.count() == 1
        _ = 1 / 0
    assert LedgerEntry.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_ledger_append_outside_a_transaction_is_refused() -> None:
    with pytest.raises(RuntimeError, match="transaction"):
        ledger_append(kind="access.read", actor_type="client", actor_id="client-7")
    assert LedgerEntry.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_read_is_recorded_on_its_own_and_committed_at_once() -> None:
    # A read writes nothing else: its entry is one INSERT that commits before the answer goes.
    ledger_append(kind="access.read", actor_type="client", actor_id="client-7", alone=True)
    with connection.cursor() as cursor:  # a new connection would see it: committed, not pending
        assert not connection.in_atomic_block
        cursor.execute("SELECT count(*) FROM audit_ledgerentry WHERE actor_id = 'client-7'")
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "grant.deleted"},
        {"actor_type": "robot"},
        {"outcome": "maybe"},
        {"actor_id": ""},
        {"subject": "alice@example.com"},
        {"scopes": ["Purchases read"]},
        {"record_ids": ["alice@example.com"]},
        {"record_ids": ["r1", "r2,r3"]},
        {"record_ids": ["r1", ""]},
        {"record_ids": ["r1", "r2", "call me"]},
        {"record_ids": ["r1", "x" * 65]},
        {"reason": "she said: call me on +44 7700 900123!"},
        {"record_count": -1},
    ],
)
def test_ledger_append_refuses_anything_but_ids_and_codes(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError), transaction.atomic():
        ledger_append(**{"kind": "access.read", "actor_type": "client", "actor_id": "c1", **fields})
    assert LedgerEntry.objects.count() == 0


@pytest.mark.django_db
def test_ledger_append_keeps_ids_and_the_full_count() -> None:
    ids = [f"rec-{i}" for i in range(MAX_RECORD_IDS + 50)]
    (entry,) = append(1, record_ids=ids, scopes=["purchases:read", "closet:read", "purchases:read"])
    entry.refresh_from_db()
    assert entry.record_ids == ids[:MAX_RECORD_IDS]
    assert entry.record_count == MAX_RECORD_IDS + 50
    assert entry.scopes == ["closet:read", "purchases:read"]
    assert entry.created_at.tzinfo is not None


@pytest.mark.django_db
def test_ledger_append_returns_the_entry_as_stored() -> None:
    # The entry is written by a fixed INSERT, not Model.save: it must store and return exactly
    # what the ORM reads back, defaults and JSON columns included.
    with transaction.atomic():
        entry = ledger_append(
            kind="access.read",
            actor_type="client",
            actor_id="c1",
            grant_id="g-1",
            scopes=["purchases:read"],
            record_ids=["a", "b"],
            request_id="req-1",
        )
    assert entry.pk is not None and entry._state.adding is False
    stored = LedgerEntry.objects.get(pk=entry.pk)
    for field in LedgerEntry._meta.concrete_fields:
        assert getattr(stored, field.attname) == getattr(entry, field.attname), field.name
    assert stored.record_ids == ["a", "b"] and stored.record_count == 2 and stored.outcome == "allowed"


@pytest.mark.django_db
def test_person_subject_is_the_ledger_pseudonym(alice: Any) -> None:
    subject = person_subject(alice)
    assert subject == ledger_pseudonym(person_id=alice.pk)
    (entry,) = append(1, subject=subject, kind="person.export", actor_type="person", actor_id="self")
    assert entry.subject == subject
    assert alice.email not in subject


def test_leaf_data_is_the_documented_canonical_json() -> None:
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    row = (7, moment, "access.read", "client", "c1", "", "42", ["a:read"], ["r1"], 1, "allowed", "", "q")
    assert ledger.leaf_data(row) == (
        b'{"actor_id":"c1","actor_type":"client","grant_id":"42","id":7,"kind":"access.read",'
        b'"outcome":"allowed","reason":"","record_count":1,"record_ids":["r1"],"request_id":"q",'
        b'"scopes":["a:read"],"subject":"","time":"2026-01-02T03:04:05.000006Z","v":1}'
    )


# Sealing


@pytest.mark.django_db
def test_sealing_assigns_contiguous_indexes_in_id_order() -> None:
    first = append(25)
    checkpoint = ledger_seal(chunk_size=7)
    assert checkpoint is not None and checkpoint.tree_size == 25
    assert _leaves() == [(i, e.pk) for i, e in enumerate(first)]
    second = append(5)
    checkpoint = ledger_seal(chunk_size=7)
    assert checkpoint is not None and checkpoint.tree_size == 30
    assert _leaves() == [(i, e.pk) for i, e in enumerate(first + second)]
    rows = LedgerEntry.objects.order_by("id").values_list(*ledger.ENTRY_COLUMNS)
    expected = root_from_leaf_hashes([leaf_hash(ledger.leaf_data(row)) for row in rows])
    assert bytes(checkpoint.root_hash) == expected


@pytest.mark.django_db
def test_sealing_nothing_new_writes_no_checkpoint() -> None:
    assert ledger_seal() is None
    append(3)
    assert ledger_seal() is not None
    assert ledger_seal() is None
    assert LedgerCheckpoint.objects.count() == 1


@pytest.mark.django_db
def test_an_entry_that_commits_late_gets_a_later_index() -> None:
    entries = append(3)
    with transaction.atomic():
        newer = LedgerEntry.objects.create(
            id=entries[-1].pk + 100, kind="access.read", actor_type="system", actor_id="x"
        )
    ledger_seal()
    # An entry whose id was taken before that seal but whose transaction committed after it.
    with transaction.atomic():
        late = LedgerEntry.objects.create(
            id=entries[-1].pk + 50, kind="access.read", actor_type="system", actor_id="x"
        )
    ledger_seal()
    assert _leaves() == [
        (0, entries[0].pk),
        (1, entries[1].pk),
        (2, entries[2].pk),
        (3, newer.pk),
        (4, late.pk),
    ]
    assert ledger_verify().ok


@postgres_only
@pytest.mark.usefixtures("committed_ledger")
def test_a_transaction_open_during_a_seal_is_sealed_by_the_next_one() -> None:
    appended, release = threading.Event(), threading.Event()
    late: list[LedgerEntry] = []

    def slow_action() -> None:
        try:
            with transaction.atomic():
                late.extend(append(1))
                appended.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_action)
    thread.start()
    assert appended.wait(10)
    (early,) = append(1)
    assert late[0].pk < early.pk
    # Sealing takes no lock the open transaction holds, so it finishes while that one waits.
    assert ledger_seal() is not None
    release.set()
    thread.join(10)
    assert ledger_seal() is not None
    assert _leaves() == [(0, early.pk), (1, late[0].pk)]
    assert ledger_verify().ok


# Checkpoints and proofs


@pytest.mark.django_db
def test_checkpoint_is_a_signed_note_that_verifies_with_the_public_key() -> None:
    append(4)
    checkpoint = ledger_seal()
    assert checkpoint is not None
    body, _, line = checkpoint.note.partition("\n\n")
    assert body.split("\n") == [ledger.origin(), "4", ledger.b64(bytes(checkpoint.root_hash))]
    public = signing_key().public_raw()
    assert verify_signature(public, bytes(checkpoint.signature), (body + "\n").encode())
    dash, name, blob = line.rstrip("\n").split(" ")
    assert (dash, name) == ("\u2014", ledger.origin())
    assert _b64(blob) == ledger.key_id(name=name, public_raw=public) + bytes(checkpoint.signature)


@pytest.mark.django_db
def test_inclusion_and_consistency_proofs_verify() -> None:
    entries: list[LedgerEntry] = []
    sizes = []
    for n in (1, 9, 7, 16):
        entries += append(n)
        checkpoint = ledger_seal()
        assert checkpoint is not None
        sizes.append(checkpoint.tree_size)
    roots = dict(LedgerCheckpoint.objects.values_list("tree_size", "root_hash"))
    for size in sizes:
        for index, entry in enumerate(entries[:size]):
            doc = ledger_inclusion_proof(entry_id=entry.pk, tree_size=size)
            assert (doc["leaf_index"], doc["tree_size"]) == (index, size)
            proof = [_b64(h) for h in doc["proof"]]
            assert verify_inclusion(index, size, _b64(doc["leaf_hash"]), proof, bytes(roots[size]))
    for i, first in enumerate(sizes):
        for second in sizes[i:]:
            doc = ledger_consistency_proof(first=first, second=second)
            proof = [_b64(h) for h in doc["proof"]]
            assert verify_consistency(first, second, bytes(roots[first]), bytes(roots[second]), proof)
    assert ledger_inclusion_proof(entry_id=entries[-1].pk)["tree_size"] == sizes[-1]


@pytest.mark.django_db
def test_proofs_are_refused_for_what_no_checkpoint_covers() -> None:
    sealed = append(3)
    ledger_seal()
    (unsealed,) = append(1)
    with pytest.raises(Http404):
        ledger_inclusion_proof(entry_id=unsealed.pk)
    with pytest.raises(Http404):
        ledger_inclusion_proof(entry_id=sealed[0].pk, tree_size=2)
    ledger_seal()
    with pytest.raises(Http404):
        ledger_inclusion_proof(entry_id=unsealed.pk, tree_size=3)
    with pytest.raises(Http404):
        ledger_consistency_proof(first=4, second=3)


# Public endpoints


@pytest.mark.django_db
def test_checkpoint_endpoint_is_public_and_404_before_the_first_seal(client: Client) -> None:
    response = client.get(reverse("ledger-checkpoint"))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 404


@pytest.mark.django_db
def test_checkpoint_endpoint_returns_the_documented_json(client: Client) -> None:
    append(5)
    checkpoint = ledger_seal()
    assert checkpoint is not None
    response = client.get(reverse("ledger-checkpoint"))
    assert response.status_code == 200
    doc = response.json()
    assert set(doc) == {
        "origin",
        "tree_size",
        "root_hash",
        "created_at",
        "note",
        "signature",
        "key_id",
        "public_key",
        "public_key_pem",
        "keys",
        # Witnesses (tests/audit/test_witnesses.py).
        "cosignatures",
        "witnessed",
        "witnesses",
    }
    assert doc["tree_size"] == 5
    assert doc["origin"] == ledger.origin()
    assert _b64(doc["root_hash"]) == bytes(checkpoint.root_hash)
    assert doc["created_at"].endswith("Z")
    assert doc["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    body = doc["note"].partition("\n\n")[0] + "\n"
    assert verify_signature(_b64(doc["public_key"]), _b64(doc["signature"]), body.encode())
    (key,) = doc["keys"]
    assert key["current"] and key["retired_at"] is None
    assert key["key_id"] == doc["key_id"] == bytes(checkpoint.key_id).hex()
    assert key["public_key"] == doc["public_key"]
    assert key["kid"] == key["jwk"]["kid"] == jwk.JWK(**key["jwk"]).thumbprint()


@pytest.mark.django_db
def test_proof_endpoints_return_verifiable_proofs(client: Client) -> None:
    entries = append(3)
    ledger_seal()
    entries += append(4)
    ledger_seal()
    url = reverse("ledger-proof-inclusion", kwargs={"entry_id": entries[1].pk})
    doc = client.get(url, {"size": 3}).json()
    assert set(doc) == {"entry_id", "leaf_index", "leaf_hash", "tree_size", "root_hash", "proof"}
    proof = [_b64(h) for h in doc["proof"]]
    assert verify_inclusion(1, 3, _b64(doc["leaf_hash"]), proof, _b64(doc["root_hash"]))
    doc = client.get(reverse("ledger-proof-consistency"), {"first": 3}).json()
    assert (doc["first"], doc["second"]) == (3, 7)
    proof = [_b64(h) for h in doc["proof"]]
    assert verify_consistency(3, 7, _b64(doc["first_root_hash"]), _b64(doc["second_root_hash"]), proof)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "kwargs", "query", "status"),
    [
        ("ledger-proof-inclusion", {"entry_id": 999999}, {}, 404),
        ("ledger-proof-inclusion", {"entry_id": 1}, {"size": "x"}, 400),
        ("ledger-proof-inclusion", {"entry_id": 1}, {"size": "2"}, 404),
        ("ledger-proof-consistency", {}, {}, 400),
        ("ledger-proof-consistency", {}, {"first": "-1"}, 400),
        ("ledger-proof-consistency", {}, {"first": "1", "second": "9"}, 404),
    ],
)
def test_proof_endpoints_answer_bad_requests_with_problems(
    client: Client, name: str, kwargs: dict[str, Any], query: dict[str, str], status: int
) -> None:
    append(3)
    ledger_seal()
    response = client.get(reverse(name, kwargs=kwargs), query)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == status


# Verification


@pytest.mark.django_db
def test_verify_ledger_exits_0_when_intact(sealed_ledger: list[LedgerEntry], capsys: Any) -> None:
    append(2)  # unsealed entries are pending, not a problem
    call_command("verify_ledger")
    out = capsys.readouterr().out
    newest = LedgerCheckpoint.objects.get(tree_size=30)
    assert "ledger intact: 30 entries, 3 checkpoints" in out
    assert (
        f"newest checkpoint: tree size 30, root {base64.b64encode(bytes(newest.root_hash)).decode()}" in out
    )
    assert f"signed under key {bytes(newest.key_id).hex()} " in out
    result = ledger_verify()
    assert result == VerifyResult(
        ok=True,
        entries=30,
        checkpoints=3,
        unsealed=2,
        tree_size=30,
        root_hash=bytes(newest.root_hash),
        signers=((jwk_thumbprint(signing_key().public_raw()), bytes(newest.key_id).hex(), 3),),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("unsealed", [0, 2])
def test_an_empty_ledger_is_never_reported_intact(unsealed: int, capsys: Any) -> None:
    append(unsealed)
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_ledger")
    assert exit_info.value.code == 1
    out, err = capsys.readouterr()
    assert "intact" not in out + err
    assert f"nothing to verify: no entry has been sealed yet ({unsealed} awaiting the sealer)" in err
    result = ledger_verify()
    assert not result.ok and result.empty and result.entries == 0


@pytest.mark.django_db
def test_a_leaf_inserted_without_a_checkpoint_is_detected(
    sealed_ledger: list[LedgerEntry], capsys: Any
) -> None:
    (extra,) = append(1)
    LedgerLeaf.objects.create(leaf_index=30, entry=extra, leaf_hash=b"\0" * 32)
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_ledger")
    assert exit_info.value.code == 1
    assert f"leaf index 30 (entry {extra.pk}) is not covered by any checkpoint" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="run verify_ledger"):
        ledger_seal()


@pytest.mark.django_db
def test_seal_ledger_command_prints_a_summary(capsys: Any) -> None:
    append(3)
    call_command("seal_ledger")
    assert "Sealed 3 entries; checkpoint at tree size 3" in capsys.readouterr().out
    call_command("seal_ledger")
    assert "Nothing to seal." in capsys.readouterr().out


# The append-only triggers


def _raw(sql: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


@pytest.mark.django_db
@pytest.mark.parametrize("table", LEDGER_TABLES)
@pytest.mark.parametrize("statement", ["UPDATE {table} SET {column} = {column}", "DELETE FROM {table}"])
def test_raw_update_and_delete_on_a_ledger_table_fail(
    sealed_ledger: list[LedgerEntry], table: str, statement: str
) -> None:
    column = {"audit_ledgerentry": "reason", "audit_ledgerleaf": "leaf_hash"}.get(table, "note")
    with pytest.raises(DatabaseError, match="append-only"):
        _raw(statement.format(table=table, column=column))
    assert ledger_verify().ok


@postgres_only
@pytest.mark.django_db
@pytest.mark.parametrize("table", LEDGER_TABLES)
def test_raw_truncate_on_a_ledger_table_fails(sealed_ledger: list[LedgerEntry], table: str) -> None:
    # Run the deferred foreign-key checks of the fixture's inserts first, as a commit would.
    _raw("SET CONSTRAINTS ALL IMMEDIATE")
    with pytest.raises(DatabaseError, match="append-only"):
        _raw(f"TRUNCATE {table} CASCADE")
    assert ledger_verify().ok


@postgres_only
@pytest.mark.django_db
def test_truncating_empty_ledger_tables_is_allowed_for_the_test_flush() -> None:
    _raw("TRUNCATE " + ", ".join(LEDGER_TABLES))


def test_public_ledger_endpoints_are_rate_limited_per_address(client: Any, db: Any, monkeypatch: Any) -> None:
    from django.core.cache import cache

    cache.clear()
    from rest_framework.throttling import SimpleRateThrottle

    rates = {**SimpleRateThrottle.THROTTLE_RATES, "ledger": "2/minute"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    statuses = [client.get("/api/v1/ledger/checkpoint").status_code for _ in range(3)]
    assert statuses[:2] == [404, 404] and statuses[2] == 429
    limited = client.get("/api/v1/ledger/checkpoint")
    assert int(limited["Retry-After"]) >= 1
    cache.clear()
