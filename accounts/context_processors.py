"""Template context: which navigation the signed-in user gets."""

from __future__ import annotations

from django.http import HttpRequest


def roles(request: HttpRequest) -> dict[str, str | None]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_role": None}
    return {"nav_role": "operator" if user.is_staff else user.role}
