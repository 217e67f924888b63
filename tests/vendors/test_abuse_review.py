"""A second look at issue #20 from an attacker's side: the ways around a suspension and the report limits."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from accounts.models import User
from consent.models import Grant
from consent.services import grant_amend, grant_authorize
from tests.conftest import PASSWORD
from tests.consent.conftest import make_app
from tests.intents_helpers import publish, staff_of, subscribe
from tests.vendors_api.conftest import make_person
from vendors.intents import NotOpen, offer_accept, offer_create
from vendors.models import Application, Intent, Offer, Organisation, Recall, Report
from vendors.reports import report_create
from vendors.suspensions import organisation_suspend

REASON = "Sent recall alerts that were advertising."


@pytest.fixture
def suspender(db: Any) -> User:
    user = User.objects.create_user(email="trust@example.com", password=PASSWORD, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="suspend_organisation"))
    return User.objects.get(pk=user.pk)


def test_property2_a_suspended_organisation_cannot_publish_a_recall_from_its_portal(
    client: Client, shop_org: Organisation, suspender: User
) -> None:
    """The portal's recall form reaches people's inboxes without a token: the standing must stop it too."""
    shop_org.verified = True
    shop_org.save()
    make_app(shop_org, name="Recalls", grant_type="client-credentials", scopes=("recalls:publish",))
    organisation_suspend(organisation=shop_org, reason=REASON, by=suspender)
    client.force_login(staff_of(shop_org))
    form = {
        "title": "Peanut traces in chocolate",
        "message": "Buy our new chocolate instead!",
        "severity": "warning",
        "remedy_url": "https://acme.example/recall",
        "gtins": "5012345001234",
        "lots": "L4471",
    }
    response = client.post("/vendor/recalls/new/", form)
    assert response.status_code in (400, 403)
    assert not Recall.objects.exists()


def test_property2_extending_a_paused_grant_is_refused_narrowing_is_not(
    alice: User, shop_app: Application, suspender: User
) -> None:
    """An extension gives a suspended vendor more access; narrowing only takes some away."""
    grant = grant_authorize(
        person=alice, application=shop_app, scopes=["profile:read", "purchases:read"], duration_days=30
    )
    organisation_suspend(organisation=shop_app.organisation, reason=REASON, by=suspender)
    later = (grant.ends_at + dt.timedelta(days=30)).date()
    with pytest.raises(ValidationError, match="suspended"):
        grant_amend(grant=grant, by=alice, ends_on=later)
    assert Grant.objects.get(pk=grant.pk).ends_at == grant.ends_at
    narrowed = grant_amend(grant=grant, by=alice, scopes=["profile:read"])
    assert narrowed.scopes == ["profile:read"]


def test_property2_an_offer_of_a_suspended_organisation_cannot_be_accepted(
    shop_org: Organisation, suspender: User
) -> None:
    """Accepting would close the person's intent and decline every other offer, for a consent page
    that is then refused: the offer waits, like the grants, until the vendor is resumed."""
    shop_org.verified = True
    shop_org.save()
    subscribe(shop_org)
    app = make_app(shop_org, name="Coats", scopes=("intents:read",), grant_type="client-credentials")
    dana = make_person("dana")
    intent = publish(dana)
    data = {
        "price": "99",
        "currency": "EUR",
        "description": "A coat",
        "link": "https://o.example/",
        "valid_until": (timezone.now() + dt.timedelta(days=2)).isoformat(),
    }
    offer = offer_create(application=app, intent=intent, data=data)
    organisation_suspend(organisation=shop_org, reason=REASON, by=suspender)
    with pytest.raises(NotOpen):
        offer_accept(owner=dana, intent=intent, offer=offer)
    assert Offer.objects.get(pk=offer.pk).status == Offer.Status.OPEN
    assert Intent.objects.get(pk=intent.pk).status == Intent.Status.OPEN


def test_property4_the_per_source_limit_holds_for_every_spelling_of_a_grant_id(
    client: Client, alice: User, shop_app: Application
) -> None:
    """`/grants/<id>/report/` takes the id as written: an upper-case or braced UUID is the same grant."""
    grant = grant_authorize(person=alice, application=shop_app, scopes=["profile:read"], duration_days=30)
    client.force_login(alice)
    spellings = [str(grant.pk), str(grant.pk).upper(), "{" + str(grant.pk) + "}", grant.pk.hex]
    for spelling in spellings:
        client.post(f"/grants/{spelling}/report/", {"reason": Report.Reason.OVERREACH, "text": ""})
    assert Report.objects.filter(person=alice).count() == 1
    assert Report.objects.get(person=alice).source_ref == str(grant.pk)


def test_property4_the_per_source_limit_holds_for_an_alert_id_with_leading_zeros(
    alice: User, shop_org: Organisation
) -> None:
    from vendors.models import Alert

    recall = Recall.objects.create(
        organisation=shop_org,
        title="t",
        message="m",
        severity="warning",
        remedy_url="https://acme.example/",
        gtins=["5012345001234"],
    )
    alert = Alert.objects.create(recall=recall, person=alice)
    fields: dict[str, Any] = {
        "person": alice,
        "organisation": shop_org,
        "source": Report.Source.ALERT,
        "reason": Report.Reason.SPAM,
        "text": "",
        "shared": False,
    }
    report_create(source_ref=str(alert.pk), **fields)
    with pytest.raises(ValidationError, match="already reported"):
        report_create(source_ref=f"00{alert.pk}", **fields)


def test_property1_every_api_route_refuses_a_suspended_organisations_tokens(
    flow: Any, shop_org: Organisation, suspender: User
) -> None:
    """Every /api/v1 view, read from the resolver, by every method, with both kinds of token."""
    import secrets
    import uuid

    from django.urls import reverse

    from consent.models import AccessToken
    from tests.routes import all_routes

    shop_org.verified = True
    shop_org.save()
    person_token = flow.tokens()["access_token"]
    backend = make_app(
        shop_org, name="Backend", scopes=("recalls:publish", "intents:read"), grant_type="client-credentials"
    )
    org_token = secrets.token_urlsafe(30)
    AccessToken.objects.create(
        user=None,
        application=backend,
        token=org_token,
        scope="recalls:publish intents:read",
        expires=timezone.now() + dt.timedelta(minutes=15),
    )
    organisation_suspend(organisation=shop_org, reason=REASON, by=suspender)
    routes = [
        route
        for route, callback in all_routes()
        if getattr(callback, "__module__", "").startswith("vendors.api")
    ]
    assert len(routes) >= 20
    for route in routes:
        path = reverse(route.name, kwargs={k: str(uuid.uuid4()) for k in route.kwargs})
        for token in (person_token, org_token):
            for method in ("get", "post", "put", "patch", "delete"):
                body = {} if method == "get" else {"data": "{}", "content_type": "application/json"}
                response = getattr(Client(), method)(path, **body, HTTP_AUTHORIZATION=f"Bearer {token}")
                assert response.status_code in (403, 405), (route.name, method, response.status_code)
                if response.status_code == 403:
                    assert "organisation-suspended" in response.json()["type"], (route.name, method)
