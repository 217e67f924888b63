"""Realistic demo records for the demo people (deterministic, dated relative to today)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from personal_data.selectors import category_counts
from personal_data.services import preferences_update, record_create
from personal_data.validators import gtin_check_digit


def make_gtin(body: str) -> str:
    """Return body followed by its GS1 check digit."""
    return body + str(gtin_check_digit(body))


# (merchant, product, brand, category, GTIN body without check digit, price, currency)
_PRODUCTS = [
    ("Green Grocer", "Crunchy Peanut Butter 340 g", "Nutty Farms", "food", "501234500123", "3.49"),
    ("Green Grocer", "Oat Milk 1 L", "Oatly", "food", "739004400150", "2.19"),
    ("Green Grocer", "Sourdough Loaf", "Bakehouse", "food", "501234500789", "3.80"),
    ("Green Grocer", "Free-range Eggs x12", "Happy Hens", "food", "501234500456", "4.10"),
    ("Corner Books", "The Very Hungry Caterpillar", "Puffin", "books", "978014056932", "7.99"),
    ("Corner Books", "Where the Wild Things Are", "HarperCollins", "books", "978009940839", "8.99"),
    ("Corner Books", "The Gruffalo", "Macmillan", "books", "978033371093", "7.99"),
    ("Corner Books", "A Brief History of Time", "Bantam", "books", "978055338016", "12.50"),
    ("HomeMart", "LED Bulb 9 W E27 (4 pack)", "Lumo", "home", "871869973425", "11.99"),
    ("HomeMart", "Cordless Drill 18 V", "Bosch", "tools", "316532612345", "89.00"),
    ("HomeMart", "Dish Soap 500 ml", "Ecover", "home", "541211420123", "2.75"),
    ("Sports Hub", "Running Socks (3 pairs)", "Nike", "sport", "088870712345", "14.00"),
    ("Sports Hub", "Yoga Mat", "Manduka", "sport", "081223601234", "45.00"),
    ("City Pharmacy", "Sunscreen SPF 50", "La Roche-Posay", "health", "333787590123", "18.50"),
    ("City Pharmacy", "Vitamin D3 1000 IU", "Solgar", "health", "003313400123", "9.95"),
    ("TechZone", "USB-C Cable 2 m", "Anker", "electronics", "084855900123", "12.99"),
    ("TechZone", "Wireless Earbuds", "Sony", "electronics", "454873512345", "129.00"),
    ("Toy Planet", "Wooden Train Set", "Brio", "toys", "731691900123", "39.90"),
    ("Toy Planet", "Jigsaw Puzzle 1000 pc", "Ravensburger", "toys", "400556712345", "16.99"),
    ("Wine Cellar", "Rioja Reserva 2019", "Marqués de Riscal", "drinks", "841023400123", "17.50"),
]

_CLOSET = [
    ("top", "White oxford shirt", "Uniqlo", "M", "white", "cotton", 5),
    ("top", "Navy crew-neck jumper", "COS", "M", "navy", "merino wool", 4),
    ("top", "Striped breton top", "Saint James", "M", "blue", "cotton", 5),
    ("top", "Grey hoodie", "Patagonia", "L", "grey", "organic cotton", 3),
    ("bottom", "Dark selvedge jeans", "Levi's", "32/32", "indigo", "denim", 5),
    ("bottom", "Beige chinos", "J.Crew", "32", "beige", "cotton", 4),
    ("bottom", "Black running tights", "Nike", "M", "black", "polyester", 3),
    ("dress", "Green summer dress", "Mango", "M", "green", "linen", 4),
    ("outerwear", "Waterproof shell jacket", "Arc'teryx", "M", "orange", "Gore-Tex", 5),
    ("outerwear", "Camel wool coat", "Massimo Dutti", "M", "camel", "wool", 4),
    ("shoes", "White leather sneakers", "Veja", "42", "white", "leather", 5),
    ("shoes", "Trail running shoes", "Salomon", "42", "red", "mesh", 4),
    ("shoes", "Chelsea boots", "Blundstone", "42", "brown", "leather", 2),
    ("accessory", "Wool scarf", "Acne Studios", "one size", "grey", "wool", 4),
    ("accessory", "Leather belt", "Tanner", "90", "brown", "leather", None),
]

_APPLIANCES = [
    ("fridge", "Bosch", "KGN39VIEA", "501234599017", 1500, 165, "E", "kitchen"),
    ("washer", "Miele", "WWD320", "401483300123", 900, 105, "A", "utility room"),
    ("dishwasher", "Siemens", "SN23HI60AE", "424200212345", 1100, 237, "D", "kitchen"),
    ("tv", "LG", "OLED55C3", "880609800123", 700, 120, "G", "living room"),
    ("water_heater", "Vaillant", "eloSTOR VEH 80", "402460000123", 2900, 1300, "C", "bathroom"),
    ("computer", "Lenovo", "ThinkPad T14", "019641712345", 500, 30, "", "study"),
]

_PRESCRIPTIONS = [
    (
        "Atorvastatin",
        "617312",
        "20 mg",
        "tablet",
        "Take one tablet each evening.",
        "Dr. Maria Jensen",
        "City Pharmacy",
        30,
        30,
        4,
    ),
    (
        "Lisinopril",
        "314076",
        "10 mg",
        "tablet",
        "Take one tablet each morning.",
        "Dr. Maria Jensen",
        "City Pharmacy",
        30,
        30,
        2,
    ),
    (
        "Salbutamol inhaler",
        "245314",
        "100 mcg/dose",
        "inhaler",
        "Two puffs when needed for breathlessness.",
        "Dr. Ahmed Khan",
        "City Pharmacy",
        1,
        60,
        1,
    ),
]


def _purchases(rng: random.Random, today: dt.date, count: int) -> list[dict[str, Any]]:
    records = []
    for i in range(count):
        merchant, product, brand, category, body, price = _PRODUCTS[i % len(_PRODUCTS)]
        day = today - dt.timedelta(days=rng.randint(1, 720))
        records.append(
            {
                "merchant": merchant,
                "product_name": product,
                "brand": brand,
                "gtin": make_gtin(body),
                "category": category,
                "quantity": rng.choice([1, 1, 1, 2]),
                "unit_price": price,
                "currency": "EUR",
                "lot": f"L{rng.randint(1000, 9999)}" if category == "food" else "",
                "purchased_on": day.isoformat(),
                "order_ref": f"R-{day:%y%m%d}-{rng.randint(100, 999)}",
                # Toys and books for others are the realistic gifts.
                "is_gift": category in {"toys"} or (category == "books" and i % 3 == 0),
            }
        )
    records[-1]["shared"] = False
    records[-1]["notes"] = "Private: a surprise for a friend."
    return records


@transaction.atomic
def demo_records_seed(*, person: User, scale: str = "full") -> dict[str, int]:
    """Give a demo person realistic records in every category, unless they already have some."""
    counts = category_counts(owner=person)
    if any(counts.values()):
        return counts
    rng = random.Random(f"vrm-demo-{person.email}")  # noqa: S311
    today = timezone.now().date()
    small = scale != "full"
    for doc in _purchases(rng, today, 12 if small else 44):
        record_create(owner=person, category="purchases", data=doc)
    for kind, name, brand, size, color, material, rating in _CLOSET[: 5 if small else 15]:
        record_create(
            owner=person,
            category="closet",
            data={
                "kind": kind,
                "name": name,
                "brand": brand,
                "size": size,
                "color": color,
                "material": material,
                "rating": rating,
                "acquired_on": (today - dt.timedelta(days=rng.randint(30, 1500))).isoformat(),
                "status": "donated" if name == "Chelsea boots" else "owned",
            },
        )
    for kind, brand, model, body, age, kwh, label, room in _APPLIANCES[: 2 if small else 6]:
        bought = today - dt.timedelta(days=age)
        record_create(
            owner=person,
            category="appliances",
            data={
                "kind": kind,
                "brand": brand,
                "model_number": model,
                "serial_number": f"SN{rng.randint(10**7, 10**8 - 1)}",
                "gtin": make_gtin(body),
                "purchased_on": bought.isoformat(),
                # The dishwasher's warranty ends within 60 days, to show the reminder marker.
                "warranty_until": (
                    bought + dt.timedelta(days=1140 if kind == "dishwasher" else 730)
                ).isoformat(),
                "energy_kwh_per_year": kwh,
                "energy_label": label,
                "location": room,
            },
        )
    for (
        med,
        rxnorm,
        strength,
        form,
        directions,
        prescriber,
        pharmacy,
        qty,
        days,
        refills,
    ) in _PRESCRIPTIONS[: 1 if small else 3]:
        filled = today - dt.timedelta(days=rng.randint(3, 25))
        record_create(
            owner=person,
            category="prescriptions",
            data={
                "medication": med,
                "rxnorm": rxnorm,
                "strength": strength,
                "form": form,
                "directions": directions,
                "prescriber": prescriber,
                "pharmacy": pharmacy,
                "prescribed_on": (filled - dt.timedelta(days=90)).isoformat(),
                "quantity": qty,
                "days_supply": days,
                "refills_remaining": refills,
                "last_filled_on": filled.isoformat(),
            },
        )
    preferences_update(
        owner=person,
        data={
            "dietary": ["no_red_meat"] if not small else ["vegetarian"],
            "allergies": ["peanuts"] if not small else [],
            "sizes": {"shirt": "M", "trousers": "32/32", "shoes": "EU 42"},
            "brands_liked": ["Patagonia", "Veja"],
            "brands_avoided": ["FastFashionCo"],
            "contact": {"email": True, "safety_alerts_only": False},
        },
    )
    return category_counts(owner=person)
