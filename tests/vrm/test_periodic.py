"""Periodic work: one scheduler command, and a run that overlaps a still-running one does nothing.

Two nodes may both run `manage.py periodic`, or cron may start a job while the last run still
goes: each job is a PeriodicCommand, which tries a lock named after it and, finding it held,
does nothing and says so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from audit.models import LedgerEntry
from consent.models import Grant
from consent.services import grant_authorize
from core.locks import exclusive
from tests.audit.conftest import append
from tests.consent.conftest import make_app
from vendors.models import Organisation
from vrm.management.commands.periodic import SCHEDULE


@pytest.fixture
def held_elsewhere() -> Iterator[Any]:
    """Hold a job's lock from another connection (another node's run), until released."""
    events: dict[str, threading.Event] = {}

    def hold(name: str) -> Callable[[], None]:
        taken, release, released = threading.Event(), threading.Event(), threading.Event()
        events[name] = release

        def run() -> None:
            try:
                with exclusive(name) as held:
                    assert held
                    taken.set()
                    release.wait(10)
            finally:
                connection.close()
                released.set()

        def let_go() -> None:
            release.set()
            assert released.wait(10)

        threading.Thread(target=run).start()
        assert taken.wait(10)
        return let_go

    yield hold
    for release in events.values():
        release.set()


def _run(name: str) -> str:
    out = io.StringIO()
    call_command(name, stdout=out)
    return out.getvalue()


def test_periodic_once_runs_every_job_once(db: Any) -> None:
    out = _run_periodic_once()
    assert [line.split(":", 1)[0] for line in out.splitlines()] == [name for name, _ in SCHEDULE]


def _run_periodic_once() -> str:
    out = io.StringIO()
    call_command("periodic", "--once", stdout=out)
    return out.getvalue()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory locks across connections")
def test_an_overlapping_expiry_does_nothing_and_the_next_one_works(
    transactional_db: Any, alice: Any, held_elsewhere: Any
) -> None:
    org = Organisation.objects.create(
        name="Acme", website="https://acme.example", privacy_contact="p@acme.example"
    )
    grant = grant_authorize(
        person=alice, application=make_app(org), scopes=["purchases:read"], duration_days=30
    )
    Grant.objects.filter(pk=grant.pk).update(ends_at=timezone.now() - dt.timedelta(minutes=1))
    let_go = held_elsewhere("expire_grants")
    assert "another run is still going; this one did nothing." in _run("expire_grants")
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.GRANT_EXPIRED).exists()
    let_go()  # the other run ends (or its process dies): the next run does the work
    assert "Expired 1 grant." in _run("expire_grants")
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.GRANT_EXPIRED).count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory locks across connections")
def test_a_seal_started_while_another_seals_does_nothing(transactional_db: Any, held_elsewhere: Any) -> None:
    append(3)
    held_elsewhere("seal_ledger")
    out = _run_periodic_once()
    assert "seal_ledger: seal_ledger: another run is still going; this one did nothing." in out
    assert LedgerEntry.objects.filter(leaf__isnull=True).count() == 3
    # The other jobs ran: one held lock stops only its own job.
    assert "expire_grants: Expired 0 grants." in out


def test_after_a_run_the_lock_is_free_again(db: Any) -> None:
    assert "Expired 0 grants." in _run("expire_grants")
    with exclusive("expire_grants") as held:
        assert held
    assert "Expired 0 grants." in _run("expire_grants")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="terminates a PostgreSQL backend")
def test_the_scheduler_outlives_a_database_restart(transactional_db: Any) -> None:
    """The connection dies under the scheduler (a restart, a failover): the next jobs reconnect.

    The tests run with VRM_CONN_MAX_AGE=0, so the connection is renewed before the first job;
    with persistent connections the first job fails once, marks it broken, and the next renews it.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with connections_other() as other, other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    out, err = io.StringIO(), io.StringIO()
    call_command("periodic", "--once", stdout=out, stderr=err)
    assert err.getvalue() == ""
    assert [line.split(":", 1)[0] for line in out.getvalue().splitlines()] == [name for name, _ in SCHEDULE]
    assert "expire_grants: Expired 0 grants." in out.getvalue()


@contextlib.contextmanager
def connections_other() -> Iterator[Any]:
    """A second connection to the same database (psycopg's own, outside Django), closed afterwards."""
    import psycopg

    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings.get("HOST") or "127.0.0.1",
        port=settings.get("PORT") or 5432,
        user=settings.get("USER") or "postgres",
        password=settings.get("PASSWORD") or None,
        dbname=settings["NAME"],
        autocommit=True,
    )
    try:
        yield other
    finally:
        other.close()
