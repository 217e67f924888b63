"""Signing-key rotation: old checkpoints and receipts keep verifying under their key id.

Checkpoint notes carry the C2SP key id, receipts the RFC 7638 thumbprint as `kid`; both are looked
up in the key history (audit.LedgerPublicKey), which the public checkpoint endpoint publishes.
Only keys reachable from the first key by handovers signed by their predecessor are trusted.
"""

from __future__ import annotations

import base64
import io
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from jwcrypto import jwk, jws

from audit import ledger
from audit.models import LedgerEntry, LedgerPublicKey
from audit.services import SigningKeyUnknown, ledger_seal, ledger_verify
from consent.models import Grant
from consent.receipts import receipt_verify
from consent.services import grant_amend, grant_authorize, grant_revoke
from core.crypto import (
    SigningKey,
    handover_statement,
    jwk_thumbprint,
    possession_statement,
    verify_signature,
)
from tests.audit.conftest import append, postgres_only
from tests.conftest import KEY_TABLE, ledger_wipe
from vrm.checks import check_signing_key_history


@pytest.fixture
def key_file(settings: Any, tmp_path: Path) -> Path:
    """Serve the test's signing key from a file, as VRM_LEDGER_SIGNING_KEY_FILE or var/keys would."""
    path = tmp_path / "ledger_signing_key.pem"
    path.write_text(settings.VRM_LEDGER_SIGNING_KEY + "\n")
    path.chmod(0o600)
    settings.VRM_LEDGER_SIGNING_KEY_PATH = path
    return path


def _restart(settings: Any, key_file: Path) -> None:
    """Do what a restart does: read the configured key file again."""
    settings.VRM_LEDGER_SIGNING_KEY = key_file.read_text().strip()


def _rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_signing_key", *args, stdout=out)
    return out.getvalue()


def _grant(alice: Any, app: Any) -> Grant:
    return grant_authorize(
        person=alice, application=app, scopes=["purchases:read", "profile:read"], duration_days=30
    )


def _header(compact: str) -> dict[str, Any]:
    token = jws.JWS()
    token.deserialize(compact)
    return dict(token.jose_header)


