"""Recalls: publish, match through the blind indexes, alert the right people, tell the publisher little."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client

from audit.models import LedgerEntry
from consent.models import Grant
from devtools.records import make_gtin
from personal_data.services import preferences_update, record_create
from tests.conftest import purchase_data
from tests.consent.conftest import SECRET, Flow, basic, make_app
from vendors.models import Alert, Organisation, Recall
from vendors.recalls import bucket, recall_match

PEANUT = "5012345001234"
OTHER = "4006381333931"
RECALL = {
    "title": "Peanut butter recall",
    "message": "Salmonella risk. Do not eat.",
    "severity": "warning",
    "gtins": [PEANUT],
    "lots": ["L4471"],
    "purchased_from": "2026-01-01",
    "purchased_to": "2026-06-30",
    "remedy_url": "https://acme.example/recall",
}


@pytest.fixture
def recall_token(client: Client, shop_org: Organisation) -> str:
    app = make_app(shop_org, name="Recalls", grant_type="client-credentials", scopes=("recalls:publish",))
    response = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "recalls:publish"},
        **basic(app.client_id, SECRET),
    )
    return response.json()["access_token"]


def _publish(token: str, body: dict[str, Any]) -> Any:
    return Client().post(
        "/api/v1/recalls", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def _people(db: Any) -> dict[str, Any]:
    from portal.services import person_signup

    people = {
        name: person_signup(email=f"{name}@example.com", password="correct horse battery staple")
        for name in ("match", "gift", "hidden", "appliance", "other_lot", "too_old", "other_product")
    }
    record_create(owner=people["match"], category="purchases", data=purchase_data(gtin=PEANUT, lot="L4471"))
    record_create(
        owner=people["gift"],
        category="purchases",
        data=purchase_data(gtin=PEANUT, lot="l4471 ", is_gift=True),
    )
    record_create(
        owner=people["hidden"],
        category="purchases",
        data=purchase_data(gtin=PEANUT, lot="L4471", shared=False),
    )
    record_create(
        owner=people["other_lot"], category="purchases", data=purchase_data(gtin=PEANUT, lot="L9999")
    )
    record_create(
        owner=people["too_old"],
        category="purchases",
        data=purchase_data(gtin=PEANUT, lot="L4471", purchased_on="2025-12-01"),
    )
    record_create(
        owner=people["other_product"], category="purchases", data=purchase_data(gtin=OTHER, lot="L4471")
    )
    record_create(owner=people["appliance"], category="appliances", data={"kind": "fridge", "gtin": PEANUT})
    return people


def test_recall_alerts_exactly_the_right_people(db: Any, recall_token: str) -> None:
    people = _people(db)
    response = _publish(recall_token, RECALL)
    assert response.status_code == 202 and set(response.json()) == {"id", "status"}
    alerted = set(Alert.objects.values_list("person__email", flat=True))
    assert alerted == {"match@example.com", "gift@example.com", "hidden@example.com"}
    # Without lots, the appliance matches by product code too.
    _publish(
        recall_token, {**RECALL, "lots": [], "purchased_from": None, "purchased_to": None, "title": "All"}
    )
    second = Recall.objects.get(title="All")
    assert set(Alert.objects.filter(recall=second).values_list("person__email", flat=True)) == {
        "match@example.com",
        "gift@example.com",
        "hidden@example.com",
        "appliance@example.com",
        "other_lot@example.com",
        "too_old@example.com",
    }
    assert people["match"].alerts.count() == 2


def test_publisher_sees_only_a_bucket(db: Any, recall_token: str) -> None:
    _people(db)
    recall_id = _publish(recall_token, RECALL).json()["id"]
    body = Client().get(f"/api/v1/recalls/{recall_id}", HTTP_AUTHORIZATION=f"Bearer {recall_token}").json()
    assert body == {"id": recall_id, "status": "done", "matched": "0-9"}
    entries = LedgerEntry.objects.filter(kind__startswith="recall.")
    assert [e.kind for e in entries.order_by("id")] == ["recall.published", "recall.matched"]
    assert all(e.subject == "" for e in entries)  # no per-person entries for the publisher


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, "0-9"),
        (1, "0-9"),
        (9, "0-9"),
        (10, "10-99"),
        (99, "10-99"),
        (100, "100-999"),
        (999, "100-999"),
        (1000, "1000-9999"),
        (12345, "10000-99999"),
    ],
)
def test_buckets(count: int, expected: str) -> None:
    assert bucket(count) == expected


def test_another_organisation_cannot_read_the_recall(db: Any, recall_token: str, stranger_app: Any) -> None:
    recall_id = _publish(recall_token, RECALL).json()["id"]
    org = stranger_app.organisation
    org.verified = True
    org.save(update_fields=["verified"])
    other = make_app(
        org,
        name="Their recalls",
        grant_type="client-credentials",
        scopes=("recalls:publish",),
        secret="other-" + "y" * 40,
    )
    token = (
        Client()
        .post(
            "/o/token/",
            {"grant_type": "client_credentials", "scope": "recalls:publish"},
            **basic(other.client_id, "other-" + "y" * 40),
        )
        .json()["access_token"]
    )
    response = Client().get(f"/api/v1/recalls/{recall_id}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 404 and response.json()["type"].endswith("/problems/not-found")


def test_a_crash_midway_and_a_rerun_create_no_duplicates(
    db: Any, recall_token: str, monkeypatch: Any
) -> None:
    _people(db)
    import vendors.recalls as recalls

    real = recalls.Alert.objects.bulk_create
    calls = {"n": 0}

    def crash_after_first_batch(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker died")
        return real(*args, **kwargs)

    monkeypatch.setattr(recalls, "ALERT_BATCH", 1)
    monkeypatch.setattr(recalls.Alert.objects, "bulk_create", crash_after_first_batch)
    # The task backend records the crash as a failed task; the recall is left half matched.
    assert _publish(recall_token, RECALL).status_code == 202
    recall = Recall.objects.get()
    assert recall.status == "matching" and Alert.objects.count() == 1
    monkeypatch.setattr(recalls.Alert.objects, "bulk_create", real)
    assert recall_match(recall_id=recall.pk) == 3
    recall_match(recall_id=recall.pk)  # and once more for good measure
    assert Alert.objects.count() == 3
    assert LedgerEntry.objects.filter(kind="recall.matched").count() == 1
    assert len(mail.outbox) == 3  # each person told once


def test_email_respects_contact_preferences_except_for_danger(db: Any, recall_token: str) -> None:
    people = _people(db)
    preferences_update(owner=people["match"], data={"contact": {"email": False, "safety_alerts_only": False}})
    preferences_update(owner=people["gift"], data={"contact": {"email": True, "safety_alerts_only": True}})
    _publish(recall_token, RECALL)
    assert sorted(m.to[0] for m in mail.outbox) == ["hidden@example.com"]
    mail.outbox.clear()
    _publish(recall_token, {**RECALL, "severity": "danger", "title": "Danger"})
    assert sorted(m.to[0] for m in mail.outbox) == [
        "gift@example.com",
        "hidden@example.com",
        "match@example.com",
    ]
    assert "Crunchy" not in mail.outbox[0].body  # no record content in e-mail


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"gtins": ["5012345001235"]}, "gtins.0"),
        ({"gtins": [PEANUT] * 0}, "gtins"),
        ({"gtins": [make_gtin(str(10**11 + n)) for n in range(1001)]}, "gtins"),
        ({"remedy_url": "http://acme.example/recall"}, "remedy_url"),
        ({"remedy_url": "https://acme.example@evil.example/recall"}, "remedy_url"),
        ({"remedy_url": "javascript:alert(1)"}, "remedy_url"),
        ({"severity": "meh"}, "severity"),
        ({"purchased_from": "2026-07-01"}, "purchased_to"),
        ({"title": "x" * 201}, "title"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_recalls_are_refused(db: Any, recall_token: str, change: dict[str, Any], field: str) -> None:
    response = _publish(recall_token, {**RECALL, **change})
    assert response.status_code == 400
    body = response.json()
    assert body["type"].endswith("/problems/invalid-input") and field in body["errors"]
    assert not Recall.objects.exists()


def test_a_person_grant_token_cannot_publish(flow: Flow) -> None:
    token = flow.tokens()["access_token"]
    response = _publish(token, RECALL)
    assert response.status_code == 403 and response.json()["scope"] == "recalls:publish"
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]
    assert Client().post("/api/v1/recalls", RECALL, content_type="application/json").status_code == 401


def test_alerts_page_and_letting_the_publisher_contact_me(
    client: Client, db: Any, recall_token: str, shop_app: Any
) -> None:
    people = _people(db)
    other_purchase = record_create(
        owner=people["match"], category="purchases", data=purchase_data(gtin=OTHER, product_name="Bread")
    )
    _publish(recall_token, RECALL)
    client.force_login(people["match"])
    assert "1 new recall alert" in client.get("/dashboard/").content.decode()
    page = client.get("/alerts/").content.decode()
    assert (
        "Peanut butter recall" in page
        and "Crunchy Peanut Butter" in page
        and "https://acme.example/recall" in page
    )
    assert "new recall alert" not in client.get("/dashboard/").content.decode()  # read now

    alert = Alert.objects.get(person=people["match"])
    response = client.post(f"/alerts/{alert.pk}/contact/")
    assert response.status_code == 302
    grant = Grant.objects.get(person=people["match"])
    assert grant.scopes == ["purchases:read"] and grant.application == shop_app
    assert grant.record_ids == alert.matched["purchases"] and grant.receipts.count() == 1
    assert (grant.ends_at - grant.created_at).days == 30
    from consent.selectors import grant_store_filters
    from personal_data.selectors import records_shared_qs

    visible = {
        str(pk)
        for pk in records_shared_qs(
            owner=people["match"], category="purchases", **grant_store_filters(grant)
        ).values_list("pk", flat=True)
    }
    assert visible == set(alert.matched["purchases"]) and other_purchase["id"] not in visible
    client.force_login(people["gift"])
    assert client.post(f"/alerts/{alert.pk}/contact/").status_code == 404


def test_the_navigation_counts_unread_alerts(client: Client, db: Any, recall_token: str) -> None:
    people = _people(db)
    _publish(recall_token, RECALL)
    client.force_login(people["match"])
    # One "Inbox" item counts alerts (and reminders); /alerts/ still lists the alerts.
    nav = client.get("/dashboard/").content.decode().split("</nav>")[0]
    assert 'Inbox <span class="count-badge">1<span class="sr-only"> unread</span></span>' in nav
    assert client.get("/alerts/").status_code == 200
    assert "count-badge" not in client.get("/dashboard/").content.decode().split("</nav>")[0]


def test_a_publisher_already_granted_is_not_offered_a_second_grant(
    client: Client, db: Any, recall_token: str, shop_app: Any
) -> None:
    from consent.services import grant_authorize

    people = _people(db)
    grant_authorize(person=people["match"], application=shop_app, scopes=["closet:read"], duration_days=30)
    _publish(recall_token, RECALL)
    client.force_login(people["match"])
    page = client.get("/alerts/").content.decode()
    assert "You already share data with Acme Shop" in page
    assert "contact me about this recall" not in page


def test_vendor_portal_publishes_and_lists_recalls(client: Client, db: Any, shop_org: Organisation) -> None:
    from accounts.services import account_upsert
    from vendors.models import Membership

    make_app(shop_org, name="Recalls", grant_type="client-credentials", scopes=("recalls:publish",))
    staff, _ = account_upsert(email="staff@acme.example", password="pw-for-staff-123", role="vendor_staff")
    Membership.objects.create(user=staff, organisation=shop_org)
    _people(db)
    client.force_login(staff)
    bad = client.post("/vendor/recalls/new/", {**RECALL, "gtins": "5012345001235", "lots": "L4471"})
    assert bad.status_code == 400 and "check digit" in bad.content.decode()
    ok = client.post("/vendor/recalls/new/", {**RECALL, "gtins": PEANUT, "lots": "L4471"})
    assert ok.status_code == 302
    portal = client.get("/vendor/").content.decode()
    assert "Peanut butter recall" in portal and "0-9" in portal


# Only verified organisations publish; alerts say who sent them (#13 item 6).


def _unverify(org: Organisation, operator: Any) -> None:
    from vendors.services import organisation_verify

    organisation_verify(organisation=org, by=operator, verified=False)


def _org_token(org: Organisation) -> str:
    """A recalls:publish token minted straight into the database, as if issued before a change."""
    import datetime as dt
    import secrets

    from django.utils import timezone

    from consent.models import AccessToken

    app = make_app(
        org,
        name=f"{org.name} recalls",
        grant_type="client-credentials",
        scopes=("recalls:publish",),
        secret=secrets.token_urlsafe(40),
    )
    raw = secrets.token_urlsafe(30)
    AccessToken.objects.create(
        user=None,
        application=app,
        token=raw,
        scope="recalls:publish",
        expires=timezone.now() + dt.timedelta(minutes=15),
    )
    return raw


def test_an_unverified_organisation_cannot_publish(db: Any, stranger_app: Any) -> None:
    assert not stranger_app.organisation.verified
    token = _org_token(stranger_app.organisation)
    _people(db)
    response = _publish(token, RECALL)
    assert response.status_code == 403 and response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/problems/organisation-unverified") and "verified" in body["detail"]
    assert "scope" not in body  # not a scope problem: asking for another scope would not help
    assert not Recall.objects.exists() and not Alert.objects.exists() and not mail.outbox
    assert not LedgerEntry.objects.filter(kind="recall.published").exists()


def test_withdrawing_verification_stops_tokens_already_issued(
    db: Any, recall_token: str, shop_org: Organisation, operator: Any
) -> None:
    recall_id = _publish(recall_token, RECALL).json()["id"]
    _unverify(shop_org, operator)
    for response in (
        _publish(recall_token, {**RECALL, "title": "Again"}),
        Client().get(f"/api/v1/recalls/{recall_id}", HTTP_AUTHORIZATION=f"Bearer {recall_token}"),
    ):
        assert response.status_code == 403
        assert response.json()["type"].endswith("/problems/organisation-unverified")
    assert Recall.objects.count() == 1


def test_an_unverified_organisation_gets_no_recall_token(client: Client, stranger_app: Any) -> None:
    app = make_app(
        stranger_app.organisation,
        name="Their recalls",
        grant_type="client-credentials",
        scopes=("recalls:publish",),
        secret="other-" + "z" * 40,
    )
    response = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "recalls:publish"},
        **basic(app.client_id, "other-" + "z" * 40),
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "unauthorized_client" and "verified" in body["error_description"]
    assert "access_token" not in body


def test_the_service_refuses_an_unverified_organisation(db: Any, stranger_app: Any) -> None:
    from django.core.exceptions import PermissionDenied

    from vendors.recalls import recall_publish

    with pytest.raises(PermissionDenied, match="verified"):
        recall_publish(application=stranger_app, data=RECALL)
    assert not Recall.objects.exists()


def test_the_vendor_portal_does_not_offer_publishing_to_an_unverified_organisation(
    client: Client, db: Any, stranger_app: Any
) -> None:
    from accounts.services import account_upsert
    from vendors.models import Membership

    org = stranger_app.organisation
    make_app(
        org, name="Recalls", grant_type="client-credentials", scopes=("recalls:publish",), secret="s" * 40
    )
    staff, _ = account_upsert(
        email="staff@stranger.example", password="pw-for-staff-123", role="vendor_staff"
    )
    Membership.objects.create(user=staff, organisation=org)
    client.force_login(staff)
    response = client.post("/vendor/recalls/new/", {**RECALL, "gtins": PEANUT, "lots": "L4471"})
    assert response.status_code == 403 and "verified" in response.content.decode()
    assert not Recall.objects.exists()
    assert 'href="/vendor/recalls/new/"' not in client.get("/vendor/").content.decode()


def test_a_recall_matching_nobody_and_one_matching_three_answer_alike(db: Any, recall_token: str) -> None:
    _people(db)  # three people hold lot L4471 of the peanut butter bought in the window

    def matched(body: dict[str, Any]) -> str:
        recall_id = _publish(recall_token, body).json()["id"]
        response = Client().get(f"/api/v1/recalls/{recall_id}", HTTP_AUTHORIZATION=f"Bearer {recall_token}")
        return str(response.json()["matched"])

    three = matched(RECALL)
    nobody = matched(
        {**RECALL, "title": "Nobody", "purchased_from": "2020-01-01", "purchased_to": "2020-01-02"}
    )
    assert Recall.objects.get(title="Nobody").matched_people == 0
    assert Recall.objects.get(title=RECALL["title"]).matched_people == 3
    assert three == nobody == "0-9"


def _alert_page(client: Client, person: Any) -> str:
    client.force_login(person)
    return client.get("/alerts/").content.decode()


def test_the_alert_says_who_sent_it_whether_verified_and_where_the_link_leads(
    client: Client, db: Any, recall_token: str, shop_org: Organisation, operator: Any
) -> None:
    people = _people(db)
    _publish(recall_token, {**RECALL, "remedy_url": "https://recalls.acme.example/L4471?ref=vrm"})
    page = _alert_page(client, people["match"])
    assert "Sent by <strong>Acme Shop</strong>" in page
    assert "verified</span> The vrm operator has checked who this organisation is" in page
    assert "not verified" not in page
    assert "leads to <strong>recalls.acme.example</strong>" in page
    email = next(m for m in mail.outbox if m.to == ["hidden@example.com"])
    assert "Sent by Acme Shop, an organisation verified by the vrm operator." in email.body
    assert "this link leads to recalls.acme.example" in email.body

    # Verification withdrawn later: every alert of theirs now says so.
    _unverify(shop_org, operator)
    page = _alert_page(client, people["match"])
    assert "Sent by <strong>Acme Shop</strong>" in page
    assert "not verified</span> The vrm operator has not checked who this organisation is" in page


def test_a_look_alike_remedy_domain_is_shown_in_its_ascii_form(
    client: Client, db: Any, recall_token: str
) -> None:
    people = _people(db)
    # "аcme.example" with a Cyrillic "а": shown as xn--, not as a twin of acme.example.
    _publish(recall_token, {**RECALL, "remedy_url": "https://\u0430cme.example/recall"})
    page = _alert_page(client, people["match"])
    assert "leads to <strong>xn--cme-5cd.example</strong>" in page


@pytest.mark.parametrize(
    ("accepts", "allow_without", "outcome"),
    [
        (["sd-goods-services"], False, "agreement"),  # accepted: the answer stands under it
        (["shared-intent"], True, "no agreement"),  # only an alternative, and she allows none
        (["shared-intent"], False, "refused"),  # only an alternative, and she requires terms
        ([], False, "refused"),
    ],
)
def test_a_recall_answer_keeps_to_the_person_s_terms(
    client: Client,
    db: Any,
    recall_token: str,
    shop_app: Any,
    accepts: list[str],
    allow_without: bool,
    outcome: str,
) -> None:
    from consent.models import TermsChoice

    people = _people(db)
    person = people["match"]
    TermsChoice.objects.create(
        person=person, proffered=["sd-goods-services"], allow_without_terms=allow_without
    )
    shop_app.organisation.accepted_terms = accepts
    shop_app.organisation.save(update_fields=["accepted_terms"])
    _publish(recall_token, RECALL)
    client.force_login(person)
    alert = Alert.objects.get(person=person)
    response = client.post(f"/alerts/{alert.pk}/contact/", follow=True)
    grant = Grant.objects.filter(person=person).first()
    if outcome == "refused":
        assert grant is None and "accepts none of your terms" in response.content.decode()
        assert not LedgerEntry.objects.filter(kind__startswith="terms.").exists()
        return
    assert grant is not None
    if outcome == "agreement":
        assert grant.agreement is not None and grant.agreement.agreement_id == "sd-goods-services"
        assert grant.receipts.get().document["agreement"]["id"] == "sd-goods-services"
    else:
        assert grant.agreement is None
        assert LedgerEntry.objects.filter(kind="terms.declined", grant_id=str(grant.pk)).exists()
