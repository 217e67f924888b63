"""The person's grant page: extending only ever moves the end later, within consent's caps."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import time_machine
from django.test import Client

from accounts.models import User
from audit.models import LedgerEntry
from consent.models import Grant
from consent.services import grant_authorize, grant_revoke
from tests.consent.conftest import make_app
from vendors.models import Application, Organisation


@pytest.fixture
def shop_app(db: Any) -> Application:
    org = Organisation.objects.create(
        name="Acme Shop",
        website="https://acme.example",
        privacy_contact="privacy@acme.example",
        verified=True,
    )
    return make_app(org)


def _grant(person: User, app: Application, *, days_left: int, scopes: list[str] | None = None) -> Grant:
    grant = grant_authorize(
        person=person, application=app, scopes=scopes or ["profile:read", "purchases:read"], duration_days=90
    )
    # As if the grant had been running for a while: its end is `days_left` days (and a bit) away.
    grant.ends_at = grant.starts_at + dt.timedelta(days=days_left, hours=1)
    grant.save(update_fields=["ends_at"])
    return grant


def _later(grant: Grant, days: int) -> str:
    return (grant.ends_at.astimezone(dt.UTC) + dt.timedelta(days=days)).date().isoformat()


def _offered(page: str) -> dict[str, str]:
    """The options of the end-date select: value -> label."""
    select = re.search(r'<select name="ends_on"[^>]*>(.*?)</select>', page, re.S)
    assert select, "no end-date select on the page"
    return dict(re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select.group(1)))


def _unchanged(grant: Grant) -> None:
    before = (grant.ends_at, grant.scopes, grant.receipts.count())
    entries = LedgerEntry.objects.filter(grant_id=str(grant.pk)).count()
    grant.refresh_from_db()
    assert (grant.ends_at, grant.scopes, grant.receipts.count()) == before
    assert LedgerEntry.objects.filter(grant_id=str(grant.pk)).count() == entries


def test_extending_by_7_days_with_89_left_leaves_96(
    client: Client, alice: User, shop_app: Application
) -> None:
    grant = _grant(alice, shop_app, days_left=89)
    client.force_login(alice)
    offered = _offered(client.get(f"/grants/{grant.pk}/").content.decode())
    # Only later days, each saying what it means; nothing that would shorten the grant.
    assert offered[""].startswith("Keep ") and "(89 days left)" in offered[""]
    assert "(7 days later)" in offered[_later(grant, 7)]
    assert all(v == "" or v > grant.ends_at.date().isoformat() for v in offered)
    # 365 days from today at most: 89 days and an hour left, so 275 whole days more.
    assert offered[_later(grant, 275)].endswith("(275 days later, the longest allowed)")
    assert _later(grant, 365) not in offered

    response = client.post(f"/grants/{grant.pk}/", {"scopes": grant.scopes, "ends_on": _later(grant, 7)})
    assert response.status_code == 302
    before = grant.ends_at
    grant.refresh_from_db()
    assert grant.ends_at == before + dt.timedelta(days=7)
    assert "(96 days left)" in client.get(f"/grants/{grant.pk}/").content.decode()
    assert [r.event for r in grant.receipts.all()] == ["created", "amended"]
    receipt = grant.receipts.last()
    assert receipt is not None and receipt.document["grant"]["end"].startswith(_later(grant, 0))
    assert LedgerEntry.objects.filter(kind="grant.amended", grant_id=str(grant.pk)).count() == 1


@pytest.mark.parametrize("later_by", [-82, -1, 0])
def test_a_forged_post_cannot_shorten_the_grant(
    client: Client, alice: User, shop_app: Application, later_by: int
) -> None:
    grant = _grant(alice, shop_app, days_left=89)
    client.force_login(alice)
    response = client.post(
        f"/grants/{grant.pk}/", {"scopes": grant.scopes, "ends_on": _later(grant, later_by)}
    )
    assert response.status_code == 400
    assert "extending only makes a grant last longer" in response.content.decode()
    _unchanged(grant)


def test_sensitive_grants_extend_to_90_days_from_today_at_most(
    client: Client, alice: User, shop_app: Application
) -> None:
    grant = _grant(alice, shop_app, days_left=30, scopes=["prescriptions:read"])
    client.force_login(alice)
    offered = _offered(client.get(f"/grants/{grant.pk}/").content.decode())
    assert sorted(offered, key=lambda v: v or "0") == [
        "",
        _later(grant, 1),
        _later(grant, 7),
        _later(grant, 30),
        _later(grant, 59),
    ]
    assert offered[_later(grant, 59)].endswith("the longest allowed)")
    response = client.post(f"/grants/{grant.pk}/", {"scopes": grant.scopes, "ends_on": _later(grant, 90)})
    assert response.status_code == 400
    assert "at most 90 days from today when it includes sensitive data" in response.content.decode()
    _unchanged(grant)


def test_a_grant_at_its_longest_offers_no_later_day(
    client: Client, alice: User, shop_app: Application
) -> None:
    grant = _grant(alice, shop_app, days_left=364)
    client.force_login(alice)
    page = client.get(f"/grants/{grant.pk}/").content.decode()
    assert list(_offered(page)) == [""]
    assert "already runs as long as allowed" in page
    response = client.post(f"/grants/{grant.pk}/", {"scopes": grant.scopes, "ends_on": _later(grant, 1)})
    assert response.status_code == 400 and "already runs as long as allowed" in response.content.decode()
    _unchanged(grant)


def test_an_ended_grant_cannot_be_extended(client: Client, alice: User, shop_app: Application) -> None:
    revoked = _grant(alice, shop_app, days_left=20)
    grant_revoke(grant=revoked, by=alice)
    revoked.refresh_from_db()
    client.force_login(alice)
    response = client.post(
        f"/grants/{revoked.pk}/", {"scopes": revoked.scopes, "ends_on": _later(revoked, 7)}
    )
    assert response.status_code == 400 and "This grant has ended" in response.content.decode()
    _unchanged(revoked)

    lapsed = _grant(alice, shop_app, days_left=20)
    with time_machine.travel(lapsed.ends_at + dt.timedelta(hours=1)):
        client.force_login(alice)
        response = client.post(
            f"/grants/{lapsed.pk}/", {"scopes": lapsed.scopes, "ends_on": _later(lapsed, 7)}
        )
    assert response.status_code == 400 and "This grant has ended" in response.content.decode()
    _unchanged(lapsed)


def test_another_persons_grant_is_404(client: Client, alice: User, bob: User, shop_app: Application) -> None:
    grant = _grant(alice, shop_app, days_left=89)
    client.force_login(bob)
    response = client.post(f"/grants/{grant.pk}/", {"scopes": grant.scopes, "ends_on": _later(grant, 7)})
    assert response.status_code == 404
    _unchanged(grant)
