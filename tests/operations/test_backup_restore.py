"""A backup restores: pg_dump of a seeded store, pg_restore into a fresh database, everything checks.

What docs/operations.md ("Backups and restore") tells an operator to do, done for real: the dump
is restored into a new database and a fresh process, with the same keys, must find the ledger
intact (every leaf, checkpoint and signature), every consent receipt valid under its key, and a
person who signs in with their password able to open every record they kept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from audit.services import ledger_seal
from consent.services import grant_authorize, grant_revoke
from personal_data.services import record_create
from portal.services import person_signup
from tests.conftest import PASSWORD, purchase_data
from tests.consent.conftest import make_app
from vendors.models import Organisation

ROOT = Path(__file__).resolve().parents[2]
PRODUCTS = ("Crunchy Peanut Butter", "Oat Milk 1 l", "Rye Bread")

# Run by a fresh interpreter against the restored database, as the restored deployment would.
_CHECK = """
import json, sys
import django
django.setup()
from django.core.management import call_command
from django.test import Client
from django.test.utils import setup_test_environment
from consent.models import Receipt
from consent.receipts import receipt_verify

setup_test_environment()
email, password = sys.argv[1], sys.argv[2]
call_command("verify_ledger")  # exits 1, naming the first problem, unless intact
receipts = 0
for compact in Receipt.objects.values_list("jws", flat=True):
    receipt_verify(compact)
    receipts += 1
client = Client()
signed_in = client.post("/accounts/login/", {"username": email, "password": password})
page = client.get("/data/purchases/")
print(json.dumps({
    "receipts": receipts,
    "signed_in": signed_in.status_code,
    "purchases_page": page.status_code,
    "html": page.content.decode(),
}))
"""


def _postgres(*command: str) -> None:
    settings = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": settings.get("PASSWORD") or ""}
    target = ["-h", settings.get("HOST") or "127.0.0.1", "-p", str(settings.get("PORT") or 5432)]
    target += ["-U", settings.get("USER") or "postgres"]
    subprocess.run([command[0], *target, *command[1:]], env=env, check=True, capture_output=True, timeout=300)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_dump and pg_restore")
def test_a_restored_dump_verifies_and_opens_for_the_person(
    transactional_db: Any, production_password_hashers: Any, tmp_path: Path
) -> None:
    alice = person_signup(email="restore-alice@example.com", password=PASSWORD, display_name="Alice R")
    for name in PRODUCTS:
        record_create(owner=alice, category="purchases", data=purchase_data(product_name=name))
    org = Organisation.objects.create(
        name="Acme", website="https://acme.example", privacy_contact="p@acme.example"
    )
    grant = grant_authorize(
        person=alice, application=make_app(org), scopes=["purchases:read"], duration_days=30
    )
    grant_revoke(grant=grant, by=alice)
    assert ledger_seal() is not None

    dump = tmp_path / "vrm.dump"
    source = connection.settings_dict["NAME"]
    restored = f"vrm_restore_{uuid.uuid4().hex[:12]}"
    _postgres("pg_dump", "--format=custom", "--file", str(dump), source)
    _postgres("createdb", restored)
    try:
        _postgres("pg_restore", "--exit-on-error", "--dbname", restored, str(dump))
        settings = connection.settings_dict
        url = (
            f"postgres://{settings.get('USER') or 'postgres'}@{settings.get('HOST') or '127.0.0.1'}:"
            f"{settings.get('PORT') or 5432}/{restored}"
        )
        env = {**os.environ, "DATABASE_URL": url, "VRM_ALLOWED_HOSTS": "testserver"}
        result = subprocess.run(
            [sys.executable, "-c", _CHECK, "restore-alice@example.com", PASSWORD],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        _postgres("dropdb", "--if-exists", restored)
    assert result.returncode == 0, result.stderr[-2000:]
    checked = json.loads(result.stdout.strip().splitlines()[-1])
    assert checked["receipts"] == 2  # created and revoked, each signed
    assert checked["signed_in"] == 302
    assert checked["purchases_page"] == 200
    for name in PRODUCTS:
        assert name in checked["html"]
