"""Locks that keep a periodic job from running twice at once, across processes and nodes.

On PostgreSQL a session-level advisory lock (every node shares the database); on SQLite, the
development database, a lock file beside it. The lock is tried, never waited for: a run that
finds it held does nothing, so cron or `manage.py periodic` on several nodes may start the
same job as often as they like. A lock dies with its connection or process, so a run that
crashed never leaves the job locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator

from django.conf import settings
from django.db import connection


def _key(name: str) -> int:
    # A signed 64-bit key from the name: the same on every node, apart from other advisory locks.
    return int.from_bytes(hashlib.sha256(f"vrm.periodic:{name}".encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def exclusive(name: str) -> Iterator[bool]:
    """Try to take the lock called `name` for the block; yield whether it was taken."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [_key(name)])
            (held,) = cursor.fetchone()
        try:
            yield bool(held)
        finally:
            if held:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [_key(name)])
        return
    folder = settings.VAR_DIR / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
