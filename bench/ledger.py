"""Benchmark the ledger: append cost, sealing rate, proofs from tiles and verification time.

Run by hand against PostgreSQL; it creates (and afterwards drops) a database of its own,
`vrm_bench`, and uses ephemeral keys, so development data and keys are never touched:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/ledger.py --entries 10000000

Targets (docs/ledger.md): sealing >= 20,000 entries/s; inclusion and consistency proofs p99
< 10 ms; verifying 10,000,000 entries < 10 minutes (with a progress bar).
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.ledger import ENTRY_COLUMNS  # noqa: E402
from bench.privatedb import bench_environment, recreate  # noqa: E402

BENCH_DB = "vrm_bench"
# Every entry column but the id, which the database assigns.
COLUMNS = ENTRY_COLUMNS[1:]


def _environment(database_url: str) -> str:
    return bench_environment(database_url, database=BENCH_DB, script="bench/ledger.py")


def _recreate(admin_url: str, *, drop_only: bool = False) -> None:
    recreate(admin_url, database=BENCH_DB, drop_only=drop_only)


def _fake_entry(i: int) -> dict[str, object]:
    return {
        "kind": "access.read",
        "actor_type": "client",
        "actor_id": f"client-{i % 97}",
        "subject": "p-" + base64.b32encode(i.to_bytes(20, "big")).decode().lower(),
        "grant_id": str(i % 5000),
        "scopes": ["purchases:read"],
        "record_ids": [str(uuid.UUID(int=i * 7919 + j)) for j in range(i % 4)],
        "reason": "",
        "request_id": f"req-{i}",
    }


def _time_appends(n: int, *, per_transaction: int) -> float:
    """Return the µs per ledger_append, with per_transaction appends in each transaction."""
    from django.db import transaction

    from audit.services import ledger_append

    started = time.perf_counter()
    for first in range(0, n, per_transaction):
        with transaction.atomic():
            for i in range(first, min(first + per_transaction, n)):
                ledger_append(**_fake_entry(i))  # type: ignore[arg-type]
    return (time.perf_counter() - started) / n * 1e6


def _check(ok: bool, what: str) -> None:
    if not ok:
        sys.exit(f"benchmark failed: {what}")


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    median, top = statistics.median(ordered) * 1e3, ordered[-1] * 1e3
    return f"p50 {median:.2f} ms, p99 {p99 * 1e3:.2f} ms, max {top:.2f} ms"


def _time_each(calls: list[Callable[[], object]]) -> list[float]:
    samples = []
    for call in calls:
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def _get_ok(client: Any, path: str, **extra: str) -> None:
    response = client.get(path, secure=True, **extra)
    _check(response.status_code == 200, f"GET {path} answered {response.status_code}")


def _time_proofs(size: int, n: int) -> None:
    """Time inclusion and consistency proofs from tiles, served through the public endpoints."""
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from audit.merkle import verify_consistency, verify_inclusion
    from audit.models import LedgerCheckpoint, LedgerLeaf
    from audit.selectors import ledger_consistency_proof, ledger_inclusion_proof

    rng = random.Random(18)
    root = bytes(LedgerCheckpoint.objects.get(tree_size=size).root_hash)
    indexes = [rng.randrange(size) for _ in range(n)]
    entry_of = dict(LedgerLeaf.objects.filter(leaf_index__in=indexes).values_list("leaf_index", "entry_id"))
    # The first proofs warm the tiles into PostgreSQL's cache, as a running server has them.
    for index in indexes[:20]:
        ledger_inclusion_proof(entry_id=entry_of[index])
    inclusion = _time_each([partial(ledger_inclusion_proof, entry_id=entry_of[i]) for i in indexes])
    print(f"inclusion proof from tiles at {size:,} entries (n={n}): {_percentiles(inclusion)}")
    firsts = [rng.randrange(1, size + 1) for _ in range(n)]
    consistency = _time_each([partial(ledger_consistency_proof, first=f) for f in firsts])
    print(f"consistency proof from tiles at {size:,} entries (n={n}): {_percentiles(consistency)}")
    doc = ledger_inclusion_proof(entry_id=entry_of[indexes[0]])
    proof = [base64.b64decode(h) for h in doc["proof"]]
    _check(
        verify_inclusion(indexes[0], size, base64.b64decode(doc["leaf_hash"]), proof, root), "inclusion proof"
    )
    doc = ledger_consistency_proof(first=firsts[0])
    proof = [base64.b64decode(h) for h in doc["proof"]]
    first_root = base64.b64decode(doc["first_root_hash"])
    _check(verify_consistency(firsts[0], size, first_root, root, proof), "consistency proof")
    client = Client(HTTP_HOST="127.0.0.1")
    path = reverse("ledger-proof-inclusion", kwargs={"entry_id": entry_of[indexes[1]]})
    # A fresh address each time: the public proof endpoints are rate-limited per address.
    addresses = [f"10.0.{i // 250}.{i % 250}" for i in range(200)]
    http = _time_each([partial(_get_ok, client, path, REMOTE_ADDR=a) for a in addresses])
    print(f"GET inclusion proof through Django (n=200): {_percentiles(http)}")
    http = _time_each([partial(_get_ok, client, f"/ledger/tile/0/{i:03d}") for i in range(200)])
    print(f"GET a level-0 tile through Django (n=200): {_percentiles(http)}")
    connection.close()


def _time_leaf_proof(size: int) -> None:
    """Time the proof the ledger served before tiles: every leaf hash read and hashed (the baseline)."""
    from audit.merkle import inclusion_proof
    from audit.selectors import leaf_hashes

    started = time.perf_counter()
    inclusion_proof(size // 3, leaf_hashes(size))
    print(
        f"baseline: one inclusion proof from all {size:,} leaf hashes: {time.perf_counter() - started:.1f} s"
    )


def _copy_entries(start: int, n: int) -> None:
    """Insert n entries with COPY, far faster than any per-row path."""
    import json

    from django.db import connection, transaction
    from django.utils import timezone

    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY audit_ledgerentry ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for i in range(start, start + n):
                e = _fake_entry(i)
                copy.write_row(
                    (
                        now,
                        e["kind"],
                        e["actor_type"],
                        e["actor_id"],
                        e["subject"],
                        e["grant_id"],
                        json.dumps(e["scopes"]),
                        json.dumps(e["record_ids"]),
                        len(e["record_ids"]),  # type: ignore[arg-type]
                        "allowed",
                        e["reason"],
                        e["request_id"],
                    )
                )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=20_000, help="entries appended one by one")
    parser.add_argument("--proofs", type=int, default=2000, help="proofs of each kind to time")
    parser.add_argument("--baseline", action="store_true", help="also time one proof from every leaf hash")
    parser.add_argument("--keep", action="store_true", help=f"keep the {BENCH_DB} database")
    args = parser.parse_args()
    admin_url = _environment(os.environ.get("DATABASE_URL", ""))
    _recreate(admin_url)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from audit.services import ledger_seal, ledger_verify

        call_command("migrate", verbosity=0)
        appends = min(args.appends, args.entries)
        alone = _time_appends(appends // 2, per_transaction=1)
        shared = _time_appends(appends - appends // 2, per_transaction=100)
        print(
            f"append: {alone:.0f} µs per entry in its own transaction (commit included, n={appends // 2:,})"
        )
        print(f"append: {shared:.0f} µs per entry inside a caller's transaction (100 per commit)")

        started = time.perf_counter()
        _copy_entries(appends, args.entries - appends)
        seconds = time.perf_counter() - started
        print(f"bulk insert of {args.entries - appends:,} more entries (COPY): {seconds:.1f} s")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE audit_ledgerentry")

        from tqdm import tqdm

        started = time.perf_counter()
        with tqdm(total=args.entries, unit="entry", file=sys.stderr, mininterval=5) as bar:
            checkpoint = ledger_seal(on_progress=bar.update)
        seconds = time.perf_counter() - started
        _check(
            checkpoint is not None and checkpoint.tree_size == args.entries, "seal did not cover every entry"
        )
        print(f"seal: {args.entries:,} entries in {seconds:.1f} s = {args.entries / seconds:,.0f} entries/s")

        with connection.cursor() as cursor:
            # As autovacuum would soon after a large seal: without statistics on the new leaves
            # the planner takes a 256-row range for 55,000 rows and compiles it (JIT), 15 ms.
            cursor.execute("VACUUM ANALYZE audit_ledgerleaf")
            cursor.execute("ANALYZE audit_ledgertile")

        started = time.perf_counter()
        _check(ledger_seal() is None, "a second seal found entries")
        print(f"seal with nothing new at {args.entries:,} entries: {time.perf_counter() - started:.2f} s")

        _time_proofs(args.entries, args.proofs)
        if args.baseline:
            _time_leaf_proof(args.entries)

        started = time.perf_counter()
        with tqdm(total=args.entries, unit="entry", file=sys.stderr, mininterval=5) as bar:
            result = ledger_verify(on_progress=bar.update)
        seconds = time.perf_counter() - started
        _check(result.ok, f"verify: {result.first_problem}")
        print(
            f"verify_ledger: {result.entries:,} entries, {result.checkpoints} checkpoints in {seconds:.1f} s"
        )
        connection.close()
    finally:
        if not args.keep:
            _recreate(admin_url, drop_only=True)


if __name__ == "__main__":
    main()
