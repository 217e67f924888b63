"""Synthetic people with many purchases, for load tests and benchmarks (`manage.py seed_scale`).

Speed comes from bulk inserts, not from shortcuts in the crypto: every person gets a real data
key wrapped by the master key ring, every purchase is sealed by `store.row_fill` (the same code
path `record_create` uses) with real blind indexes, so the normal selectors and the API read
these rows like any other.

What is skipped on purpose is the DRF schema on every document: validating a million documents
through serializers would dominate the run. The generator builds documents that are valid by
construction, in exactly the shape `store.validate(PurchaseSchema, ...)` returns; the first
document of each person is still checked against the schema during the run, and the tests check
a sample round-trips through the selectors and the schema.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from django.contrib.auth.hashers import make_password
from django.db import connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from personal_data import store
from personal_data.categories import category_get
from personal_data.keys import keys_hold, person_key_new
from personal_data.models import PersonKey, Purchase
from personal_data.store import Document
from personal_data.validators import gtin_check_digit

EMAIL_DOMAIN = "example.test"
PREFIX = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")
GIFT_RATE = 0.05
HIDDEN_RATE = 0.03
HISTORY_DAYS = 730

# (merchant, product categories it sells)
_MERCHANTS = [
    ("Green Grocer", ("food", "drinks")),
    ("FreshMart", ("food", "drinks", "home")),
    ("Daily Basket", ("food", "home", "health")),
    ("Corner Books", ("books",)),
    ("Page Turner", ("books", "toys")),
    ("HomeMart", ("home", "tools")),
    ("DIY Depot", ("tools", "home")),
    ("Sports Hub", ("sport", "clothing")),
    ("Trail & Track", ("sport", "clothing")),
    ("City Pharmacy", ("health",)),
    ("Wellness Corner", ("health", "food")),
    ("TechZone", ("electronics",)),
    ("Pixel Store", ("electronics", "toys")),
    ("Toy Planet", ("toys",)),
    ("Wine Cellar", ("drinks",)),
    ("Style Street", ("clothing",)),
    ("Urban Threads", ("clothing", "sport")),
    ("Pet Palace", ("pets",)),
    ("Garden Centre", ("garden", "tools")),
    ("Online Bazaar", ("electronics", "books", "home", "toys", "clothing")),
]

# category -> (brands, product nouns, variants, price range in euro, share of rows with a lot number)
_CATALOGUE: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[int, int], float]] = {
    "food": (
        ("Nutty Farms", "Bakehouse", "Happy Hens", "Oatly", "Alpine Dairy", "Sunny Fields", "Ocean Catch"),
        ("Peanut Butter", "Oat Milk", "Sourdough Loaf", "Free-range Eggs", "Greek Yoghurt", "Pasta", "Tuna"),
        ("340 g", "1 L", "500 g", "x12", "250 g", "family pack", "organic"),
        (1, 9),
        0.8,
    ),
    "drinks": (
        ("Marqués de Riscal", "Brewdog", "Innocent", "Lavazza", "Twinings"),
        ("Rioja Reserva", "Pale Ale", "Orange Juice", "Espresso Beans", "Earl Grey Tea"),
        ("75 cl", "4 x 33 cl", "1 L", "1 kg", "50 bags"),
        (2, 30),
        0.6,
    ),
    "home": (
        ("Ecover", "Lumo", "IKEA", "Joseph Joseph", "Tefal"),
        ("Dish Soap", "LED Bulb", "Storage Box", "Chopping Board", "Frying Pan"),
        ("500 ml", "4 pack", "large", "set of 3", "28 cm"),
        (2, 60),
        0.1,
    ),
    "tools": (
        ("Bosch", "Makita", "Stanley", "DeWalt"),
        ("Cordless Drill", "Screwdriver Set", "Tape Measure", "Spirit Level", "Jigsaw"),
        ("18 V", "32 pc", "8 m", "60 cm", "650 W"),
        (8, 180),
        0.0,
    ),
    "books": (
        ("Puffin", "Penguin", "HarperCollins", "Macmillan", "Bantam"),
        ("Picture Book", "Crime Novel", "Cookbook", "Travel Guide", "Biography"),
        ("paperback", "hardback", "2nd edition", "illustrated", "large print"),
        (6, 35),
        0.0,
    ),
    "toys": (
        ("Brio", "Ravensburger", "LEGO", "Playmobil", "Hape"),
        ("Wooden Train Set", "Jigsaw Puzzle", "Building Set", "Doll House", "Board Game"),
        ("starter", "1000 pc", "city edition", "deluxe", "family"),
        (10, 120),
        0.2,
    ),
    "sport": (
        ("Nike", "Manduka", "Salomon", "Decathlon", "Adidas"),
        ("Running Socks", "Yoga Mat", "Water Bottle", "Resistance Bands", "Headlamp"),
        ("3 pairs", "4 mm", "750 ml", "set", "300 lm"),
        (5, 90),
        0.0,
    ),
    "clothing": (
        ("Uniqlo", "Levi's", "COS", "Patagonia", "Veja"),
        ("T-shirt", "Jeans", "Jumper", "Rain Jacket", "Sneakers"),
        ("size S", "size M", "size L", "32/32", "EU 42"),
        (10, 180),
        0.0,
    ),
    "health": (
        ("La Roche-Posay", "Solgar", "Nurofen", "Oral-B", "Bepanthen"),
        ("Sunscreen SPF 50", "Vitamin D3", "Ibuprofen 200 mg", "Toothbrush Heads", "Healing Ointment"),
        ("50 ml", "90 caps", "24 tablets", "4 pack", "30 g"),
        (3, 40),
        0.9,
    ),
    "electronics": (
        ("Anker", "Sony", "Logitech", "Philips", "Samsung"),
        ("USB-C Cable", "Wireless Earbuds", "Keyboard", "Electric Toothbrush", "microSD Card"),
        ("2 m", "noise cancelling", "compact", "rechargeable", "128 GB"),
        (9, 250),
        0.3,
    ),
    "pets": (
        ("Purina", "Whiskas", "Kong", "Trixie"),
        ("Dry Dog Food", "Cat Pouches", "Chew Toy", "Cat Litter"),
        ("3 kg", "12 x 85 g", "medium", "10 L"),
        (3, 45),
        0.7,
    ),
    "garden": (
        ("Gardena", "Fiskars", "Westland", "Miracle-Gro"),
        ("Hose Reel", "Pruning Shears", "Compost", "Plant Food"),
        ("20 m", "bypass", "50 L", "1 L"),
        (4, 70),
        0.2,
    ),
}

_NOTES = ("", "", "", "", "", "", "", "", "for the holidays", "bought on sale", "replacement")


@dataclass(frozen=True)
class Product:
    merchant: str
    product_name: str
    brand: str
    gtin: str
    category: str
    unit_price: str
    lot_share: float


def _gtin13(rng: random.Random) -> str:
    # GS1 prefixes 400-440 (Germany) and 500-509 (UK) and 870-879 (NL): plausible EAN-13s.
    prefix = rng.choice(("40", "50", "87")) + str(rng.randint(0, 9))
    body = prefix + f"{rng.randint(0, 10**8 - 1):08d}"[:8] + str(rng.randint(0, 9))
    return body + str(gtin_check_digit(body))


@lru_cache(maxsize=4)
def catalogue_build(*, seed: str, size: int = 2000) -> tuple[Product, ...]:
    """Return a deterministic catalogue of products sold by the synthetic merchants."""
    rng = random.Random(f"vrm-scale-catalogue-{seed}")  # noqa: S311 (synthetic data, not secrets)
    products: list[Product] = []
    seen: set[str] = set()
    while len(products) < size:
        merchant, categories = rng.choice(_MERCHANTS)
        category = rng.choice(categories)
        brands, nouns, variants, (low, high), lot_share = _CATALOGUE[category]
        gtin = _gtin13(rng)
        if gtin in seen:
            continue
        seen.add(gtin)
        price = rng.uniform(low, high)
        products.append(
            Product(
                merchant=merchant,
                product_name=f"{rng.choice(nouns)} {rng.choice(variants)}",
                brand=rng.choice(brands),
                gtin=gtin,
                category=category,
                unit_price=f"{price:.2f}",
                lot_share=lot_share,
            )
        )
    return tuple(products)


def purchase_document(rng: random.Random, product: Product, *, today: dt.date) -> Document:
    """Return a purchase document valid by construction, shaped as `store.validate` returns it.

    Every field of PurchaseSchema is present (with its default where unused), dates are ISO
    strings within the last two years, the price has two decimals and the GTIN a valid check
    digit, so it passes the schema unchanged; `source_vendor` is what `record_create` adds.
    """
    # Recent months are busier than old ones (a person's history fills in over time).
    age = int(HISTORY_DAYS * rng.random() ** 1.3)
    day = today - dt.timedelta(days=age)
    has_lot = rng.random() < product.lot_share
    return {
        "merchant": product.merchant,
        "product_name": product.product_name,
        "brand": product.brand,
        "gtin": product.gtin,
        "sku": "",
        "category": product.category,
        "quantity": 1 if rng.random() < 0.8 else rng.randint(2, 6),
        "unit_price": product.unit_price,
        "currency": "EUR",
        "lot": f"L{rng.randint(1000, 99999)}" if has_lot else "",
        "purchased_on": day.isoformat(),
        "order_ref": f"{product.merchant[:3].upper()}-{day:%y%m%d}-{rng.randint(1000, 9999)}",
        "is_gift": rng.random() < GIFT_RATE,
        "shared": rng.random() >= HIDDEN_RATE,
        "notes": rng.choice(_NOTES),
        "source_vendor": "",
    }


def scale_email(prefix: str, number: int) -> str:
    return f"{prefix}-{number:06d}@{EMAIL_DOMAIN}"


@dataclass
class ScaleReport:
    people_created: int = 0
    people_skipped: int = 0
    purchases_created: int = 0
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.purchases_created / self.seconds if self.seconds else 0.0


def _chunks(numbers: range, size: int) -> Iterator[range]:
    for start in range(numbers.start, numbers.stop, size):
        yield range(start, min(start + size, numbers.stop))


def scale_seed(
    *,
    people: int,
    purchases: int,
    prefix: str = "scale",
    batch_size: int = 5000,
    workers: int = 1,
    on_progress: Callable[[int], None] | None = None,
) -> ScaleReport:
    """Create synthetic people, each with a data key and `purchases` sealed purchase records.

    People are numbered from 0; a person whose e-mail already exists is skipped with their
    records, so re-running never duplicates and a larger `people` extends an earlier run.
    Each chunk of people commits together with their records (about `batch_size` rows), so an
    interrupted run leaves only complete people behind. `workers` > 1 seeds chunks in forked
    processes (PostgreSQL; the work is CPU-bound in Python). `on_progress` gets rows done.
    """
    if not PREFIX.fullmatch(prefix):
        raise ValueError("prefix must be 1-31 lower-case letters, digits or '-', starting alphanumeric")
    if people < 0 or purchases < 0 or batch_size < 1 or workers < 1:
        raise ValueError("people and purchases must be >= 0, batch_size and workers >= 1")
    started = time.perf_counter()
    report = ScaleReport()
    people_per_chunk = max(1, batch_size // max(1, purchases))
    jobs = [(c.start, c.stop, purchases, prefix) for c in _chunks(range(people), people_per_chunk)]
    if workers == 1:
        results: Iterator[tuple[int, int, int]] = map(_seed_job, jobs)
        _collect(report, results, purchases, on_progress)
    else:
        # Forked children must not share the parent's database connection.
        connections.close_all()
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            _collect(report, pool.imap_unordered(_seed_job, jobs), purchases, on_progress)
    report.seconds = time.perf_counter() - started
    return report


def _collect(
    report: ScaleReport,
    results: Iterator[tuple[int, int, int]],
    purchases: int,
    on_progress: Callable[[int], None] | None,
) -> None:
    for size, created, rows in results:
        report.people_created += created
        report.people_skipped += size - created
        report.purchases_created += rows
        if on_progress:
            on_progress(size * purchases)


def _seed_job(job: tuple[int, int, int, str]) -> tuple[int, int, int]:
    start, stop, purchases, prefix = job
    created, rows = _seed_chunk(numbers=range(start, stop), purchases=purchases, prefix=prefix)
    return stop - start, created, rows


# The password of synthetic person 0 (development and benchmark data only; nobody real).
SCALE_FIRST_PASSWORD = "scale-person-0-only-for-benchmarks"  # noqa: S105


@transaction.atomic
def _seed_chunk(*, numbers: range, purchases: int, prefix: str) -> tuple[int, int]:
    catalogue = catalogue_build(seed=prefix)
    emails = {n: scale_email(prefix, n) for n in numbers}
    existing = set(User.objects.filter(email__in=emails.values()).values_list("email", flat=True))
    todo = [n for n in numbers if emails[n] not in existing]
    if not todo:
        return 0, 0
    now = timezone.now()
    today = now.date()
    users = [
        User(
            email=emails[n],
            display_name=f"Scale Person {n:06d}",
            role=User.Role.PERSON,
            # Synthetic people never log in (an unusable password, and no Argon2 cost per person),
            # except the first, as whom benchmarks sign in to grant (SCALE_FIRST_PASSWORD).
            password=make_password(SCALE_FIRST_PASSWORD if n == 0 else None),
            date_joined=now,
        )
        for n in todo
    ]
    User.objects.bulk_create(users)
    # Person-held keys, wrapped by a recovery code that is thrown away; only the first person's
    # are also wrapped by a password. The opened keys are held for the rest of the caller's run.
    made = [
        person_key_new(user.pk, password=SCALE_FIRST_PASSWORD if n == 0 else None)
        for n, user in zip(todo, users, strict=True)
    ]
    PersonKey.objects.bulk_create([person_key for person_key, _, _ in made])
    for user, (_, _, opened) in zip(users, made, strict=True):
        keys_hold(user, opened)
    keys = [opened for _, _, opened in made]

    cat = category_get("purchases")
    rows: list[Purchase] = []
    for n, user, opened in zip(todo, users, keys, strict=True):
        rng = random.Random(f"vrm-scale-{prefix}-{n}")  # noqa: S311 (synthetic data, not secrets)
        data_key = opened.data
        for i in range(purchases):
            doc = purchase_document(rng, rng.choice(catalogue), today=today)
            if i == 0:
                _check_valid(doc)
            # Distinct storage times, a minute apart, as records entered one by one have: with
            # one time for all, every row of a page would share the API's cursor position.
            stored = now - dt.timedelta(minutes=purchases - i)
            row = Purchase(
                owner_id=user.pk, source=Purchase.Source.IMPORT, created_at=stored, updated_at=stored
            )
            store.row_fill(cat, row, data_key, doc)
            rows.append(row)
    Purchase.objects.bulk_create(rows, batch_size=5000)
    return len(users), len(rows)


def _check_valid(doc: Document) -> None:
    """Guard the by-construction promise: the document must come out of the schema unchanged."""
    content = {k: v for k, v in doc.items() if k != "source_vendor"}
    validated = store.validate(category_get("purchases").schema, content)
    if validated != content:
        changed = sorted(k for k in content if validated.get(k) != content[k])
        raise AssertionError(f"generated purchase is not in canonical form: {changed}")


def scale_people(*, prefix: str = "scale") -> QuerySet[User]:
    """Return the synthetic people of a prefix, in number order."""
    pattern = rf"^{re.escape(prefix)}-[0-9]{{6,}}@{re.escape(EMAIL_DOMAIN)}$"
    return User.objects.filter(email__regex=pattern).order_by("email")
