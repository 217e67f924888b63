"""Benchmark intentcasting: matching a new intent against 1,000 organisations' filters, and
listing intents at 100,000 open ones.

Run by hand against PostgreSQL; it creates (and afterwards drops) a database of its own,
`vrm_bench_intents` unless `--database` names another, with ephemeral keys:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/intents.py --intents 100000 --organisations 1000 --rounds 5

Targets (issue #17): matching a new intent against 1,000 subscribed organisations' filters
under 100 ms; listing intents under 50 ms at 100,000 open intents.

What is measured is the real code: `vendors.intents.organisations_matching` for a new intent
(its kind and country drawn like the seeded ones), and `GET /api/v1/intents` through Django's
test client with an organisation's client-credentials token (authentication, the verified-
organisation check, throttles, the filters, the keyset query, serialisation): the first page,
the page after it (by the `next` cursor), a `since` query (the last hour's changes) and a page
of 200, for a typical organisation (two kinds in three countries) and a broad one (every kind,
every country), and the one short page of a narrow one (one kind in the rarest country).

What is synthetic: people are bare `accounts.User` rows (no store, unusable passwords; intents
only point at their owner), at most ten open intents each as the service allows; the intents are
bulk-inserted rows, not `intent_publish` calls (which would add a ledger entry each), with kinds,
countries (a skewed list of 30), prices and `updated_at` spread over 30 days; a quarter as many
again are withdrawn, expired or closed, so the partial index has something to leave out. The
organisations' filters are `IntentFilter` rows: one to two kinds in one to five countries, or
(one in ten) every country. The machine is shared and noisy: medians and spread over
alternating rounds are printed, then the query plans (EXPLAIN ANALYZE, BUFFERS).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import secrets
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.privatedb import bench_environment, recreate  # noqa: E402

BENCH_DB = "vrm_bench_intents"
KINDS = ("purchase", "clothing", "appliance", "service")
COUNTRIES = (
    "DE FR NL BE AT CH IT ES PT PL CZ SE DK NO FI IE GB LU SI SK HU RO BG GR HR EE LV LT MT CY"
).split()
BATCH = 5000
MATCH_TARGET_MS = 100.0
LIST_TARGET_MS = 50.0


def _spread(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return (
        f"p50 {statistics.median(values):6.2f} ms  p90 {p90:6.2f} ms  "
        f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
    )


def _country(rng: random.Random) -> str:
    # Skewed: the first countries are much more common, as populations are.
    return COUNTRIES[min(int(rng.expovariate(1 / 5)), len(COUNTRIES) - 1)]


def _seed(args: argparse.Namespace, rng: random.Random) -> None:
    from django.db import connection
    from django.utils import timezone
    from tqdm import tqdm

    from accounts.models import User
    from vendors.models import Intent, IntentFilter, Organisation

    now = timezone.now()
    people = -(-args.intents // 10)
    users = [
        User(email=f"p{n}@bench.example", role=User.Role.PERSON, password="!unusable")  # noqa: S106 (unusable)
        for n in range(people)
    ]
    for start in tqdm(range(0, people, BATCH), desc="people", unit="batch", file=sys.stderr):
        User.objects.bulk_create(users[start : start + BATCH])
    owners = list(User.objects.filter(role=User.Role.PERSON).values_list("pk", flat=True))
    closed = args.intents // 4
    statuses = ["open"] * args.intents + [
        rng.choice(["withdrawn", "expired", "closed"]) for _ in range(closed)
    ]
    rows = []
    with tqdm(total=len(statuses), desc="intents", unit="intent", file=sys.stderr) as bar:
        for n, status in enumerate(statuses):
            changed = now - dt.timedelta(seconds=rng.uniform(0, 30 * 86400))
            low = Decimal(rng.randrange(5, 500))
            rows.append(
                Intent(
                    owner_id=owners[n % len(owners)],
                    kind=rng.choice(KINDS),
                    title="Winter coat",
                    details={"size": "M"},
                    price_min=low,
                    price_max=low * 2,
                    currency="EUR",
                    country=_country(rng),
                    postcode_prefix=str(rng.randrange(10, 99)),
                    ends_at=(now if status != "open" else changed) + dt.timedelta(days=rng.uniform(1, 30)),
                    status=status,
                    created_at=changed,
                    updated_at=changed,
                )
            )
            if len(rows) == BATCH:
                Intent.objects.bulk_create(rows)
                bar.update(len(rows))
                rows = []
        Intent.objects.bulk_create(rows)
        bar.update(len(rows))
    organisations = [
        Organisation(
            name=f"Bench Org {n}",
            website="https://org.example",
            privacy_contact="p@org.example",
            verified=rng.random() > 0.05,
        )
        for n in range(args.organisations)
    ]
    Organisation.objects.bulk_create(organisations)
    filters = []
    for organisation in tqdm(organisations, desc="organisations", unit="org", file=sys.stderr):
        kinds = rng.sample(KINDS, rng.randint(1, 2))
        countries = [""] if rng.random() < 0.1 else rng.sample(COUNTRIES[:12], rng.randint(1, 5))
        filters += [
            IntentFilter(organisation=organisation, kind=k, country=c) for k in kinds for c in countries
        ]
    IntentFilter.objects.bulk_create(filters)
    with connection.cursor() as cursor:  # what autovacuum does soon after a large load
        cursor.execute("VACUUM ANALYZE vendors_intent")
        cursor.execute("VACUUM ANALYZE vendors_intentfilter")
    print(
        f"seeded {people} people, {args.intents} open and {closed} other intents, "
        f"{args.organisations} organisations with {len(filters)} filter rows",
        flush=True,
    )


def _client_for(name: str, kinds: tuple[str, ...], countries: tuple[str, ...]) -> tuple[Any, Any]:
    """An organisation with the given filters, and a test client holding its intents:read token."""
    from django.test import Client
    from django.utils import timezone

    from consent.models import AccessToken
    from vendors.models import Application, IntentFilter, Organisation

    organisation = Organisation.objects.create(
        name=name, website="https://org.example", privacy_contact="p@org.example", verified=True
    )
    IntentFilter.objects.bulk_create(
        [
            IntentFilter(organisation=organisation, kind=k, country=c)
            for k in kinds
            for c in countries or ("",)
        ]
    )
    app = Application.objects.create(
        organisation=organisation,
        name=f"{name} backend",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=secrets.token_urlsafe(30),
        scopes=["intents:read"],
        algorithm="",
    )
    raw = secrets.token_urlsafe(30)
    AccessToken.objects.create(
        user=None,
        application=app,
        token=raw,
        scope="intents:read",
        expires=timezone.now() + dt.timedelta(days=1),
    )
    return organisation, Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--intents", type=int, default=100_000, help="open intents")
    parser.add_argument("--organisations", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20, help="requests per kind per round")
    parser.add_argument("--database", default=BENCH_DB)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    admin_url = bench_environment(
        os.environ.get("DATABASE_URL", ""),
        database=args.database,
        script="bench/intents.py",
        VRM_HTTPS="False",
        VRM_ALLOWED_HOSTS="testserver",
    )
    recreate(admin_url, database=args.database)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.utils import timezone
        from rest_framework.settings import api_settings
        from rest_framework.throttling import SimpleRateThrottle
        from tqdm import tqdm

        from vendors.intents import _visible, organisations_matching
        from vendors.models import Intent

        # A benchmark is not a flood: lift the API's rate limits for this run.
        rates = {"app_burst": "1000000/second", "app_sustained": "100000000/hour", "ledger": "1000/second"}
        SimpleRateThrottle.THROTTLE_RATES = rates
        api_settings.DEFAULT_THROTTLE_RATES = rates  # type: ignore[misc]

        call_command("migrate", verbosity=0)
        rng = random.Random("vrm-bench-intents")  # noqa: S311 (synthetic data)
        _seed(args, rng)
        typical, typical_client = _client_for("Typical Coats", ("clothing", "purchase"), ("DE", "FR", "NL"))
        broad, broad_client = _client_for("Everything Ltd", KINDS, ())
        _narrow, narrow_client = _client_for("Maltese Plumbers", ("service",), ("MT",))
        since = (timezone.now() - dt.timedelta(hours=1)).isoformat()

        def page(client: Any, params: dict[str, str]) -> dict[str, Any]:
            response = client.get("/api/v1/intents", params)
            if response.status_code != 200:
                sys.exit(f"benchmark failed: {response.status_code} {response.content[:300]!r}")
            body: dict[str, Any] = response.json()
            return body

        lists: dict[str, tuple[Any, str, dict[str, str]]] = {}
        for label, client in (
            ("typical", typical_client),
            ("broad", broad_client),
            ("narrow", narrow_client),
        ):
            first = page(client, {})
            if label == "narrow":  # a rare kind in the rarest country: fewer than a page
                lists[f"{label}: first (and only) page"] = (client, "/api/v1/intents", {})
                lists[f"{label}: since one hour ago"] = (client, "/api/v1/intents", {"since": since})
                continue
            if len(first["results"]) != 50 or not first["next"]:
                sys.exit(f"benchmark failed: the {label} organisation's first page is not full")
            lists[f"{label}: first page"] = (client, "/api/v1/intents", {})
            lists[f"{label}: next page (cursor)"] = (client, first["next"], {})
            lists[f"{label}: since one hour ago"] = (client, "/api/v1/intents", {"since": since})
            lists[f"{label}: 200 per page"] = (client, "/api/v1/intents", {"limit": "200"})
        probes = [Intent(kind=rng.choice(KINDS), country=_country(rng)) for _ in range(200)]
        matched = [len(organisations_matching(intent=p)) for p in probes[:20]]
        print(
            f"a new intent matches {min(matched)}-{max(matched)} organisations (first 20 probes)", flush=True
        )

        timings: dict[str, list[float]] = {name: [] for name in ["matching a new intent", *lists]}
        for round_number in tqdm(range(args.rounds), desc="rounds", file=sys.stderr):
            order = list(timings) if round_number % 2 == 0 else list(reversed(timings))
            for name in order:
                for n in range(args.requests):
                    if name == "matching a new intent":
                        probe = probes[(round_number * args.requests + n) % len(probes)]
                        started = time.perf_counter()
                        organisations_matching(intent=probe)
                    else:
                        client, url, params = lists[name]
                        started = time.perf_counter()
                        response = client.get(url, params)
                        if response.status_code != 200:
                            sys.exit(f"benchmark failed: {name} answered {response.status_code}")
                    timings[name].append((time.perf_counter() - started) * 1000)

        print(f"\n{args.intents} open intents, {args.organisations} organisations, {args.rounds} rounds\n")
        for name, values in timings.items():
            target = MATCH_TARGET_MS if name.startswith("matching") else LIST_TARGET_MS
            verdict = "ok" if statistics.median(values) < target else "OVER TARGET"
            print(f"{name:34} {_spread(values)}  target < {target:.0f} ms: {verdict}")

        print("\nQuery plans:")
        cutoff = timezone.now() - dt.timedelta(hours=1)
        for name, organisation in (("typical", typical), ("narrow", _narrow)):
            rows = _visible(organisation.pk).order_by("-updated_at", "-id")
            for label, query in (
                ("first page", rows[:51]),
                ("since one hour ago", rows.filter(updated_at__gte=cutoff)[:51]),
            ):
                print(f"\n-- {name}: {label}\n{query.explain(analyze=True, buffers=True)}")
        probe = probes[0]
        print("\n-- matching a new intent")
        from vendors.models import IntentFilter

        matching = IntentFilter.objects.filter(
            kind=probe.kind, country__in=[probe.country, ""], organisation__verified=True
        ).values_list("organisation_id", flat=True)
        print(matching.distinct().explain(analyze=True, buffers=True))
    finally:
        if not args.keep:
            recreate(admin_url, database=args.database, drop_only=True)


if __name__ == "__main__":
    main()
