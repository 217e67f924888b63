"""Personas shared by every suite: alice and bob (people), an auditor, vendor staff."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from accounts.services import account_upsert, person_signup

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(db: Any) -> User:
    return person_signup(email="alice@example.com", password=PASSWORD, display_name="Alice Liddell")


@pytest.fixture
def bob(db: Any) -> User:
    return person_signup(email="bob@example.com", password=PASSWORD, display_name="Bob Builder")


@pytest.fixture
def auditor(db: Any) -> User:
    return account_upsert(email="auditor@example.com", password=PASSWORD, role=User.Role.AUDITOR)[0]


@pytest.fixture
def vendor_staff(db: Any) -> User:
    return account_upsert(email="staff@shop.example", password=PASSWORD, role=User.Role.VENDOR_STAFF)[0]


@pytest.fixture
def operator(db: Any) -> User:
    return User.objects.create_superuser(email="ops@example.com", password=PASSWORD)


def purchase_data(**overrides: Any) -> dict[str, Any]:
    """A valid purchase document; override any field."""
    data: dict[str, Any] = {
        "merchant": "Green Grocer",
        "product_name": "Crunchy Peanut Butter",
        "brand": "Nutty Farms",
        "gtin": "5012345001234",
        "quantity": 2,
        "unit_price": "3.49",
        "currency": "EUR",
        "lot": "L4471",
        "purchased_on": "2026-03-14",
        "notes": "for the pantry",
    }
    data.update(overrides)
    return data
