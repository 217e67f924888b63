"""Counters in fixed windows (django-ratelimit, in the shared cache) that are read before the
work they guard and counted after it, once the outcome is known.

A failed login or a wrong client secret is only known to have failed after the password hash
was checked, and it is the failures that must be limited, not the requests: so a guarded
view first asks `limit_wait` (no count), then does its work, then counts the outcome with
`limit_count` under the limit that outcome belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django_ratelimit.core import get_usage
from rest_framework.throttling import ScopedRateThrottle

from core.clients import client_address


@dataclass(frozen=True)
class Limit:
    """At most `rate` ("5/15m": count/[multiplier]unit) for one `key` within `group`."""

    group: str
    key: str
    rate: str


def _usage(request: HttpRequest, limit: Limit, *, increment: bool) -> tuple[int, int, int] | None:
    usage = get_usage(
        request,
        group=limit.group,
        key=lambda _group, _request: limit.key,
        rate=limit.rate,
        increment=increment,
    )
    if usage is None:  # RATELIMIT_ENABLE = False
        return None
    return usage["count"], usage["limit"], usage["time_left"]


def limit_wait(request: HttpRequest, limit: Limit) -> int:
    """Seconds until `limit` allows again if it is used up (at least 1), else 0. Counts nothing.

    A cache that cannot be read counts as used up (django-ratelimit fails closed).
    """
    usage = _usage(request, limit, increment=False)
    if usage is None:
        return 0
    count, allowed, time_left = usage
    return max(1, time_left) if count >= allowed else 0


def limit_count(request: HttpRequest, limit: Limit) -> None:
    """Count one use against `limit`."""
    _usage(request, limit, increment=True)


class AddressScopedRateThrottle(ScopedRateThrottle):
    """DRF's per-scope throttle, keyed on `client_address` instead of DRF's own reading of
    X-Forwarded-For, which without NUM_PROXIES trusts whatever the client wrote there."""

    def get_ident(self, request: Any) -> str:
        return client_address(request)
