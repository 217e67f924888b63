"""The auditor portal: who may see it, what it shows (never personal content), filters, flags,
exports and ledger verification, over a realistic ledger of two vendors and two people."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.test import Client
from django.urls import URLPattern, get_resolver, reverse

from audit.models import LedgerEntry
from audit.services import ledger_append, ledger_seal
from auditor import selectors
from auditor.exports import GRANT_COLUMNS, csv_cell
from personal_data.pseudonyms import person_subject
from personal_data.services import record_create
from tests.conftest import PASSWORD, purchase_data
from vendors.models import Organisation
from vendors.reports import case_open

K = LedgerEntry.Kind
CLIENT, ORG, PERSON, SYSTEM = "client", "vendor_org", "person", "system"
SHOP, PHARMA = "client-shop", "org-pharma"
G_SHOP_ALICE, G_SHOP_BOB, G_PHARMA_ALICE = "grant-shop-alice", "grant-shop-bob", "grant-pharma-alice"
START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
PERSONAL = (
    "Alice Liddell",
    "Bob Builder",
    "alice@example.com",
    "bob@example.com",
    "@example.com",
    "Crunchy Peanut Butter",
    "Green Grocer",
    "Nutty Farms",
    "for the pantry",
    "5012345001234",
)


def day(n: int) -> dt.date:
    return (START + dt.timedelta(days=n)).date()


@dataclass
class Scenario:
    alice: str  # ledger pseudonyms
    bob: str
    alice_records: list[str]


def _at(n: int, hour: int) -> Any:
    return time_machine.travel(START + dt.timedelta(days=n, hours=hour), tick=False)


def _log(n: int, hour: int, count: int = 1, **fields: Any) -> None:
    with _at(n, hour), transaction.atomic():
        for _ in range(count):
            ledger_append(**fields)


@pytest.fixture
def scenario(alice: Any, bob: Any) -> Scenario:
    """Build three weeks of ledger: two vendors, three grants, reads, denials, a spike, a late read.

    client-shop: grant for alice (created day 0, narrowed day 2) and for bob (created day 0,
    revoked by bob day 5, read once more day 6); 5 reads of 2 records a day for alice on days
    1-14 and 40 on day 15 (a spike), 1 read a day for bob on days 1-4; 2 writes and 3 checks on
    day 2; 12 denied requests on day 3. org-pharma: grant for alice (day 1, expired day 20),
    3 reads a day on days 1-15, 10 denied requests on day 4 (not above the threshold).
    """
    records = [record_create(owner=alice, category="purchases", data=purchase_data())["id"] for _ in range(2)]
    record_create(owner=bob, category="purchases", data=purchase_data(product_name="Nutty Farms Oil"))
    s = Scenario(
        alice=person_subject(alice), bob=person_subject(bob), alice_records=[str(r) for r in records]
    )
    shop_alice: dict[str, Any] = {
        "actor_type": CLIENT,
        "actor_id": SHOP,
        "subject": s.alice,
        "grant_id": G_SHOP_ALICE,
    }
    shop_bob: dict[str, Any] = {
        "actor_type": CLIENT,
        "actor_id": SHOP,
        "subject": s.bob,
        "grant_id": G_SHOP_BOB,
    }
    pharma: dict[str, Any] = {
        "actor_type": ORG,
        "actor_id": PHARMA,
        "subject": s.alice,
        "grant_id": G_PHARMA_ALICE,
    }
    read: dict[str, Any] = {
        "kind": K.ACCESS_READ,
        "scopes": ["purchases:read"],
        "record_ids": s.alice_records,
    }

    _log(0, 9, kind=K.GRANT_CREATED, scopes=["purchases:read", "purchases:check"], **shop_alice)
    _log(0, 10, kind=K.GRANT_CREATED, scopes=["purchases:read"], **shop_bob)
    _log(1, 8, kind=K.GRANT_CREATED, scopes=["prescriptions:read"], **pharma)
    _log(2, 8, kind=K.GRANT_AMENDED, scopes=["purchases:read"], **shop_alice)
    for n in range(1, 15):
        _log(n, 12, 5, **read, **shop_alice)
    for n in range(1, 5):
        _log(n, 13, 1, **{**read, "record_ids": [], "record_count": 3}, **shop_bob)
    for n in range(1, 16):
        _log(n, 14, 3, kind=K.ACCESS_READ, scopes=["prescriptions:read"], record_count=1, **pharma)
    _log(15, 12, 40, **read, **shop_alice)
    _log(2, 15, 2, kind=K.ACCESS_WRITE, scopes=["purchases:write"], record_count=1, **shop_alice)
    _log(2, 16, 3, kind=K.ACCESS_CHECK, scopes=["purchases:check"], **shop_alice)
    _log(3, 17, 12, kind=K.ACCESS_DENIED, outcome="denied", reason="insufficient_scope", **shop_alice)
    _log(4, 17, 10, kind=K.ACCESS_DENIED, outcome="denied", reason="insufficient_scope", **pharma)
    _log(5, 9, kind=K.GRANT_REVOKED, actor_type=PERSON, actor_id=s.bob, subject=s.bob, grant_id=G_SHOP_BOB)
    _log(6, 11, 1, **{**read, "record_ids": [], "record_count": 3}, **shop_bob)
    _log(
        20,
        0,
        kind=K.GRANT_EXPIRED,
        actor_type=SYSTEM,
        actor_id="expire_grants",
        subject=s.alice,
        grant_id=G_PHARMA_ALICE,
    )
    return s


@pytest.fixture
def auditor_client(auditor: Any) -> Client:
    client = Client()
    client.force_login(auditor)
    return client


def _audit_urls(
    grant_id: str, report: str = "no-such-report", objects: dict[str, str] | None = None
) -> list[str]:
    """Every URL of the `audit` namespace, parameters filled in with a real grant id and report
    token, and the organisation and case ids in `objects` (unknown ones if not given)."""
    _, resolver = get_resolver().namespace_dict["audit"]
    given = {"token": report, "organisation_id": str(uuid.uuid4()), "case_id": str(uuid.uuid4())}
    given.update(objects or {})
    urls = []
    for pattern in resolver.url_patterns:
        assert isinstance(pattern, URLPattern), "the audit URLconf is expected to be flat"
        kwargs = {name: given.get(name, grant_id) for name in pattern.pattern.converters}
        urls.append(reverse(f"audit:{pattern.name}", kwargs=kwargs))
    return urls


def _body(response: Any) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def _grant_ids(response: Any) -> list[str]:
    return [row["grant_id"] for row in response.context["page"]]


# --- who may see it --------------------------------------------------------------------------


def test_the_url_list_covers_every_page_and_export(db: Any) -> None:
    urls = _audit_urls(G_SHOP_ALICE)
    assert len(urls) >= 11
    assert f"/audit/grants/{G_SHOP_ALICE}/" in urls
    assert "/audit/entries/export.json" in urls


def test_anonymous_visitors_are_sent_to_log_in(scenario: Scenario) -> None:
    client = Client()
    for url in _audit_urls(G_SHOP_ALICE):
        for response in (client.get(url), client.post(url)):
            assert response.status_code == 302, url
            assert response["Location"].startswith("/accounts/login/?next="), url


@pytest.mark.parametrize("persona", ["alice", "vendor_staff", "operator"])
def test_other_roles_are_refused_everywhere(scenario: Scenario, persona: str, request: Any) -> None:
    client = Client()
    client.force_login(request.getfixturevalue(persona))
    for url in _audit_urls(G_SHOP_ALICE):
        assert client.get(url).status_code == 403, url
        assert client.post(url).status_code == 403, url


def test_an_auditor_may_open_every_page_and_export(
    scenario: Scenario, auditor_client: Client, auditor: Any
) -> None:
    auditor_client.post(reverse("audit:portal"), {"checkpoint": ""})
    report = auditor_client.session["audit_reports"][-1]["token"]
    organisation = Organisation.objects.create(
        name="Reviewed Shop", website="https://reviewed.example", privacy_contact="p@reviewed.example"
    )
    case = case_open(organisation=organisation, finding="Reads too much.", by=auditor)
    objects = {"organisation_id": str(organisation.pk), "case_id": str(case.pk)}
    for url in _audit_urls(G_SHOP_ALICE, report, objects):
        assert auditor_client.get(url).status_code == 200, url


# --- no personal content ---------------------------------------------------------------------


def test_an_auditor_never_sees_personal_content(scenario: Scenario, auditor_client: Client) -> None:
    ledger_seal()
    urls = _audit_urls(G_SHOP_ALICE) + [
        reverse("audit:grant", args=[G_SHOP_BOB]),
        reverse("audit:grant", args=[G_PHARMA_ALICE]),
        f"/audit/entries/?subject={scenario.alice}",
        f"/audit/activity/?vendor={SHOP}",
    ]
    pages = [_body(auditor_client.get(url)) for url in urls]
    pages.append(_body(auditor_client.post(reverse("audit:portal"))))
    for url, body in zip([*urls, "verify"], pages, strict=True):
        for text in PERSONAL:
            assert text.lower() not in body.lower(), f"{text!r} shown at {url}"
    # The pages do show the pseudonyms the ledger holds.
    assert scenario.alice in pages[urls.index(reverse("audit:entries"))]


# --- overview and verification ---------------------------------------------------------------


def test_overview_shows_the_ledger_status(scenario: Scenario, auditor_client: Client) -> None:
    total = LedgerEntry.objects.count()
    before = auditor_client.get(reverse("audit:portal")).context["status"]
    assert (before.total_entries, before.sealed_size, before.unsealed_entries) == (total, 0, total)
    assert before.oldest_unsealed_at == START + dt.timedelta(hours=9)
    ledger_seal()
    _log(21, 9, 2, kind=K.ACCESS_READ, actor_type=CLIENT, actor_id=SHOP, grant_id=G_SHOP_ALICE)
    status = auditor_client.get(reverse("audit:portal")).context["status"]
    assert (status.total_entries, status.sealed_size, status.unsealed_entries) == (total + 2, total, 2)
    assert status.oldest_unsealed_at == START + dt.timedelta(days=21, hours=9)
    assert status.checkpoint_at is not None


def test_verify_now_reports_an_intact_ledger(scenario: Scenario, auditor_client: Client) -> None:
    ledger_seal()
    response = auditor_client.post(reverse("audit:portal"))
    assert response.status_code == 200
    assert response.context["result"].ok
    body = response.content.decode()
    assert "The ledger is intact." in body
    assert f"{LedgerEntry.objects.count()} sealed entries read and hashed again" in body
    assert "1 checkpoint: root recomputed, signature verified" in body


def test_verify_now_needs_the_csrf_token(scenario: Scenario, auditor: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(auditor)
    assert client.post(reverse("audit:portal")).status_code == 403


@pytest.mark.skipif(connection.vendor != "postgresql", reason="tampering needs PostgreSQL triggers off")
def test_verify_now_names_the_first_problem(
    scenario: Scenario, auditor_client: Client, triggers_off: None
) -> None:
    ledger_seal()
    victim = LedgerEntry.objects.filter(kind=K.ACCESS_DENIED).order_by("id").first()
    assert victim is not None
    LedgerEntry.objects.filter(pk=victim.pk).update(outcome="allowed")
    response = auditor_client.post(reverse("audit:portal"))
    assert not response.context["result"].ok
    body = response.content.decode()
    assert "The ledger has a problem." in body
    assert f"entry {victim.pk} at leaf index" in body


# --- grants ----------------------------------------------------------------------------------


def test_grants_are_rebuilt_from_the_ledger(scenario: Scenario, auditor_client: Client) -> None:
    rows = {row["grant_id"]: row for row in auditor_client.get("/audit/grants/").context["page"]}
    assert set(rows) == {G_SHOP_ALICE, G_SHOP_BOB, G_PHARMA_ALICE}
    assert rows[G_SHOP_ALICE] | {"first_at": None, "last_at": None} == {
        "grant_id": G_SHOP_ALICE,
        "vendor": SHOP,
        "subject": scenario.alice,
        "scopes": ["purchases:read"],  # as narrowed on day 2
        "status": "active",
        "first_at": None,
        "last_at": None,
    }
    assert rows[G_SHOP_ALICE]["first_at"] == START + dt.timedelta(hours=9)
    assert rows[G_SHOP_ALICE]["last_at"] == START + dt.timedelta(days=2, hours=8)
    # Revoked by the person: the vendor is still the client named in the grant's entries.
    assert (rows[G_SHOP_BOB]["vendor"], rows[G_SHOP_BOB]["status"]) == (SHOP, "revoked")
    assert (rows[G_PHARMA_ALICE]["vendor"], rows[G_PHARMA_ALICE]["status"]) == (PHARMA, "expired")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("vendor=client-shop", {G_SHOP_ALICE, G_SHOP_BOB}),
        ("vendor=org-pharma", {G_PHARMA_ALICE}),
        ("vendor=nobody", set()),
        ("status=active", {G_SHOP_ALICE}),
        ("status=revoked", {G_SHOP_BOB}),
        ("status=expired", {G_PHARMA_ALICE}),
        ("scope=purchases:read", {G_SHOP_ALICE, G_SHOP_BOB}),
        ("scope=purchases:check", set()),  # narrowed away on day 2
        ("scope=purchases", set()),  # a whole scope, not a prefix
        ("scope=prescriptions:read", {G_PHARMA_ALICE}),
        ("date_from=2026-03-02", {G_PHARMA_ALICE}),
        ("date_to=2026-03-01", {G_SHOP_ALICE, G_SHOP_BOB}),
        ("date_from=2026-03-01&date_to=2026-03-01", {G_SHOP_ALICE, G_SHOP_BOB}),
        ("vendor=client-shop&status=active&scope=purchases:read", {G_SHOP_ALICE}),
    ],
)
def test_grant_filters(scenario: Scenario, auditor_client: Client, query: str, expected: set[str]) -> None:
    response = auditor_client.get(f"/audit/grants/?{query}")
    assert response.status_code == 200
    assert set(_grant_ids(response)) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("date_from=yesterday", "Enter a valid date."),
        ("date_from=2026-03-05&date_to=2026-03-01", "must be on or before"),
        ("status=lost", "Select a valid choice."),
        ("vendor=a+b", "Use letters, digits"),
        ("scope=%3Cscript%3E", "A scope looks like"),
    ],
)
def test_bad_grant_filters_get_a_clear_message(
    scenario: Scenario, auditor_client: Client, query: str, message: str
) -> None:
    response = auditor_client.get(f"/audit/grants/?{query}")
    assert response.status_code == 400
    assert message in response.content.decode()
    export = auditor_client.get(f"/audit/grants/export.csv?{query}")
    assert export.status_code == 400
    assert message in export.content.decode()


def test_a_bad_page_number_shows_a_page(scenario: Scenario, auditor_client: Client) -> None:
    for page in ("abc", "-1", "999"):
        assert auditor_client.get(f"/audit/grants/?page={page}").status_code == 200


def test_grants_are_paginated_by_fifty_newest_first_without_a_total(db: Any, auditor_client: Client) -> None:
    with transaction.atomic():
        for n in range(51):
            ledger_append(kind=K.GRANT_CREATED, actor_type=CLIENT, actor_id=SHOP, grant_id=f"g-{n}")
    first = auditor_client.get("/audit/grants/")
    assert _grant_ids(first) == [f"g-{n}" for n in range(50, 0, -1)]
    body = first.content.decode()
    assert 'href="?before=g-1" rel="next">Older</a>' in body
    assert "Newest</a>" not in body and "Page 1 of" not in body
    second = auditor_client.get("/audit/grants/?before=g-1")
    assert _grant_ids(second) == ["g-0"]
    body = second.content.decode()
    assert "Newest</a>" in body and "Older</a>" not in body
    # The export takes every grant the filters select, wherever the page was.
    exported = json.loads(_body(auditor_client.get("/audit/grants/export.json?before=g-1")))
    assert len(exported) == 51


@pytest.mark.parametrize("before", ["no-such-grant", "", "x" * 65, "%00", "g-1'--"])
def test_an_unknown_or_bad_grant_position_shows_the_first_page(
    db: Any, auditor_client: Client, before: str
) -> None:
    ledger_append(kind=K.GRANT_CREATED, actor_type=CLIENT, actor_id=SHOP, grant_id="g-0")
    response = auditor_client.get("/audit/grants/", {"before": before})
    assert response.status_code == 200
    assert _grant_ids(response) == ["g-0"]


def test_grant_history_lists_its_entries_in_order(scenario: Scenario, auditor_client: Client) -> None:
    response = auditor_client.get(reverse("audit:grant", args=[G_SHOP_BOB]))
    assert [e["kind"] for e in response.context["changes"]] == [K.GRANT_CREATED, K.GRANT_REVOKED]
    accesses = list(response.context["page"])
    assert [e["kind"] for e in accesses] == [K.ACCESS_READ] * 5
    # Newest first, like the entries page: a grant's recent accesses are what an auditor looks at.
    assert [e["created_at"] for e in accesses] == sorted((e["created_at"] for e in accesses), reverse=True)
    assert {e["grant_id"] for e in accesses} == {G_SHOP_BOB}


def test_an_unknown_grant_is_not_found(scenario: Scenario, auditor_client: Client) -> None:
    assert auditor_client.get(reverse("audit:grant", args=["no-such-grant"])).status_code == 404


# --- vendor activity -------------------------------------------------------------------------


def _activity(**filters: Any) -> dict[tuple[str, dt.date], dict[str, Any]]:
    return {(row["vendor"], row["day"]): row for row in selectors.activity_by_day(**filters)}


def test_activity_counts_per_vendor_and_day(scenario: Scenario, auditor_client: Client) -> None:
    rows = {
        (row["vendor"], row["day"]): row for row in auditor_client.get("/audit/activity/").context["page"]
    }
    pick = ("reads", "writes", "checks", "records", "denied")

    def counts(vendor: str, n: int) -> tuple[int, ...]:
        return tuple(rows[vendor, day(n)][name] for name in pick)

    # Day 2: 5 reads of 2 records for alice, 1 read of 3 for bob, 2 writes, 3 checks.
    assert counts(SHOP, 2) == (6, 2, 3, 13, 0)
    assert counts(SHOP, 3) == (6, 0, 0, 13, 12)
    assert counts(SHOP, 6) == (6, 0, 0, 13, 0)  # includes the read after bob revoked
    assert counts(SHOP, 15) == (40, 0, 0, 80, 0)
    assert counts(PHARMA, 4) == (3, 0, 0, 3, 10)
    # Grant changes are not vendor activity; a person's revocation is not a vendor's.
    assert (SHOP, day(0)) not in rows and (PHARMA, day(20)) not in rows
    assert len(rows) == 15 + 15


def test_activity_filters(scenario: Scenario, auditor_client: Client) -> None:
    response = auditor_client.get(
        "/audit/activity/?vendor=org-pharma&date_from=2026-03-03&date_to=2026-03-05"
    )
    assert [(r["vendor"], r["day"]) for r in response.context["page"]] == [
        (PHARMA, day(4)),
        (PHARMA, day(3)),
        (PHARMA, day(2)),
    ]
    assert auditor_client.get("/audit/activity/?date_to=2026-01-01").status_code == 200
    assert auditor_client.get("/audit/activity/?date_to=2026-13-01").status_code == 400


def test_activity_without_a_start_shows_the_last_30_days_of_the_ledger(
    scenario: Scenario, auditor_client: Client
) -> None:
    _log(60, 9, kind=K.ACCESS_READ, actor_type=CLIENT, actor_id=SHOP, grant_id=G_SHOP_ALICE, record_count=1)
    response = auditor_client.get("/audit/activity/")
    assert [(r["vendor"], r["day"]) for r in response.context["page"]] == [(SHOP, day(60))]
    assert "From 2026-04-01 to the newest entry" in response.content.decode()
    exported = json.loads(_body(auditor_client.get("/audit/activity/export.json")))
    assert [(r["vendor"], r["day"]) for r in exported] == [(SHOP, day(60).isoformat())]
    # Up to a given day, the 30 days before it; a start the auditor gives is kept.
    assert len(auditor_client.get("/audit/activity/?date_to=2026-03-10").context["page"]) == 2 * 9
    assert len(auditor_client.get("/audit/activity/?date_from=2026-03-01").context["page"]) == 15 + 15 + 1


def _flags(**filters: Any) -> set[tuple[str, str, dt.date, int, str]]:
    return {(f.kind, f.vendor, f.day, f.count, f.grant_id) for f in selectors.activity_anomalies(**filters)}


def test_each_flag_fires_for_its_scenario_only(scenario: Scenario) -> None:
    assert _flags() == {
        ("denied", SHOP, day(3), 12, ""),  # pharma's 10 on day 4 is not above 10
        ("spike", SHOP, day(15), 40, ""),
        ("after_end", SHOP, day(6), 1, G_SHOP_BOB),  # not the reads before the revocation
    }


def test_flag_thresholds_and_time_range(scenario: Scenario) -> None:
    assert ("denied", PHARMA, day(4), 10, "") in _flags(denied_threshold=9)
    # The spike is measured against the 14 days before it, even outside the filtered range.
    assert _flags(date_from=day(15)) == {("spike", SHOP, day(15), 40, "")}
    assert _flags(date_from=day(16)) == set()
    assert _flags(vendors=[PHARMA]) == set()
    assert _flags(spike_factor=8) == _flags() - {("spike", SHOP, day(15), 40, "")}


def test_a_spike_needs_at_least_twenty_reads(db: Any) -> None:
    reader = {"kind": K.ACCESS_READ, "actor_type": CLIENT, "actor_id": "client-new"}
    _log(0, 9, 19, **reader)
    assert _flags() == set()
    _log(1, 9, 20, **reader)  # 20 > 3 x (19 / 14)
    assert _flags() == {("spike", "client-new", day(1), 20, "")}


def test_flags_are_shown_in_plain_words_with_links(scenario: Scenario, auditor_client: Client) -> None:
    body = auditor_client.get("/audit/activity/").content.decode()
    assert "client-shop had 12 requests denied on 2026-03-04 (more than 10 in a day)." in body
    assert "client-shop read 40 times on 2026-03-16, more than 3 times its average" in body
    assert f"client-shop read 1 times under grant {G_SHOP_BOB} after the grant ended" in body
    assert f'href="{reverse("audit:grant", args=[G_SHOP_BOB])}"' in body
    assert (
        'href="/audit/activity/?vendor=client-shop&amp;date_from=2026-03-16&amp;date_to=2026-03-16"' in body
    )


# --- raw ledger ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("kind=access.denied", 22),
        ("kind=access.denied&vendor=client-shop", 12),
        ("outcome=denied", 22),
        ("grant_id=grant-shop-bob", 7),
        ("vendor=org-pharma&date_from=2026-03-05&date_to=2026-03-05", 10 + 3),
        ("kind=grant.revoked", 1),
    ],
)
def test_entry_filters(scenario: Scenario, auditor_client: Client, query: str, count: int) -> None:
    response = auditor_client.get(f"/audit/entries/?{query}")
    assert response.status_code == 200
    assert len(response.context["page"]) == count


def test_entries_filter_by_person_pseudonym(scenario: Scenario, auditor_client: Client) -> None:
    response = auditor_client.get(f"/audit/entries/?subject={scenario.bob}")
    assert len(response.context["page"]) == 7
    bad = auditor_client.get("/audit/entries/?subject=alice@example.com")
    assert bad.status_code == 400
    assert "A person pseudonym looks like" in bad.content.decode()


def test_entries_page_by_keyset_through_ties_without_a_total(
    scenario: Scenario, auditor_client: Client
) -> None:
    # The scenario writes several entries in the same instant: the pages must neither repeat
    # nor skip one of them.
    expected = [row["id"] for row in selectors.entry_list()]
    assert len(expected) > 150
    seen: list[int] = []
    query = "/audit/entries/"
    while True:
        response = auditor_client.get(query)
        page = response.context["page"]
        seen += [row["id"] for row in page]
        body = response.content.decode()
        assert ("Newest</a>" in body) == (query != "/audit/entries/")
        assert " of " not in body.split('aria-label="Pages"')[-1]  # "more", never "page x of y"
        if not page.older:
            break
        assert len(page) == 50
        query = f"/audit/entries/?before={page.older}"
    assert seen == expected


@pytest.mark.parametrize("before", ["abc", "-1", "0", "9" * 30, "999999"])
def test_a_bad_or_unknown_entry_position_shows_the_first_page(
    scenario: Scenario, auditor_client: Client, before: str
) -> None:
    response = auditor_client.get("/audit/entries/", {"before": before, "kind": "access.denied"})
    assert response.status_code == 200
    assert len(response.context["page"]) == 22


def test_entries_are_newest_first_with_leaf_and_proof_link(
    scenario: Scenario, auditor_client: Client
) -> None:
    sealed = ledger_seal()
    assert sealed is not None
    _log(22, 9, kind=K.ACCESS_CHECK, actor_type=CLIENT, actor_id=SHOP, grant_id=G_SHOP_ALICE)
    response = auditor_client.get("/audit/entries/")
    rows = list(response.context["page"])
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)
    newest, sealed_row = rows[0], rows[1]
    assert newest["leaf_index"] is None
    assert sealed_row["leaf_index"] == sealed.tree_size - 1
    body = response.content.decode()
    proof = reverse("ledger-proof-inclusion", args=[sealed_row["id"]])
    assert proof == f"/api/v1/ledger/proof/inclusion/{sealed_row['id']}"
    assert f'href="{proof}"' in body
    assert f"leaf {sealed_row['leaf_index']}" in body
    assert Client().get(proof).status_code == 200


# --- exports ---------------------------------------------------------------------------------


def _csv(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(_body(response))))


def test_exports_stream_as_attachments(scenario: Scenario, auditor_client: Client) -> None:
    for name in ("grants", "activity", "entries"):
        for fmt in ("csv", "json"):
            response = auditor_client.get(reverse(f"audit:{name}-{fmt}"))
            assert response.streaming is True
            assert response["Content-Disposition"].startswith("attachment; filename=")
            _body(response)


def test_grant_csv_has_a_header_and_the_filtered_rows(scenario: Scenario, auditor_client: Client) -> None:
    rows = _csv(auditor_client.get("/audit/grants/export.csv?vendor=client-shop"))
    assert tuple(rows[0]) == GRANT_COLUMNS
    assert sorted(row[0] for row in rows[1:]) == [G_SHOP_ALICE, G_SHOP_BOB]


def test_csv_neutralises_formula_cells(db: Any, auditor_client: Client) -> None:
    with transaction.atomic():
        for actor in ("=cmd", "+cmd", "-cmd"):
            ledger_append(kind=K.GRANT_CREATED, actor_type=CLIENT, actor_id=actor, grant_id=f"g{actor}")
            ledger_append(kind=K.ACCESS_DENIED, actor_type=CLIENT, actor_id=actor, reason="-1 day")
    grants = _csv(auditor_client.get("/audit/grants/export.csv"))
    assert sorted((row[0], row[1]) for row in grants[1:]) == [
        ("g+cmd", "'+cmd"),
        ("g-cmd", "'-cmd"),
        ("g=cmd", "'=cmd"),
    ]
    activity = _csv(auditor_client.get("/audit/activity/export.csv"))
    assert sorted(row[0] for row in activity[1:]) == ["'+cmd", "'-cmd", "'=cmd"]
    entries = _csv(auditor_client.get("/audit/entries/export.csv?kind=access.denied"))
    reason = entries[0].index("reason")
    assert {row[reason] for row in entries[1:]} == {"'-1 day"}
    assert csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert csv_cell("p-abc") == "p-abc"
    assert csv_cell(["a:read", "b:read"]) == "a:read b:read"
    assert csv_cell(-3) == -3


def test_json_exports_match_the_pages(scenario: Scenario, auditor_client: Client) -> None:
    query = "status=revoked"
    page = _grant_ids(auditor_client.get(f"/audit/grants/?{query}"))
    exported = json.loads(_body(auditor_client.get(f"/audit/grants/export.json?{query}")))
    assert [row["grant_id"] for row in exported] == page
    assert exported[0]["vendor"] == SHOP
    assert exported[0]["scopes"] == ["purchases:read"]

    query = "vendor=client-shop&date_from=2026-03-02&date_to=2026-03-05"
    page_rows = auditor_client.get(f"/audit/activity/?{query}").context["page"]
    exported = json.loads(_body(auditor_client.get(f"/audit/activity/export.json?{query}")))
    assert [(r["vendor"], r["day"], r["reads"], r["records_disclosed"], r["denied"]) for r in exported] == [
        (r["vendor"], r["day"].isoformat(), r["reads"], r["records"], r["denied"]) for r in page_rows
    ]

    query = f"grant_id={G_SHOP_BOB}"
    page_ids = [r["id"] for r in auditor_client.get(f"/audit/entries/?{query}").context["page"]]
    exported = json.loads(_body(auditor_client.get(f"/audit/entries/export.json?{query}")))
    assert [r["id"] for r in exported] == page_ids
    assert exported[-1]["kind"] == K.GRANT_CREATED
    assert exported[-1]["created_at"] == "2026-03-01T10:00:00.000000Z"


def test_the_entries_export_names_each_sealed_entrys_leaf(scenario: Scenario, auditor_client: Client) -> None:
    sealed = ledger_seal()
    assert sealed is not None
    _log(22, 9, kind=K.ACCESS_CHECK, actor_type=CLIENT, actor_id=SHOP, grant_id=G_SHOP_ALICE)
    exported = json.loads(_body(auditor_client.get("/audit/entries/export.json")))
    assert [(r["id"], r["leaf_index"]) for r in exported] == [
        (r["id"], r["leaf_index"]) for r in selectors.entry_list()
    ]
    assert exported[0]["leaf_index"] is None
    assert sorted(r["leaf_index"] for r in exported[1:]) == list(range(sealed.tree_size))


def test_an_empty_json_export_is_an_empty_array(db: Any, auditor_client: Client) -> None:
    assert json.loads(_body(auditor_client.get("/audit/entries/export.json"))) == []


def test_login_page_is_where_auditors_start(db: Any, auditor: Any) -> None:
    client = Client()
    response = client.post("/accounts/login/?next=/audit/", {"username": auditor.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(response["Location"]).status_code == 200


# --- charts ----------------------------------------------------------------------------------


def _chart_counts(chart: Any) -> dict[tuple[str, dt.date], int]:
    return {
        (series.name, day_): n
        for day_, counts, _ in chart.table
        for series, n in zip(chart.series, counts, strict=True)
        if n
    }


def _counted_in_python(allowed: bool) -> dict[tuple[str, dt.date], int]:
    """The same numbers, counted entry by entry: what the charts must equal."""
    expected: dict[tuple[str, dt.date], int] = {}
    for entry in LedgerEntry.objects.filter(actor_type__in=[CLIENT, ORG]):
        refused = entry.kind == K.ACCESS_DENIED or entry.outcome == "denied"
        access = entry.kind in (K.ACCESS_READ, K.ACCESS_WRITE, K.ACCESS_CHECK) and not refused
        if access if allowed else refused:
            key = (entry.actor_id, entry.created_at.date())
            expected[key] = expected.get(key, 0) + 1
    return expected


def test_activity_charts_equal_the_counts(scenario: Scenario, auditor_client: Client) -> None:
    response = auditor_client.get("/audit/activity/")
    accesses, refusals = response.context["charts"]
    assert accesses.title == "Accesses per vendor per day" and refusals.title == "Refusals per vendor per day"
    assert _chart_counts(accesses) == _counted_in_python(allowed=True)
    assert _chart_counts(refusals) == _counted_in_python(allowed=False)
    assert _chart_counts(refusals) == {(SHOP, day(3)): 12, (PHARMA, day(4)): 10}
    assert accesses.last == day(15) and accesses.total == sum(_counted_in_python(allowed=True).values())
    body = response.content.decode()
    # Each bar says what it is; the numbers are also a table.
    assert f"<title>{day(3):%Y-%m-%d}: {SHOP}, 12</title>" in body
    assert "The numbers, day by day" in body


def test_activity_charts_follow_the_filters(scenario: Scenario, auditor_client: Client) -> None:
    response = auditor_client.get(
        "/audit/activity/?vendor=org-pharma&date_from=2026-03-03&date_to=2026-03-05"
    )
    (accesses, refusals) = response.context["charts"]
    assert (accesses.first, accesses.last) == (day(2), day(4))
    assert _chart_counts(accesses) == {(PHARMA, day(n)): 3 for n in (2, 3, 4)}
    assert _chart_counts(refusals) == {(PHARMA, day(4)): 10}


def test_grants_per_vendor_equal_the_grant_list(
    scenario: Scenario, auditor_client: Client, django_assert_num_queries: Any
) -> None:
    # Counted in the database, not entry by entry: one look for a pending rebuild, one count.
    with django_assert_num_queries(2):
        counts = selectors.grants_by_vendor()
    assert sorted((r["vendor"], r["status"], r["grants"]) for r in counts) == [
        (SHOP, "active", 1),
        (SHOP, "revoked", 1),
        (PHARMA, "expired", 1),
    ]
    chart = auditor_client.get("/audit/grants/").context["chart"]
    assert [(row.name, row.counts, row.total) for row in chart.rows] == [
        (SHOP, [1, 1, 0], 2),
        (PHARMA, [0, 0, 1], 1),
    ]
    listed = selectors.grant_list()
    assert chart.total == listed.count()
    revoked = auditor_client.get("/audit/grants/?status=revoked").context["chart"]
    assert [(row.name, row.total) for row in revoked.rows] == [(SHOP, 1)]


def test_both_activity_charts_cover_the_same_days(scenario: Scenario, auditor_client: Client) -> None:
    accesses, refusals = auditor_client.get("/audit/activity/").context["charts"]
    # Refusals stop on day 4, accesses on day 15: both charts still end on day 15.
    assert (
        (accesses.first, accesses.last)
        == (refusals.first, refusals.last)
        == (day(15) - dt.timedelta(29), day(15))
    )


def test_the_activity_page_shows_the_newest_flags_and_reads_after_an_end_first(
    scenario: Scenario, auditor_client: Client, monkeypatch: Any
) -> None:
    """A busy store raises thousands of flags a month: the page shows a few and says how many more."""
    from auditor import views

    monkeypatch.setattr(views, "FLAGS_SHOWN", 1)
    response = auditor_client.get("/audit/activity/", {"date_from": day(0).isoformat()})
    all_flags = selectors.activity_anomalies(date_from=day(0))
    assert len(all_flags) > 1
    # The read after bob's grant ended is not the newest flag, but it is never the one cut off.
    assert [flag.kind for flag in response.context["anomalies"]] == ["after_end"]
    assert response.context["flags_more"] == len(all_flags) - 1
    assert f"And {len(all_flags) - 1} older flag" in response.content.decode()
