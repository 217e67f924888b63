"""seed_demo: the demo accounts and realistic records, idempotent, fresh passwords each run."""

from __future__ import annotations

import io
import json
from typing import Any

from django.core.management import call_command

from accounts.models import User
from personal_data.selectors import category_counts, records_for_owner
from personal_data.validators import gtin_is_valid


def _seed() -> dict[str, Any]:
    out = io.StringIO()
    call_command("seed_demo", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_seed_demo_creates_the_documented_logins_and_records(db: Any) -> None:
    logins = _seed()
    assert [p["email"] for p in logins["people"]] == ["alex@example.com", "sam@example.com"]
    assert logins["auditor"]["email"] == "audit@example.com"
    for person in logins["people"]:
        assert User.objects.get(email=person["email"]).check_password(person["password"])
    alex = User.objects.get(email="alex@example.com")
    counts = category_counts(owner=alex)
    assert counts["purchases"] >= 40 and counts["closet"] == 15
    assert counts["appliances"] == 6 and counts["prescriptions"] == 3
    purchases = records_for_owner(owner=alex, category="purchases")
    assert all(gtin_is_valid(p["gtin"]) for p in purchases)
    assert sum(p["is_gift"] for p in purchases) >= 3
    assert sum(not p["shared"] for p in purchases) == 1
    sam = User.objects.get(email="sam@example.com")
    assert 0 < category_counts(owner=sam)["purchases"] < counts["purchases"]


def test_seed_demo_is_idempotent_and_resets_passwords(db: Any) -> None:
    first = _seed()
    alex = User.objects.get(email="alex@example.com")
    counts = category_counts(owner=alex)
    second = _seed()
    assert category_counts(owner=alex) == counts
    assert User.objects.count() == 3
    assert first["people"][0]["password"] != second["people"][0]["password"]
    alex.refresh_from_db()
    assert alex.check_password(second["people"][0]["password"])
    assert not alex.check_password(first["people"][0]["password"])
