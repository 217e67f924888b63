"""After an erasure on SQLite, the person's wrapped key and ciphertexts are gone from the disk.

Deleting a row only unlinks it unless secure_delete is on, and in WAL mode the earlier page
images stay in the -wal file until a checkpoint. Both files are read byte for byte.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from personal_data.models import PersonKey, Purchase
from personal_data.services import person_erase, record_create
from tests.conftest import purchase_data

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "sqlite",
        reason="SQLite's files; PostgreSQL leaves dead rows to VACUUM (docs/security.md)",
    ),
]


def _database_files() -> bytes:
    name = Path(connection.settings_dict["NAME"])
    return b"".join(p.read_bytes() for p in (name, Path(f"{name}-wal")) if p.exists())


def test_erasure_leaves_no_wrapped_key_or_ciphertext_in_the_database_files(
    alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # From here on, connections start as on a platform whose SQLite leaves secure_delete off.
    connect = sqlite3.dbapi2.connect

    def platform_default_off(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.execute("PRAGMA secure_delete=OFF")
        return conn

    connection.close()
    monkeypatch.setattr(sqlite3.dbapi2, "connect", platform_default_off)

    for n in range(5):
        record_create(owner=alice, category="purchases", data=purchase_data(lot=f"L{n}"))
    key = PersonKey.objects.get(person=alice)
    # The wraps of the data key a person holds (password, recovery code) and the salt.
    secrets = [bytes(key.password_wrap), bytes(key.recovery_wrap), bytes(key.pseudonym_salt)]
    secrets += [bytes(p) for p in Purchase.objects.filter(owner=alice).values_list("payload", flat=True)]
    files = _database_files()
    assert all(secret in files for secret in secrets)  # the check below can see them

    person_erase(person=alice)

    files = _database_files()
    left = [secret[:8].hex() for secret in secrets if secret in files]
    assert not left, f"{len(left)} of {len(secrets)} erased values still on disk"
