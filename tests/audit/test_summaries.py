"""The auditor's summaries: kept in step by appends and seals, equal to the entries, checked by verify.

The summaries (audit.summaries) are what the grants and activity pages count from at millions of
entries. Each property here is what an auditor relies on: the counts are exactly what the entries
say, whether sealed or not; a changed summary is named by verify_ledger; a pending rebuild is
said, never shown as partial counts.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import summaries as summaries_module
from audit.models import LedgerEntry, LedgerGrant, LedgerLateRead, LedgerVendorDay
from audit.services import ledger_append, ledger_seal, ledger_verify
from audit.summaries import rebuild_pending, rebuild_request, summaries_differences
from auditor import selectors
from tests.audit.conftest import postgres_only
from tests.conftest import ledger_wipe

K = LedgerEntry.Kind
START = dt.datetime(2026, 3, 1, 22, 0, tzinfo=dt.UTC)
VENDORS = ("client-a", "org-b")
GRANTS = ("g-1", "g-2", "g-3")
SUBJECT = "p-" + "a" * 32


def _append(at: dt.datetime, kind: str, **fields: Any) -> None:
    defaults: dict[str, Any] = {"actor_type": "client", "actor_id": VENDORS[0], "subject": SUBJECT}
    with time_machine.travel(at, tick=False), transaction.atomic():
        ledger_append(kind=kind, **{**defaults, **fields})


def _pages() -> tuple[Any, ...]:
    """What the grants and activity pages count, over every day."""
    return (
        selectors.activity_by_day(),
        selectors.activity_anomalies(spike_min_reads=2, denied_threshold=1),
        selectors.grants_by_vendor(),
        list(selectors.grant_list()),
    )


# One step of a ledger's life: (hours after START, what happens, vendor, grant, a flag).
steps = st.lists(
    st.tuples(
        st.integers(0, 24 * 4),
        st.sampled_from(
            [
                "created",
                "amended",
                "revoked",
                "expired",
                "read",
                "denied_read",
                "write",
                "check",
                "denied",
                "person",
                "seal",
            ]
        ),
        st.sampled_from(VENDORS),
        st.sampled_from(GRANTS),
        st.integers(0, 3),
    ),
    max_size=40,
)


def _play(step: tuple[int, str, str, str, int]) -> None:
    hours, what, vendor, grant, n = step
    at = START + dt.timedelta(hours=hours)
    actor = {"actor_type": "client" if vendor.startswith("client") else "vendor_org", "actor_id": vendor}
    if what == "seal":
        ledger_seal(chunk_size=1 + n * 3)
    elif what in ("created", "amended"):
        _append(
            at,
            f"grant.{what}",
            grant_id=grant,
            scopes=["purchases:read"][: n % 2] or ["closet:read"],
            **actor,
        )
    elif what in ("revoked", "expired"):
        who = (
            {"actor_type": "person", "actor_id": "person-1"}
            if what == "revoked"
            else {"actor_type": "system", "actor_id": "expiry"}
        )
        _append(at, f"grant.{what}", grant_id=grant, **who)
    elif what == "read":
        _append(at, K.ACCESS_READ, grant_id=grant, record_count=n, **actor)
    elif what == "denied_read":
        _append(at, K.ACCESS_READ, grant_id=grant, outcome="denied", **actor)
    elif what == "write":
        _append(at, K.ACCESS_WRITE, grant_id=grant, record_count=1, **actor)
    elif what == "check":
        _append(at, K.ACCESS_CHECK, grant_id=grant, **actor)
    elif what == "denied":
        _append(
            at,
            K.ACCESS_DENIED,
            grant_id=grant if n else "",
            outcome="denied",
            reason="insufficient_scope",
            **actor,
        )
    else:
        _append(at, K.PERSON_EXPORT, actor_type="person", actor_id="person-1")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_the_summaries_equal_the_entries_sealed_or_not(db: Any, steps: list[Any]) -> None:
    """Whatever happens in whatever order, sealed in any chunks or not at all, the pages count the same."""
    ledger_wipe()
    for step in steps:
        _play(step)
    before = _pages()
    assert summaries_differences() == []
    ledger_seal(chunk_size=5)
    # Sealing moves counts from the live tail into the summaries: the pages must not change.
    assert _pages() == before
    assert summaries_differences() == []
    assert ledger_verify().first_problem is None


def test_a_read_after_the_end_is_late_and_shown_before_and_after_sealing(db: Any) -> None:
    ledger_wipe()
    _append(START, K.GRANT_CREATED, grant_id="g-1", scopes=["purchases:read"])
    _append(START + dt.timedelta(hours=1), K.ACCESS_READ, grant_id="g-1", record_count=1)
    _append(START + dt.timedelta(hours=2), K.GRANT_REVOKED, grant_id="g-1", actor_type="person", actor_id="p")
    _append(START + dt.timedelta(hours=3), K.ACCESS_READ, grant_id="g-1", record_count=1)
    _append(START + dt.timedelta(hours=4), K.ACCESS_READ, grant_id="g-1", record_count=1)

    def late() -> list[tuple[str, int]]:
        return [(a.grant_id, a.count) for a in selectors.activity_anomalies() if a.kind == "after_end"]

    assert late() == [("g-1", 2)]
    ledger_seal()
    assert late() == [("g-1", 2)]
    assert list(LedgerLateRead.objects.values_list("grant_id", "reads")) == [("g-1", 2)]
    assert ledger_verify().ok


def test_a_read_sealed_before_the_end_is_not_late_even_if_recorded_after_it(db: Any) -> None:
    """A read that committed before the revocation did was allowed: the ledger's order shows it."""
    ledger_wipe()
    _append(START, K.GRANT_CREATED, grant_id="g-1", scopes=["purchases:read"])
    # The read is recorded at 02:00:01 and sealed; the revocation, stamped 02:00:00, commits after.
    _append(START + dt.timedelta(hours=2, seconds=1), K.ACCESS_READ, grant_id="g-1", record_count=1)
    ledger_seal()
    _append(START + dt.timedelta(hours=2), K.GRANT_REVOKED, grant_id="g-1", actor_type="person", actor_id="p")
    ledger_seal()
    assert not LedgerLateRead.objects.exists()
    assert [a for a in selectors.activity_anomalies() if a.kind == "after_end"] == []
    assert summaries_differences() == []


