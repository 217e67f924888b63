"""Who is asking: the one client-address function every limit and lockout keys on.

django-axes (`AXES_CLIENT_IP_CALLABLE`), the login slow-down, the token endpoint's failure
count and the public ledger's throttle all call `client_address`, so they agree on who a
client is. `X-Forwarded-For` is written by whoever sends the request: it is read only with
`VRM_BEHIND_PROXY` on, and then only the entry the trusted proxies appended.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest

# One IPv6 host usually holds a whole /64 (RFC 6177), so counting single addresses there
# would give an attacker 2**64 fresh allowances; django-ratelimit masks to /64 by default too.
IPV6_PREFIX = 64
UNKNOWN = "unknown"


def _normalised(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)


def forwarded_address(request: HttpRequest, proxies: int) -> str | None:
    """The address the outermost of `proxies` trusted proxies saw, from X-Forwarded-For.

    Each proxy appends the address it received the request from, so with N trusted proxies
    the client is the N-th entry from the right; anything further left was written by the
    client itself. Too few entries means the request did not pass through them all.
    """
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    if proxies < 1 or len(hops) < proxies:
        return None
    return _normalised(hops[-proxies])


def client_address(request: HttpRequest) -> str:
    """The client's address as limits count it: IPv4, or the IPv6 /64 it belongs to."""
    if settings.VRM_BEHIND_PROXY:
        forwarded = forwarded_address(request, settings.VRM_PROXY_COUNT)
        if forwarded is not None:
            return forwarded
    return _normalised(request.META.get("REMOTE_ADDR") or "") or UNKNOWN
