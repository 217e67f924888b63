"""The person's activity page: every ledger entry about them, in plain words, with proofs."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.services import ledger_append, ledger_seal
from personal_data.pseudonyms import person_subject


def _read(person: Any, count: int, client: str = "shop-app") -> None:
    with transaction.atomic():
        ledger_append(
            kind="access.read",
            actor_type="client",
            actor_id=client,
            subject=person_subject(person),
            grant_id="17",
            scopes=["purchases:read"],
            record_ids=[f"r{i}" for i in range(count)],
        )


def test_person_sees_their_own_entries_in_plain_words(client: Any, alice: Any, bob: Any) -> None:
    _read(alice, 3)
    _read(bob, 5, client="other-app")
    with transaction.atomic():
        ledger_append(
            kind="access.denied",
            actor_type="client",
            actor_id="shop-app",
            subject=person_subject(alice),
            outcome="denied",
            reason="insufficient_scope",
        )
    client.force_login(alice)
    page = client.get("/activity/").content.decode()
    assert "Vendor app shop-app read 3 records (purchases) under your grant" in page
    assert "Vendor app shop-app was refused (insufficient_scope)" in page
    assert "other-app" not in page and "5 records" not in page
    assert "not sealed yet" in page


def test_reads_name_the_date_of_their_grant(client: Any, alice: Any) -> None:
    import datetime as dt

    import time_machine

    with time_machine.travel(dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)), transaction.atomic():
        ledger_append(
            kind="grant.created",
            actor_type="client",
            actor_id="shop-app",
            subject=person_subject(alice),
            grant_id="17",
            scopes=["prescriptions:read"],
        )
    _read(alice, 3)
    client.force_login(alice)
    assert (
        "read 3 records (purchases) under your grant of 2 March 2026"
        in client.get("/activity/").content.decode()
    )


def test_sealed_entries_link_to_their_inclusion_proof(client: Any, alice: Any) -> None:
    _read(alice, 1)
    ledger_seal()
    client.force_login(alice)
    page = client.get("/activity/").content.decode()
    assert "read 1 record (purchases) under" in page
    assert "/api/v1/ledger/proof/inclusion/" in page


def test_activity_is_paginated_newest_first(client: Any, alice: Any) -> None:
    for n in range(1, 53):
        _read(alice, n)
    client.force_login(alice)
    first = client.get("/activity/").content.decode()
    assert "read 52 records" in first and "read 2 records" not in first and "Page 1 of 2" in first
    assert "read 2 records" in client.get("/activity/?page=2").content.decode()


def test_activity_is_for_people_only(client: Any, db: Any, auditor: Any) -> None:
    assert client.get("/activity/")["Location"].startswith("/accounts/login/")
    client.force_login(auditor)
    assert client.get("/activity/").status_code == 403
