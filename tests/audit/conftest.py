"""Ledger fixtures: entries to seal, and ways around the append-only triggers for tests.

The triggers refuse DELETE, so a transactional test that commits ledger rows must empty the
ledger itself before Django's flush runs; `committed_ledger` does that.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction

from audit.models import LedgerCheckpoint, LedgerEntry
from audit.services import ledger_append, ledger_seal
from tests.conftest import LEDGER_TABLES, ledger_wipe  # noqa: F401 (re-exported for the suites)

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (triggers, advisory locks, threads)"
)


@pytest.fixture
def committed_ledger(transactional_db: Any) -> Iterator[None]:
    """Let a test commit ledger rows for real; empty the ledger afterwards."""
    yield
    ledger_wipe()


@pytest.fixture
def triggers_off(db: Any) -> None:
    """Switch off the append-only triggers (and foreign keys) until the test's transaction ends.

    This is what a superuser tampering with the database would do.
    """
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL can switch triggers off for one transaction")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")


def append(n: int = 1, **fields: Any) -> list[LedgerEntry]:
    """Append n access entries in one transaction; return them."""
    defaults: dict[str, Any] = {
        "kind": LedgerEntry.Kind.ACCESS_READ,
        "actor_type": LedgerEntry.ActorType.CLIENT,
        "actor_id": "client-7",
        "scopes": ["purchases:read"],
        "record_ids": ["3f2c9a4e-1d7b-4c55-9a0e-5b1f0c2d8e11"],
    }
    with transaction.atomic():
        return [ledger_append(**{**defaults, "request_id": f"req-{i}", **fields}) for i in range(n)]


@pytest.fixture
def sealed_ledger(db: Any) -> list[LedgerEntry]:
    """Thirty entries sealed under three checkpoints, at tree sizes 10, 20 and 30."""
    entries = []
    for _ in range(3):
        entries += append(10)
        ledger_seal()
    assert list(LedgerCheckpoint.objects.values_list("tree_size", flat=True)) == [10, 20, 30]
    return entries
