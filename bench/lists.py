"""Benchmark the person's list pages with a large store: one page read, whatever the size.

Run by hand against PostgreSQL; it creates (and afterwards drops) a database of its own,
`vrm_bench_lists`, with ephemeral keys:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/lists.py --purchases 100000 --rounds 5

One person holds --purchases purchases (real encryption, dates over five years, some gifts and
some hidden), signs in with their password, and loads `/data/purchases/` through Django's test
client (the whole view, template included): the newest page, a page deep in the list, a
month's range, hidden records only, gifts only, and text searches (one that fills a page at
once, one for a record far back, which stops at the search budget). Target (issue #15): list
page p50 < 100 ms at 100,000 purchases. The page as it was before (open every record of the
category, filter, then cut a page) is timed once per round beside it. The machine is shared and
noisy: medians and spread over alternating rounds are printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.privatedb import bench_environment, recreate  # noqa: E402

BENCH_DB = "vrm_bench_lists"
PASSWORD = "a benchmark passphrase of some length"  # noqa: S105


def _spread(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return (
        f"p50 {statistics.median(values):6.1f} ms  p90 {p90:6.1f} ms  "
        f"(min {min(values):.1f}, max {max(values):.1f}, n={len(values)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--purchases", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=10, help="requests per page kind per round")
    args = parser.parse_args()
    admin_url = bench_environment(
        os.environ.get("DATABASE_URL", ""),
        database=BENCH_DB,
        script="bench/lists.py",
        VRM_HTTPS="False",
        VRM_ALLOWED_HOSTS="testserver",  # the in-process client
    )
    recreate(admin_url, database=BENCH_DB)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.core.paginator import Paginator
        from django.db import connection
        from django.test import Client
        from tqdm import tqdm

        from devtools.scale import catalogue_build, purchase_document
        from personal_data import store
        from personal_data.categories import category_get
        from personal_data.keys import keys_hold, keys_scope
        from personal_data.models import Purchase
        from personal_data.selectors import records_for_owner
        from portal.services import person_signup

        call_command("migrate", verbosity=0)
        person = person_signup(email="bench@example.test", password=PASSWORD)
        keys = store.owner_keys(person)
        cat = category_get("purchases")
        rng = random.Random("vrm-bench-lists")  # noqa: S311 (synthetic data)
        catalogue = catalogue_build(seed="bench-lists")
        today = person.date_joined.date()
        rows = []
        for n in tqdm(range(args.purchases), desc="purchases", unit="rec", file=sys.stderr):
            doc = purchase_document(rng, rng.choice(catalogue), today=today)
            doc["purchased_on"] = (today - dt.timedelta(days=rng.randrange(5 * 365))).isoformat()
            doc["is_gift"] = rng.random() < 0.02
            doc["shared"] = rng.random() > 0.05
            if n == 10:  # the one far back that a search looks for
                doc["product_name"] = "Saffron Threads Rare"
                doc["purchased_on"] = (today - dt.timedelta(days=5 * 365 + 10)).isoformat()
            row = Purchase(owner_id=person.pk)
            store.row_fill(cat, row, keys.data, doc)
            rows.append(row)
            if len(rows) == 5000:
                Purchase.objects.bulk_create(rows)
                rows = []
        Purchase.objects.bulk_create(rows)
        with connection.cursor() as cursor:  # what autovacuum does soon after a large import
            cursor.execute("VACUUM ANALYZE personal_data_purchase")

        client = Client()
        response = client.post("/accounts/login/", {"username": person.email, "password": PASSWORD})
        if response.status_code != 302:
            sys.exit(f"benchmark failed: sign-in answered {response.status_code}")
        first = client.get("/data/purchases/").content.decode()
        deep = "/data/purchases/"
        for _ in range(20):  # twenty pages in, through the page links as a person would
            found = re.search(r'href="\?after=([^"]+)" rel="next"', client.get(deep).content.decode())
            if not found:
                sys.exit("benchmark failed: no older page")
            deep = f"/data/purchases/?after={found.group(1)}"
        month = today - dt.timedelta(days=400)
        merchant = re.search(r"<td>([^<]+)</td>\s*<td>[^<]*</td>\s*<td class=\"toggles\"", first)
        pages = {
            "newest page": "/data/purchases/",
            "page 21 (by the Older links)": deep,
            "one month": f"/data/purchases/?from={month.replace(day=1)}&to={month.replace(day=28)}",
            "hidden only": "/data/purchases/?shared=no",
            "gifts only": "/data/purchases/?gift=yes",
            "search, common merchant": f"/data/purchases/?merchant={merchant.group(1) if merchant else 'a'}",
            "search, one record far back (to the budget)": "/data/purchases/?q=saffron",
        }
        for name, url in pages.items():
            body = client.get(url).content.decode()
            if "Internal" in body or client.get(url).status_code != 200:
                sys.exit(f"benchmark failed: {name} did not render")
        timings: dict[str, list[float]] = {name: [] for name in pages}
        before: list[float] = []
        for round_number in tqdm(range(args.rounds), desc="rounds", file=sys.stderr):
            order = list(pages) if round_number % 2 == 0 else list(reversed(pages))
            for name in order:
                for _ in range(args.requests):
                    started = time.perf_counter()
                    response = client.get(pages[name])
                    timings[name].append((time.perf_counter() - started) * 1000)
                    if response.status_code != 200:
                        sys.exit(f"benchmark failed: {name} answered {response.status_code}")
            with keys_scope():
                keys_hold(person, keys)
                started = time.perf_counter()
                everything = records_for_owner(owner=person, category="purchases")
                Paginator(everything, 25).get_page(1)
                before.append((time.perf_counter() - started) * 1000)
        print(f"{args.purchases:,} purchases, GET /data/purchases/ (test client), {args.rounds} rounds")
        for name, values in timings.items():
            print(f"  {name:45s} {_spread(values)}")
        print(f"  {'before: open every record, then cut a page':45s} {_spread(before)}")
        print("target: list page p50 < 100 ms")
    finally:
        from django.db import connections

        connections.close_all()
        recreate(admin_url, database=BENCH_DB, drop_only=True)


if __name__ == "__main__":
    main()
