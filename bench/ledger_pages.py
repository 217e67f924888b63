"""Benchmark the auditor's pages and exports on a ledger of a store a year in (10,000,000 entries).

Run by hand against PostgreSQL; it creates a database of its own, `vrm_bench_pages`, fills it
with COPY and drops it at the end, unless `--keep` (then a later run with `--keep` reuses it):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/ledger_pages.py --entries 10000000 --keep
    DATABASE_URL=... .venv/bin/python bench/ledger_pages.py --drop

The ledger looks like a real one a year in: 100 organisations with 200 client ids whose sizes
follow Zipf's law (a few big vendors), 200,000 people, 400,000 grants created, amended,
revoked and expired over 365 days with their token.* entries, the rest access.read, write,
check and denied under those grants, and terms, message, intent and person entries in small
numbers. Every entry but the newest few hundred has a leaf row, as after the sealer ran, with
a dummy leaf hash and one dummy checkpoint: the pages read leaf indexes and the checkpoint's
size, never the hashes, so they time exactly as on a sealed ledger (verification cannot run).

Every page is requested through Django's test Client as an auditor, in several rounds that
alternate the pages; each line prints the median and the spread (min-max) of the rounds.
Target (issue #18): every page and export under 300 ms per page at 10,000,000 entries.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import itertools
import logging
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.ledger import ENTRY_COLUMNS  # noqa: E402
from bench.privatedb import bench_environment, recreate  # noqa: E402

BENCH_DB = "vrm_bench_pages"
DAYS = 365
ORGANISATIONS = 100
CLIENTS = 200
PERSONS = 200_000
GRANTS = 400_000
UNSEALED = 300
# The one grant the grant detail page is timed on: a big vendor's, with this many accesses.
BIG_GRANT_ACCESSES = 60_000
BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
SCOPES = (
    "purchases:read",
    "profile:read",
    "receipts:read",
    "warranties:read",
    "purchases:write",
    "preferences:read",
    "messages:send",
    "intents:read",
)
# Every entry column but the id, which the database assigns (as bench/ledger.py copies them).
ENTRY_COPY_COLUMNS = ENTRY_COLUMNS[1:]

# Event codes, packed with their second and entity into one int so 10M events sort cheaply.
(
    GRANT_CREATED,
    GRANT_AMENDED,
    GRANT_REVOKED,
    GRANT_EXPIRED,
    TOKEN_ISSUED,
    TOKEN_REFRESHED,
    TOKEN_REVOKED,
    TOKEN_REUSE,
    ACCESS_READ,
    ACCESS_WRITE,
    ACCESS_CHECK,
    ACCESS_DENIED,
    TERMS,
    MESSAGE_SENT,
    MESSAGE_OTHER,
    INTENT,
    PERSON,
    VENDOR,
) = range(18)
_ENTITY_BITS = 20
_CODE_BITS = 5
_VARIANT_BITS = 8


def _pack(second: int, code: int, entity: int, variant: int) -> int:
    return (((second << _CODE_BITS | code) << _ENTITY_BITS | entity) << _VARIANT_BITS) | variant


def _unpack(event: int) -> tuple[int, int, int, int]:
    variant = event & (1 << _VARIANT_BITS) - 1
    event >>= _VARIANT_BITS
    entity = event & (1 << _ENTITY_BITS) - 1
    event >>= _ENTITY_BITS
    return event >> _CODE_BITS, event & (1 << _CODE_BITS) - 1, entity, variant


@dataclass
class Store:
    """The people, vendors and grants the generated ledger speaks of."""

    start: dt.datetime
    organisations: list[str]
    clients: list[str]
    client_org: list[int]
    persons: list[str]
    grant_ids: list[str] = field(default_factory=list)
    grant_client: list[int] = field(default_factory=list)
    grant_person: list[int] = field(default_factory=list)
    grant_scopes: list[str] = field(default_factory=list)
    grant_created: list[int] = field(default_factory=list)
    grant_end: list[int] = field(default_factory=list)

    @property
    def big_grant(self) -> str:
        return self.grant_ids[0]

    @property
    def big_client(self) -> str:
        return self.clients[0]


def _pseudonym(rng: random.Random) -> str:
    return "p-" + "".join(rng.choices(BASE32, k=32))


def _store(rng: random.Random, *, now: dt.datetime) -> Store:
    organisations = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(ORGANISATIONS)]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    clients = ["".join(rng.choices(alphabet, k=40)) for _ in range(CLIENTS)]
    return Store(
        start=now - dt.timedelta(days=DAYS),
        organisations=organisations,
        clients=clients,
        client_org=[i % ORGANISATIONS for i in range(CLIENTS)],
        persons=[_pseudonym(rng) for _ in range(PERSONS)],
    )


def _events(rng: random.Random, store: Store, *, entries: int) -> list[int]:
    """Plan every entry as a packed (second, code, entity, variant), in time order."""
    span = DAYS * 86_400
    # Zipf's law over client ids: the biggest vendor holds about a sixth of the grants.
    client_weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(CLIENTS)))
    grants = max(1, min(GRANTS, entries // 25))
    events: list[int] = []
    add = events.append
    grant_weights = []
    for g in range(grants):
        client = 0 if g == 0 else bisect.bisect(client_weights, rng.random() * client_weights[-1])
        client = min(client, CLIENTS - 1)
        # More grants later in the year: the store grows.
        created = 0 if g == 0 else int(span * rng.random() ** 0.7)
        scopes = ",".join(sorted(rng.sample(SCOPES, rng.choice((1, 1, 2, 2, 3)))))
        store.grant_ids.append(str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        store.grant_client.append(client)
        store.grant_person.append(rng.randrange(PERSONS))
        store.grant_scopes.append(scopes)
        store.grant_created.append(created)
        add(_pack(created, GRANT_CREATED, g, 0))
        add(_pack(created, TOKEN_ISSUED, g, 0))
        fate = rng.random()
        end = span
        if g and fate < 0.15:
            end = rng.randrange(created, span)
            add(_pack(end, GRANT_REVOKED, g, rng.randrange(2)))
            add(_pack(end, TOKEN_REVOKED, g, 0))
        elif g and fate < 0.27 and created + 30 * 86_400 < span:
            end = created + rng.choice((30, 90, 180)) * 86_400
            if end < span:
                add(_pack(end, GRANT_EXPIRED, g, 0))
            else:
                end = span
        store.grant_end.append(end)
        if rng.random() < 0.08:
            for _ in range(rng.choice((1, 1, 2))):
                add(_pack(rng.randrange(created, end), GRANT_AMENDED, g, 0))
        # Refresh tokens about every three months of an active grant.
        for _ in range(int((end - created) / (90 * 86_400) * rng.uniform(0.5, 1.5) * 4)):
            add(_pack(rng.randrange(created, end), TOKEN_REFRESHED, g, 0))
        if rng.random() < 0.0005:
            add(_pack(rng.randrange(created, end), TOKEN_REUSE, g, 0))
        grant_weights.append((end - created + 86_400) * rng.lognormvariate(0, 1.2))
    small = entries // 200
    for _ in range(small):
        second = rng.randrange(span)
        add(_pack(second, TERMS, rng.randrange(PERSONS), rng.randrange(6)))
    for _ in range(small):
        g = rng.randrange(grants)
        second = rng.randrange(store.grant_created[g], store.grant_end[g] + 1)
        add(_pack(second, MESSAGE_SENT if rng.random() < 0.6 else MESSAGE_OTHER, g, rng.randrange(4)))
    for _ in range(small // 2):
        add(_pack(rng.randrange(span), INTENT, rng.randrange(PERSONS), rng.randrange(8)))
    for _ in range(small // 4):
        add(_pack(rng.randrange(span), PERSON, rng.randrange(PERSONS), rng.randrange(3)))
    for _ in range(CLIENTS * 3):
        add(_pack(rng.randrange(span), VENDOR, rng.randrange(CLIENTS), rng.randrange(3)))
    big = min(BIG_GRANT_ACCESSES, entries // 100)
    accesses = max(0, entries - len(events) - big)
    cumulative = list(itertools.accumulate(grant_weights))
    picks = rng.choices(range(grants), cum_weights=cumulative, k=accesses) + [0] * big
    for g in picks:
        created, end = store.grant_created[g], store.grant_end[g]
        # A few reads come after the grant ended: the anomaly the activity page flags.
        second = rng.randrange(created, min(span, end + 86_400)) if rng.random() < 0.0005 else 0
        if not second:
            second = created + int((end - created) * rng.random())
        draw = rng.random()
        code = (
            ACCESS_READ
            if draw < 0.70
            else ACCESS_CHECK
            if draw < 0.85
            else ACCESS_WRITE
            if draw < 0.93
            else ACCESS_DENIED
        )
        add(_pack(second, code, g, rng.randrange(256)))
    events.sort()
    return events[:entries]


def _record_ids(rng: random.Random, pool: list[str], variant: int) -> tuple[str, int]:
    # Most reads open one record, some a handful, a few a whole page of 50.
    count = 1 if variant < 140 else rng.randint(2, 5) if variant < 205 else rng.randint(6, 20)
    if variant >= 243:
        count = 50
    first = rng.randrange(len(pool) - count)
    return "[" + ", ".join(f'"{r}"' for r in pool[first : first + count]) + "]", count


def _scopes_json(scopes: str) -> str:
    return "[" + ", ".join(f'"{s}"' for s in scopes.split(",")) + "]"


_TERMS = (
    "terms.chosen",
    "terms.declared",
    "terms.proffered",
    "terms.accepted",
    "terms.declined",
    "terms.acknowledged",
)
_MESSAGES = ("message.read", "message.answered", "message.reported", "message.allowance")
_INTENTS = (
    "intent.published",
    "intent.updated",
    "intent.withdrawn",
    "intent.expired",
    "intent.offered",
    "intent.accepted",
    "intent.declined",
    "intent.filters_set",
)
_PERSONS = ("person.export", "person.two_factor_on", "person.import")
_VENDORS = ("vendor.app_registered", "vendor.app_secret_reset", "vendor.org_verified")


def _rows(rng: random.Random, store: Store, events: list[int]) -> Iterator[str]:
    """Write each planned entry as a line of COPY text, in the order of the plan."""
    pool = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(200_000)]
    base = store.start
    last_second, tick = -1, 0
    times: dict[int, str] = {}
    for event in events:
        second, code, entity, variant = _unpack(event)
        # Entries of the same second keep their order, a microsecond apart.
        tick = tick + 1 if second == last_second else 0
        last_second = second
        if second not in times:
            times.clear()
            times[second] = (base + dt.timedelta(seconds=second)).strftime("%Y-%m-%d %H:%M:%S")
        created_at = f"{times[second]}.{tick:06d}+00"
        request_id = f"{rng.getrandbits(64):016x}"
        reason = ""
        outcome = "allowed"
        record_ids, record_count = "[]", 0
        scopes = "[]"
        grant_id = ""
        if code <= ACCESS_DENIED:
            grant_id = store.grant_ids[entity]
            client = store.clients[store.grant_client[entity]]
            subject = store.persons[store.grant_person[entity]]
            actor_type, actor_id = "client", client
            scopes = _scopes_json(store.grant_scopes[entity])
            if code == GRANT_CREATED:
                kind = "grant.created"
            elif code == GRANT_AMENDED:
                kind = "grant.amended"
            elif code == GRANT_REVOKED:
                kind, scopes, reason = "grant.revoked", "[]", "revoked by the person"
                if variant:
                    actor_type, actor_id = "person", subject
            elif code == GRANT_EXPIRED:
                kind, scopes, actor_type, actor_id = "grant.expired", "[]", "system", "expire_grants"
            elif code == TOKEN_ISSUED:
                kind = "token.issued"
            elif code == TOKEN_REFRESHED:
                kind = "token.refreshed"
            elif code == TOKEN_REVOKED:
                kind, scopes, actor_type, actor_id = "token.revoked", "[]", "system", "grant-revoked"
                reason = "1 tokens withdrawn"
            elif code == TOKEN_REUSE:
                kind, reason = "token.reuse_detected", "a refresh token was used twice"
            elif code == ACCESS_READ:
                kind = "access.read"
                record_ids, record_count = _record_ids(rng, pool, variant)
                if variant % 50 == 7:
                    outcome, reason = "denied", "outside the grant's history"
            elif code == ACCESS_WRITE:
                kind = "access.write"
                record_ids, record_count = _record_ids(rng, pool, variant % 140)
            elif code == ACCESS_CHECK:
                kind, record_count = "access.check", 1
            else:
                kind, outcome, reason = "access.denied", "denied", "scope not granted"
        elif code in (MESSAGE_SENT, MESSAGE_OTHER):
            grant_id = store.grant_ids[entity]
            subject = store.persons[store.grant_person[entity]]
            record_ids, record_count = f'["{pool[entity % len(pool)]}"]', 1
            if code == MESSAGE_SENT:
                kind, actor_type, actor_id = (
                    "message.sent",
                    "client",
                    store.clients[store.grant_client[entity]],
                )
            else:
                kind, actor_type, actor_id = _MESSAGES[variant], "person", subject
        elif code == VENDOR:
            subject = ""
            kind = _VENDORS[variant]
            actor_type, actor_id = "vendor_org", store.organisations[store.client_org[entity]]
            record_ids, record_count = f'["{store.clients[entity]}"]', 1
        else:
            subject = store.persons[entity]
            actor_type, actor_id = "person", subject
            if code == TERMS:
                kind = _TERMS[variant]
            elif code == INTENT:
                kind = _INTENTS[variant]
            else:
                kind = _PERSONS[variant]
        yield (
            f"{created_at}\t{kind}\t{actor_type}\t{actor_id}\t{subject}\t{grant_id}\t{scopes}\t"
            f"{record_ids}\t{record_count}\t{outcome}\t{reason}\t{request_id}\n"
        )


def generate(*, entries: int, seed: int = 18, batch: int = 200_000) -> Store:
    """Fill the (migrated, empty) bench database with a year of ledger, leaves and a checkpoint.

    The entry table's secondary indexes are dropped during the COPY and built again after it,
    as pg_restore does: the same indexes, far sooner than maintaining them row by row.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    rng = random.Random(seed)
    now = timezone.now().replace(microsecond=0)
    store = _store(rng, now=now)
    started = time.perf_counter()
    events = _events(rng, store, entries=entries)
    print(f"planned {len(events):,} entries in {time.perf_counter() - started:.0f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_ledgerentry' "
            "AND indexname <> 'audit_ledgerentry_pkey'"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    rows = _rows(rng, store, events)
    copied = 0
    while True:
        chunk = "".join(itertools.islice(rows, batch))
        if not chunk:
            break
        with transaction.atomic(), connection.cursor() as cursor:
            with cursor.cursor.copy(
                f"COPY audit_ledgerentry ({', '.join(ENTRY_COPY_COLUMNS)}) FROM STDIN"
            ) as copy:
                copy.write(chunk)
        copied += chunk.count("\n")
        if copied % 1_000_000 < batch:
            print(f"  copied {copied:,} entries, {time.perf_counter() - started:.0f} s", flush=True)
    del events
    with connection.cursor() as cursor:
        for name, definition in indexes:
            cursor.execute(definition)
            print(f"  built {name}, {time.perf_counter() - started:.0f} s", flush=True)
        # Leaves for every entry but the newest few, as the sealer leaves them between runs.
        cursor.execute(
            "INSERT INTO audit_ledgerleaf (leaf_index, entry_id, leaf_hash) "
            "SELECT id - 1, id, %s FROM audit_ledgerentry "
            "WHERE id <= (SELECT max(id) FROM audit_ledgerentry) - %s ORDER BY id",
            [bytes(32), UNSEALED],
        )
        sealed = cursor.rowcount
        cursor.execute(
            "INSERT INTO audit_ledgercheckpoint "
            "(tree_size, root_hash, compact_range, created_at, note, signature) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [sealed, bytes(32), bytes(32), now, f"bench\n{sealed}\nAAAA\n", bytes(64)],
        )
        cursor.execute("VACUUM ANALYZE audit_ledgerentry")
        cursor.execute("VACUUM ANALYZE audit_ledgerleaf")
    print(f"generated {copied:,} entries and {sealed:,} leaves in {time.perf_counter() - started:.0f} s")
    return store


# --- timing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Facts of the generated ledger that the timed pages filter on."""

    big_grant: str
    big_client: str
    small_client: str
    subject: str
    newest: dt.date
    # Keyset positions deep in each list, as "Older" links reach after many pages.
    deep_grant: str
    deep_entry: int
    deep_access: int


def build_summaries() -> None:
    """Build the auditor's summaries from the generated entries, as the sealer does after an upgrade."""
    from django.db import connection, transaction

    from audit.summaries import counts_rebuild, grants_rebuild

    started = time.perf_counter()
    built = {"grants": grants_rebuild()}
    with transaction.atomic():
        built |= counts_rebuild()
    print(
        f"built the summaries from the entries in {time.perf_counter() - started:.0f} s: {built}", flush=True
    )
    with connection.cursor() as cursor:
        for table in ("audit_ledgergrant", "audit_ledgervendorday", "audit_ledgerlateread"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def targets() -> Target:
    """Read back what to filter on: the first entry is the big grant's creation by the big vendor."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT grant_id, actor_id, subject FROM audit_ledgerentry WHERE id = 1")
        big_grant, big_client, subject = cursor.fetchone()
        cursor.execute(
            "SELECT actor_id FROM audit_ledgerentry WHERE kind = 'grant.created' AND actor_id <> %s "
            "ORDER BY id DESC LIMIT 1",
            [big_client],
        )
        small_client = cursor.fetchone()[0]
        cursor.execute("SELECT max(created_at) FROM audit_ledgerentry")
        newest = cursor.fetchone()[0].date()
        cursor.execute(
            "SELECT grant_id FROM audit_ledgergrant "
            "ORDER BY created_at DESC, created_entry DESC OFFSET 2000 LIMIT 1"
        )
        deep_grant = cursor.fetchone()[0]
        cursor.execute(
            "SELECT id FROM audit_ledgerentry ORDER BY created_at DESC, id DESC OFFSET 10000 LIMIT 1"
        )
        deep_entry = cursor.fetchone()[0]
        cursor.execute(
            "SELECT id FROM audit_ledgerentry WHERE grant_id = %s AND kind LIKE 'access.%%' "
            "ORDER BY created_at DESC, id DESC OFFSET 5000 LIMIT 1",
            [big_grant],
        )
        deep_access = cursor.fetchone()[0]
    return Target(big_grant, big_client, small_client, subject, newest, deep_grant, deep_entry, deep_access)


def pages(target: Target) -> dict[str, str]:
    """Name every auditor page and filter to time, with its URL."""
    month = f"date_from={target.newest - dt.timedelta(days=30)}&date_to={target.newest}"
    day = f"date_from={target.newest - dt.timedelta(days=1)}&date_to={target.newest - dt.timedelta(days=1)}"
    return {
        "portal": "/audit/",
        "grants": "/audit/grants/",
        "grants 2,000 deep": f"/audit/grants/?before={target.deep_grant}",
        "grants big vendor": f"/audit/grants/?vendor={target.big_client}",
        "grants small vendor": f"/audit/grants/?vendor={target.small_client}",
        "grants active": "/audit/grants/?status=active",
        "grants revoked": "/audit/grants/?status=revoked",
        "grants expired": "/audit/grants/?status=expired",
        "grants scope": "/audit/grants/?scope=warranties:read",
        "grants last 30 days": f"/audit/grants/?{month}",
        "grants big vendor revoked": f"/audit/grants/?vendor={target.big_client}&status=revoked",
        "grant detail (big)": f"/audit/grants/{target.big_grant}/",
        "grant detail 5,000 deep": f"/audit/grants/{target.big_grant}/?before={target.deep_access}",
        "activity": "/audit/activity/",
        "activity big vendor": f"/audit/activity/?vendor={target.big_client}",
        "activity last 30 days": f"/audit/activity/?{month}",
        "activity vendor 30 days": f"/audit/activity/?vendor={target.big_client}&{month}",
        "entries": "/audit/entries/",
        "entries 10,000 deep": f"/audit/entries/?before={target.deep_entry}",
        "entries kind read": "/audit/entries/?kind=access.read",
        "entries kind revoked": "/audit/entries/?kind=grant.revoked",
        "entries kind reuse (rare)": "/audit/entries/?kind=token.reuse_detected",
        "entries big vendor": f"/audit/entries/?vendor={target.big_client}",
        "entries small vendor": f"/audit/entries/?vendor={target.small_client}",
        "entries subject": f"/audit/entries/?subject={target.subject}",
        "entries grant": f"/audit/entries/?grant_id={target.big_grant}",
        "entries denied": "/audit/entries/?outcome=denied",
        "entries one day": f"/audit/entries/?{day}",
        "entries kind+vendor+30 days": (
            f"/audit/entries/?kind=access.write&vendor={target.small_client}&{month}"
        ),
        "entries denied+vendor": f"/audit/entries/?outcome=denied&vendor={target.big_client}",
        "intents": "/audit/intents/",
    }


def exports(target: Target) -> dict[str, str]:
    """Name the filtered exports to time (first byte and whole body)."""
    day = f"date_from={target.newest - dt.timedelta(days=1)}&date_to={target.newest - dt.timedelta(days=1)}"
    return {
        "entries.csv one day": f"/audit/entries/export.csv?{day}",
        "entries.json big grant": f"/audit/entries/export.json?grant_id={target.big_grant}",
        "grants.csv small vendor": f"/audit/grants/export.csv?vendor={target.small_client}",
        "activity.csv big vendor": f"/audit/activity/export.csv?vendor={target.big_client}",
    }


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _get(client: object, url: str) -> tuple[float, float, int, int]:
    """Return (seconds to the first row, seconds in all, status, bytes) of one GET.

    An export's first chunk is its CSV header or JSON "[", written before any query runs: the
    first row is the second chunk.
    """
    started = time.perf_counter()
    response = client.get(url)  # type: ignore[attr-defined]
    if response.streaming:
        chunks = iter(response.streaming_content)
        first = next(chunks, b"") + next(chunks, b"")
        first_byte = time.perf_counter() - started
        size = len(first) + sum(len(chunk) for chunk in chunks)
    else:
        first_byte = time.perf_counter() - started
        size = len(response.content)
    return first_byte, time.perf_counter() - started, response.status_code, size


def _figure(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return f"{statistics.median(ms):8.0f} ms  ({ms[0]:.0f}-{ms[-1]:.0f})"


def time_pages(
    client: object, urls: dict[str, str], *, rounds: int, only: str = ""
) -> dict[str, list[float]]:
    """Request every page once per round, the pages in turn, and print median and spread."""
    timings: dict[str, list[float]] = {name: [] for name in urls if only in name}
    failed: dict[str, str] = {}
    for name in timings:  # a first request warms caches and the connection; not counted
        failed.update(_try(client, name, urls[name], timings))
    for _ in range(rounds):
        for name in timings:
            if name not in failed:
                failed.update(_try(client, name, urls[name], timings, keep=True))
    for name, samples in timings.items():
        print(f"  {name:32} {failed.get(name) or _figure(samples)}", flush=True)
    return timings


def _try(
    client: object, name: str, url: str, timings: dict[str, list[float]], *, keep: bool = False
) -> dict[str, str]:
    """Time one request; a page over the statement timeout (or failing) is named, not timed."""
    started = time.perf_counter()
    try:
        _, total, status, _ = _get(client, url)
    except Exception as exc:  # noqa: BLE001 (the statement timeout, reported as a figure)
        return {name: f"failed after {time.perf_counter() - started:.0f} s: {type(exc).__name__}"}
    if status != 200:
        return {name: f"answered {status}"}
    if keep:
        timings[name].append(total)
    return {}


def time_exports(client: object, urls: dict[str, str], *, rounds: int) -> None:
    """Print time to first byte and in all of each filtered export."""
    for name, url in urls.items():
        firsts, totals, size = [], [], 0
        for _ in range(rounds):
            first, total, status, size = _get(client, url)
            if status != 200:
                sys.exit(f"benchmark failed: {url} answered {status}")
            firsts.append(first)
            totals.append(total)
        print(
            f"  {name:26} first row {_figure(firsts)}   all {_figure(totals)}   {size / 1e6:.1f} MB",
            flush=True,
        )


def stream_memory(client: object, *, seconds: float) -> None:
    """Stream the unfiltered entries export for a while and print how resident memory moves."""
    started = time.perf_counter()
    response = client.get("/audit/entries/export.csv")  # type: ignore[attr-defined]
    rows, samples, before = 0, [], _rss_mb()
    for _line in response.streaming_content:
        rows += 1
        if rows % 40_000 == 0:
            samples.append(f"{rows // 1000}k rows {_rss_mb():.0f} MB")
        if time.perf_counter() - started > seconds:
            break
    response.close()
    elapsed = time.perf_counter() - started
    print(f"  unfiltered entries.csv: {rows:,} rows in {elapsed:.0f} s ({rows / elapsed:,.0f} rows/s)")
    print(f"  resident memory: {before:.0f} MB before; " + "; ".join(samples))


def time_appends(admin_url: str, *, appends: int, audit_migration: str) -> None:
    """Print the cost of ledger_append with the schema's indexes, as bench/ledger.py measures it."""
    appends_db = f"{BENCH_DB}_appends"
    os.environ["DATABASE_URL"] = os.environ["DATABASE_URL"].replace(f"/{BENCH_DB}", f"/{appends_db}")
    recreate(admin_url, database=appends_db)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from bench.ledger import _time_appends

        call_command("migrate", verbosity=0)
        if audit_migration:
            call_command("migrate", "audit", audit_migration, verbosity=0)
        alone = _time_appends(appends // 2, per_transaction=1)
        shared = _time_appends(appends - appends // 2, per_transaction=100)
        print(f"append: {alone:.0f} µs per entry in its own transaction (n={appends // 2:,})")
        print(f"append: {shared:.0f} µs per entry inside a caller's transaction (100 per commit)")
        connection.close()
    finally:
        recreate(admin_url, database=appends_db, drop_only=True)


def _database_exists(admin_url: str) -> bool:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone() is not None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help=f"keep {BENCH_DB}, and reuse it if it is there")
    parser.add_argument("--drop", action="store_true", help=f"drop {BENCH_DB} and stop")
    parser.add_argument("--no-migrate", action="store_true", help="time the schema the database has now")
    parser.add_argument(
        "--audit-migration",
        default="",
        help="then migrate the audit app to this migration (0011 times the indexes before issue #18)",
    )
    parser.add_argument(
        "--appends",
        type=int,
        default=0,
        help="only time this many ledger_append calls (as bench/ledger.py does) on a database of their own",
    )
    parser.add_argument("--generate-only", action="store_true", help="fill the database, time nothing")
    parser.add_argument("--only", default="", help="time only the pages whose name holds this")
    parser.add_argument("--stream-seconds", type=float, default=20, help="0 skips the memory check")
    parser.add_argument(
        "--timeout", type=int, default=120, help="statement timeout in seconds (a page over it fails)"
    )
    args = parser.parse_args()
    admin_url = bench_environment(
        os.environ.get("DATABASE_URL", ""),
        database=BENCH_DB,
        script="bench/ledger_pages.py",
        VRM_HTTPS="False",
        VRM_ALLOWED_HOSTS="testserver",  # the in-process client
    )
    # A page over the statement timeout is reported in one line, not by Django's error log.
    logging.getLogger("django.request").setLevel(logging.CRITICAL)
    if args.drop:
        recreate(admin_url, database=BENCH_DB, drop_only=True)
        return
    if args.appends:
        time_appends(admin_url, appends=args.appends, audit_migration=args.audit_migration)
        return
    reuse = args.keep and _database_exists(admin_url)
    if not reuse:
        recreate(admin_url, database=BENCH_DB)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.db.backends.signals import connection_created
        from django.test import Client

        from accounts.models import User
        from accounts.services import account_upsert
        from audit.summaries import rebuild_pending

        def timeout(connection: object, **_: object) -> None:
            with connection.cursor() as cursor:  # type: ignore[attr-defined]
                cursor.execute(f"SET statement_timeout = '{args.timeout}s'")

        if not args.no_migrate:
            call_command("migrate", verbosity=0)
            if args.audit_migration:
                call_command("migrate", "audit", args.audit_migration, verbosity=0)
        if not reuse:
            generate(entries=args.entries)
        if not reuse or rebuild_pending():
            build_summaries()
        if args.generate_only:
            return
        connection_created.connect(timeout)
        connection.close()
        target = targets()
        auditor, _ = account_upsert(
            email="auditor@bench.example",
            password="bench-auditor-1",  # noqa: S106 (a throwaway bench account)
            role=User.Role.AUDITOR,
        )
        client = Client()
        client.force_login(auditor)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM audit_ledgerentry")
            print(
                f"auditor pages at {cursor.fetchone()[0]:,} entries, {args.rounds} rounds, median (min-max):"
            )
        time_pages(client, pages(target), rounds=args.rounds, only=args.only)
        if not args.only:
            print("filtered exports:")
            time_exports(client, exports(target), rounds=max(1, args.rounds // 2))
        if args.stream_seconds:
            stream_memory(client, seconds=args.stream_seconds)
        connection.close()
    finally:
        if not args.keep:
            recreate(admin_url, database=BENCH_DB, drop_only=True)


if __name__ == "__main__":
    main()