def test_checkpoints_and_receipts_signed_before_a_rotation_verify_after_it(
    alice: Any, shop_app: Any, settings: Any, key_file: Path, client: Client, tmp_path: Path, capsys: Any
) -> None:
    old_pem = key_file.read_text()
    grant = _grant(alice, shop_app)
    old_checkpoint = ledger_seal()
    assert old_checkpoint is not None
    kept = tmp_path / "kept.json"
    kept.write_text(client.get(reverse("ledger-checkpoint")).content.decode())

    output = _rotate()

    new_pem = key_file.read_text()
    assert new_pem != old_pem
    assert "PRIVATE KEY" not in output  # never printed, only written to files
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    (backup,) = tmp_path.glob("ledger_signing_key.pem.retired-*")
    assert backup.read_text() == old_pem and stat.S_IMODE(backup.stat().st_mode) == 0o600
    old_kid = jwk_thumbprint(SigningKey.parse(old_pem).public_raw())
    new_kid = jwk_thumbprint(SigningKey.parse(new_pem).public_raw())
    assert f"old kid {old_kid}, new kid {new_kid}" in output
    # The handover: an entry naming both keys, sealed under the old key in the same step.
    handover = LedgerEntry.objects.get(kind=LedgerEntry.Kind.SIGNING_KEY_ROTATED)
    assert handover.reason == f"old {old_kid} new {new_kid}"
    assert hasattr(handover, "leaf")
    # The trust itself: the old key signed the handover, the new key proved possession.
    old_public, new_public = SigningKey.parse(old_pem).public_raw(), SigningKey.parse(new_pem).public_raw()
    new_row = LedgerPublicKey.objects.get(kid=new_kid)
    assert new_row.predecessor is not None and new_row.predecessor.kid == old_kid
    assert verify_signature(
        old_public,
        bytes(new_row.handover_signature),
        handover_statement(old_public=old_public, new_public=new_public),
    )
    assert verify_signature(
        new_public,
        bytes(new_row.possession_signature),
        possession_statement(old_public=old_public, new_public=new_public),
    )

    # Until restarted, processes keep signing with the old key; that stays valid.
    grant_amend(grant=grant, by=alice, scopes=["purchases:read"])
    assert ledger_seal() is not None
    _restart(settings, key_file)
    grant_revoke(grant=grant, by=alice)
    new_checkpoint = ledger_seal()
    assert new_checkpoint is not None

    # Both kinds of proof, old and new, verify under the key their key id names.
    receipts = list(grant.receipts.order_by("number"))
    assert [_header(r.jws)["kid"] for r in receipts] == [old_kid, old_kid, new_kid]
    for receipt in receipts:
        assert receipt_verify(receipt.jws) == receipt.document
    old_id = ledger.key_id(name=ledger.origin(), public_raw=SigningKey.parse(old_pem).public_raw())
    new_id = ledger.key_id(name=ledger.origin(), public_raw=SigningKey.parse(new_pem).public_raw())
    assert (bytes(old_checkpoint.key_id), bytes(new_checkpoint.key_id)) == (old_id, new_id)
    result = ledger_verify()
    assert result.ok and result.checkpoints == 4, result
    call_command("verify_ledger", "--checkpoint", str(kept))
    assert "consistent with the checkpoint given (tree size" in capsys.readouterr().out

    # The endpoint publishes both keys; an outsider verifies each checkpoint with the key of its id.
    doc = client.get(reverse("ledger-checkpoint")).json()
    keys = {k["key_id"]: k for k in doc["keys"]}
    assert set(keys) == {old_id.hex(), new_id.hex()}
    assert keys[new_id.hex()]["current"] and keys[new_id.hex()]["retired_at"] is None
    assert not keys[old_id.hex()]["current"] and keys[old_id.hex()]["retired_at"]
    assert doc["key_id"] == new_id.hex() and doc["public_key"] == keys[new_id.hex()]["public_key"]
    # An outsider who pinned the old key checks the handover from what the endpoint publishes.
    published = keys[new_id.hex()]
    assert keys[old_id.hex()]["predecessor_kid"] is None and published["predecessor_kid"] == old_kid
    assert verify_signature(
        old_public,
        base64.b64decode(published["handover_signature"]),
        handover_statement(old_public=old_public, new_public=new_public),
    )
    for checkpoint, key_id in ((old_checkpoint, old_id), (new_checkpoint, new_id)):
        note = ledger.note_parse(checkpoint.note)
        assert note.signatures[0].key_id == key_id
        public_raw = base64.b64decode(keys[key_id.hex()]["public_key"])
        assert verify_signature(public_raw, bytes(checkpoint.signature), note.body.encode())
    # ... and each receipt with the published JWK its kid names.
    jwks = {k["kid"]: k["jwk"] for k in doc["keys"]}
    for receipt in receipts:
        token = jws.JWS()
        token.deserialize(receipt.jws)
        token.verify(jwk.JWK(**jwks[_header(receipt.jws)["kid"]]), alg="EdDSA")
        assert json.loads(token.payload) == receipt.document


def test_the_old_key_may_not_sign_again_once_the_new_one_has(
    settings: Any, key_file: Path, capsys: Any, db: Any
) -> None:
    old_pem = settings.VRM_LEDGER_SIGNING_KEY
    _rotate()
    _restart(settings, key_file)
    append(2)
    assert ledger_seal() is not None
    assert ledger_verify().ok
    settings.VRM_LEDGER_SIGNING_KEY = old_pem  # someone holding the retired key signs again
    append(1)
    checkpoint = ledger_seal()
    assert checkpoint is not None
    result = ledger_verify()
    assert not result.ok
    assert result.first_problem is not None
    assert f"checkpoint at tree size {checkpoint.tree_size}: it is signed by key" in result.first_problem


def test_a_key_added_to_the_history_by_hand_fails_verification(settings: Any, db: Any) -> None:
    append(3)
    ledger_seal()
    assert ledger_verify().ok
    # An intruder with database access adds a key of their own, to sign forgeries with it.
    intruder = SigningKey.generate()
    LedgerPublicKey.objects.create(
        public_key=intruder.public_raw(), kid=jwk_thumbprint(intruder.public_raw())
    )
    result = ledger_verify()
    assert not result.ok
    assert result.first_problem == (
        f"the key history holds key {jwk_thumbprint(intruder.public_raw())}, which no valid handover "
        "signature from the first key reaches"
    )
    # And a checkpoint it signs is refused as well (the intruder's key is the configured one now).
    settings.VRM_LEDGER_SIGNING_KEY = intruder.private_pem()
    append(1)
    ledger_seal()
    result = ledger_verify()
    assert result.first_problem is not None and "which no valid handover signature from the first key" in (
        result.first_problem
    )


