"""REST framework permission defaults."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission


class DenyAll(BasePermission):
    """The default permission: a view that declares nothing is refused."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return False
