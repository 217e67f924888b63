"""Per-application API rate limits: a burst limit and a sustained limit, in the shared cache.

Counted in fixed windows by django-ratelimit (as the token endpoint is): two cache operations
per limit and request, whatever the rate. DRF's own throttles keep every request's time of the
window in one cache value, read and written whole on each request, which at the sustained
default (20,000 an hour) is a list of 20,000 floats per request, and lets concurrent requests
overwrite each other's counts. Each app's windows start at an offset of their own (django-ratelimit
staggers them by key), so apps do not all refill at once.
"""

from __future__ import annotations

from typing import Any

from django_ratelimit.core import get_usage
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle


class _AppThrottle(BaseThrottle):
    scope = ""

    def __init__(self) -> None:
        self.seconds_left = 1

    def allow_request(self, request: Any, view: Any) -> bool:
        token = getattr(request, "auth", None)
        if token is None or getattr(token, "application_id", None) is None:
            return True  # unauthenticated requests are refused before they cost anything
        usage = get_usage(
            request,
            group=f"api-{self.scope}",
            key=lambda _group, _request: str(token.application_id),
            rate=api_settings.DEFAULT_THROTTLE_RATES[self.scope],
            increment=True,
        )
        if usage is None:
            return True
        self.seconds_left = usage["time_left"]
        return not usage["should_limit"]

    def wait(self) -> float:
        return max(1, self.seconds_left)


class AppBurstThrottle(_AppThrottle):
    scope = "app_burst"


class AppSustainedThrottle(_AppThrottle):
    scope = "app_sustained"