def _forge_handover(real_kid: str, attacker: SigningKey, *, signer: SigningKey) -> None:
    """Do what anyone with the app's database role can: a rotation entry and a key row, by INSERT."""
    attacker_public = attacker.public_raw()
    attacker_kid = jwk_thumbprint(attacker_public)
    real = LedgerPublicKey.objects.get(kid=real_kid)
    append(
        1,
        kind=LedgerEntry.Kind.SIGNING_KEY_ROTATED,
        actor_type=LedgerEntry.ActorType.CLIENT,
        reason=f"old {real_kid} new {attacker_kid}",
    )
    statement = {"old_public": bytes(real.public_key), "new_public": attacker_public}
    LedgerPublicKey.objects.create(
        public_key=attacker_public,
        kid=attacker_kid,
        predecessor=real,
        # The best they can do without the real private key: sign the handover with another key.
        handover_signature=signer.sign(handover_statement(**statement)),
        possession_signature=attacker.sign(possession_statement(**statement)),
    )


@pytest.mark.parametrize("handover_by", ["attacker", "stranger"])
def test_a_handover_forged_by_insert_is_not_trusted_anywhere(
    alice: Any, shop_app: Any, settings: Any, client: Client, capsys: Any, handover_by: str
) -> None:
    real_pem = settings.VRM_LEDGER_SIGNING_KEY
    real_kid = jwk_thumbprint(SigningKey.parse(real_pem).public_raw())
    grant = _grant(alice, shop_app)
    assert ledger_seal() is not None
    attacker = SigningKey.generate()
    attacker_kid = jwk_thumbprint(attacker.public_raw())
    signer = attacker if handover_by == "attacker" else SigningKey.generate()
    _forge_handover(real_kid, attacker, signer=signer)
    assert ledger_seal() is not None  # the real sealer seals the forged rotation entry

    # Before the attacker signs anything, the untrusted row already fails verification.
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_ledger")
    assert exit_info.value.code == 1
    assert f"the key history holds key {attacker_kid}, which no valid handover" in capsys.readouterr().err

    # The attacker seals checkpoints and signs a receipt with their key.
    settings.VRM_LEDGER_SIGNING_KEY = attacker.private_pem()
    append(2)
    forged_checkpoint = ledger_seal()
    assert forged_checkpoint is not None
    grant_amend(grant=grant, by=alice, scopes=["purchases:read"])
    forged_receipt = grant.receipts.order_by("-number").first()
    assert forged_receipt is not None and _header(forged_receipt.jws)["kid"] == attacker_kid

    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_ledger")
    assert exit_info.value.code == 1
    assert (
        f"checkpoint at tree size {forged_checkpoint.tree_size}: it is signed by key {attacker_kid}, "
        "which no valid handover signature from the first key reaches"
    ) in capsys.readouterr().err
    with pytest.raises(jws.InvalidJWSSignature, match="not in the key history"):
        receipt_verify(forged_receipt.jws)
    first_receipt = grant.receipts.get(number=1)
    assert receipt_verify(first_receipt.jws) == first_receipt.document  # the real key still verifies

    # The public key list leaves the attacker's key out and names no key for their checkpoint.
    doc = client.get(reverse("ledger-checkpoint")).json()
    assert [k["kid"] for k in doc["keys"]] == [real_kid]
    assert doc["keys"][0]["current"]
    assert doc["tree_size"] == forged_checkpoint.tree_size and doc["public_key"] is None


def _raw(sql: str, params: list[Any] | None = None) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {KEY_TABLE} SET public_key = %s",
        f"UPDATE {KEY_TABLE} SET handover_signature = %s",
        f"UPDATE {KEY_TABLE} SET kid = 'forged'",
        f"UPDATE {KEY_TABLE} SET retired_at = NULL",
        f"DELETE FROM {KEY_TABLE}",
    ],
)
def test_the_database_refuses_to_change_or_delete_a_key(
    settings: Any, key_file: Path, db: Any, statement: str
) -> None:
    append(1)
    _rotate()
    _restart(settings, key_file)
    assert ledger_seal() is None
    params = [SigningKey.generate().public_raw()] if "%s" in statement else None
    with pytest.raises(DatabaseError, match="append-only"):
        _raw(statement, params)
    assert LedgerPublicKey.objects.count() == 2
    assert ledger_verify().ok


def test_a_key_is_retired_once_and_only_by_setting_retired_at(db: Any) -> None:
    append(1)
    ledger_seal()
    (key,) = LedgerPublicKey.objects.all()
    assert key.retired_at is None
    _raw(f"UPDATE {KEY_TABLE} SET retired_at = %s", ["2026-01-01 00:00:00+00:00"])
    with pytest.raises(DatabaseError, match="append-only"):
        _raw(f"UPDATE {KEY_TABLE} SET retired_at = %s", ["2027-01-01 00:00:00+00:00"])
    with pytest.raises(DatabaseError, match="append-only"):
        _raw(f"UPDATE {KEY_TABLE} SET retired_at = %s, kid = 'other'", ["2027-01-01 00:00:00+00:00"])


