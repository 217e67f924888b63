"""Auditors review vendors from people's reports and the ledger's counts, never seeing a person
(auditor/abuse.py, the vendors pages of auditor/views.py, docs/abuse.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import LedgerEntry, LedgerVendorDay
from auditor.abuse import vendors_for_review
from consent.models import Grant
from consent.services import grant_authorize
from personal_data.pseudonyms import person_subject
from tests.consent.conftest import make_app
from tests.vendors_api.conftest import bearer, issue_token
from vendors.messages import message_report, message_send
from vendors.models import Application, Case, Membership, Organisation, Report
from vendors.reports import report_create

SHARED = "Emails me twice a day about things I never bought"
UNSHARED = "My neighbour works there and can see what I buy"


@pytest.fixture
def auditor_client(auditor: Any) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.force_login(auditor)
    return client


@pytest.fixture
def grant(alice: Any, shop_app: Application) -> Grant:
    return grant_authorize(
        person=alice, application=shop_app, scopes=["profile:read", "messages:send"], duration_days=30
    )


@pytest.fixture
def reported(grant: Grant, bob: Any, shop_app: Application, stranger_app: Application) -> dict[str, Any]:
    """alice reports Acme twice (one shared); bob's grant to the stranger is never reported."""
    grant_authorize(person=bob, application=stranger_app, scopes=["profile:read"], duration_days=30)
    org = shop_app.organisation
    shared = report_create(
        person=grant.person,
        organisation=org,
        source=Report.Source.GRANT,
        source_ref=str(grant.pk),
        reason=Report.Reason.SPAM,
        text=SHARED,
        shared=True,
    )
    data = {"kind": "offer", "title": "t", "body": "b"}
    message = message_send(grant=grant, application=shop_app, data=data)
    message_report(message=message, reason="misleading", text=UNSHARED, shared=False)
    unshared = Report.objects.get(source="message")
    return {"org": org, "shared": shared, "unshared": unshared, "message": message}


def _forbidden_in(html: str, alice: Any, reported: dict[str, Any]) -> None:
    for secret in (
        alice.email,
        alice.display_name,
        person_subject(alice),
        UNSHARED,
        str(reported["unshared"].source_ref),
        str(reported["shared"].source_ref),
        str(reported["shared"].pk),
        str(reported["unshared"].pk),
    ):
        assert secret and secret not in html, secret


