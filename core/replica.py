"""Reads that may come from a streaming replica, and only those.

With `VRM_REPLICA_URL` set, the settings add a database alias `replica` and this router. Every
read and write still goes to the primary, except inside `replica_reads()`: the auditor's pages and
exports enter it after the role check (auditor/views.py). Nothing consent-critical ever runs
inside it (token checks, grant state, sessions, sign-in), so a revocation takes effect on the
very next request however far the replica lags; an auditor's page may trail the primary by the
replication lag. A replica that cannot be reached is skipped: the reads go to the primary.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import OperationalError

REPLICA = "replica"

log = logging.getLogger(__name__)
_reading: contextvars.ContextVar[bool] = contextvars.ContextVar("vrm_replica_reads", default=False)


def replica_configured() -> bool:
    return REPLICA in connections.settings


def read_alias() -> str:
    """The alias reads go to here and now: the replica inside `replica_reads()`, else the primary."""
    return REPLICA if _reading.get() else DEFAULT_DB_ALIAS


def _reachable() -> bool:
    try:
        connections[REPLICA].ensure_connection()
    except OperationalError:
        # Ids only: the error's text may hold the connection string.
        log.warning("replica unreachable; reading from the primary", extra={"alias": REPLICA})
        return False
    return True


@contextmanager
def replica_reads() -> Iterator[bool]:
    """Send the reads inside to the replica, when one is configured and reachable; say whether."""
    use = replica_configured() and not _reading.get() and _reachable()
    token = _reading.set(True) if use else None
    try:
        yield use
    finally:
        if token is not None:
            _reading.reset(token)


def replica_iterate(chunks: Iterable[Any]) -> Iterator[Any]:
    """Produce each chunk of a streamed response with its reads on the replica.

    A streamed body is produced after the view has returned, so the view's `replica_reads()` is
    over by then; this routes the reads again for each chunk only, never between two.
    """
    iterator = iter(chunks)
    while True:
        token = _reading.set(True)
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        finally:
            _reading.reset(token)
        yield chunk


class ReplicaRouter:
    """Route reads made inside `replica_reads()` to the replica; everything else to the primary."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        return REPLICA if _reading.get() else None

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # The same rows on both: an object read from the replica may point at one from the primary.
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        # The standby is read-only; it takes the schema from the primary's WAL.
        return db == DEFAULT_DB_ALIAS
