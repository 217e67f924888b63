"""REST framework permission defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission

if TYPE_CHECKING:  # this module is loaded while rest_framework.views is being imported
    from rest_framework.request import Request
    from rest_framework.views import APIView


class DenyAll(BasePermission):
    """The default permission: a view that declares nothing is refused."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return False
