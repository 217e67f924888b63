"""The auditor's "verify now" gives verify_ledger's findings: never "intact" after 0 entries."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from jwcrypto import jwk, jws

from audit.models import LedgerCheckpoint
from audit.services import ledger_seal
from auditor.report import verification_report_verify
from tests.audit.conftest import append


@pytest.fixture
def auditor_client(auditor: Any) -> Client:
    client = Client()
    client.force_login(auditor)
    return client


def _verify(client: Client, checkpoint: str = "") -> tuple[int, str, Any]:
    response = client.post(reverse("audit:portal"), {"checkpoint": checkpoint})
    return (
        response.status_code,
        response.content.decode(),
        response.context["result"] if response.context and "result" in response.context else None,
    )


@pytest.mark.parametrize("unsealed", [0, 3])
def test_an_empty_ledger_is_nothing_to_verify_never_intact(auditor_client: Client, unsealed: int) -> None:
    append(unsealed)
    status, body, result = _verify(auditor_client)
    assert status == 200
    assert result.empty and not result.ok
    assert "Nothing to verify." in body
    assert "intact" not in body.lower()


def test_verify_now_shows_gaps_in_entry_ids_as_warnings(auditor_client: Client) -> None:
    entries = append(6)
    ledger_seal()
    pending = append(3)
    with connection.cursor() as cursor:
        # Behind the triggers, as an intruder would: drop an entry not yet sealed.
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("DELETE FROM audit_ledgerentry WHERE id = %s", [pending[1].pk])
            cursor.execute("SET LOCAL session_replication_role = origin")
        else:
            cursor.execute("DROP TRIGGER audit_ledgerentry_no_delete")
            cursor.execute("DELETE FROM audit_ledgerentry WHERE id = %s", [pending[1].pk])
    status, body, result = _verify(auditor_client)
    assert result.ok and result.entries == len(entries)
    assert "The ledger is intact." in body
    assert f"entry id {pending[1].pk} is missing" in body
    assert "not proof of tampering" in body


def test_verify_now_checks_a_pasted_checkpoint(auditor_client: Client, client: Client) -> None:
    append(4)
    ledger_seal()
    kept = client.get(reverse("ledger-checkpoint")).content.decode()
    append(2)
    ledger_seal()
    status, body, result = _verify(auditor_client, kept)
    assert result.ok and result.outside_size == 4
    assert "consistent with the checkpoint you gave (tree size 4)" in body
    # The same note with its tree size claimed larger no longer verifies.
    note = json.loads(kept)["note"].replace("\n4\n", "\n6\n")
    status, body, result = _verify(auditor_client, note)
    assert not result.ok
    assert "The ledger has a problem." in body
    assert "its signature does not verify" in body
    newest = LedgerCheckpoint.objects.get(tree_size=6)
    status, body, result = _verify(auditor_client, newest.note.replace("\n", "\r\n"))
    assert result.ok and result.outside_size == 6


def test_an_unreadable_pasted_checkpoint_is_a_form_error(auditor_client: Client) -> None:
    append(1)
    ledger_seal()
    status, body, result = _verify(auditor_client, '{"no": "note"}')
    assert status == 400 and result is None
    assert "the JSON given has no &quot;note&quot; string" in body


# --- what was checked, and the signed report ---------------------------------------------------


def _report(client: Client, body: str) -> str:
    match = re.search(r'href="(/audit/reports/[^"]+\.jws)"', body)
    assert match, "no report link on the page"
    response = client.get(match.group(1))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jose"
    assert response["Content-Disposition"].startswith('attachment; filename="ledger-verification-')
    return response.content.decode()


def _published_jwk(client: Client, kid: str) -> dict[str, Any]:
    keys = client.get(reverse("ledger-checkpoint")).json()["keys"]
    return next(key["jwk"] for key in keys if key["kid"] == kid)


def test_verify_now_says_what_was_checked(auditor_client: Client, client: Client) -> None:
    append(5)
    ledger_seal()
    append(2)
    ledger_seal()
    append(3)  # not sealed
    newest = LedgerCheckpoint.objects.get(tree_size=7)
    status, body, result = _verify(auditor_client)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))
    assert "7 sealed entries read and hashed again" in text
    assert "7 leaf hashes compared" in text
    assert "2 checkpoints: root recomputed, signature verified" in text
    assert f"size 7, root {base64.b64encode(bytes(newest.root_hash)).decode()}" in text
    key = client.get(reverse("ledger-checkpoint")).json()
    assert f"key {key['key_id']} (kid {key['keys'][-1]['kid']} ): 2 checkpoints" in text
    assert "3 newer entries are not sealed yet and were not checked" in text
    assert "seconds" in text


@pytest.mark.parametrize("unsealed", [0, 3])
def test_the_report_of_an_empty_ledger_never_says_intact(
    auditor_client: Client, client: Client, unsealed: int
) -> None:
    append(unsealed)
    status, body, result = _verify(auditor_client)
    assert "0 sealed entries" in body and "0 checkpoints" in body
    compact = _report(auditor_client, body)
    document = verification_report_verify(compact)
    assert document["result"] == "nothing_to_verify"
    assert document["checked"] == {"entries": 0, "leaves": 0, "checkpoints": 0}
    assert document["unsealed_entries"] == unsealed
    assert document["newest_checkpoint"] is None
    assert "intact" not in compact and "intact" not in json.dumps(document)


def test_the_report_verifies_with_the_published_key_and_a_tampered_one_fails(
    auditor_client: Client, client: Client
) -> None:
    append(4)
    ledger_seal()
    append(1)
    status, body, result = _verify(auditor_client)
    compact = _report(auditor_client, body)
    header = json.loads(base64.urlsafe_b64decode(compact.split(".")[0] + "=="))
    assert header["alg"] == "EdDSA" and header["typ"] == "vrm-ledger-verification+jws"
    # An outsider: the key comes from the public endpoint, not from the database.
    token = jws.JWS()
    token.deserialize(compact)
    token.verify(jwk.JWK(**_published_jwk(client, header["kid"])), alg="EdDSA")
    document = json.loads(token.payload)
    newest = LedgerCheckpoint.objects.get()
    assert document["format"] == "vrm-ledger-verification/1"
    assert document["result"] == "intact"
    assert document["checked"] == {"entries": 4, "leaves": 4, "checkpoints": 1}
    assert document["newest_checkpoint"] == {
        "tree_size": 4,
        "root_hash": base64.b64encode(bytes(newest.root_hash)).decode(),
    }
    assert document["signing_keys"] == [
        {
            "kid": header["kid"],
            "key_id": client.get(reverse("ledger-checkpoint")).json()["key_id"],
            "checkpoints": 1,
        }
    ]
    assert document["unsealed_entries"] == 1
    assert document["first_problem"] is None and document["seconds"] >= 0
    # Claim 5 entries instead of 4: the signature no longer verifies.
    forged = json.dumps(
        {**document, "checked": {"entries": 5, "leaves": 5, "checkpoints": 1}}, sort_keys=True
    )
    payload = base64.urlsafe_b64encode(forged.encode()).rstrip(b"=").decode()
    head, _, signature = compact.split(".")
    with pytest.raises(jws.InvalidJWSSignature):
        verification_report_verify(f"{head}.{payload}.{signature}", _published_jwk(client, header["kid"]))
    with pytest.raises(jws.InvalidJWSSignature):
        verification_report_verify(f"{head}.{payload}.{signature}")


def test_a_report_of_a_problem_names_it(auditor_client: Client, client: Client) -> None:
    append(3)
    ledger_seal()
    checkpoint = LedgerCheckpoint.objects.get()
    kept = client.get(reverse("ledger-checkpoint")).json()["note"].replace("\n3\n", "\n9\n")
    status, body, result = _verify(auditor_client, kept)
    assert checkpoint and not result.ok
    document = verification_report_verify(_report(auditor_client, body))
    assert document["result"] == "problem"
    assert "its signature does not verify" in document["first_problem"]
    assert document["newest_checkpoint"] is None


def test_reports_are_kept_for_their_session_only(auditor_client: Client, auditor: Any) -> None:
    append(2)
    ledger_seal()
    status, body, result = _verify(auditor_client)
    url = re.search(r'href="(/audit/reports/[^"]+\.jws)"', body)
    assert url
    other = Client()
    other.force_login(auditor)
    assert other.get(url.group(1)).status_code == 404
    assert auditor_client.get("/audit/reports/not-a-report.jws").status_code == 404


def test_the_verify_form_shows_progress_while_it_runs(auditor_client: Client) -> None:
    body = auditor_client.get(reverse("audit:portal")).content.decode()
    assert 'data-progress="Verifying the ledger' in body
    assert "js/progress.js" in body and "<progress" in body
