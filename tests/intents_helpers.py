"""Shared helpers of the intent tests: an intent's input, publishing one, subscribing an organisation."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.utils import timezone

from accounts.models import User
from accounts.services import account_upsert
from vendors.intents import intent_filters_set, intent_publish
from vendors.models import Intent, Membership, Organisation


def intent_data(**overrides: Any) -> dict[str, Any]:
    """A valid intent as the person's form would send it; override any field."""
    data: dict[str, Any] = {
        "kind": "clothing",
        "title": "Winter coat",
        "details": {"size": "M", "colour": "navy"},
        "price_min": "50",
        "price_max": "150.00",
        "currency": "EUR",
        "country": "DE",
        "postcode_prefix": "10",
        "ends_at": (timezone.now() + dt.timedelta(days=14)).isoformat(),
        "terms": "shared-intent",
    }
    return {**data, **overrides}


def publish(owner: User, **overrides: Any) -> Intent:
    return intent_publish(owner=owner, data=intent_data(**overrides))


def staff_of(organisation: Organisation) -> User:
    """A staff account of the organisation (its first, made on demand)."""
    membership = Membership.objects.filter(organisation=organisation).select_related("user").first()
    if membership is not None:
        return membership.user
    user = account_upsert(
        email=f"staff-{secrets.token_hex(4)}@org.example", password="x" * 20, role=User.Role.VENDOR_STAFF
    )[0]
    Membership.objects.create(user=user, organisation=organisation)
    return user


def subscribe(
    organisation: Organisation, kinds: tuple[str, ...] = ("clothing",), countries: tuple[str, ...] = ("DE",)
) -> None:
    intent_filters_set(organisation=organisation, kinds=kinds, countries=countries, by=staff_of(organisation))
