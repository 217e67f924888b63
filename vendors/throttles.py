"""Per-application API rate limits: a burst limit and a sustained limit, in the shared cache."""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import SimpleRateThrottle


class _AppThrottle(SimpleRateThrottle):
    def get_cache_key(self, request: Any, view: Any) -> str | None:
        token = getattr(request, "auth", None)
        if token is None or getattr(token, "application_id", None) is None:
            return None  # unauthenticated requests are refused before they cost anything
        return f"throttle:{self.scope}:{token.application_id}"


class AppBurstThrottle(_AppThrottle):
    scope = "app_burst"


class AppSustainedThrottle(_AppThrottle):
    scope = "app_sustained"