@postgres_only
def test_the_database_refuses_to_truncate_the_key_history(db: Any) -> None:
    append(1)
    ledger_seal()
    _raw("SET CONSTRAINTS ALL IMMEDIATE")
    with pytest.raises(DatabaseError, match="append-only"):
        _raw(f"TRUNCATE {KEY_TABLE} CASCADE")


def test_a_receipt_naming_an_unknown_kid_does_not_verify(alice: Any, shop_app: Any) -> None:
    receipt = _grant(alice, shop_app).receipts.get()
    stranger = SigningKey.generate()
    token = jws.JWS(json.dumps(receipt.document).encode())
    kid = jwk_thumbprint(stranger.public_raw())
    token.add_signature(
        jwk.JWK.from_pem(stranger.private_pem().encode()),
        alg="EdDSA",
        protected=json.dumps({"alg": "EdDSA", "kid": kid}),
    )
    with pytest.raises(jws.InvalidJWSSignature, match="not in the key history"):
        receipt_verify(token.serialize(compact=True))
    # A known kid on a signature by another key fails too.
    header = receipt.jws.split(".")[0]
    forged = token.serialize(compact=True).split(".")
    with pytest.raises(jws.InvalidJWSSignature):
        receipt_verify(".".join([header, forged[1], forged[2]]))


def test_a_key_outside_the_history_is_refused_for_signing(
    alice: Any, shop_app: Any, settings: Any, key_file: Path
) -> None:
    _grant(alice, shop_app)
    ledger_seal()
    assert check_signing_key_history(databases=["default"]) == []
    stranger = SigningKey.generate()
    settings.VRM_LEDGER_SIGNING_KEY = stranger.private_pem()  # swapped without rotate_signing_key
    with pytest.raises(SigningKeyUnknown, match="is not in the key history"):
        ledger_seal()
    with pytest.raises(SigningKeyUnknown):
        _grant(alice, shop_app)  # its receipt cannot be signed, so the grant is not made
    (error,) = check_signing_key_history(databases=["default"])
    assert error.id == "vrm.E004"
    assert check_signing_key_history(databases=None) == []  # runserver: no database checks


def test_first_use_registers_only_the_key_that_signed_the_newest_checkpoint(settings: Any, db: Any) -> None:
    # A ledger sealed before the key history existed: checkpoints, no history row.
    append(2)
    ledger_seal()
    ledger_wipe((KEY_TABLE,))  # what a database from before the key history looks like
    assert "the key history is empty: run seal_ledger once" in (ledger_verify().first_problem or "")
    original = settings.VRM_LEDGER_SIGNING_KEY
    settings.VRM_LEDGER_SIGNING_KEY = SigningKey.generate().private_pem()
    append(1)
    with pytest.raises(SigningKeyUnknown, match="did not sign the newest checkpoint"):
        ledger_seal()
    assert not LedgerPublicKey.objects.exists()
    settings.VRM_LEDGER_SIGNING_KEY = original
    assert ledger_seal() is not None
    assert LedgerPublicKey.objects.count() == 1
    assert ledger_verify().ok


def test_a_key_from_the_environment_is_rotated_only_into_a_named_file(
    settings: Any, tmp_path: Path, db: Any
) -> None:
    settings.VRM_LEDGER_SIGNING_KEY_PATH = None  # the key is in VRM_LEDGER_SIGNING_KEY itself
    with pytest.raises(CommandError, match="Run it again with --out FILE"):
        _rotate()
    assert not LedgerPublicKey.objects.exclude(retired_at=None).exists()
    out = tmp_path / "new.pem"
    output = _rotate("--out", str(out))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    new = SigningKey.parse(out.read_text())
    assert f"new kid {jwk_thumbprint(new.public_raw())}" in output and str(out) in output
    assert LedgerPublicKey.objects.get(retired_at=None).kid == jwk_thumbprint(new.public_raw())
    with pytest.raises(CommandError, match="Cannot write the new key"):
        _rotate("--out", str(out))  # never overwrites a file


def test_seal_ledger_names_a_key_outside_the_history(settings: Any, db: Any) -> None:
    append(1)
    ledger_seal()
    settings.VRM_LEDGER_SIGNING_KEY = SigningKey.generate().private_pem()
    with pytest.raises(CommandError, match="Not sealed: the configured VRM_LEDGER_SIGNING_KEY"):
        call_command("seal_ledger")
