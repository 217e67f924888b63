"""seed_demo: the demo accounts and realistic records, idempotent, fresh passwords each run."""

from __future__ import annotations

import io
import json
from typing import Any

from django.contrib.auth.hashers import check_password
from django.core.management import call_command

from accounts.models import User
from consent.scopes import PERSON_SCOPES
from personal_data.selectors import category_counts, records_for_owner
from personal_data.validators import gtin_is_valid
from vendors.models import Application, Organisation


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
    assert User.objects.count() == 4
    assert first["people"][0]["password"] != second["people"][0]["password"]
    alex.refresh_from_db()
    assert alex.check_password(second["people"][0]["password"])
    assert not alex.check_password(first["people"][0]["password"])


def test_seed_demo_json_has_exactly_the_documented_shape(db: Any) -> None:
    logins = _seed()
    # INTERFACES.md §1, key for key.
    assert set(logins) == {"people", "vendor_staff", "auditor", "app", "recall_client"}
    assert all(set(p) == {"email", "password"} for p in logins["people"])
    assert set(logins["vendor_staff"]) == {"email", "password"} == set(logins["auditor"])
    assert set(logins["app"]) == {"client_id", "client_secret", "redirect_uri", "scopes"}
    assert set(logins["recall_client"]) == {"client_id", "client_secret"}
    assert logins["vendor_staff"]["email"] == "shop@example.com"
    staff = User.objects.get(email="shop@example.com")
    assert staff.role == User.Role.VENDOR_STAFF and staff.check_password(logins["vendor_staff"]["password"])
    assert logins["app"]["redirect_uri"] == "http://127.0.0.1:8765/callback"
    assert logins["app"]["scopes"] == list(PERSON_SCOPES)
    app = Application.objects.get(client_id=logins["app"]["client_id"])
    assert app.organisation.name == "Demo Shop" and app.organisation.verified
    assert app.client_type == "confidential" and app.authorization_grant_type == "authorization-code"
    assert check_password(logins["app"]["client_secret"], app.client_secret)
    recalls = Application.objects.get(client_id=logins["recall_client"]["client_id"])
    assert recalls.authorization_grant_type == "client-credentials" and recalls.scopes == ["recalls:publish"]
    assert check_password(logins["recall_client"]["client_secret"], recalls.client_secret)


def test_seed_demo_keeps_client_ids_and_rotates_client_secrets(db: Any) -> None:
    first = _seed()
    second = _seed()
    assert Organisation.objects.count() == 1 and Application.objects.count() == 2
    for key in ("app", "recall_client"):
        assert first[key]["client_id"] == second[key]["client_id"]
        assert first[key]["client_secret"] != second[key]["client_secret"]
        stored = Application.objects.get(client_id=second[key]["client_id"]).client_secret
        assert check_password(second[key]["client_secret"], stored)
        assert not check_password(first[key]["client_secret"], stored)
    staff = User.objects.get(email="shop@example.com")
    assert staff.check_password(second["vendor_staff"]["password"])
    assert not staff.check_password(first["vendor_staff"]["password"])


def test_seed_demo_prints_every_login(db: Any) -> None:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    for email in ("alex@example.com", "sam@example.com", "shop@example.com", "audit@example.com"):
        assert email in text
    assert "client_secret" in text and "recall_client" in text
