"""The auditor's pages read from a real streaming replica; consent never waits for it.

CI starts a standby of the test server's PostgreSQL (`.ci/replica`: a second cluster on port
5433 made with `pg_basebackup -R`) and names it in VRM_TEST_REPLICA_URL. The test databases that
pytest creates on the primary reach the standby through the WAL like everything else. A gunicorn
node runs with DATABASE_URL on the primary and VRM_REPLICA_URL on the standby, as docs/operations.md
tells an operator to run it.

The proof that a page came from the standby is its staleness: with replay paused, a revocation
committed on the primary is not on the auditor's pages, while the vendor's token, checked on the
primary, fails on the very next request.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import requests
from django.db import DEFAULT_DB_ALIAS, connection
from django.test import Client

from accounts.models import User
from consent.models import Grant
from consent.services import grant_authorize, grant_revoke
from core.replica import REPLICA, ReplicaRouter, read_alias, replica_iterate, replica_reads
from personal_data.services import record_create
from tests.conftest import purchase_data
from tests.consent.conftest import SECRET, make_app
from tests.operations.servers import database_url, free_port, gunicorn
from tests.vendors_api.conftest import issue_token
from vendors.models import Organisation

REPLICA_ENV = "VRM_TEST_REPLICA_URL"


@pytest.fixture
def standby() -> Iterator[str]:
    """A libpq URL of the test database on the standby; replay is resumed afterwards, whatever happens."""
    url = os.environ.get(REPLICA_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"CI must start the streaming replica (.ci/replica) and set {REPLICA_ENV}")
        pytest.skip(f"no streaming replica: run `bash .ci/replica` and set {REPLICA_ENV}")
    if connection.vendor != "postgresql":
        pytest.fail(f"{REPLICA_ENV} is set but the tests run on {connection.vendor}")
    parts = urlsplit(url)
    on_standby = database_url(name=connection.settings_dict["NAME"], port=parts.port or 5432)
    yield on_standby
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_wal_replay_resume()")


def _primary_lsn() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        return str(cursor.fetchone()[0])


def _caught_up(standby: str, *, timeout: float = 30) -> None:
    target = _primary_lsn()
    deadline = time.monotonic() + timeout
    with psycopg.connect(standby, autocommit=True) as replica:
        while True:
            row = replica.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()
            if row and row[0]:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the standby did not replay up to {target} within {timeout} s")
            time.sleep(0.05)


def _pause(standby: str) -> None:
    with psycopg.connect(standby, autocommit=True) as replica:
        replica.execute("SELECT pg_wal_replay_pause()")
        for _ in range(200):
            state = replica.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()
            if state and state[0] == "paused":
                return
            time.sleep(0.05)
    raise AssertionError("the standby did not pause its replay")


def _resume(standby: str) -> None:
    with psycopg.connect(standby, autocommit=True) as replica:
        replica.execute("SELECT pg_wal_replay_resume()")


def _signed_in(base: str, user: User) -> requests.Session:
    """A browser session of `user` on the node: signed in through Django, the cookie carried over."""
    client = Client()
    client.force_login(user)
    session = requests.Session()
    for cookie in client.cookies.values():
        session.cookies.set(cookie.key, cookie.value, domain="127.0.0.1", path="/")
    return session


def _export_statuses(auditor: requests.Session, base: str) -> dict[str, str]:
    response = auditor.get(f"{base}/audit/grants/export.csv", timeout=30)
    assert response.status_code == 200, response.text[:500]
    return {row["grant_id"]: row["status"] for row in csv.DictReader(io.StringIO(response.text))}


@pytest.fixture
def shop_grant(transactional_db: Any, production_password_hashers: Any, alice: User) -> Grant:
    # The node hashes the client secret as production does, so the test stores it that way.
    record_create(owner=alice, category="purchases", data=purchase_data(product_name="Rye Bread"))
    org = Organisation.objects.create(
        name="Replica Shop", website="https://shop.example", privacy_contact="p@shop.example"
    )
    return grant_authorize(
        person=alice, application=make_app(org), scopes=["purchases:read"], duration_days=30
    )


def test_auditor_pages_come_from_the_replica_and_a_revocation_does_not_wait_for_it(
    standby: str, shop_grant: Grant, alice: User, auditor: User, tmp_path: Path
) -> None:
    token = issue_token(shop_grant)
    vendor = {"Authorization": f"Bearer {token}"}
    with gunicorn(
        {"DATABASE_URL": database_url(), "VRM_REPLICA_URL": standby}, tmp_path / "node.log"
    ) as base:
        auditor_session = _signed_in(base, auditor)
        _caught_up(standby)
        assert requests.get(f"{base}/api/v1/me", headers=vendor, timeout=10).status_code == 200
        grant_ids = set(_export_statuses(auditor_session, base))
        assert len(grant_ids) == 1
        (grant_id,) = grant_ids
        assert _export_statuses(auditor_session, base)[grant_id] == "active"
        assert auditor_session.get(f"{base}/audit/", timeout=30).status_code == 200

        _pause(standby)
        try:
            grant_revoke(grant=shop_grant, by=alice)
            # The token check reads the primary: the very next request fails.
            refused = requests.get(f"{base}/api/v1/me", headers=vendor, timeout=10)
            assert refused.status_code == 401
            assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
            introspected = requests.post(
                f"{base}/o/introspect/",
                data={"token": token},
                auth=(shop_grant.application.client_id, SECRET),
                timeout=10,
            )
            assert introspected.status_code == 200 and introspected.json() == {"active": False}
            # Every auditor page and export still answers, from the standby, as of before the revocation.
            assert _export_statuses(auditor_session, base)[grant_id] == "active"
            page = auditor_session.get(f"{base}/audit/grants/", params={"status": "revoked"}, timeout=30)
            assert page.status_code == 200 and grant_id not in page.text
            for path in (
                "/audit/activity/",
                "/audit/entries/",
                f"/audit/grants/{grant_id}/",
                "/audit/intents/",
                "/audit/activity/export.json",
                "/audit/entries/export.csv",
            ):
                assert auditor_session.get(f"{base}{path}", timeout=30).status_code == 200, path
            entries = auditor_session.get(f"{base}/audit/entries/export.csv", timeout=30).text
            assert "grant.revoked" not in entries
        finally:
            _resume(standby)

        _caught_up(standby)
        assert _export_statuses(auditor_session, base)[grant_id] == "revoked"
        page = auditor_session.get(f"{base}/audit/grants/", params={"status": "revoked"}, timeout=30)
        assert grant_id in page.text
        assert "grant.revoked" in auditor_session.get(f"{base}/audit/entries/export.csv", timeout=30).text
        # Nothing consent-critical moved: still refused, and the person still sees it revoked.
        assert requests.get(f"{base}/api/v1/me", headers=vendor, timeout=10).status_code == 401


def test_an_unreachable_replica_leaves_the_auditor_pages_on_the_primary(
    transactional_db: Any, shop_grant: Grant, alice: User, auditor: User, tmp_path: Path
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the replica is PostgreSQL's streaming replication")
    nowhere = database_url(port=free_port())  # nothing listens there
    with gunicorn(
        {"DATABASE_URL": database_url(), "VRM_REPLICA_URL": nowhere}, tmp_path / "node.log"
    ) as base:
        auditor_session = _signed_in(base, auditor)
        grant_revoke(grant=shop_grant, by=alice)
        assert list(_export_statuses(auditor_session, base).values()) == ["revoked"]
        assert auditor_session.get(f"{base}/audit/grants/", timeout=30).status_code == 200
    assert "replica unreachable; reading from the primary" in (tmp_path / "node.log").read_text()


def test_the_router_sends_only_reads_inside_replica_reads_to_the_replica() -> None:
    router = ReplicaRouter()
    assert router.db_for_read(Grant) is None
    assert read_alias() == DEFAULT_DB_ALIAS
    assert router.db_for_write(Grant) == DEFAULT_DB_ALIAS
    assert router.allow_migrate(REPLICA, "consent") is False
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "consent") is True
    # Without VRM_REPLICA_URL, replica_reads() changes nothing.
    with replica_reads() as on_replica:
        assert on_replica is False
        assert router.db_for_read(Grant) is None
    # A streamed body routes each chunk's reads, and nothing between two chunks.
    seen = []

    def chunks() -> Iterator[str]:
        for n in range(2):
            seen.append((router.db_for_read(Grant), router.db_for_write(Grant)))
            yield str(n)

    stream = replica_iterate(chunks())
    assert next(stream) == "0"
    assert router.db_for_read(Grant) is None
    assert list(stream) == ["1"]
    assert seen == [(REPLICA, DEFAULT_DB_ALIAS)] * 2
