"""The demo data of `manage.py seed_demo`: people, their records, a vendor, an auditor, and
alex's grant to the demo shop with its accesses and a recall alert.

Each run resets the demo passwords and client secrets (fresh random ones) and prints them;
records are only created for a person whose store is empty, and the grant and the recall only
once, so re-running never duplicates anything. The ledger is sealed at the end, so the first
checkpoint exists and the proofs on the activity pages work at once.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import User
from accounts.services import account_upsert
from audit.services import ledger_seal
from devtools.activity import demo_activity_seed
from devtools.records import demo_records_seed
from devtools.vendor import demo_vendor_seed
from personal_data.keys import WrongSecret, recovery_code_issued
from personal_data.services import person_erase
from portal.services import person_upsert
from vendors.models import Application

DEMO_PEOPLE = [("alex@example.com", "Alex Morgan", "full"), ("sam@example.com", "Sam Lee", "small")]
DEMO_AUDITOR = "audit@example.com"


def demo_password() -> str:
    return "demo-" + secrets.token_urlsafe(9)


def _codes_load(path: Path) -> dict[str, str]:
    try:
        codes = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in codes.items()} if isinstance(codes, dict) else {}


def _codes_save(path: Path, codes: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(codes, indent=2))
    path.chmod(0o600)


def _demo_person(email: str, password: str, name: str, codes: dict[str, str]) -> User:
    """The demo person with a fresh password. Their store is theirs, so resetting the password
    needs their recovery code (kept under var/ in development); without it the store is
    erased and made anew, and the demo records are seeded again."""
    try:
        person, _ = person_upsert(
            email=email, password=password, display_name=name, recovery_code=codes.get(email)
        )
    except WrongSecret:
        existing = User.objects.get(email=email)
        person_erase(person=existing)
        person, _ = person_upsert(email=email, password=password, display_name=name)
    code = recovery_code_issued(person)
    if code is not None:
        codes[email] = code
    return person


def demo_seed() -> dict[str, Any]:
    """Create or refresh the demo accounts and data, then seal the ledger; return the logins."""
    logins = _demo_seed()
    ledger_seal()  # after the commit: the sealer seals committed entries only
    return logins


@transaction.atomic
def _demo_seed() -> dict[str, Any]:
    people = []
    persons: list[User] = []
    path = Path(settings.VRM_DEMO_RECOVERY_FILE)
    codes = _codes_load(path)
    for email, name, scale in DEMO_PEOPLE:
        password = demo_password()
        person = _demo_person(email, password, name, codes)
        demo_records_seed(person=person, scale=scale)
        persons.append(person)
        people.append({"email": email, "password": password})
    _codes_save(path, codes)
    auditor_password = demo_password()
    account_upsert(
        email=DEMO_AUDITOR,
        password=auditor_password,
        role=User.Role.AUDITOR,
        display_name="Demo Auditor",
    )
    vendor = demo_vendor_seed()
    demo_activity_seed(
        person=persons[0],  # alex
        app=Application.objects.get(client_id=vendor["app"]["client_id"]),
        recall_client=Application.objects.get(client_id=vendor["recall_client"]["client_id"]),
    )
    return {
        "people": people,
        "vendor_staff": vendor["vendor_staff"],
        "auditor": {"email": DEMO_AUDITOR, "password": auditor_password},
        "app": vendor["app"],
        "recall_client": vendor["recall_client"],
    }


def demo_logins_text(logins: dict[str, Any], *, base_url: str | None) -> str:
    """The logins as `make run` prints them: where to log in, then one line per account."""
    login = f"{base_url}/accounts/login/" if base_url else "/accounts/login/"
    lines = [f"Demo logins (fresh on every seed_demo run). Log in at {login} as:"]
    for person in logins["people"]:
        lines.append(f"  person        {person['email']:<22} {person['password']}")
    staff = logins["vendor_staff"]
    lines.append(f"  vendor staff  {staff['email']:<22} {staff['password']}")
    auditor = logins["auditor"]
    lines.append(f"  auditor       {auditor['email']:<22} {auditor['password']}")
    for label in ("app", "recall_client"):
        lines.append(f"  {label}: {json.dumps(logins[label])}")
    if base_url:
        lines += [
            f"Person: {base_url}/dashboard/   Vendor: {base_url}/vendor/   Auditor: {base_url}/audit/",
            f"Vendor guide: {base_url}/docs/vendors/   API reference: {base_url}/api/docs/",
        ]
    return "\n".join(lines)
