"""Template context for the person's navigation: how many inbox items (alerts, reminders) are unread."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.http import HttpRequest

from portal.inbox import inbox_unread_count


def person_nav(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.is_staff or user.role != "person":
        return {}
    # Counted only if the page shows it (templates call callables).
    return {"nav_unread_inbox": partial(inbox_unread_count, person=user)}
