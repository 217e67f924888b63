"""Witness cosignatures (C2SP tlog-cosignature v1): the format, POST /api/v1/ledger/cosignatures,
the alarms a forked, rewritten or truncated log raises, and the checkpoint documents that carry them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import time
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse

from audit import ledger
from audit.models import LedgerAlarm, LedgerCheckpoint, LedgerCosignature, LedgerEntry, Witness
from audit.selectors import ledger_root_at, witness_coverage
from audit.services import ledger_seal, ledger_verify, witness_register, witness_retire
from core.crypto import SigningKey, verify_signature
from core.keys import signing_key
from tests.audit.conftest import append
from tests.audit.test_ledger_outside import _behind_the_triggers

URL = "/api/v1/ledger/cosignatures"
ALICE = "witness.example.org/alice"
BOB = "witness.example.net/bob"


class Cosigner:
    """A witness as the outside runs one: a name and a private key."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = SigningKey.generate()

    @property
    def public(self) -> bytes:
        return self.key.public_raw()

    def line(self, body: str, timestamp: int | None = None) -> str:
        moment = int(time.time()) if timestamp is None else timestamp
        return ledger.cosignature_sign(key=self.key, name=self.name, body=body, timestamp=moment)

    def cosign(self, note: str, timestamp: int | None = None) -> str:
        body = note.partition("\n\n")[0] + "\n"
        return ledger.note_with_cosignatures(note, [self.line(body, timestamp)])


def post(client: Client, text: str | bytes, **extra: Any) -> Any:
    return client.post(URL, data=text, content_type="text/plain", **extra)


def newest_note() -> str:
    return LedgerCheckpoint.objects.order_by("-tree_size").first().note


def note_at(size: int) -> str:
    return LedgerCheckpoint.objects.get(tree_size=size).note


def log_signed(size: int, root: bytes) -> str:
    """A checkpoint the log's own key signed: what a misbehaving log shows a witness."""
    note, _ = ledger.note_sign(key=signing_key(), origin=ledger.origin(), tree_size=size, root_hash=root)
    return note


@pytest.fixture
def alice_w(auditor: Any) -> Cosigner:
    cosigner = Cosigner(ALICE)
    witness_register(name=cosigner.name, public_raw=cosigner.public, by=auditor)
    return cosigner


@pytest.fixture
def bob_w(auditor: Any) -> Cosigner:
    cosigner = Cosigner(BOB)
    witness_register(name=cosigner.name, public_raw=cosigner.public, by=auditor)
    return cosigner


# --- the format ----------------------------------------------------------------------------------


def test_a_cosignature_line_has_the_c2sp_structure_and_verifies() -> None:
    witness = Cosigner(ALICE)
    body = "example.com/log\n42\n" + base64.b64encode(bytes(32)).decode() + "\n"
    line = witness.line(body, 1_700_000_000)
    dash, name, blob_text = line.rstrip("\n").split(" ")
    assert dash == "\u2014" and name == ALICE
    blob = base64.b64decode(blob_text, validate=True)
    assert len(blob) == 4 + 8 + 64
    # Key id: SHA-256(name || 0x0A || 0x04 || public key)[:4].
    assert blob[:4] == hashlib.sha256(ALICE.encode() + b"\n\x04" + witness.public).digest()[:4]
    assert int.from_bytes(blob[4:12], "big") == 1_700_000_000
    message = b"cosignature/v1\ntime 1700000000\n" + body.encode()
    assert verify_signature(witness.public, blob[12:], message)
    # And back: a note carrying it parses, and the line splits into the same parts.
    note = ledger.note_parse(body + "\n" + line)
    (parsed,) = note.signatures
    cosignature = ledger.cosignature_split(parsed)
    assert cosignature is not None
    assert (cosignature.name, cosignature.timestamp) == (ALICE, 1_700_000_000)
    assert ledger.cosignature_verify(
        public_raw=witness.public, body=body, timestamp=cosignature.timestamp, signature=cosignature.signature
    )
    assert not ledger.cosignature_verify(
        public_raw=witness.public,
        body=body,
        timestamp=cosignature.timestamp + 1,
        signature=cosignature.signature,
    )


