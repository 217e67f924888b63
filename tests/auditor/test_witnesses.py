"""The auditor's witness pages: register (verifier key or raw key), retire with a confirmation,
alarms with their evidence and a banner on every auditor page; "verify now" and its report."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from audit import ledger
from audit.models import LedgerCheckpoint, LedgerEntry, Witness
from audit.services import ledger_seal
from auditor.report import verification_report_verify
from tests.audit.conftest import append
from tests.audit.test_witnesses import ALICE, Cosigner, log_signed, post

URL = "/audit/witnesses/"


@pytest.fixture
def auditor_client(auditor: Any) -> Client:
    client = Client()
    client.force_login(auditor)
    return client


def _register(client: Client, **data: str) -> Any:
    return client.post(reverse("audit:witnesses"), data)


def _errors(response: Any) -> dict[str, list[str]]:
    return {name: [str(e) for e in errors] for name, errors in response.context["form"].errors.items()}


def test_register_a_witness_by_its_verifier_key(auditor_client: Client, auditor: Any) -> None:
    witness = Cosigner(ALICE)
    vkey = ledger.witness_vkey(name=ALICE, public_raw=witness.public)
    response = _register(auditor_client, name="", key=vkey)
    assert response.status_code == 302
    row = Witness.objects.get()
    assert (row.name, bytes(row.public_key), row.registered_by) == (ALICE, witness.public, auditor)
    key_hex = vkey.split("+")[1]
    entry = LedgerEntry.objects.get(kind="witness.registered")
    assert (entry.actor_type, entry.actor_id, entry.record_ids) == ("auditor", str(auditor.pk), [key_hex])
    page = auditor_client.get(reverse("audit:witnesses")).content.decode()
    assert f"Witness {ALICE} registered (key id {key_hex})." in page
    assert ALICE in page and key_hex in page and "by auditor@example.com" in page
    assert "nothing yet" in page


def test_register_a_witness_by_its_raw_key_and_name(auditor_client: Client) -> None:
    witness = Cosigner("witness.example.net/bob")
    raw = base64.b64encode(witness.public).decode()
    assert _register(auditor_client, name="", key=raw).status_code == 400
    response = _register(auditor_client, name="witness.example.net/bob", key=raw)
    assert response.status_code == 302
    assert Witness.objects.get().name == "witness.example.net/bob"


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"name": "w.example/x", "key": "bm90IGEga2V5"}, "key", "neither a verifier key"),
        ({"name": "has space", "key": base64.b64encode(os.urandom(32)).decode()}, "name", "1-100 letters"),
        (
            {"name": "", "key": f"{ALICE}+00000000+" + base64.b64encode(b"\x04" + bytes(32)).decode()},
            "key",
            "does not match its name and key",
        ),
        ({"name": "", "key": f"{ALICE}+1234"}, "key", "name+keyid+base64key"),
    ],
)
def test_a_bad_key_gets_a_clear_field_error(
    auditor_client: Client, data: dict[str, str], field: str, says: str
) -> None:
    response = _register(auditor_client, **data)
    assert response.status_code == 400
    errors = _errors(response)
    assert any(says in message for message in errors.get(field, [])), errors
    assert not Witness.objects.exists()


def test_a_name_that_differs_from_the_verifier_keys_is_refused(auditor_client: Client) -> None:
    vkey = ledger.witness_vkey(name=ALICE, public_raw=Cosigner(ALICE).public)
    response = _register(auditor_client, name="someone.else/w", key=vkey)
    assert response.status_code == 400
    assert "The verifier key names" in _errors(response)["name"][0]


def test_a_duplicate_name_or_key_is_refused(auditor_client: Client) -> None:
    witness = Cosigner(ALICE)
    assert (
        _register(auditor_client, key=ledger.witness_vkey(name=ALICE, public_raw=witness.public)).status_code
        == 302
    )
    again = _register(auditor_client, key=ledger.witness_vkey(name=ALICE, public_raw=Cosigner(ALICE).public))
    assert "already registered" in _errors(again)["name"][0]
    same_key = _register(
        auditor_client, name="other.example/w", key=base64.b64encode(witness.public).decode()
    )
    assert "already registered" in _errors(same_key)["key"][0]
    assert Witness.objects.count() == 1


def test_retire_asks_first_then_retires(auditor_client: Client) -> None:
    witness = Cosigner(ALICE)
    _register(auditor_client, key=ledger.witness_vkey(name=ALICE, public_raw=witness.public))
    row = Witness.objects.get()
    page = auditor_client.get(reverse("audit:witnesses")).content.decode()
    assert f'Retire<span class="sr-only"> witness {ALICE}</span>' in page
    confirm = auditor_client.get(reverse("audit:witness-retire"), {"witness": row.pk})
    assert confirm.status_code == 200
    assert f"Retire witness {ALICE}" in confirm.content.decode()
    assert Witness.objects.get().retired_at is None  # asking changes nothing
    done = auditor_client.post(reverse("audit:witness-retire"), {"witness": row.pk})
    assert done.status_code == 302
    assert Witness.objects.get().retired_at is not None
    assert LedgerEntry.objects.filter(kind="witness.retired").count() == 1
    assert "Retired" in auditor_client.get(reverse("audit:witnesses")).content.decode()
    # Again: nothing more happens.
    auditor_client.post(reverse("audit:witness-retire"), {"witness": row.pk})
    assert LedgerEntry.objects.filter(kind="witness.retired").count() == 1
    assert auditor_client.post(reverse("audit:witness-retire"), {"witness": "999999"}).status_code == 404
    assert auditor_client.get(reverse("audit:witness-retire"), {"witness": "x"}).status_code == 200


def test_an_alarm_shows_its_evidence_and_a_banner_on_every_page(auditor_client: Client, auditor: Any) -> None:
    for page in ("audit:portal", "audit:witnesses", "audit:entries"):
        assert "The ledger has" not in auditor_client.get(reverse(page)).content.decode()
    assert "No alarm" in auditor_client.get(reverse("audit:alarms")).content.decode()
    append(10)
    ledger_seal()
    witness = Cosigner(ALICE)
    _register(auditor_client, key=ledger.witness_vkey(name=ALICE, public_raw=witness.public))
    forked = log_signed(10, os.urandom(32))
    assert post(Client(), witness.cosign(forked)).status_code == 409
    for page in ("audit:portal", "audit:witnesses", "audit:entries", "audit:grants", "audit:alarms"):
        body = auditor_client.get(reverse(page)).content.decode()
        assert "The ledger has 1 alarm." in body, page
        assert f'href="{reverse("audit:alarms")}"' in body
    body = auditor_client.get(reverse("audit:alarms")).content.decode()
    assert "fork at tree size 10" in body
    assert f"reported by witness <code>{ALICE}</code>" in body
    assert forked.split("\n")[2] in body  # the forked root, in the evidence


def test_verify_now_and_its_report_say_what_witnesses_cover(auditor_client: Client) -> None:
    append(10)
    ledger_seal()
    witness = Cosigner(ALICE)
    _register(auditor_client, key=ledger.witness_vkey(name=ALICE, public_raw=witness.public))
    newest = LedgerCheckpoint.objects.order_by("-tree_size").first()
    assert newest is not None
    assert post(Client(), witness.cosign(newest.note)).status_code == 201
    append(2)
    ledger_seal()
    response = auditor_client.post(reverse("audit:portal"), {"checkpoint": ""})
    result = response.context["result"]
    assert (result.witnessed_size, result.witnessed_by, result.awaiting_witnesses) == (10, (ALICE,), 3)
    body = response.content.decode()
    assert f"is cosigned by 1 independent witness ({ALICE})" in body
    assert "3 entries sealed after it await witnesses" in body
    token = auditor_client.session["audit_reports"][-1]["token"]
    compact = auditor_client.get(reverse("audit:report", args=[token])).content.decode()
    document = verification_report_verify(compact)
    assert document["witnessed_checkpoint"] == {"tree_size": 10, "witnesses": [ALICE], "entries_after": 3}
    assert document["witnesses_required"] == 0
    assert document["alarms"] == []
    json.dumps(document)


def test_verify_now_names_the_alarms(auditor_client: Client) -> None:
    append(10)
    ledger_seal()
    witness = Cosigner(ALICE)
    _register(auditor_client, key=ledger.witness_vkey(name=ALICE, public_raw=witness.public))
    post(Client(), witness.cosign(log_signed(40, os.urandom(32))))
    response = auditor_client.post(reverse("audit:portal"), {"checkpoint": ""})
    body = response.content.decode()
    assert "The ledger has a problem." in body
    assert f"alarm: truncated at tree size 40 reported by witness {ALICE}" in body
    token = auditor_client.session["audit_reports"][-1]["token"]
    document = verification_report_verify(
        auditor_client.get(reverse("audit:report", args=[token])).content.decode()
    )
    assert document["result"] == "problem"
    assert document["alarms"][0].startswith("alarm: truncated at tree size 40")
