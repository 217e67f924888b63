"""Reads of vendor organisations and apps."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterable

from accounts.models import User
from vendors.models import Application, Organisation, organisation_name_key


def applications_by_client_id(client_ids: Iterable[str]) -> dict[str, Application]:
    """Return the apps with these client ids, with their organisations, by client id."""
    rows = Application.objects.select_related("organisation").filter(client_id__in=set(client_ids))
    return {app.client_id: app for app in rows}


def organisation_for_staff(*, user: User) -> Organisation | None:
    """Return the organisation a vendor-staff account belongs to, if any."""
    return Organisation.objects.filter(members__user=user).first()


def organisation_name_problem(*, name: str, exclude_pk: uuid.UUID | None = None) -> str | None:
    """Say why an organisation cannot take this name, or None.

    Names are compared by their key (organisation_name_key): case, spacing, full-width letters and
    invisible characters do not make a name new. The database's unique constraint backs this up.
    A name needs a letter, digit, punctuation mark or symbol that shows (not only invisible or
    combining characters), and no control characters (a tab or a terminal escape is not part
    of anyone's name, and would show differently in each place the name appears).
    """
    key = organisation_name_key(name)
    if not any(unicodedata.category(c)[0] in "LNPS" for c in key):
        return "Give your organisation's name."
    taken = Organisation.objects.filter(name_key=key)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        return (
            "An organisation with this name (or one that differs only in capitals, spaces or "
            "look-alike characters) is already registered. If it is yours, ask its staff to add "
            "you; otherwise use your full legal or trading name."
        )
    if any(unicodedata.category(c) == "Cc" for c in name.strip()):  # stored stripped
        return "Use letters, digits, spaces and punctuation only: no tabs, line breaks or control characters."
    return None


def organisation_is_verified(*, organisation_id: uuid.UUID) -> bool:
    """Whether the operator has verified the organisation (read fresh: un-verifying takes effect at once)."""
    return Organisation.objects.filter(pk=organisation_id, verified=True).exists()