def test_a_vkey_round_trips_and_names_its_key_id() -> None:
    witness = Cosigner(ALICE)
    vkey = ledger.witness_vkey(name=ALICE, public_raw=witness.public)
    name, id_hex, key_text = vkey.split("+", 2)
    assert name == ALICE
    assert bytes.fromhex(id_hex) == ledger.witness_key_id(name=ALICE, public_raw=witness.public)
    assert base64.b64decode(key_text) == b"\x04" + witness.public
    assert ledger.witness_vkey_parse(vkey) == (ALICE, witness.public)


@pytest.mark.parametrize(
    ("vkey", "says"),
    [
        ("just-a-name", "name\\+keyid\\+base64key"),
        ("has space+00000000+AAAA", "1-100 letters"),
        (f"{ALICE}+0000000+AAAA", "8 lower-case hex"),
        (f"{ALICE}+00000000+!!!", "not standard base64"),
        (f"{ALICE}+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(), "not a cosignature/v1 key"),
        (f"{ALICE}+00000000+" + base64.b64encode(b"\x04" + bytes(32)).decode(), "does not match"),
    ],
)
def test_a_bad_vkey_is_refused_saying_why(vkey: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        ledger.witness_vkey_parse(vkey)


# --- registration --------------------------------------------------------------------------------


def test_registering_and_retiring_a_witness_write_ledger_entries(auditor: Any) -> None:
    witness = Cosigner(ALICE)
    row = witness_register(name=ALICE, public_raw=witness.public, by=auditor)
    key_hex = ledger.witness_key_id(name=ALICE, public_raw=witness.public).hex()
    assert bytes(row.key_id).hex() == key_hex
    registered = LedgerEntry.objects.get(kind="witness.registered")
    assert (registered.actor_type, registered.actor_id, registered.record_ids) == (
        "auditor",
        str(auditor.pk),
        [key_hex],
    )
    assert witness_retire(witness=row, by=auditor) is True
    assert witness_retire(witness=row, by=auditor) is False  # once
    assert LedgerEntry.objects.filter(kind="witness.retired", record_ids=[key_hex]).count() == 1


def test_a_name_or_key_registers_once(auditor: Any, alice_w: Cosigner) -> None:
    with pytest.raises(ValueError, match="already registered"):
        witness_register(name=ALICE, public_raw=Cosigner("x").public, by=auditor)
    with pytest.raises(ValueError, match="already registered"):
        witness_register(name="other.example/w", public_raw=alice_w.public, by=auditor)
    with pytest.raises(ValueError, match="not usable"):
        witness_register(name="other.example/w", public_raw=b"short", by=auditor)


# --- POST /api/v1/ledger/cosignatures ------------------------------------------------------------


def test_a_witness_cosigns_the_newest_checkpoint(
    client: Client, sealed_ledger: Any, alice_w: Cosigner
) -> None:
    note = alice_w.cosign(newest_note(), 1_700_000_000)
    response = post(client, note)
    assert response.status_code == 201, response.content
    root = base64.b64encode(bytes(LedgerCheckpoint.objects.get(tree_size=30).root_hash)).decode()
    key_hex = ledger.witness_key_id(name=ALICE, public_raw=alice_w.public).hex()
    assert response.json() == {
        "tree_size": 30,
        "root_hash": root,
        "cosignatures": [{"witness": ALICE, "key_id": key_hex, "timestamp": 1_700_000_000}],
    }
    stored = LedgerCosignature.objects.get()
    assert (stored.tree_size, stored.timestamp, stored.note_body) == (
        30,
        1_700_000_000,
        note.split("\n\n")[0] + "\n",
    )
    # Again, and again with another time: 200 with the one stored.
    assert post(client, note).status_code == 200
    again = post(client, alice_w.cosign(newest_note(), 1_700_000_100))
    assert again.status_code == 200
    assert again.json()["cosignatures"][0]["timestamp"] == 1_700_000_000
    assert LedgerCosignature.objects.count() == 1


def test_two_witnesses_in_one_note_and_unknown_keys_ignored(
    client: Client, sealed_ledger: Any, alice_w: Cosigner, bob_w: Cosigner
) -> None:
    note = bob_w.cosign(alice_w.cosign(note_at(20)))
    note = Cosigner("stranger.example/w").cosign(note)
    response = post(client, note)
    assert response.status_code == 201
    assert sorted(c["witness"] for c in response.json()["cosignatures"]) == [BOB, ALICE]
    assert LedgerCosignature.objects.filter(tree_size=20).count() == 2


def test_the_checkpoint_documents_carry_the_cosignatures(
    client: Client, sealed_ledger: Any, alice_w: Cosigner, bob_w: Cosigner
) -> None:
    assert post(client, alice_w.cosign(note_at(20), 1_700_000_000)).status_code == 201
    document = client.get("/api/v1/ledger/checkpoint").json()
    assert document["tree_size"] == 30
    assert document["cosignatures"] == []
    witnessed = document["witnessed"]
    assert witnessed["tree_size"] == 20
    assert witnessed["note"] == note_at(20) + alice_w.line(note_at(20).split("\n\n")[0] + "\n", 1_700_000_000)
    assert [c["witness"] for c in witnessed["cosignatures"]] == [ALICE]
    assert witnessed["cosignatures"][0]["line"] + "\n" == witnessed["note"].split("\n", 5)[-1]
    assert [w["name"] for w in document["witnesses"]] == [ALICE, BOB]
    assert document["witnesses"][0]["vkey"] == ledger.witness_vkey(name=ALICE, public_raw=alice_w.public)
    assert document["witnesses"][0]["retired_at"] is None
    # The newest checkpoint cosigned: both places say so; the text checkpoint carries the line.
    assert post(client, bob_w.cosign(newest_note(), 1_700_000_001)).status_code == 201
    document = client.get("/api/v1/ledger/checkpoint").json()
    assert [c["witness"] for c in document["cosignatures"]] == [BOB]
    assert document["witnessed"]["tree_size"] == 30
    text = client.get(reverse("ledger-checkpoint-text"), HTTP_ACCEPT="text/plain")
    assert text.status_code == 200
    assert text["Content-Type"] == "text/plain; charset=utf-8"
    assert text["Cache-Control"] == "max-age=5"
    assert text.content.decode() == document["witnessed"]["note"]
    parsed = ledger.note_parse(text.content.decode())
    assert [s.name for s in parsed.signatures] == [ledger.origin(), BOB]


def test_the_text_checkpoint_is_404_before_the_first_seal(client: Client, db: Any) -> None:
    response = client.get("/ledger/checkpoint")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_a_witnessed_checkpoint_is_null_until_one_is_cosigned(client: Client, sealed_ledger: Any) -> None:
    document = client.get("/api/v1/ledger/checkpoint").json()
    assert (document["cosignatures"], document["witnessed"], document["witnesses"]) == ([], None, [])


def test_an_unknown_witness_is_403(client: Client, sealed_ledger: Any) -> None:
    response = post(client, Cosigner("stranger.example/w").cosign(newest_note()))
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert "no cosignature of a registered witness" in response.json()["detail"]


def test_a_bad_cosignature_is_403(client: Client, sealed_ledger: Any, alice_w: Cosigner) -> None:
    forged = Cosigner(ALICE)  # the same name, another key: the key id differs, so it is unknown
    assert post(client, forged.cosign(newest_note())).status_code == 403
    # The right key id over a wrong signature.
    note = alice_w.cosign(newest_note())
    head, _, line = note.rstrip("\n").rpartition("\n")
    dash, name, blob_text = line.split(" ")
    blob = bytearray(base64.b64decode(blob_text))
    blob[-1] ^= 1
    tampered = f"{head}\n{dash} {name} {base64.b64encode(bytes(blob)).decode()}\n"
    response = post(client, tampered)
    assert response.status_code == 403
    assert "does not verify" in response.json()["detail"]
    # A cosignature of another body (size 20's) on this note.
    body20 = note_at(20).split("\n\n")[0] + "\n"
    assert post(client, newest_note() + alice_w.line(body20)).status_code == 403
    assert not LedgerCosignature.objects.exists()


def test_a_note_the_log_did_not_sign_is_403(client: Client, sealed_ledger: Any, alice_w: Cosigner) -> None:
    other_log = SigningKey.generate()
    note, _ = ledger.note_sign(key=other_log, origin=ledger.origin(), tree_size=30, root_hash=os.urandom(32))
    response = post(client, alice_w.cosign(note))
    assert response.status_code == 403
    assert "log's signature" in response.json()["detail"]
    # Another log's origin altogether.
    note, _ = ledger.note_sign(
        key=signing_key(), origin="other.example/log", tree_size=30, root_hash=bytes(32)
    )
    assert post(client, alice_w.cosign(note)).status_code == 403
    assert not LedgerAlarm.objects.exists()


def test_a_retired_witness_is_403(
    client: Client, sealed_ledger: Any, auditor: Any, alice_w: Cosigner
) -> None:
    witness_retire(witness=Witness.objects.get(name=ALICE), by=auditor)
    response = post(client, alice_w.cosign(newest_note()))
    assert response.status_code == 403
    assert "retired" in response.json()["detail"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not a note", "cannot be read"),
        ("a\nb\nc\n\n\u2014 x AAAA\n", "cannot be read"),
        (b"\xff\xfe", "UTF-8"),
        ("x" * (16 * 1024 + 1), "larger than"),
    ],
)
def test_a_malformed_or_oversized_note_is_400(
    client: Client, sealed_ledger: Any, text: Any, says: str
) -> None:
    response = post(client, text)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert says in response.json()["detail"]


def test_a_cosignature_from_the_future_is_400(client: Client, sealed_ledger: Any, alice_w: Cosigner) -> None:
    response = post(client, alice_w.cosign(newest_note(), int(time.time()) + 3600))
    assert response.status_code == 400
    assert "ahead" in response.json()["detail"]
    assert post(client, alice_w.cosign(newest_note(), int(time.time()) + 300)).status_code == 201


def _alarm_post(client: Client, note: str, kind: str) -> Any:
    response = post(client, note)
    assert response.status_code == 409, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["alarm"] == kind
    assert LedgerAlarm.objects.filter(kind=kind).count() == 1
    # The same report again raises no second alarm.
    assert post(client, note).status_code == 409
    assert LedgerAlarm.objects.filter(kind=kind).count() == 1
    assert LedgerEntry.objects.filter(kind="ledger.alarm").count() == 1
    return response


def test_a_fork_raises_an_alarm(client: Client, sealed_ledger: Any, alice_w: Cosigner) -> None:
    forked = log_signed(20, os.urandom(32))
    response = _alarm_post(client, alice_w.cosign(forked), "fork")
    assert "two different checkpoints of tree size 20" in response.json()["detail"]
    alarm = LedgerAlarm.objects.get()
    assert alarm.tree_size == 20 and alarm.reported_by.name == ALICE
    assert forked in alarm.evidence and note_at(20) in alarm.evidence
    entry = LedgerEntry.objects.get(kind="ledger.alarm")
    assert (entry.actor_type, entry.reason) == ("system", "fork at tree size 20")
    assert not LedgerCosignature.objects.exists()


def test_a_truncated_log_raises_an_alarm(client: Client, sealed_ledger: Any, alice_w: Cosigner) -> None:
    _alarm_post(client, alice_w.cosign(log_signed(50, os.urandom(32))), "truncated")


def test_a_rewritten_log_raises_an_alarm(client: Client, sealed_ledger: Any, alice_w: Cosigner) -> None:
    response = _alarm_post(client, alice_w.cosign(log_signed(15, os.urandom(32))), "inconsistent")
    assert "rewritten" in response.json()["detail"]


def test_a_missing_checkpoint_raises_an_alarm_and_keeps_the_cosignature(
    client: Client, sealed_ledger: Any, alice_w: Cosigner
) -> None:
    _alarm_post(client, alice_w.cosign(log_signed(15, ledger_root_at(tree_size=15))), "checkpoint_missing")
    assert LedgerCosignature.objects.get().tree_size == 15


def test_ledger_root_at_any_size_matches_the_checkpoints(sealed_ledger: Any) -> None:
    for checkpoint in LedgerCheckpoint.objects.all():
        assert ledger_root_at(tree_size=checkpoint.tree_size) == bytes(checkpoint.root_hash)
    with pytest.raises(ValueError, match="fewer"):
        ledger_root_at(tree_size=31)


def test_witness_coverage_counts_non_retired_witnesses(
    client: Client, sealed_ledger: Any, auditor: Any, alice_w: Cosigner, bob_w: Cosigner
) -> None:
    assert witness_coverage() == []
    post(client, alice_w.cosign(note_at(20)))
    post(client, alice_w.cosign(note_at(10)))
    post(client, bob_w.cosign(newest_note()))
    assert witness_coverage() == [20, 30]
    witness_retire(witness=Witness.objects.get(name=BOB), by=auditor)
    assert witness_coverage() == [20]


@pytest.mark.parametrize("table", ["audit_ledgercosignature", "audit_ledgeralarm"])
@pytest.mark.parametrize("statement", ["UPDATE {table} SET tree_size = tree_size + 1", "DELETE FROM {table}"])
def test_cosignatures_and_alarms_are_append_only(
    client: Client, sealed_ledger: Any, alice_w: Cosigner, table: str, statement: str
) -> None:
    post(client, alice_w.cosign(newest_note()))
    post(client, alice_w.cosign(log_signed(50, os.urandom(32))))
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement.format(table=table))


