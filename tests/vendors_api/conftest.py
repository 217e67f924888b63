"""Vendor API fixtures: people with records of every kind, grants, and bearer tokens.

Tokens are made as the token endpoint makes them (an AccessToken row bound to the grant, looked
up by the sha256 of the raw value), so a test picks its token state without a browser round trip;
test_api.py checks once that a token from the real authorization-code flow behaves the same.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterator
from itertools import count
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from consent.models import AccessToken, Grant
from consent.scopes import PERSON_SCOPES
from consent.services import grant_authorize
from devtools.records import make_gtin
from personal_data.services import record_create
from portal.services import person_signup
from tests.conftest import purchase_data
from tests.consent.conftest import make_app
from vendors.models import Application, Organisation

API = "/api/v1"
_gtin_bodies = count(400000000000)


@pytest.fixture(autouse=True)
def _unthrottled() -> Iterator[None]:
    """A fresh throttle per test (tests/conftest.py already makes password hashing cheap)."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def throttle_rates(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set the API rates for one test (DRF reads them into its throttle class at import)."""

    def set_rates(
        burst: str = "100000/second", sustained: str = "1000000/hour", ledger: str = "100000/second"
    ) -> None:
        rates = {"app_burst": burst, "app_sustained": sustained, "ledger": ledger}
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
        monkeypatch.setattr(api_settings, "DEFAULT_THROTTLE_RATES", rates)

    return set_rates


def new_gtin() -> str:
    return make_gtin(str(next(_gtin_bodies)))


def days_ago(days: int) -> dt.date:
    return timezone.now().date() - dt.timedelta(days=days)


def record_data(category: str, *, day: dt.date, **fields: Any) -> dict[str, Any]:
    """A valid record of the category dated `day`; override any field."""
    base: dict[str, Any] = {
        "purchases": purchase_data(purchased_on=day.isoformat(), gtin=new_gtin()),
        "closet": {"kind": "top", "name": "Navy jumper", "size": "M", "acquired_on": day.isoformat()},
        "appliances": {
            "kind": "fridge",
            "brand": "Bosch",
            "gtin": new_gtin(),
            "purchased_on": day.isoformat(),
        },
        "prescriptions": {
            "medication": "Atorvastatin",
            "strength": "20 mg",
            "prescribed_on": day.isoformat(),
        },
    }[category]
    return {**base, **fields}


def add_record(owner: Any, category: str, *, day: dt.date | None = None, **fields: Any) -> dict[str, Any]:
    """Store a record in the owner's store (as the person would) and return its document."""
    data = record_data(category, day=day or days_ago(10), **fields)
    return record_create(owner=owner, category=category, data=data)


def make_person(name: str) -> Any:
    return person_signup(
        email=f"{name}-{secrets.token_hex(4)}@example.com", password="x" * 20, display_name=name.title()
    )


def authorize(
    person: Any,
    app: Application,
    scopes: list[str] | tuple[str, ...] = PERSON_SCOPES,
    *,
    history_months: int | None = None,
    include_gifts: bool = False,
    duration_days: int = 30,
) -> Grant:
    return grant_authorize(
        person=person,
        application=app,
        scopes=scopes,
        duration_days=duration_days,
        history_months=history_months,
        include_gifts=include_gifts,
    )


def issue_token(grant: Grant, *, scopes: list[str] | None = None, expires: dt.datetime | None = None) -> str:
    """Issue an access token under the grant and return its raw value."""
    raw = secrets.token_urlsafe(30)
    AccessToken.objects.create(
        user=grant.person,
        application=grant.application,
        token=raw,
        scope=" ".join(scopes if scopes is not None else grant.scopes),
        expires=expires or min(timezone.now() + dt.timedelta(minutes=15), grant.ends_at),
        grant=grant,
    )
    return raw


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


class Api:
    """A vendor's HTTP client for /api/v1 with one bearer token."""

    def __init__(self, token: str | None = None) -> None:
        self.client = Client()
        self.token = token

    def _auth(self, extra: dict[str, Any]) -> dict[str, Any]:
        return {**(bearer(self.token) if self.token else {}), **extra}

    def get(self, path: str, params: dict[str, Any] | None = None, **extra: Any) -> Any:
        url = path if path.startswith("http") or path.startswith("/") else f"{API}/{path}"
        return self.client.get(url, params or {}, **self._auth(extra))

    def post(self, path: str, body: Any, **extra: Any) -> Any:
        return self.client.post(f"{API}/{path}", body, content_type="application/json", **self._auth(extra))

    def all_pages(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Follow `next` to the end and return every result."""
        response = self.get(path, params)
        assert response.status_code == 200, response.content
        results = list(response.json()["results"])
        while response.json()["next"]:
            response = self.get(response.json()["next"])
            assert response.status_code == 200, response.content
            results += response.json()["results"]
        return results


@pytest.fixture
def shop_app(db: Any) -> Application:
    org = Organisation.objects.create(
        name="Acme Shop",
        website="https://acme.example",
        privacy_contact="privacy@acme.example",
        verified=True,
    )
    return make_app(org)


@pytest.fixture
def full_grant(alice: Any, shop_app: Application) -> Grant:
    return authorize(alice, shop_app, PERSON_SCOPES, include_gifts=True)


@pytest.fixture
def api(full_grant: Grant) -> Api:
    """alice's full grant to the shop (every person scope, gifts, no history window)."""
    return Api(issue_token(full_grant))
