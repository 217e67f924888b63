"""The demo data of `manage.py seed_demo`: people, their records, a vendor, an auditor.

Each run resets the demo passwords (fresh random ones) and prints them; records are only
created for a person whose store is empty, so re-running never duplicates anything.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction

from accounts.models import User
from accounts.services import account_upsert
from devtools.records import demo_records_seed
from devtools.vendor import demo_vendor_seed
from portal.services import person_upsert

DEMO_PEOPLE = [("alex@example.com", "Alex Morgan", "full"), ("sam@example.com", "Sam Lee", "small")]
DEMO_AUDITOR = "audit@example.com"


def demo_password() -> str:
    return "demo-" + secrets.token_urlsafe(9)


@transaction.atomic
def demo_seed() -> dict[str, Any]:
    """Create or refresh the demo accounts and data; return the logins."""
    people = []
    for email, name, scale in DEMO_PEOPLE:
        password = demo_password()
        person, _ = person_upsert(email=email, password=password, display_name=name)
        demo_records_seed(person=person, scale=scale)
        people.append({"email": email, "password": password})
    auditor_password = demo_password()
    account_upsert(
        email=DEMO_AUDITOR,
        password=auditor_password,
        role=User.Role.AUDITOR,
        display_name="Demo Auditor",
    )
    vendor = demo_vendor_seed()
    return {
        "people": people,
        "vendor_staff": vendor["vendor_staff"],
        "auditor": {"email": DEMO_AUDITOR, "password": auditor_password},
        "app": vendor["app"],
        "recall_client": vendor["recall_client"],
    }
