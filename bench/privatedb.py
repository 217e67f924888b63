"""Shared set-up of the benchmarks: a private PostgreSQL database and ephemeral keys.

Each benchmark runs against a database of its own, created and dropped here, with keys made
for the run, so development data and keys are never touched.
"""

from __future__ import annotations

import base64
import os
import sys
from urllib.parse import urlsplit, urlunsplit

from core.crypto import SigningKey, encode_key, random_key


def bench_environment(database_url: str, *, database: str, script: str, **extra: str) -> str:
    """Point Django at the bench database with ephemeral keys (plus `extra` variables).

    Return the URL of the server's maintenance database, for creating and dropping the bench one.
    """
    parts = urlsplit(database_url)
    if not parts.scheme.startswith("postgres"):
        sys.exit(f"{script} needs DATABASE_URL=postgres://...")
    os.environ.update(
        DATABASE_URL=urlunsplit(parts._replace(path=f"/{database}")),
        VRM_DEBUG="False",
        VRM_SECRET_KEY=base64.b64encode(os.urandom(48)).decode(),
        VRM_MASTER_KEYS=f"bench:{encode_key(random_key())}",
        VRM_INDEX_KEY=encode_key(random_key()),
        VRM_LEDGER_SIGNING_KEY=SigningKey.generate().private_pem(),
        DJANGO_SETTINGS_MODULE="vrm.settings",
    )
    os.environ.update(extra)
    return urlunsplit(parts._replace(path="/postgres"))


def recreate(admin_url: str, *, database: str, drop_only: bool = False) -> None:
    """Drop the bench database (forcing out connections) and, unless drop_only, create it anew."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        if not drop_only:
            conn.execute(f"CREATE DATABASE {database}")