def test_the_list_ranks_the_reported_vendor_first_with_its_reasons(
    auditor_client: Client, reported: dict[str, Any], alice: Any
) -> None:
    response = auditor_client.get("/audit/vendors/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("Acme Shop") < html.index("Stranger Ltd")
    assert "Spam: 1" in html and "Not what it said: 1" in html
    assert "Vendors under review" in html and 'aria-current="page"' in html
    _forbidden_in(html, alice, reported)
    first = response.context["reviews"][0]
    assert (first.organisation.name, first.reports.last_30, first.reports.last_90) == ("Acme Shop", 2, 2)
    assert first.live_grants == 1 and first.messages == 1


def test_the_vendor_page_shows_shared_words_only_and_never_the_person(
    auditor_client: Client, reported: dict[str, Any], alice: Any
) -> None:
    html = auditor_client.get(f"/audit/vendors/{reported['org'].pk}/").content.decode()
    assert SHARED in html and "Spam" in html
    assert "Reports per day" in html
    _forbidden_in(html, alice, reported)


def test_reads_per_grant_are_flagged_against_the_vendors_history_and_its_peers(
    grant: Grant, shop_app: Application, stranger_app: Application, bob: Any
) -> None:
    grant_authorize(person=bob, application=stranger_app, scopes=["profile:read"], duration_days=30)
    today = timezone.now().astimezone(dt.UTC).date()
    # Its usual: 90 reads in the 90 days before the last 30; the stranger reads 30 a month.
    LedgerVendorDay.objects.create(vendor=shop_app.client_id, day=today - dt.timedelta(days=60), reads=90)
    LedgerVendorDay.objects.create(vendor=stranger_app.client_id, day=today - dt.timedelta(days=3), reads=30)
    LedgerVendorDay.objects.create(
        vendor=shop_app.client_id, day=today - dt.timedelta(days=2), reads=300, denied=11
    )
    reviews = {r.organisation.name: r for r in vendors_for_review()}
    acme = reviews["Acme Shop"]
    assert (acme.reads, acme.reads_before, acme.denied, acme.per_grant) == (300, 90, 11, 300)
    assert acme.own_ratio == pytest.approx(10.0)
    assert acme.peer_median == 30
    assert any("10.0 times as often" in f for f in acme.flags)
    assert any("10.0 times the median of other vendors" in f for f in acme.flags)
    assert any("refused 11 requests" in f for f in acme.flags)
    assert reviews["Stranger Ltd"].flags == []
    assert [r.organisation.name for r in vendors_for_review()][0] == "Acme Shop"


def test_the_list_counts_in_a_fixed_number_of_queries(
    auditor_client: Client, reported: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    for n in range(10):
        org = Organisation.objects.create(
            name=f"Shop {n}", website="https://s.example", privacy_contact="p@s.example"
        )
        make_app(org, name=f"App {n}", secret=f"s{n}-" + "q" * 40)
    with django_assert_max_num_queries(20):
        assert auditor_client.get("/audit/vendors/").status_code == 200


def test_an_auditor_opens_and_closes_a_case(
    auditor_client: Client, auditor: Any, shop_org: Organisation
) -> None:
    url = f"/audit/vendors/{shop_org.pk}/"
    assert auditor_client.post(url, {"finding": "x" * 5001}).status_code == 400
    assert auditor_client.post(url, {"finding": ""}).status_code == 400
    assert not Case.objects.exists()
    response = auditor_client.post(url, {"finding": "Reads every record every night."})
    case = Case.objects.get()
    assert response["Location"] == f"/audit/vendors/{shop_org.pk}/cases/{case.pk}/"
    assert "Reads every record every night." in auditor_client.get(url).content.decode()
    assert auditor_client.post(response["Location"], {"outcome": "Suspended."}).status_code == 302
    case.refresh_from_db()
    assert case.status == "closed" and case.outcome == "Suspended." and case.closed_by == auditor
    page = auditor_client.get(response["Location"]).content.decode()
    assert "Close the case" not in page and "Suspended." in page
    kinds = list(LedgerEntry.objects.filter(kind__startswith="audit.case").values_list("kind", "actor_id"))
    assert kinds == [("audit.case_opened", str(auditor.pk)), ("audit.case_closed", str(auditor.pk))]


def test_the_case_forms_need_the_csrf_token(auditor: Any, shop_org: Organisation) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(auditor)
    assert client.post(f"/audit/vendors/{shop_org.pk}/", {"finding": "x"}).status_code == 403
    assert not Case.objects.exists()


def test_an_unknown_vendor_or_case_is_not_found(auditor_client: Client, shop_org: Organisation) -> None:
    assert auditor_client.get("/audit/vendors/not-an-id/").status_code == 404
    assert auditor_client.get("/audit/vendors/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert auditor_client.get(f"/audit/vendors/{shop_org.pk}/cases/nope/").status_code == 404


def test_the_vendor_sees_nothing_of_reports(
    reported: dict[str, Any], vendor_staff: Any, grant: Grant, shop_app: Application
) -> None:
    Membership.objects.create(user=vendor_staff, organisation=reported["org"])
    staff = Client()
    staff.force_login(vendor_staff)
    for url in ("/vendors/", f"/vendors/apps/{shop_app.client_id}/"):
        html = staff.get(url).content.decode()
        assert "report" not in html.lower() and SHARED not in html, url
    token = issue_token(grant)
    body = Client().get(f"/api/v1/messages/{reported['message'].pk}", **bearer(token)).content.decode()
    assert "report" not in body.lower() and "misleading" not in body


def test_the_ledger_entry_of_a_report_names_no_one(reported: dict[str, Any], alice: Any) -> None:
    entries = LedgerEntry.objects.filter(kind="vendor.reported")
    assert entries.count() == 2
    for entry in entries:
        assert entry.subject == "" and entry.grant_id == "" and entry.actor_id == str(reported["org"].pk)