def test_a_grant_keeps_its_first_vendor_and_revoked_beats_expired(db: Any) -> None:
    ledger_wipe()
    _append(START, K.GRANT_CREATED, grant_id="g-1", scopes=["closet:read"])
    _append(
        START + dt.timedelta(hours=1),
        K.GRANT_CREATED,
        grant_id="g-1",
        scopes=["purchases:read"],
        actor_id="other",
    )
    _append(START + dt.timedelta(hours=2), K.GRANT_REVOKED, grant_id="g-1", actor_type="person", actor_id="p")
    _append(
        START + dt.timedelta(hours=3), K.GRANT_EXPIRED, grant_id="g-1", actor_type="system", actor_id="expiry"
    )
    grant = LedgerGrant.objects.get(grant_id="g-1")
    assert (grant.vendor, grant.scopes, grant.end_kind) == (VENDORS[0], ["purchases:read"], K.GRANT_REVOKED)
    assert (grant.created_at, grant.ended_at, grant.last_at) == (
        START,
        START + dt.timedelta(hours=2),
        START + dt.timedelta(hours=3),
    )
    assert summaries_differences() == []


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (
            "UPDATE audit_ledgervendorday SET reads = reads + 1",
            "the vendor day summary of client-a 2026-03-01",
        ),
        ("UPDATE audit_ledgergrant SET end_kind = ''", "the grant summary of g-1 differs"),
        ("DELETE FROM audit_ledgerlateread", "the late read summary lacks g-1 client-a 2026-03-01"),
        ("DELETE FROM audit_ledgergrant", "the grant summary lacks g-1"),
        (
            "INSERT INTO audit_ledgervendorday (vendor, day, reads, writes, checks, records, denied) "
            "VALUES ('client-z', '2026-01-01', 9, 0, 0, 9, 0)",
            "has client-z 2026-01-01, which the entries do not",
        ),
    ],
)
def test_verify_names_a_changed_summary_and_a_rebuild_mends_it(
    db: Any, capsys: Any, tamper: str, named: str
) -> None:
    ledger_wipe()
    _append(START, K.GRANT_CREATED, grant_id="g-1", scopes=["purchases:read"])
    _append(
        START + dt.timedelta(minutes=5), K.GRANT_REVOKED, grant_id="g-1", actor_type="person", actor_id="p"
    )
    _append(START + dt.timedelta(minutes=10), K.ACCESS_READ, grant_id="g-1", record_count=2)
    ledger_seal()
    assert ledger_verify().ok
    with connection.cursor() as cursor:
        cursor.execute(tamper)
    result = ledger_verify()
    assert not result.ok
    assert named in (result.first_problem or "")
    assert "seal_ledger --rebuild-summaries" in (result.first_problem or "")
    with pytest.raises(SystemExit) as exited:
        call_command("verify_ledger")
    assert exited.value.code == 1
    err = capsys.readouterr().err
    # The step after the progress bar says what it does; the failure names the summary.
    assert "comparing the auditor's summaries with the entries…" in err
    assert f"ledger NOT intact: {named}" in err or named in err
    call_command("seal_ledger", "--rebuild-summaries")
    assert "Summaries rebuilt." in capsys.readouterr().out
    assert ledger_verify().ok