def test_cosigning_a_checkpoint_sealed_later(client: Client, sealed_ledger: Any, alice_w: Cosigner) -> None:
    post(client, alice_w.cosign(newest_note()))
    append(5)
    ledger_seal()
    assert post(client, alice_w.cosign(newest_note())).status_code == 201
    assert witness_coverage() == [LedgerCheckpoint.objects.order_by("tree_size").last().tree_size] != [30]


# --- verify_ledger -------------------------------------------------------------------------------


def _verify_command(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_ledger", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def _store(witness: Cosigner, size: int, root: bytes, timestamp: int = 1_700_000_000) -> None:
    """Store a cosignature the witness really made, of whatever body: what a rewritten database holds."""
    body = ledger.checkpoint_body(origin=ledger.origin(), tree_size=size, root_hash=root)
    line = ledger.note_parse(body + "\n" + witness.line(body, timestamp)).signatures[0]
    cosignature = ledger.cosignature_split(line)
    assert cosignature is not None
    LedgerCosignature.objects.create(
        witness=Witness.objects.get(name=witness.name),
        tree_size=size,
        root_hash=root,
        note_body=body,
        timestamp=timestamp,
        signature=cosignature.signature,
    )


def test_verify_reports_the_witnessed_checkpoint(
    client: Client, sealed_ledger: Any, alice_w: Cosigner, bob_w: Cosigner
) -> None:
    ledger_seal()  # the two registrations
    post(client, alice_w.cosign(note_at(20)))
    post(client, bob_w.cosign(note_at(20)))
    post(client, alice_w.cosign(newest_note()))
    result = ledger_verify()
    assert result.ok, result.first_problem
    assert (result.witnessed_size, result.witnessed_by) == (32, (ALICE,))
    code, out, _ = _verify_command()
    assert code == 0
    assert f"witnessed: tree size 32 by 1 witness ({ALICE}); 0 entries after it await witnesses" in out
    code, out, _ = _verify_command("--witnesses", "1")
    assert code == 0
    code, out, _ = _verify_command("--witnesses", "2")
    assert code == 0
    assert (
        f"witnessed: tree size 20 by 2 witnesses ({BOB}, {ALICE}); 12 entries after it await witnesses" in out
    )
    code, _, err = _verify_command("--witnesses", "3")
    assert code == 1
    assert "no checkpoint is cosigned by 3 independent witnesses (the most any checkpoint has is 2)" in err


def test_verify_with_witnesses_fails_when_none_cosigned(sealed_ledger: Any, alice_w: Cosigner) -> None:
    code, out, err = _verify_command()
    assert code == 0
    assert "witnessed: no checkpoint is cosigned by a witness yet" in out
    code, _, err = _verify_command("--witnesses", "1")
    assert code == 1
    assert "no checkpoint is cosigned by 1 independent witness " in err


def test_a_retired_witness_does_not_count(
    client: Client, sealed_ledger: Any, auditor: Any, alice_w: Cosigner
) -> None:
    post(client, alice_w.cosign(newest_note()))
    assert ledger_verify(witnesses=1).ok
    witness_retire(witness=Witness.objects.get(name=ALICE), by=auditor)
    result = ledger_verify(witnesses=1)
    assert not result.ok and "no checkpoint is cosigned by 1" in (result.first_problem or "")


def test_verify_catches_a_rewritten_log_a_witness_cosigned(sealed_ledger: Any, alice_w: Cosigner) -> None:
    wrong = os.urandom(32)
    _store(alice_w, 20, wrong)
    result = ledger_verify()
    assert not result.ok
    right = base64.b64encode(bytes(LedgerCheckpoint.objects.get(tree_size=20).root_hash)).decode()
    assert result.first_problem == (
        f"witness {ALICE} cosigned tree size 20 with root {base64.b64encode(wrong).decode()}, but the "
        f"ledger's tree at size 20 has root {right}: the log was rewritten or forked after it was witnessed"
    )
    # Between checkpoints too: the tree at size 15.
    code, _, err = _verify_command()
    assert code == 1 and "ledger NOT intact: witness" in err


def test_verify_catches_a_truncated_log_a_witness_cosigned(sealed_ledger: Any, alice_w: Cosigner) -> None:
    _store(alice_w, 40, os.urandom(32))
    result = ledger_verify()
    assert result.first_problem == (
        f"witness {ALICE} cosigned tree size 40, which is larger than the ledger's tree (30 entries): "
        "the log was truncated"
    )


def test_verify_catches_a_tampered_cosignature_row(
    client: Client, sealed_ledger: Any, alice_w: Cosigner
) -> None:
    post(client, alice_w.cosign(newest_note(), 1_700_000_000))
    assert ledger_verify().ok
    _behind_the_triggers(("UPDATE audit_ledgercosignature SET timestamp = timestamp + 1", []))
    result = ledger_verify()
    assert result.first_problem == (
        f"the cosignature of witness {ALICE} of tree size 30: "
        "its signature does not verify with the witness's key"
    )
    code, _, err = _verify_command()
    assert code == 1


def test_verify_fails_on_an_alarm_and_names_it(client: Client, sealed_ledger: Any, alice_w: Cosigner) -> None:
    ledger_seal()
    post(client, alice_w.cosign(log_signed(20, os.urandom(32))))
    ledger_seal()  # the ledger.alarm entry: the ledger itself is intact
    result = ledger_verify()
    assert not result.ok
    assert len(result.alarms) == 1
    assert result.first_problem is not None
    assert result.first_problem.startswith(f"alarm: fork at tree size 20 reported by witness {ALICE}")
    code, _, err = _verify_command()
    assert code == 1
    assert f"alarm: fork at tree size 20 reported by witness {ALICE}" in err
