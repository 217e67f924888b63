"""Reads of vendor organisations and apps."""

from __future__ import annotations

from accounts.models import User
from vendors.models import Organisation


def organisation_for_staff(*, user: User) -> Organisation | None:
    """Return the organisation a vendor-staff account belongs to, if any."""
    return Organisation.objects.filter(members__user=user).first()