def test_a_pending_rebuild_is_said_and_the_next_seal_does_it(db: Any, auditor: Any) -> None:
    auditor_client = Client()
    auditor_client.force_login(auditor)
    ledger_wipe()
    _append(START, K.GRANT_CREATED, grant_id="g-1", scopes=["purchases:read"])
    _append(START + dt.timedelta(hours=1), K.ACCESS_READ, grant_id="g-1", record_count=2)
    ledger_seal()
    # As after the upgrade that brought the summaries: empty, with a rebuild asked for.
    LedgerGrant.objects.all().delete()
    LedgerVendorDay.objects.all().delete()
    rebuild_request(reason="test")
    for url in (
        "/audit/grants/",
        "/audit/activity/",
        "/audit/grants/export.csv",
        "/audit/activity/export.json",
    ):
        response = auditor_client.get(url)
        assert response.status_code == 503, url
        assert response["Retry-After"] == "60"
    assert b"ready after the next seal" in auditor_client.get("/audit/grants/").content
    assert auditor_client.get("/audit/entries/").status_code == 200
    result = ledger_verify()
    assert result.ok
    assert any("wait to be rebuilt" in w for w in result.warnings)
    assert ledger_seal() is None  # nothing new to seal, but the rebuild is done and kept
    assert not rebuild_pending()
    response = auditor_client.get("/audit/activity/", {"date_from": "2026-03-01"})
    assert response.status_code == 200
    assert [(r["vendor"], r["reads"], r["records"]) for r in response.context["page"]] == [(VENDORS[0], 1, 2)]
    assert [r["grant_id"] for r in auditor_client.get("/audit/grants/").context["page"]] == ["g-1"]


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


@postgres_only
def test_a_revocation_during_a_rebuild_of_its_grant_is_applied_not_lost(
    committed_ledger: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rebuild holds g-1's row while a revocation of g-1 is appended: the revocation waits, then lands.

    The rebuild reads g-1's entries before the revocation commits, so it writes g-1 active; the
    revocation's summary update, which waited on the row, must then apply to the rewritten row.
    Rewriting by delete and insert would make that update find no row, and lose the revocation.
    """
    for n in range(3):
        _append(START, K.GRANT_CREATED, grant_id=f"g-{n}", scopes=["purchases:read"])
    rebuild_request(reason="test")
    real = summaries_module._grants_from_entries
    revoker_pid: list[int] = []
    revoked = threading.Event()

    def revoke() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                revoker_pid.append(cursor.fetchone()[0])
            _append(
                START + dt.timedelta(hours=1),
                K.GRANT_REVOKED,
                grant_id="g-1",
                actor_type="person",
                actor_id="p",
            )
            revoked.set()
        finally:
            connection.close()

    g1 = LedgerEntry.objects.get(grant_id="g-1", kind=K.GRANT_CREATED).pk

    def held(*, created_ids: Any = None) -> Any:
        if created_ids == [g1]:
            threading.Thread(target=revoke).start()
            deadline = time.monotonic() + 10
            while not (revoker_pid and _waiting_on_a_lock(revoker_pid[0])):
                assert time.monotonic() < deadline, "the revocation never waited on the rebuild's lock"
                time.sleep(0.01)
        return real(created_ids=created_ids)

    monkeypatch.setattr(summaries_module, "_grants_from_entries", held)
    summaries_module.grants_rebuild(batch=1)
    assert revoked.wait(10)
    monkeypatch.setattr(summaries_module, "_grants_from_entries", real)
    assert LedgerGrant.objects.get(grant_id="g-1").end_kind == K.GRANT_REVOKED
    with transaction.atomic():
        summaries_module.counts_rebuild()
    assert summaries_differences() == []
