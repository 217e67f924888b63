"""An operator suspends, resumes and ends a vendor organisation (vendors/suspensions.py).

A suspension must stop every token of the organisation on the very next request, everywhere a
token is used (the API, token refresh, introspection, recalls), keep the grants, and tell each
person affected; resuming gives everything back; ending revokes the grants with receipts.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from accounts.models import User
from audit.models import LedgerEntry
from consent.models import AccessToken, Grant, Receipt
from consent.services import grant_authorize, grant_for_records, grant_revoke
from personal_data.models import Reminder
from tests.conftest import PASSWORD
from tests.consent.conftest import SECRET, Flow, basic, make_app
from tests.intents_helpers import publish, staff_of, subscribe
from tests.vendors_api.conftest import Api, make_person
from vendors.intents import organisations_matching
from vendors.models import Application, Organisation
from vendors.suspensions import (
    StandingRefused,
    organisation_end,
    organisation_resume,
    organisation_suspend,
)

REASON = "Read every purchase of every person it could, far beyond its stated purpose."


@pytest.fixture
def suspender(db: Any) -> User:
    """A staff account holding only the permission to suspend, resume and end organisations."""
    user = User.objects.create_user(email="trust@example.com", password=PASSWORD, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="suspend_organisation"))
    return User.objects.get(pk=user.pk)  # fresh: permissions are cached on the instance


@pytest.fixture
def org(shop_app: Application) -> Organisation:
    return shop_app.organisation


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"{settings.VRM_ISSUER}/problems/{slug}"
    return body


def _org_token(org: Organisation, scope: str) -> str:
    app = make_app(
        org,
        name=f"{org.name} backend {scope}",
        scopes=("recalls:publish", "intents:read"),
        grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        secret=secrets.token_urlsafe(40),
    )
    raw = secrets.token_urlsafe(30)
    AccessToken.objects.create(
        user=None, application=app, token=raw, scope=scope, expires=timezone.now() + dt.timedelta(minutes=15)
    )
    return raw


def test_only_a_staff_account_with_the_permission_may_act(org: Organisation, alice: User) -> None:
    plain_staff = User.objects.create_user(email="staff@example.com", password=PASSWORD, is_staff=True)
    holder_not_staff = User.objects.create_user(email="holder@example.com", password=PASSWORD)
    holder_not_staff.user_permissions.add(Permission.objects.get(codename="suspend_organisation"))
    holder_not_staff = User.objects.get(pk=holder_not_staff.pk)
    for who in (plain_staff, holder_not_staff, alice):
        with pytest.raises(PermissionDenied):
            organisation_suspend(organisation=org, reason=REASON, by=who)
        with pytest.raises(PermissionDenied):
            organisation_end(organisation=org, reason=REASON, by=who)
    org.refresh_from_db()
    assert org.standing == "active"
    assert not LedgerEntry.objects.filter(kind__startswith="vendor.org_s").exists()


def test_a_reason_is_required_and_bounded(org: Organisation, suspender: User) -> None:
    for reason in ("", "   ", "x" * 501):
        with pytest.raises(StandingRefused):
            organisation_suspend(organisation=org, reason=reason, by=suspender)
    org.refresh_from_db()
    assert org.standing == "active"


def test_suspension_stops_every_token_of_the_organisation_at_once_and_lifting_restores_them(
    flow: Flow, org: Organisation, alice: User, suspender: User
) -> None:
    org.verified = True
    org.save()
    tokens = flow.tokens()
    recall_token = _org_token(org, "recalls:publish")
    assert flow.me(tokens["access_token"]).status_code == 200
    published = Api(recall_token).post(
        "recalls",
        {
            "title": "Recall",
            "message": "Glass.",
            "severity": "danger",
            "gtins": ["5012345001234"],
            "remedy_url": "https://shop.example/recall",
        },
    )
    assert published.status_code == 202

    organisation_suspend(organisation=org, reason=REASON, by=suspender)

    # The API: the very next request, a person grant's token and the organisation's own.
    body = _problem(flow.me(tokens["access_token"]), 403, "organisation-suspended")
    assert REASON in body["detail"] and "suspended" in body["detail"]
    body = _problem(Api(recall_token).get(f"recalls/{published.json()['id']}"), 403, "organisation-suspended")
    assert REASON in body["detail"]
    # Refresh: refused, with the reason.
    refused = flow.refresh(tokens["refresh_token"])
    assert refused.status_code == 400
    assert refused.json()["error"] == "unauthorized_client" and REASON in refused.json()["error_description"]
    # Introspection: the token is not active.
    introspected = Client().post(
        "/o/introspect/", {"token": tokens["access_token"]}, **basic(flow.app.client_id, SECRET)
    )
    assert introspected.json() == {"active": False}
    # Client credentials: no new organisation token.
    backend = Application.objects.get(organisation=org, authorization_grant_type="client-credentials")
    assert backend is not None
    # The refusals are in the ledger, as every refused request is.
    denied = LedgerEntry.objects.filter(kind="access.denied", reason="organisation-suspended")
    assert denied.count() == 1  # the person grant's request (organisation requests have no grant)

    # The grant is kept: nothing about it changed, and its share still opens.
    grant = Grant.objects.get(person=alice, application=flow.app)
    assert grant.status == Grant.Status.ACTIVE and grant.is_live()

    organisation_resume(organisation=org, by=suspender)
    assert flow.me(tokens["access_token"]).status_code == 200
    assert Api(recall_token).get(f"recalls/{published.json()['id']}").status_code == 200
    refreshed = flow.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.content
    introspected = Client().post(
        "/o/introspect/", {"token": refreshed.json()["access_token"]}, **basic(flow.app.client_id, SECRET)
    )
    assert introspected.json()["active"] is True


def test_suspension_refuses_a_code_exchange_and_client_credentials(
    flow: Flow, org: Organisation, suspender: User
) -> None:
    code = flow.code()
    organisation_suspend(organisation=org, reason=REASON, by=suspender)
    refused = flow.exchange(code)
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
    secret = secrets.token_urlsafe(40)
    make_app(
        org,
        name="Backend",
        scopes=("recalls:publish",),
        grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        secret=secret,
    )
    backend = Application.objects.get(organisation=org, name="Backend")
    refused = Client().post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "recalls:publish"},
        **basic(backend.client_id, secret),
    )
    assert refused.status_code == 400 and REASON in refused.json()["error_description"]


def test_no_new_grant_or_recall_answer_while_suspended(
    client: Client, flow: Flow, org: Organisation, alice: User, bob: User, suspender: User
) -> None:
    organisation_suspend(organisation=org, reason=REASON, by=suspender)
    # The consent page says so, names the vendor and the reason, and redirects nowhere.
    page = client.get(flow.authorize_path())
    assert page.status_code == 403 and "Location" not in page
    text = page.content.decode()
    assert org.name in text and REASON in text and 'name="allow"' not in text
    # Posting the consent form anyway creates nothing.
    assert flow.consent(flow.authorize_path()).status_code == 403
    # Every other way in is refused by the service itself.
    with pytest.raises(ValidationError):
        grant_authorize(person=bob, application=flow.app, scopes=["profile:read"], duration_days=7)
    with pytest.raises(ValidationError):
        grant_for_records(person=bob, application=flow.app, record_ids=["1"])
    assert not Grant.objects.filter(application=flow.app).exists()


def test_people_with_a_live_grant_are_told_in_their_inbox_and_by_email(
    client: Client,
    flow: Flow,
    org: Organisation,
    alice: User,
    bob: User,
    suspender: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    flow.tokens()
    live = Grant.objects.get(person=alice, application=flow.app)
    carol = make_person("carol")
    revoked = grant_authorize(person=carol, application=flow.app, scopes=["profile:read"], duration_days=7)
    grant_revoke(grant=revoked, by=carol)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        organisation_suspend(organisation=org, reason=REASON, by=suspender)

    notices = Reminder.objects.filter(kind="vendor_suspended")
    assert [(n.owner_id, n.subject) for n in notices] == [(alice.pk, str(live.pk))]
    assert [m.to for m in mail.outbox] == [[alice.email]]
    assert org.name in mail.outbox[0].body and REASON in mail.outbox[0].body
    entry = LedgerEntry.objects.get(kind="vendor.org_suspended")
    assert entry.actor_type == "operator" and entry.actor_id == str(suspender.pk)
    assert entry.record_ids == [str(org.pk)] and entry.record_count == 1 and entry.subject == ""

    client.force_login(alice)
    inbox = client.get("/inbox/").content.decode()
    assert f"Vendor suspended: {org.name}" in inbox
    notice = client.get(f"/inbox/reminders/{notices[0].pk}/")
    assert notice.status_code == 200
    assert REASON in notice.content.decode() and "revoke" in notice.content.decode()
    grant_page = client.get(f"/grants/{live.pk}/").content.decode()
    assert "Paused" in grant_page and REASON in grant_page
    # Bob's inbox has nothing of it.
    client.force_login(bob)
    assert org.name not in client.get("/inbox/").content.decode()
    assert client.get(f"/inbox/reminders/{notices[0].pk}/").status_code == 404

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        organisation_resume(organisation=org, by=suspender)
    assert Reminder.objects.filter(kind="vendor_resumed", owner=alice).count() == 1
    assert [m.to for m in mail.outbox] == [[alice.email]] and "lifted" in mail.outbox[0].body
    assert LedgerEntry.objects.filter(kind="vendor.org_resumed", record_count=1).count() == 1


def test_the_vendor_portal_shows_the_suspension_and_its_reason(
    client: Client, org: Organisation, suspender: User
) -> None:
    client.force_login(staff_of(org))
    assert "suspended your organisation" not in client.get("/vendor/").content.decode()
    organisation_suspend(organisation=org, reason=REASON, by=suspender)
    page = client.get("/vendor/").content.decode()
    assert "The operator has suspended your organisation" in page and REASON in page


def test_a_suspended_organisation_hears_of_no_intent(org: Organisation, suspender: User) -> None:
    org.verified = True
    org.save()
    subscribe(org)
    intent = publish(make_person("dana"))
    assert organisations_matching(intent=intent) == [org.pk]
    organisation_suspend(organisation=org, reason=REASON, by=suspender)
    assert organisations_matching(intent=intent) == []


def test_ending_revokes_every_grant_with_a_receipt_and_cannot_be_undone(
    flow: Flow, org: Organisation, alice: User, suspender: User, django_capture_on_commit_callbacks: Any
) -> None:
    tokens = flow.tokens()
    organisation_suspend(organisation=org, reason=REASON, by=suspender)
    grant = Grant.objects.get(person=alice, application=flow.app)
    receipts = Receipt.objects.filter(grant=grant).count()
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        organisation_end(organisation=org, reason="Scraped people's data.", by=suspender)

    grant.refresh_from_db()
    assert grant.status == Grant.Status.REVOKED and grant.ended_by == "operator"
    assert Receipt.objects.filter(grant=grant).count() == receipts + 1
    assert not AccessToken.objects.filter(application__organisation=org).exists()
    assert flow.me(tokens["access_token"]).status_code == 401
    assert flow.refresh(tokens["refresh_token"]).status_code == 400
    revoked = LedgerEntry.objects.get(kind="grant.revoked", grant_id=str(grant.pk))
    assert revoked.actor_type == "operator" and revoked.actor_id == str(suspender.pk)
    assert LedgerEntry.objects.filter(kind="vendor.org_ended").count() == 1
    assert Reminder.objects.filter(kind="vendor_ended", owner=alice).count() == 1
    assert [m.to for m in mail.outbox] == [[alice.email]]
    with pytest.raises(StandingRefused):
        organisation_resume(organisation=org, by=suspender)
    with pytest.raises(StandingRefused):
        organisation_suspend(organisation=org, reason=REASON, by=suspender)
    org.refresh_from_db()
    assert org.standing == "ended"


def test_the_admin_actions_ask_for_a_reason_and_need_the_permission(
    client: Client, org: Organisation, suspender: User, flow: Flow
) -> None:
    changelist = "/admin/vendors/organisation/"
    plain = User.objects.create_user(email="plain-staff@example.com", password=PASSWORD, is_staff=True)
    plain.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_organisation", "change_organisation"])
    )
    client.force_login(plain)
    page = client.get(changelist).content.decode()
    assert 'value="suspend"' not in page and 'value="end"' not in page
    refused = client.post(
        changelist, {"action": "suspend", "_selected_action": [org.pk], "apply": "1", "reason": REASON}
    )
    org.refresh_from_db()
    assert org.standing == "active" and refused.status_code in (200, 302)

    suspender.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_organisation", "change_organisation"])
    )
    client.force_login(User.objects.get(pk=suspender.pk))
    asked = client.post(changelist, {"action": "suspend", "_selected_action": [org.pk]})
    assert asked.status_code == 200 and 'name="reason"' in asked.content.decode()
    client.post(
        changelist, {"action": "suspend", "_selected_action": [org.pk], "apply": "1", "reason": REASON}
    )
    org.refresh_from_db()
    assert org.standing == "suspended" and org.standing_reason == REASON
    # Ending needs the confirmation ticked.
    client.post(changelist, {"action": "end", "_selected_action": [org.pk], "apply": "1", "reason": REASON})
    org.refresh_from_db()
    assert org.standing == "suspended"
    client.post(
        changelist,
        {"action": "end", "_selected_action": [org.pk], "apply": "1", "reason": REASON, "confirm_end": "on"},
    )
    org.refresh_from_db()
    assert org.standing == "ended"


@pytest.mark.django_db(transaction=True)
def test_a_suspension_waits_for_a_grant_being_made_and_then_tells_its_person(shop_app: Application) -> None:
    """A grant made while the operator suspends is either refused or seen by the suspension.

    The grant's transaction holds a share lock on the organisation's row from its standing check
    on; the suspension's update waits for it, then finds the new grant and tells its person.
    Without the lock the suspension would commit first and miss the grant (checked by hand).
    """
    org = shop_app.organisation
    person = make_person("erin")
    operator = User.objects.create_user(email="ops-erin@example.com", is_staff=True)
    operator.user_permissions.add(Permission.objects.get(codename="suspend_organisation"))
    operator = User.objects.get(pk=operator.pk)
    started, outcome = threading.Event(), {}

    def suspend() -> None:
        try:
            started.set()
            organisation_suspend(organisation=Organisation.objects.get(pk=org.pk), reason=REASON, by=operator)
            outcome["done"] = True
        finally:
            connection.close()

    with transaction.atomic():
        grant = grant_authorize(person=person, application=shop_app, scopes=["profile:read"], duration_days=7)
        worker = threading.Thread(target=suspend)
        worker.start()
        started.wait(5)
        worker.join(1.0)
        # Still waiting on the grant's share lock: nothing is suspended yet.
        assert worker.is_alive() and "done" not in outcome
    worker.join(20)
    assert outcome == {"done": True}
    assert Reminder.objects.filter(kind="vendor_suspended", subject=str(grant.pk)).count() == 1
    assert LedgerEntry.objects.get(kind="vendor.org_suspended").record_count == 1
