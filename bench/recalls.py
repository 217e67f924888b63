"""Benchmark recall matching: 100,000 people x 100 purchases, a 20-GTIN recall reaching ~1%.

Run by hand against PostgreSQL; it creates (and afterwards drops) a database of its own,
`vrm_bench_recalls`, and uses ephemeral keys, so development data and keys are never touched:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/recalls.py --people 100000 --purchases 100

Target (recalls story): a recall of 20 GTINs that matches about 1% of people completes matching
(alerts written, e-mails sent, status `done`) in under 10 s.

What is measured is the real code: `recall_publish` stores the recall through `RecallSchema`,
then `vendors.recalls.recall_match(recall_id=...)` runs unchanged (`records_matching_codes`
through the blind indexes, `Alert` bulk insert, the `recall.matched` ledger entry, status
`done`, then `alerts_notify` with the locmem e-mail backend). The run uses
`VRM_EMAIL_URL=locmem` and `VRM_TASKS_BACKEND=immediate`. The script prints the total and a
breakdown: the blind-index query (a timing wrapper around `records_matching_codes`), the
`INSERT INTO vendors_alert` statements (a `connection.execute_wrapper`), `alerts_notify`, and the
rest (status updates, ledger entry). It then times the query alone again, prints its
`EXPLAIN (ANALYZE, BUFFERS)`, re-runs `recall_match` to check it writes no new alert and sends no
new e-mail, and (unless `--no-variants`) runs a lot-restricted and a date-window recall.

What is synthetic, and why it does not change what is measured
---------------------------------------------------------------
Sealing 10,000,000 purchases with `seed_scale` runs at ~3,000 rows/s here (about an hour), so
purchases (and appliances) are generated inside PostgreSQL (`INSERT ... SELECT ... FROM
generate_series`, indexes dropped during the load and rebuilt with the migrations' exact
definitions afterwards). Everything recall matching reads is real:

- people are real `accounts.User` rows (unusable passwords), each with a real `PersonKey`
  (`keys.person_key_new`: a fresh data key wrapped by a recovery code thrown away), and half of them
  a real sealed `Preferences` document (mostly defaults, some opted out of e-mail or of
  non-safety alerts), so `alerts_notify` unwraps keys and decrypts preferences as in production;
- `gtin_index` and `lot_index` are real blind indexes, `store.blind_index("gtin", gtin)` and
  `store.blind_index("lot", lot)` under the run's `VRM_INDEX_KEY`, of a catalogue of valid GS1
  EAN-13 codes (`devtools.scale.catalogue_build`, 5,000 common products, skewed popularity,
  three lots each, a lot on a purchase as often as `seed_scale` puts one) plus 20 rare
  products, the recalled ones; `purchased_on` spreads over two years like `seed_scale`, with
  `shared`/`is_gift` at seed_scale's rates;
- exactly `--matched-share` of people (1% = 1,000 by default), drawn at random, own 1 to 3
  purchases of the rare products; nobody else owns them, so the expected number of people
  matched is known exactly and checked.

Only `payload` (the AES-GCM ciphertext) is synthetic: one constant blob, as long as a real
sealed purchase of this catalogue (measured at start-up), so the heap has its real size. Those
rows cannot be opened (`store.rows_open` would raise StoreError): nothing here opens them, and
recall matching never reads `payload` (it selects `owner_id` and `id` by `gtin_index`, `lot_index`
and `purchased_on`). The alerts, e-mails, preferences and ledger entries are all real.

Caveats: the load has just written the table, so much of it is in the OS page cache (PostgreSQL
itself has only its `shared_buffers`); the first `recall_match` is the headline figure. The
appliance table holds `--appliances` rows per person from the common catalogue (none matches).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.privatedb import bench_environment, recreate  # noqa: E402

BENCH_DB = "vrm_bench_recalls"
TARGET_SECONDS = 10.0
LOTS_PER_PRODUCT = 3
PREFERENCES_SHARE = 0.5
HISTORY_DAYS = 730
SEED = "recalls"


def _environment(database_url: str) -> str:
    return bench_environment(
        database_url,
        database=BENCH_DB,
        script="bench/recalls.py",
        VRM_EMAIL_URL="locmem",
        VRM_TASKS_BACKEND="immediate",
    )


def _recreate(admin_url: str, *, drop_only: bool = False) -> None:
    recreate(admin_url, database=BENCH_DB, drop_only=drop_only)


def _check(ok: bool, what: str) -> None:
    if not ok:
        sys.exit(f"benchmark failed: {what}")


@contextmanager
def _step(label: str) -> Iterator[None]:
    print(f"{label} ...", flush=True)
    started = time.perf_counter()
    yield
    print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)


def _sql(sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


# Seeding.


def _catalogue(common: int, recalled: int) -> tuple[list[Any], list[Any]]:
    """Load the catalogue with real blind indexes into bench_catalogue; return (common, recalled)."""
    from devtools.scale import catalogue_build
    from personal_data import store

    products = list(catalogue_build(seed=SEED, size=common + recalled))
    rng = random.Random(f"vrm-bench-recalls-lots-{SEED}")  # noqa: S311 (synthetic data, not secrets)
    _sql(
        "CREATE UNLOGGED TABLE bench_catalogue (n int PRIMARY KEY, gtin text NOT NULL, gtin_index bytea "
        "NOT NULL, lot_share real NOT NULL, lots text[] NOT NULL, lot_index bytea[] NOT NULL)"
    )
    rows = []
    for n, product in enumerate(products):
        lots = [f"L{rng.randint(1000, 99999)}" for _ in range(LOTS_PER_PRODUCT)]
        rare = n >= common
        rows.append(
            (
                n,
                product.gtin,
                store.blind_index("gtin", product.gtin),
                1.0 if rare else product.lot_share,  # a recalled product always carries a lot
                lots,
                [store.blind_index("lot", lot) for lot in lots],
            )
        )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.executemany("INSERT INTO bench_catalogue VALUES (%s, %s, %s, %s, %s, %s)", rows)
    return products[:common], products[common:]


def _people(people: int, common: int, recalled: int, matched_share: float) -> int:
    """Create people, real keys, some real preferences and bench_people; return how many own a recall."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import User
    from personal_data import store
    from personal_data.keys import person_key_new
    from personal_data.models import PersonKey, Preferences
    from personal_data.schemas import PreferencesSchema

    rng = random.Random(f"vrm-bench-recalls-people-{SEED}")  # noqa: S311 (synthetic data, not secrets)
    matched = set(rng.sample(range(people), round(people * matched_share)))
    preference_docs = [
        store.validate(PreferencesSchema, {}),
        store.validate(PreferencesSchema, {"contact": {"email": False}}),
        store.validate(PreferencesSchema, {"contact": {"safety_alerts_only": True}}),
    ]
    _sql("CREATE UNLOGGED TABLE bench_people (n int PRIMARY KEY, id uuid NOT NULL, rare_products int[])")
    now = timezone.now()
    batch = 5000
    started = time.perf_counter()
    for first in range(0, people, batch):
        numbers = range(first, min(first + batch, people))
        users = [
            User(
                email=f"recall-{n:06d}@example.test",
                display_name=f"Recall Person {n:06d}",
                role=User.Role.PERSON,
                password=make_password(None),
                date_joined=now,
            )
            for n in numbers
        ]
        made = [person_key_new(user.pk, password=None) for user in users]
        keys = [person_key for person_key, _, _ in made]
        prefs = []
        for user, (_, _, opened) in zip(users, made, strict=True):
            if rng.random() < PREFERENCES_SHARE:
                doc = preference_docs[0 if rng.random() < 0.8 else rng.choice((1, 2))]
                prefs.append(
                    Preferences(
                        owner_id=user.pk,
                        payload=store.preferences_seal(opened.data, user.pk, doc),
                        contact=doc.get("contact") or {},
                        updated_at=now,
                    )
                )
        bench_rows = []
        for n, user in zip(numbers, users, strict=True):
            rare = None
            if n in matched:
                rare = [common + rng.randrange(recalled) for _ in range(rng.randint(1, 3))]
            bench_rows.append((n, user.pk, rare))
        with transaction.atomic():
            User.objects.bulk_create(users)
            PersonKey.objects.bulk_create(keys)
            Preferences.objects.bulk_create(prefs)
            with connection.cursor() as cursor:
                cursor.executemany("INSERT INTO bench_people VALUES (%s, %s, %s)", bench_rows)
        done = numbers.stop
        if done % 20_000 == 0 or done == people:
            rate = done / (time.perf_counter() - started)
            print(f"  {done:,} / {people:,} people ({rate:,.0f}/s)", flush=True)
    return len(matched)


