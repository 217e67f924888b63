"""The SQLite set-up `make run` gets: WAL, IMMEDIATE transactions, a busy timeout, secure_delete.

SQLite's compile-time defaults differ by platform (Debian builds secure_delete on, SQLite's own
default is off), so the tests start from a connection with secure_delete switched off, as such a
platform would hand it over, and check that Django's connection set-up turns it on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
MARKER = "ERASED-CONTENT-4471"

# Run in a fresh interpreter with DATABASE_URL pointing at a SQLite file, as `make run` has it,
# whichever database the test run itself uses.
_SCRIPT = f"""
import json, sqlite3, sys
import django

_connect = sqlite3.dbapi2.connect

def platform_default_off(*args, **kwargs):
    conn = _connect(*args, **kwargs)
    conn.execute("PRAGMA secure_delete=OFF")
    return conn

sqlite3.dbapi2.connect = platform_default_off
django.setup()
from django.db import connection

with connection.cursor() as cursor:
    pragmas = {{}}
    for name in ("journal_mode", "busy_timeout", "secure_delete", "synchronous"):
        cursor.execute(f"PRAGMA {{name}}")
        pragmas[name] = cursor.fetchone()[0]
    cursor.execute("CREATE TABLE note (body TEXT)")
    cursor.execute("INSERT INTO note VALUES (%s), ('kept')", ["{MARKER}-" + "x" * 3000])
    cursor.execute("DELETE FROM note WHERE body LIKE %s", ["{MARKER}%"])
    cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print(json.dumps({{"pragmas": pragmas, "transaction_mode": connection.transaction_mode}}))
"""


def test_make_run_sqlite_has_wal_immediate_timeout_and_secure_delete(tmp_path: Path) -> None:
    database = tmp_path / "vrm.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "DJANGO_SETTINGS_MODULE": "vrm.settings"}
    env.pop("VRM_SQLITE_TIMEOUT", None)
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])

    assert found["pragmas"] == {
        "journal_mode": "wal",
        "busy_timeout": 20000,  # milliseconds: a writer waits its turn for up to 20 s
        "secure_delete": 1,
        "synchronous": 1,  # NORMAL: durable at checkpoints, consistent always, in WAL mode
    }
    assert found["transaction_mode"] == "IMMEDIATE"
    # The deleted row's bytes were overwritten, not left in a free page of the file.
    assert MARKER.encode() not in database.read_bytes()


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="PRAGMAs of SQLite; the PostgreSQL run has no such settings"
)
def test_the_sqlite_test_database_is_a_file_with_the_same_pragmas(db: Any) -> None:
    """The live-server concurrency tests run against what `make run` runs, not a memory database."""
    assert not connection.is_in_memory_db()
    assert Path(connection.settings_dict["NAME"]).is_file()
    with connection.cursor() as cursor:
        found = {}
        for name in ("journal_mode", "busy_timeout", "secure_delete"):
            cursor.execute(f"PRAGMA {name}")
            found[name] = cursor.fetchone()[0]
    assert found == {"journal_mode": "wal", "busy_timeout": 20000, "secure_delete": 1}
    assert connection.transaction_mode == "IMMEDIATE"
