"""Reads of vendor organisations and apps."""

from __future__ import annotations

from typing import Any

from vendors.models import Organisation


def organisation_for_staff(*, user: Any) -> Organisation | None:
    """Return the organisation a vendor-staff account belongs to, if any."""
    return Organisation.objects.filter(members__user=user).first()