def _payload_size(products: list[Any], samples: int = 500) -> int:
    """Return the mean length of a real sealed purchase of this catalogue."""
    from django.utils import timezone

    from core import crypto
    from devtools.scale import purchase_document
    from personal_data import store
    from personal_data.categories import category_get
    from personal_data.models import Purchase

    rng = random.Random("vrm-bench-recalls-payload")  # noqa: S311 (synthetic data, not secrets)
    key, today, total = crypto.random_key(), timezone.now().date(), 0
    for _ in range(samples):
        row = Purchase(owner_id=uuid.uuid4())
        doc = purchase_document(rng, rng.choice(products), today=today)
        store.row_fill(category_get("purchases"), row, key, doc)
        total += len(row.payload)
    return round(total / samples)


@contextmanager
def _without_indexes(table: str) -> Iterator[None]:
    """Drop a table's indexes and constraints for a bulk load, then rebuild them exactly."""
    constraints = _sql(
        "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'f', 'u') ORDER BY contype DESC",
        [table],
    )
    names = [c[0] for c in constraints]
    indexes = _sql(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND NOT (indexname = ANY(%s))",
        [table, names],
    )
    for name, _ in indexes:
        _sql(f'DROP INDEX "{name}"')
    for name, _, _ in constraints:
        _sql(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
    yield
    for name, definition, _ in sorted(constraints, key=lambda c: c[2] != "p"):  # primary key first
        started = time.perf_counter()
        _sql(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        print(f"  {table}: constraint {name} in {time.perf_counter() - started:.1f} s", flush=True)
    for name, definition in indexes:
        started = time.perf_counter()
        _sql(definition)
        print(f"  {table}: index {name} in {time.perf_counter() - started:.1f} s", flush=True)


# Product picked for the i-th purchase of person p: their rare products first (only the
# matched people have any), then a common product with skewed popularity (product 0 most).
_PRODUCT = (
    "CASE WHEN i <= coalesce(cardinality(p.rare_products), 0) THEN p.rare_products[i] "
    "ELSE floor(%(common)s * power(random(), 2))::int END"
)

_PURCHASES = f"""
WITH g AS MATERIALIZED (
    SELECT p.id AS owner_id, {_PRODUCT} AS product
    FROM bench_people p CROSS JOIN generate_series(1, %(per_person)s) AS i
    WHERE p.n >= %(lo)s AND p.n < %(hi)s
)
INSERT INTO personal_data_purchase (
    id, owner_id, payload, shared, created_at, updated_at, purchased_on, is_gift, source,
    gtin_index, lot_index
)
SELECT gen_random_uuid(), g.owner_id, %(payload)s, random() >= 0.03, %(now)s, %(now)s,
    %(today)s::date - floor({HISTORY_DAYS} * power(random(), 1.3))::int,
    random() < 0.05, 'import', c.gtin_index,
    CASE WHEN random() < c.lot_share THEN c.lot_index[1 + floor(random() * {LOTS_PER_PRODUCT})::int] END
FROM g JOIN bench_catalogue c ON c.n = g.product
"""

_APPLIANCES = """
WITH g AS MATERIALIZED (
    SELECT p.id AS owner_id, floor(%(common)s * random())::int AS product
    FROM bench_people p CROSS JOIN generate_series(1, %(per_person)s) AS i
)
INSERT INTO personal_data_appliance
    (id, owner_id, payload, shared, created_at, updated_at, purchased_on, gtin_index)
SELECT gen_random_uuid(), g.owner_id, %(payload)s, true, %(now)s, %(now)s,
    %(today)s::date - floor(3650 * random())::int, c.gtin_index
FROM g JOIN bench_catalogue c ON c.n = g.product
"""


def _records(
    people: int, purchases: int, appliances: int, common: int, payload_size: int, chunk: int
) -> None:
    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    params: dict[str, Any] = {
        "common": common,
        "payload": bytes(payload_size),
        "now": now,
        "today": now.date(),
    }
    _sql("SET synchronous_commit = off")
    _sql("SET maintenance_work_mem = '1GB'")
    _sql("SET max_parallel_maintenance_workers = 2")
    with _without_indexes("personal_data_purchase"):
        started = time.perf_counter()
        for lo in range(0, people, chunk):
            hi = min(lo + chunk, people)
            with connection.cursor() as cursor:
                cursor.execute(_PURCHASES, {**params, "per_person": purchases, "lo": lo, "hi": hi})
            rows = hi * purchases
            seconds = time.perf_counter() - started
            total = people * purchases
            print(
                f"  {rows:,} / {total:,} purchases ({rows / seconds:,.0f} rows/s, {seconds:.0f} s)",
                flush=True,
            )
        print("  rebuilding the purchase indexes and constraints", flush=True)
    if appliances:
        with _without_indexes("personal_data_appliance"):
            with connection.cursor() as cursor:
                cursor.execute(_APPLIANCES, {**params, "per_person": appliances})
            print(f"  {people * appliances:,} appliances", flush=True)
    _sql("RESET synchronous_commit")


# Measuring.


class Timings:
    """Wrap the pieces of recall_match without changing them: query, alert inserts, e-mails."""

    def __init__(self) -> None:
        self.query = self.insert = self.notify = 0.0
        self.rows = self.sent = 0

    @contextmanager
    def installed(self) -> Iterator[None]:
        from django.db import connection

        import vendors.recalls as recalls

        original_match, original_notify = recalls.records_matching_codes, recalls.alerts_notify

        def match(**kwargs: Any) -> list[tuple[str, Any, str]]:
            started = time.perf_counter()
            result = original_match(**kwargs)
            self.query += time.perf_counter() - started
            self.rows += len(result)
            return result

        def notify(**kwargs: Any) -> int:
            started = time.perf_counter()
            sent = original_notify(**kwargs)
            self.notify += time.perf_counter() - started
            self.sent += sent
            return sent

        def statements(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
            if not sql.startswith('INSERT INTO "vendors_alert"'):
                return execute(sql, params, many, context)
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                self.insert += time.perf_counter() - started

        recalls.records_matching_codes, recalls.alerts_notify = match, notify
        try:
            with connection.execute_wrapper(statements):
                yield
        finally:
            recalls.records_matching_codes, recalls.alerts_notify = original_match, original_notify


def _application() -> Any:
    from vendors.models import Application, Organisation

    organisation = Organisation.objects.create(
        name="Nutty Farms Ltd",
        website="https://nutty.example",
        privacy_contact="privacy@nutty.example",
        verified=True,
    )
    app = Application(
        organisation=organisation,
        name="Nutty Farms recalls",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        redirect_uris="",
        client_secret="bench-" + uuid.uuid4().hex,
        scopes=["recalls:publish"],
        scope_purposes={},
        required_scopes=[],
        algorithm="",
    )
    app.save()
    return app


def _recall_data(title: str, gtins: list[str], severity: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": title,
        "message": "Possible contamination with undeclared peanuts. Do not eat.",
        "severity": severity,
        "gtins": gtins,
        "remedy_url": "https://nutty.example/recall",
        **extra,
    }


def _expected_people(where: str, params: list[Any]) -> int:
    """Count the people owning a rare purchase, from the generator's side (bench_catalogue)."""
    return _sql(
        "SELECT count(DISTINCT p.owner_id) FROM personal_data_purchase p "
        f"JOIN bench_catalogue c ON c.gtin_index = p.gtin_index WHERE c.n >= %s AND {where}",
        params,
    )[0][0]


def _outbox() -> int:
    from django.core import mail

    return len(getattr(mail, "outbox", []))


def _headline(app: Any, recalled: list[Any], severity: str, expected: int) -> float:
    from django.db import connection

    from audit.models import LedgerEntry
    from personal_data import store
    from personal_data.models import Purchase
    from personal_data.selectors import records_matching_codes
    from vendors.models import Alert, Recall
    from vendors.recalls import bucket, recall_match, recall_publish

    gtins = [p.gtin for p in recalled]
    recall = recall_publish(application=app, data=_recall_data("Peanut butter recall", gtins, severity))
    timings = Timings()
    outbox_before = _outbox()
    with timings.installed():
        started = time.perf_counter()
        reached = recall_match(recall_id=recall.pk)
        total = time.perf_counter() - started
    recall.refresh_from_db()
    alerts = Alert.objects.filter(recall=recall).count()
    emails = _outbox() - outbox_before
    rest = total - timings.query - timings.insert - timings.notify
    print(f"\nrecall of {len(gtins)} GTINs, no lots, no window, severity {severity}:")
    print(
        f"  people matched: {reached:,} exact (expected {expected:,}), bucket {bucket(reached)!r} "
        f"(the vendor sees recall.matched_people={recall.matched_people}, the API shows the bucket)"
    )
    print(f"  purchase rows matched: {timings.rows:,}; alerts written: {alerts:,}; e-mails sent: {emails:,}")
    print(f"  recall_match total: {total:.2f} s  (status {recall.status})")
    print(f"    blind-index query (records_matching_codes): {timings.query * 1000:8.1f} ms")
    print(f"    alerts insert (INSERT INTO vendors_alert):  {timings.insert * 1000:8.1f} ms")
    print(
        f"    alerts_notify ({timings.sent:,} e-mails):          {timings.notify * 1000:8.1f} ms"
        f"  ({timings.notify / max(1, alerts) * 1000:.2f} ms per alert)"
    )
    print(f"    rest (status, ledger entry, commit):         {rest * 1000:8.1f} ms")
    verdict = "meets" if total < TARGET_SECONDS else "MISSES"
    print(f"  => {total:.2f} s {verdict} the < {TARGET_SECONDS:.0f} s target")
    _check(reached == expected, f"matched {reached} people, expected {expected}")
    _check(alerts == reached, f"{alerts} alerts for {reached} people")
    _check(recall.status == Recall.Status.DONE, f"status {recall.status}")

    # The query alone, warm, and its plan.
    keys = [store.blind_index("gtin", g) for g in gtins]
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        records_matching_codes(gtins=gtins)
        runs.append(time.perf_counter() - started)
    print(f"  blind-index query alone, warm: {', '.join(f'{r * 1000:.1f}' for r in runs)} ms")
    query = Purchase.objects.filter(gtin_index__in=keys).values_list("owner_id", "pk").query
    sql, params = query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        print("  EXPLAIN (ANALYZE, BUFFERS) of the purchases query:")
        for (line,) in cursor.fetchall():
            print(f"    {line if len(line) <= 150 else line[:147] + '...'}")

    # Re-running is idempotent: no new alert, no new e-mail, one recall.matched entry.
    outbox_before = _outbox()
    started = time.perf_counter()
    again = recall_match(recall_id=recall.pk)
    seconds = time.perf_counter() - started
    alerts_again = Alert.objects.filter(recall=recall).count()
    entries = LedgerEntry.objects.filter(kind="recall.matched", record_ids__contains=[str(recall.pk)]).count()
    print(
        f"  re-run: {seconds:.2f} s, {again:,} people, alerts {alerts} -> {alerts_again}, "
        f"new e-mails {_outbox() - outbox_before}, recall.matched ledger entries {entries}"
    )
    _check(alerts_again == alerts, "a re-run created alerts")
    _check(_outbox() == outbox_before, "a re-run sent e-mails")
    _check(entries == 1, f"{entries} recall.matched ledger entries")
    return total


def _variants(app: Any, recalled: list[Any], common: int, severity: str) -> None:
    from django.utils import timezone

    from personal_data import store
    from vendors.recalls import recall_publish_and_match

    gtins = [p.gtin for p in recalled]
    lots_by_gtin = dict(_sql("SELECT gtin, lots[1] FROM bench_catalogue WHERE n >= %s", [common]))
    lots = [lots_by_gtin[g] for g in gtins]
    since = timezone.now().date() - dt.timedelta(days=180)
    variants: list[tuple[str, dict[str, Any], str, list[Any]]] = [
        (
            "20 GTINs, one lot each (of 3)",
            {"lots": lots},
            "p.lot_index = ANY(%s)",
            [[store.blind_index("lot", lot) for lot in lots]],
        ),
        (
            "20 GTINs, bought in the last 180 days",
            {"purchased_from": str(since)},
            "p.purchased_on >= %s",
            [since],
        ),
    ]
    for title, extra, where, params in variants:
        expected = _expected_people(where, [common, *params])
        timings = Timings()
        with timings.installed():
            started = time.perf_counter()
            # The API's path: publish, then the task (run at once by the immediate backend).
            recall = recall_publish_and_match(
                application=app, data=_recall_data(title, gtins, severity, **extra)
            )
            total = time.perf_counter() - started
        recall.refresh_from_db()
        print(f"\nvariant: {title} (recall_publish_and_match, immediate task backend):")
        print(
            f"  people matched {recall.matched_people:,} (expected {expected:,}), status {recall.status}, "
            f"{total:.2f} s: query {timings.query * 1000:.1f} ms, insert {timings.insert * 1000:.1f} ms, "
            f"notify {timings.notify * 1000:.1f} ms ({timings.sent:,} e-mails)"
        )
        _check(
            recall.matched_people == expected,
            f"{title}: matched {recall.matched_people}, expected {expected}",
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--purchases", type=int, default=100, help="purchases per person")
    parser.add_argument("--appliances", type=int, default=2, help="appliances per person (never matched)")
    parser.add_argument("--catalogue", type=int, default=5000, help="common products")
    parser.add_argument("--recalled", type=int, default=20, help="rare products, all recalled")
    parser.add_argument("--matched-share", type=float, default=0.01, help="share of people owning one")
    parser.add_argument("--severity", choices=("info", "warning", "danger"), default="danger")
    parser.add_argument("--chunk", type=int, default=5000, help="people per INSERT ... SELECT")
    parser.add_argument("--no-variants", action="store_true", help="skip the lot and date-window recalls")
    parser.add_argument(
        "--keep", action="store_true", help=f"keep the {BENCH_DB} database (its keys are ephemeral)"
    )
    args = parser.parse_args()
    admin_url = _environment(os.environ.get("DATABASE_URL", ""))
    _recreate(admin_url)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        seeding = time.perf_counter()
        with _step(
            f"catalogue: {args.catalogue:,} common + {args.recalled} recalled products, blind indexes"
        ):
            common, recalled = _catalogue(args.catalogue, args.recalled)
            payload_size = _payload_size(common)
            print(f"  placeholder payload: {payload_size} bytes (mean real sealed purchase)")
        with _step(
            f"people: {args.people:,} with data keys, {PREFERENCES_SHARE:.0%} with sealed preferences"
        ):
            expected = _people(args.people, args.catalogue, args.recalled, args.matched_share)
            print(f"  {expected:,} people own a recalled product")
        purchases, appliances = args.people * args.purchases, args.people * args.appliances
        with _step(f"records: {purchases:,} purchases, {appliances:,} appliances (INSERT ... SELECT)"):
            _records(args.people, args.purchases, args.appliances, args.catalogue, payload_size, args.chunk)
        with _step("VACUUM ANALYZE"):
            _sql("VACUUM ANALYZE")
        size = _sql("SELECT pg_size_pretty(pg_total_relation_size('personal_data_purchase'))")[0][0]
        print(f"seeding: {time.perf_counter() - seeding:.0f} s in all; personal_data_purchase is {size}")

        app = _application()
        total = _headline(app, recalled, args.severity, expected)
        if not args.no_variants:
            _variants(app, recalled, args.catalogue, args.severity)
        print(
            f"\nheadline: {args.people:,} people x {args.purchases} purchases, 20-GTIN recall reaching "
            f"{expected:,} people: recall_match {total:.2f} s (target < {TARGET_SECONDS:.0f} s)"
        )
        connection.close()
    finally:
        if not args.keep:
            _recreate(admin_url, drop_only=True)


if __name__ == "__main__":
    main()
