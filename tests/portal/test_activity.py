"""The person's activity page: every ledger entry about them, by name, bursts folded, with proofs."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import time_machine
from django.db import transaction

from audit.services import ledger_append, ledger_seal
from consent.models import Grant
from consent.services import grant_authorize
from personal_data.pseudonyms import person_subject
from tests.consent.conftest import make_app
from vendors.models import Organisation

MARCH = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def _grant(person: Any, app: Any, scopes: tuple[str, ...] = ("purchases:read", "closet:read")) -> Grant:
    return grant_authorize(person=person, application=app, scopes=list(scopes), duration_days=30)


def _read(
    person: Any, grant: Grant, count: int, *, scopes: tuple[str, ...] = ("purchases:read",), **kwargs: Any
) -> None:
    with transaction.atomic():
        ledger_append(
            kind="access.read",
            actor_type="client",
            actor_id=grant.application.client_id,
            subject=person_subject(person),
            grant_id=str(grant.pk),
            scopes=list(scopes),
            record_ids=[f"r{i}" for i in range(count)],
            **kwargs,
        )


def test_lines_name_the_vendor_the_scopes_and_the_purpose(
    client: Any, alice: Any, bob: Any, shop_app: Any
) -> None:
    grant = _grant(alice, shop_app)
    other = _grant(bob, shop_app)
    _read(alice, grant, 3, scopes=("closet:read",))
    _read(bob, other, 5)
    with transaction.atomic():
        ledger_append(
            kind="access.denied",
            actor_type="client",
            actor_id=shop_app.client_id,
            subject=person_subject(alice),
            grant_id=str(grant.pk),
            scopes=["prescriptions:read"],
            outcome="denied",
            reason="insufficient_scope",
        )
    client.force_login(alice)
    page = client.get("/activity/").content.decode()
    assert "Acme Shop (Shop app) read 3 closet items under your grant of" in page
    assert "Their stated purpose: to serve you better with closet:read" in page
    assert "Acme Shop (Shop app) was refused (insufficient_scope)" in page
    assert "You granted Acme Shop (Shop app): Your purchases, Your closet" in page
    # No client ids, no scope codes in the sentences; nothing of bob's.
    assert shop_app.client_id not in page
    assert "5 purchases" not in page and "Not sealed into the log yet" in page


def test_reads_name_the_date_of_their_grant(client: Any, alice: Any, shop_app: Any) -> None:
    with time_machine.travel(MARCH):
        grant = _grant(alice, shop_app)
    _read(alice, grant, 1)
    client.force_login(alice)
    assert "read 1 purchase under your grant of 2 March 2026" in client.get("/activity/").content.decode()


def test_a_burst_of_requests_is_one_line(client: Any, alice: Any, shop_app: Any) -> None:
    grant = _grant(alice, shop_app)
    with time_machine.travel(MARCH.replace(hour=8, minute=23), tick=False) as clock:
        for n in range(101):
            _read(alice, grant, 200 if n < 100 else 70)
            clock.shift(dt.timedelta(seconds=4.8))
        clock.shift(dt.timedelta(minutes=30))  # a pause longer than a burst's gap: a new line
        _read(alice, grant, 2)
    client.force_login(alice)
    page = client.get("/activity/").content.decode()
    assert "Acme Shop (Shop app) read 20,070 purchases in 101 requests, 08:23–08:31" in page
    assert "read 2 purchases under your grant" in page
    assert page.count('class="card activity-line') == 3  # the burst, the pause's read, the grant


def test_sealed_lines_link_to_their_inclusion_proofs(client: Any, alice: Any, shop_app: Any) -> None:
    grant = _grant(alice, shop_app)
    _read(alice, grant, 1)
    ledger_seal()
    _read(alice, grant, 1)
    _read(alice, grant, 1)
    client.force_login(alice)
    page = client.get("/activity/").content.decode()
    assert "read 3 purchases in 3 requests" in page and "Proofs of these 3 requests" in page
    burst = page.split("read 3 purchases in 3 requests")[1].split("</li>\n")[0]
    assert len(re.findall(r'href="/activity/\d+/proof/"', burst)) == 1
    assert "2 not sealed into the log yet" in burst


def test_activity_pages_by_position_newest_first(client: Any, alice: Any, shop_app: Any) -> None:
    grant = _grant(alice, shop_app)
    with time_machine.travel(MARCH, tick=False) as clock:
        for n in range(1, 53):
            clock.shift(dt.timedelta(hours=1))  # an hour apart: one line each
            _read(alice, grant, n)
    client.force_login(alice)
    first = client.get("/activity/").content.decode()
    assert "read 52 purchases" in first and "read 2 purchases" not in first
    older = re.search(r'href="\?after=([^"]+)" rel="next"', first)
    assert older
    second = client.get(f"/activity/?after={older.group(1)}").content.decode()
    assert "read 2 purchases" in second and "read 52 purchases" not in second
    assert 'rel="next"' not in second


def test_filter_by_vendor_and_dates(client: Any, alice: Any, shop_app: Any) -> None:
    other_org = Organisation.objects.create(
        name="Bookworm", website="https://books.example", privacy_contact="p@books.example"
    )
    books = make_app(other_org, name="Bookworm")
    shop_grant = _grant(alice, shop_app)
    book_grant = _grant(alice, books, scopes=("purchases:read",))
    with time_machine.travel(MARCH):
        _read(alice, shop_grant, 4)
    _read(alice, book_grant, 6)
    client.force_login(alice)
    everything = client.get("/activity/").content.decode()
    assert '<option value="' + str(other_org.pk) + '"' in everything and ">Bookworm</option>" in everything
    only_books = client.get("/activity/", {"vendor": str(other_org.pk)}).content.decode()
    assert "Bookworm read 6 purchases" in only_books and "Acme Shop" not in only_books.split("<ol")[1]
    march = client.get("/activity/", {"from": "2026-03-01", "to": "2026-03-31"}).content.decode()
    assert "read 4 purchases" in march and "read 6 purchases" not in march
    nothing = client.get("/activity/", {"from": "2020-01-01", "to": "2020-01-02"}).content.decode()
    assert "Nothing matches these filters" in nothing
    # Bad filter values are ignored, never an error.
    for bad in ({"vendor": "not-a-uuid"}, {"from": "yesterday"}, {"after": "~~"}, {"after": "x" * 500}):
        assert client.get("/activity/", bad).status_code == 200


def test_the_chart_counts_requests_per_vendor_per_day(client: Any, alice: Any, shop_app: Any) -> None:
    grant = _grant(alice, shop_app)
    for _ in range(3):
        _read(alice, grant, 1)
    client.force_login(alice)
    page = client.get("/activity/").content.decode()
    assert "Requests by vendors per day" in page
    assert "Acme Shop (Shop app): 3 requests" in page
    table = page.split("The numbers, day by day")[1]
    assert re.search(r'<td class="num">3</td><td class="num">3</td></tr>', table)


def test_an_app_that_is_gone_is_still_told_plainly(client: Any, alice: Any, shop_app: Any) -> None:
    with transaction.atomic():
        ledger_append(
            kind="access.denied",
            actor_type="client",
            actor_id="deleted-client",
            subject=person_subject(alice),
            outcome="denied",
            reason="invalid_token",
        )
    client.force_login(alice)
    page = client.get("/activity/").content.decode()
    assert "A vendor app that no longer exists was refused (invalid_token)" in page


def test_activity_is_for_people_only(client: Any, db: Any, auditor: Any) -> None:
    assert client.get("/activity/")["Location"].startswith("/accounts/login/")
    client.force_login(auditor)
    assert client.get("/activity/").status_code == 403


def test_a_proof_page_is_for_the_entrys_person_only(client: Any, alice: Any, bob: Any, shop_app: Any) -> None:
    from audit.models import LedgerEntry

    grant = _grant(alice, shop_app)
    _read(alice, grant, 2)
    ledger_seal()
    entry = LedgerEntry.objects.filter(kind="access.read").get()
    client.force_login(alice)
    page = client.get(f"/activity/{entry.pk}/proof/").content.decode()
    assert "Acme Shop (Shop app) read 2 purchases" in page and 'data-verify="entry"' in page
    assert f"&quot;id&quot;:{entry.pk}," in page  # the leaf's canonical JSON, shown as the log holds it
    client.force_login(bob)
    assert client.get(f"/activity/{entry.pk}/proof/").status_code == 404
    assert client.get("/activity/999999999/proof/").status_code == 404


def test_an_unsealed_entry_says_so(client: Any, alice: Any, shop_app: Any) -> None:
    from audit.models import LedgerEntry

    grant = _grant(alice, shop_app)
    _read(alice, grant, 1)
    entry = LedgerEntry.objects.filter(kind="access.read").get()
    client.force_login(alice)
    page = client.get(f"/activity/{entry.pk}/proof/").content.decode()
    assert "not sealed into the log yet" in page and "data-verify" not in page


def test_each_line_says_whether_independent_witnesses_cover_it(
    client: Any, alice: Any, auditor: Any, shop_app: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from audit.models import LedgerCheckpoint
    from audit.services import witness_register
    from tests.audit.test_witnesses import Cosigner, post

    with time_machine.travel(MARCH - dt.timedelta(hours=1)):
        grant = _grant(alice, shop_app)
    with time_machine.travel(MARCH):
        _read(alice, grant, 1)
    ledger_seal()
    witnesses = [Cosigner("witness.example.org/a"), Cosigner("witness.example.net/b")]
    for witness in witnesses:
        witness_register(name=witness.name, public_raw=witness.public, by=auditor)
    newest = LedgerCheckpoint.objects.order_by("-tree_size").first()
    assert newest is not None
    for witness in witnesses:
        assert post(client, witness.cosign(newest.note)).status_code == 201
    with time_machine.travel(MARCH + dt.timedelta(hours=1)):
        _read(alice, grant, 2)
    ledger_seal()
    with time_machine.travel(MARCH + dt.timedelta(hours=2)):
        _read(alice, grant, 3)
    client.force_login(alice)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/activity/").content.decode()
    assert sum("audit_witness" in q["sql"] for q in queries.captured_queries) == 1  # once a page
    lines = page.split('class="card activity-line')[1:]
    read3, read2, read1, granted = lines
    assert "Not sealed into the log yet" in read3 and "witness" not in read3.lower()
    assert "Sealed, not yet witnessed" in read2
    assert "Witnessed by 2 independent witnesses" in read1
    assert "Witnessed by 2 independent witnesses" in granted


def test_witness_words() -> None:
    from portal.activity import witness_words, witnesses_covering

    assert witness_words(None) == "Not sealed yet"
    assert witness_words(0) == "Sealed, not yet witnessed"
    assert witness_words(1) == "Witnessed by 1 independent witness"
    assert witness_words(3) == "Witnessed by 3 independent witnesses"
    # Witnesses whose newest cosigned sizes are 5, 10 and 10: leaf 4 is in all three trees, 5 in two.
    assert [witnesses_covering([5, 10, 10], i) for i in (0, 4, 5, 9, 10)] == [3, 3, 2, 2, 0]
