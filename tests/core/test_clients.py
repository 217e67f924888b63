"""One client address for every limit: X-Forwarded-For only behind a trusted proxy (#13 item 5)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client, RequestFactory

from core.clients import client_address


def _address(
    settings: Any, *, behind: bool, proxies: int = 1, remote: str = "10.0.0.1", xff: str = ""
) -> str:
    settings.VRM_BEHIND_PROXY = behind
    settings.VRM_PROXY_COUNT = proxies
    extra = {"HTTP_X_FORWARDED_FOR": xff} if xff else {}
    return client_address(RequestFactory().get("/", REMOTE_ADDR=remote, **extra))


@pytest.mark.parametrize(
    ("behind", "proxies", "xff", "expected"),
    [
        (False, 1, "203.0.113.9", "10.0.0.1"),  # off: the header is anyone's to write
        (True, 1, "203.0.113.9", "203.0.113.9"),
        (True, 1, "198.51.100.7, 203.0.113.9", "203.0.113.9"),  # left of the proxy's entry: forged
        (True, 2, "198.51.100.7, 203.0.113.9", "198.51.100.7"),  # two proxies: a CDN, then a balancer
        (True, 2, "203.0.113.9", "10.0.0.1"),  # fewer entries than proxies: not through them all
        (True, 1, "", "10.0.0.1"),
        (True, 1, "not an address", "10.0.0.1"),
        (True, 1, " 203.0.113.9 ,", "203.0.113.9"),
    ],
)
def test_the_forwarded_address_is_read_only_behind_trusted_proxies(
    settings: Any, behind: bool, proxies: int, xff: str, expected: str
) -> None:
    assert _address(settings, behind=behind, proxies=proxies, xff=xff) == expected


def test_an_ipv6_client_is_counted_by_its_64(settings: Any) -> None:
    one = _address(settings, behind=False, remote="2001:db8:1:2:aaaa::1")
    other = _address(settings, behind=False, remote="2001:db8:1:2:bbbb::2")
    assert one == other == "2001:db8:1:2::/64"
    assert _address(settings, behind=False, remote="2001:db8:1:3::1") != one
    assert _address(settings, behind=False, remote="::ffff:192.0.2.1") == "192.0.2.1"
    assert _address(settings, behind=False, remote="") == "unknown"


def test_the_public_ledger_limit_ignores_a_forged_forwarded_for(
    db: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rest_framework.throttling import SimpleRateThrottle

    settings.VRM_BEHIND_PROXY = False
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"ledger": "2/minute"})
    cache.clear()
    client = Client(REMOTE_ADDR="203.0.113.9")
    statuses = [
        client.get("/api/v1/ledger/checkpoint", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code
        for n in range(3)
    ]
    assert statuses == [404, 404, 429]
    cache.clear()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("VRM_BEHIND_PROXY", "perhaps", "VRM_BEHIND_PROXY must be a boolean"),
        ("VRM_PROXY_COUNT", "0", "VRM_PROXY_COUNT must be at least 1"),
        ("VRM_LOGIN_ADDRESS_RATE", "lots", "VRM_LOGIN_ADDRESS_RATE must be a rate"),
        ("VRM_LOGIN_ADDRESS_RATE", "0/m", "VRM_LOGIN_ADDRESS_RATE must be a rate"),
    ],
)
def test_bad_proxy_and_rate_settings_fail_loudly(variable: str, value: str, message: str) -> None:
    from tests.vrm.test_settings import _manage, _production_env

    result = _manage("check", env=_production_env(**{variable: value}))
    assert result.returncode != 0 and message in result.stderr
