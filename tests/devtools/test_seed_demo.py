"""seed_demo: the demo accounts and realistic records, idempotent, fresh passwords each run."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from django.contrib.auth.hashers import check_password
from django.core.management import call_command

from accounts.models import User
from audit.models import LedgerEntry
from audit.selectors import checkpoint_latest
from consent.models import Grant
from consent.scopes import PERSON_SCOPES, SENSITIVE_SCOPES
from consent.selectors import grants_live_for_person
from devtools.management.commands.seed_demo import Command as SeedDemo
from devtools.management.commands.serve_demo import Command as ServeDemo
from personal_data.selectors import category_counts, records_for_owner
from personal_data.validators import gtin_is_valid
from vendors.alerts import alerts_for_person
from vendors.models import Application, Organisation, Recall


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


def test_seed_demo_gives_alex_a_grant_accesses_and_an_alert_and_seals_the_ledger(db: Any) -> None:
    logins = _seed()
    alex = User.objects.get(email="alex@example.com")
    app = Application.objects.get(client_id=logins["app"]["client_id"])
    grants = grants_live_for_person(person=alex)
    assert [g.application_id for g in grants] == [app.pk]
    assert not set(grants[0].scopes) & set(SENSITIVE_SCOPES)
    accesses = LedgerEntry.objects.filter(grant_id=str(grants[0].pk), kind__startswith="access.")
    assert accesses.filter(outcome="allowed").count() >= 3 and accesses.filter(outcome="denied").count() == 1
    assert alerts_for_person(person=alex).count() == 1
    checkpoint = checkpoint_latest()
    assert checkpoint is not None and checkpoint.tree_size == LedgerEntry.objects.count()

    _seed()  # again: nothing new but the fresh secrets' ledger entries, sealed too
    assert len(grants_live_for_person(person=alex)) == 1 and Grant.objects.filter(person=alex).count() == 1
    assert alerts_for_person(person=alex).count() == 1 and Recall.objects.count() == 1
    assert LedgerEntry.objects.filter(kind__startswith="access.").count() == accesses.count()
    checkpoint = checkpoint_latest()
    assert checkpoint is not None and checkpoint.tree_size == LedgerEntry.objects.count()


def test_seed_demo_warns_that_it_resets_the_passwords(db: Any) -> None:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "RESETS the passwords" in out.getvalue()
    assert "RESETS the demo accounts' passwords" in SeedDemo.help


def test_make_run_prints_the_logins_last_with_the_full_url(db: Any, tmp_path: Path) -> None:
    saved = tmp_path / "logins.json"
    out = io.StringIO()
    call_command("seed_demo", "--save", str(saved), stdout=out)
    logins = json.loads(saved.read_text())
    assert logins["people"][0]["password"] not in out.getvalue()  # kept for after the banner
    assert "RESETS" in out.getvalue() and saved.stat().st_mode & 0o777 == 0o600

    server = ServeDemo(stdout=io.StringIO())
    server.logins_file = saved
    server.addr, server._raw_ipv6 = "127.0.0.1", False  # type: ignore[attr-defined]  # set by handle()
    server.on_bind(9000)
    text = server.stdout._out.getvalue()  # type: ignore[attr-defined]
    banner = text.index("Starting development server at http://127.0.0.1:9000/")
    login = text.index("Log in at http://127.0.0.1:9000/accounts/login/")
    assert banner < login
    tail = text[login:]
    for person in logins["people"]:
        assert f"{person['email']:<22} {person['password']}" in tail
    assert logins["vendor_staff"]["password"] in tail and logins["auditor"]["password"] in tail
    assert "http://127.0.0.1:9000/vendor/" in tail and "http://127.0.0.1:9000/docs/vendors/" in tail
