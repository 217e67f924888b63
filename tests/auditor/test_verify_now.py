"""The auditor's "verify now" gives verify_ledger's findings: never "intact" after 0 entries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from audit.models import LedgerCheckpoint
from audit.services import ledger_seal
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
