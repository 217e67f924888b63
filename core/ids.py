"""Ids from URLs: a malformed id is not found, exactly like another person's or a missing one."""

from __future__ import annotations

import uuid

from django.http import Http404


def uuid_or_404(value: uuid.UUID | str, *, message: str = "Not found.") -> uuid.UUID:
    """Return `value` as a UUID, or raise Http404 with `message` if it is not one."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Http404(message) from None
