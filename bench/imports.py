"""Benchmark the import of a 50,000-row purchases CSV: validation, then encrypt and store.

Run by hand against PostgreSQL; it creates (and afterwards drops) a database of its own,
`vrm_bench_import`, and uses ephemeral keys, so development data and keys are never touched:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/imports.py --rows 50000

It writes a realistic purchases CSV (varied merchants and products, GS1-valid GTINs of 8, 12
and 13 digits, prices, lots, gifts, notes; under the 10 MB limit) and times, for one person,
the steps the import page runs:

- `import_parse`: decode and validate every row (the "Check the file" button);
- `import_stage`: seal the validated plan under the person's key until they confirm;
- `import_confirm`: open it, encrypt every record and bulk-insert them in one transaction.

Target (issue 6): the whole import of 50,000 rows in under a minute. `--profile` runs the
steps under cProfile and prints where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import datetime as dt
import io
import os
import pstats
import random
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.privatedb import bench_environment, recreate  # noqa: E402

BENCH_DB = "vrm_bench_import"
TARGET_SECONDS = 60.0
T = TypeVar("T")

MERCHANTS = {
    "food": ["Green Grocer", "FreshMart", "Corner Deli", "Bio Markt", "The Organic Pantry"],
    "books": ["Corner Books", "Page Turner", "Readers' Nook"],
    "home": ["HomeMart", "Casa & Co", "Nordic Living"],
    "electronics": ["TechZone", "Gadget Hub", "ByteShop Online"],
    "sport": ["Sports Hub", "Trail & Peak"],
    "health": ["City Pharmacy", "Wellness Store"],
    "toys": ["Toy Planet", "Little Wonders"],
    "drinks": ["Wine Cellar", "Beer & Barrel"],
}
PRODUCTS = {
    "food": [
        ("Crunchy Peanut Butter 340 g", "Nutty Farms", "3.49"),
        ("Oat Milk 1 L", "Oatly", "2.19"),
        ("Sourdough Loaf", "Bakehouse", "3.80"),
        ("Free-range Eggs x12", "Happy Hens", "4.10"),
        ("Greek Yoghurt 500 g", "Fage", "3.25"),
        ("Basmati Rice 1 kg", "Tilda", "2.95"),
        ("Extra Virgin Olive Oil 750 ml", "Filippo Berio", "8.49"),
        ("Dark Chocolate 85 %", "Lindt", "2.79"),
    ],
    "books": [
        ("The Very Hungry Caterpillar", "Puffin", "7.99"),
        ("The Gruffalo", "Macmillan", "7.99"),
        ("A Brief History of Time", "Bantam", "12.50"),
        ("Sapiens", "Vintage", "10.99"),
    ],
    "home": [
        ("LED Bulb 9 W E27 (4 pack)", "Lumo", "11.99"),
        ("Dish Soap 500 ml", "Ecover", "2.75"),
        ("Bath Towel 70x140", "Linum", "19.90"),
        ("Cast Iron Pan 26 cm", "Le Creuset", "149.00"),
    ],
    "electronics": [
        ("USB-C Cable 2 m", "Anker", "12.99"),
        ("Wireless Earbuds", "Sony", "129.00"),
        ("Smart Plug", "TP-Link", "14.99"),
        ("AA Batteries (8 pack)", "Duracell", "9.49"),
    ],
    "sport": [
        ("Running Socks (3 pairs)", "Nike", "14.00"),
        ("Yoga Mat", "Manduka", "45.00"),
        ("Water Bottle 750 ml", "Klean Kanteen", "24.95"),
    ],
    "health": [
        ("Sunscreen SPF 50", "La Roche-Posay", "18.50"),
        ("Vitamin D3 1000 IU", "Solgar", "9.95"),
        ("Ibuprofen 200 mg x24", "Nurofen", "4.29"),
    ],
    "toys": [
        ("Wooden Train Set", "Brio", "39.90"),
        ("Jigsaw Puzzle 1000 pc", "Ravensburger", "16.99"),
        ("Building Bricks Starter Set", "LEGO", "29.99"),
    ],
    "drinks": [
        ("Rioja Reserva 2019", "Marqués de Riscal", "17.50"),
        ("Pale Ale 6 x 330 ml", "Brewdog", "9.99"),
        ("Sparkling Water 1.5 L", "San Pellegrino", "1.19"),
    ],
}
NOTES = ["", "", "", "", "", "", "for the pantry", "birthday present", "returned one, kept one", "on offer"]
COLUMNS = (
    "merchant",
    "product_name",
    "brand",
    "gtin",
    "sku",
    "category",
    "quantity",
    "unit_price",
    "currency",
    "lot",
    "purchased_on",
    "order_ref",
    "is_gift",
    "shared",
    "notes",
)


def _environment(database_url: str) -> str:
    return bench_environment(
        database_url,
        database=BENCH_DB,
        script="bench/imports.py",
        VRM_TASKS_BACKEND="immediate",
    )


def _recreate(admin_url: str, *, drop_only: bool = False) -> None:
    recreate(admin_url, database=BENCH_DB, drop_only=drop_only)


def purchases_csv(rows: int, *, seed: int = 6) -> bytes:
    """Return a realistic purchases CSV of `rows` data rows, every one of them valid."""
    from personal_data.validators import gtin_check_digit

    rng = random.Random(seed)  # noqa: S311
    today = dt.date.today()  # noqa: DTZ011 - a day's precision is all the dates need
    # A catalogue of GTINs per product, of the lengths shops print: EAN-13, UPC-A and EAN-8.
    catalogue: list[tuple[str, str, str, str, str]] = []
    for category, products in PRODUCTS.items():
        for name, brand, price in products:
            for variant in range(6):
                digits = rng.choice((12, 12, 12, 11, 7))  # body length: check digit makes 13, 12, 8
                body = "".join(str(rng.randint(0, 9)) for _ in range(digits))
                gtin = body + str(gtin_check_digit(body))
                size = "" if variant == 0 else f" ({variant + 1})"
                catalogue.append((category, f"{name}{size}", brand, gtin, price))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i in range(rows):
        category, name, brand, gtin, price = rng.choice(catalogue)
        day = today - dt.timedelta(days=rng.randint(1, 3650))
        gift = category == "toys" or (category == "books" and rng.random() < 0.3)
        writer.writerow(
            (
                rng.choice(MERCHANTS[category]),
                name,
                brand,
                gtin if rng.random() < 0.95 else "",
                f"SKU-{rng.randint(10000, 99999)}" if rng.random() < 0.5 else "",
                category,
                rng.choice((1, 1, 1, 1, 2, 2, 3, 6)),
                price,
                "EUR" if rng.random() < 0.9 else "GBP",
                f"L{rng.randint(1000, 99999)}" if category in ("food", "health", "drinks") else "",
                day.isoformat(),
                f"R-{day:%y%m%d}-{i:06d}",
                "true" if gift else "false",
                "false" if rng.random() < 0.05 else "true",
                rng.choice(NOTES),
            )
        )
    return out.getvalue().encode()


def _timed(label: str, rows: int, step: Callable[[], T], profile: cProfile.Profile | None) -> tuple[T, float]:
    started = time.perf_counter()
    if profile is not None:
        profile.enable()
    result = step()
    if profile is not None:
        profile.disable()
    seconds = time.perf_counter() - started
    print(f"{label:<52} {seconds:7.2f} s  {rows / seconds:>9,.0f} rows/s")
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--profile", action="store_true", help="print where the time goes (cProfile)")
    parser.add_argument("--keep", action="store_true", help=f"keep the {BENCH_DB} database")
    args = parser.parse_args()
    admin_url = _environment(os.environ.get("DATABASE_URL", ""))
    _recreate(admin_url)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from personal_data.selectors import category_counts
        from personal_data.services import import_confirm, import_stage
        from personal_data.transfer import MAX_BYTES, import_parse
        from portal.services import person_signup

        call_command("migrate", verbosity=0)
        person = person_signup(
            email="importer@example.com", password=secrets.token_urlsafe(), display_name="Bench"
        )

        started = time.perf_counter()
        raw = purchases_csv(args.rows)
        print(
            f"generated {args.rows:,} rows, {len(raw) / 1024 / 1024:.2f} MB "
            f"(limit {MAX_BYTES / 1024 / 1024:.0f} MB) in {time.perf_counter() - started:.1f} s"
        )
        if len(raw) > MAX_BYTES:
            sys.exit(f"the CSV is {len(raw):,} bytes, over the import limit")

        profile = cProfile.Profile() if args.profile else None
        plan, parse_s = _timed(
            "import_parse (decode, validate every row)",
            args.rows,
            lambda: import_parse(raw=raw, filename="purchases.csv", category="purchases"),
            profile,
        )
        if plan.problems:
            sys.exit(f"the generated file has problems, e.g. {plan.problems[:3]}")
        pending, stage_s = _timed(
            "import_stage (seal the plan until confirmed)",
            args.rows,
            lambda: import_stage(owner=person, plan=plan, filename="purchases.csv"),
            profile,
        )
        counts, confirm_s = _timed(
            "import_confirm (open, encrypt, bulk insert, 1 txn)",
            args.rows,
            lambda: import_confirm(owner=person, pending_id=pending.pk),
            profile,
        )
        total = parse_s + stage_s + confirm_s
        print(f"{'whole import':<52} {total:7.2f} s  {args.rows / total:>9,.0f} rows/s")
        stored = category_counts(owner=person)["purchases"]
        if counts != {"purchases": args.rows} or stored != args.rows:
            sys.exit(f"benchmark failed: imported {counts}, stored {stored}")
        verdict = "met" if total < TARGET_SECONDS else "MISSED"
        print(f"target: whole import under {TARGET_SECONDS:.0f} s: {verdict}")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('personal_data_purchase'))")
            print(f"personal_data_purchase on disk: {cursor.fetchone()[0]}")
        if profile is not None:
            stream = io.StringIO()
            stats = pstats.Stats(profile, stream=stream).strip_dirs().sort_stats("cumulative")
            stats.print_stats(30)
            stats.sort_stats("tottime").print_stats(20)
            print(stream.getvalue())
        connection.close()
        if total >= TARGET_SECONDS:
            sys.exit(1)
    finally:
        if not args.keep:
            _recreate(admin_url, drop_only=True)


if __name__ == "__main__":
    main()
