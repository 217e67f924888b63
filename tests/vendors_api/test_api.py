"""Vendor API behaviour: pagination, filters within the grant, owns, giving data back, limits,
headers and the ledger entry of every request that reaches a grant (INTERFACES.md §5-6)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import LedgerEntry
from consent.models import Grant
from core import crypto
from core.request_ids import FORMAT as REQUEST_ID_FORMAT
from core.request_ids import HEADER as REQUEST_ID_HEADER
from personal_data import services
from personal_data.models import SharedCopy
from personal_data.selectors import records_for_owner
from personal_data.store import StoreError
from tests.conftest import purchase_data
from tests.consent.conftest import Flow, make_app
from tests.vendors_api.conftest import API, Api, add_record, authorize, days_ago, issue_token, make_person
from vendors.models import Application, IdempotencyKey, Organisation


def problem_type(slug: str) -> str:
    return f"{settings.VRM_ISSUER}/problems/{slug}"


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == problem_type(slug) and body["status"] == status
    return body


# Pagination.


def test_pages_default_to_50_follow_next_and_never_repeat(alice: Any, api: Api) -> None:
    stored = {add_record(alice, "purchases", day=days_ago(i % 300))["id"] for i in range(57)}
    first = api.get("purchases")
    assert len(first.json()["results"]) == 50 and first.json()["next"].startswith("http")
    assert {r["id"] for r in api.all_pages("purchases")} == stored
    small = api.all_pages("purchases", {"limit": 4})
    assert len(small) == 57 and {r["id"] for r in small} == stored
    # Newest stored first, so a vendor polling the first page sees new records.
    assert small[0]["id"] == api.get("purchases", {"limit": 1}).json()["results"][0]["id"]


def test_next_link_keeps_the_filters(alice: Any, api: Api) -> None:
    for _ in range(3):
        add_record(alice, "purchases", day=days_ago(5))
    add_record(alice, "purchases", day=days_ago(100))
    since = days_ago(30).isoformat()
    first = api.get("purchases", {"since": since, "limit": 2}).json()
    assert "since=" in first["next"] and "limit=2" in first["next"]
    second = api.get(first["next"]).json()
    assert len(first["results"]) == 2 and len(second["results"]) == 1 and second["next"] is None


def _cursor(created_at: str, record_id: str) -> str:
    """A cursor in our format around any text (cursor_encode writes only what it was given)."""
    return base64.urlsafe_b64encode(f"{created_at}|{record_id}".encode()).decode()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 201}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"since": "2026-02-30"}, "since"),
        ({"cursor": base64.b64encode(b"p=not-a-time").decode()}, "cursor"),
        ({"cursor": base64.b64encode(b"p=2026-13-45 10:00:00").decode()}, "cursor"),
        ({"cursor": base64.b64encode(b"o=x").decode()}, "cursor"),
        # Times we never write: another offset (year 1 at +05:00 is before year 1 in UTC), year 9999
        # west of UTC, a NUL byte, an id that is not one, text that is not base64.
        ({"cursor": _cursor("0001-01-01T00:00:00+05:00", "3f1c5a1e-8c1d-4d5e-9a77-0d3b1f2a4c6e")}, "cursor"),
        ({"cursor": _cursor("9999-12-31T23:59:59-05:00", "3f1c5a1e-8c1d-4d5e-9a77-0d3b1f2a4c6e")}, "cursor"),
        ({"cursor": _cursor("2026-01-01 10:00:00\x00", "3f1c5a1e-8c1d-4d5e-9a77-0d3b1f2a4c6e")}, "cursor"),
        ({"cursor": _cursor("2026-01-01 10:00:00+00", "not-an-id")}, "cursor"),
        ({"cursor": _cursor("٢٠٢٦-01-01 10:00:00+00", "3f1c5a1e-8c1d-4d5e-9a77-0d3b1f2a4c6e")}, "cursor"),
        ({"cursor": "%%%not-base64"}, "cursor"),
        ({"gtin": "5012345001235"}, "gtin"),  # wrong check digit
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_query_is_a_400_naming_the_parameter(api: Api, params: dict[str, Any], field: str) -> None:
    body = assert_problem(api.get("purchases", params), 400, "invalid-input")
    assert list(body["errors"]) == [field] and all(isinstance(m, str) for m in body["errors"][field])


def test_limit_200_is_allowed(api: Api) -> None:
    assert api.get("purchases", {"limit": 200}).status_code == 200


def test_gtin_filter_is_for_purchases_only(api: Api) -> None:
    body = assert_problem(api.get("closet", {"gtin": "5012345001234"}), 400, "invalid-input")
    assert body["errors"] == {"gtin": ["Unknown query parameter."]}


# Filters intersect with the grant.


def test_since_until_and_gtin_cannot_widen_the_grant(alice: Any, shop_app: Application) -> None:
    api = Api(issue_token(authorize(alice, shop_app, ["purchases:read"], history_months=3)))
    recent = add_record(alice, "purchases", day=days_ago(10))
    older = add_record(alice, "purchases", day=days_ago(60))
    too_old = add_record(alice, "purchases", day=days_ago(200), gtin=recent["gtin"])

    def ids(**params: Any) -> set[str]:
        return {r["id"] for r in api.all_pages("purchases", params)}

    assert ids() == {recent["id"], older["id"]}
    assert ids(since=days_ago(365).isoformat()) == {recent["id"], older["id"]}
    assert ids(since=days_ago(30).isoformat()) == {recent["id"]}
    assert ids(until=days_ago(30).isoformat()) == {older["id"]}
    assert ids(until=days_ago(150).isoformat()) == set()
    assert ids(gtin=recent["gtin"]) == {recent["id"]}  # not too_old, though it has the same gtin
    assert ids(gtin=older["gtin"], until=days_ago(30).isoformat()) == {older["id"]}
    assert ids(since=days_ago(5).isoformat(), until=days_ago(20).isoformat()) == set()
    assert api.get(f"purchases/{too_old['id']}").status_code == 404


# owns.


def test_owns_answers_yes_or_no_only_and_decrypts_nothing(alice: Any, api: Api) -> None:
    bought = add_record(alice, "purchases")
    secret = add_record(alice, "purchases", shared=False)

    def refuse(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("owns must not decrypt anything")

    with mock.patch.object(crypto, "unseal", refuse), mock.patch.object(crypto, "_open", refuse):
        yes = api.get("purchases/owns", {"gtin": bought["gtin"]})
        no = api.get("purchases/owns", {"gtin": secret["gtin"]})
        assert yes.status_code == 200 and no.status_code == 200
        assert yes.json() == {"gtin": bought["gtin"], "owns": True}
        assert no.json() == {"gtin": secret["gtin"], "owns": False}
        # The patch bites: a read that does decrypt fails under it.
        with pytest.raises(AssertionError, match="must not decrypt"):
            api.get(f"purchases/{bought['id']}")


def test_owns_needs_a_valid_gtin(api: Api) -> None:
    assert assert_problem(api.get("purchases/owns"), 400, "invalid-input")["errors"].keys() == {"gtin"}
    body = assert_problem(api.get("purchases/owns", {"gtin": "12345"}), 400, "invalid-input")
    assert body["errors"].keys() == {"gtin"}


# Giving a purchase back.


def test_post_stores_a_vendor_purchase_in_the_persons_store(alice: Any, api: Api) -> None:
    response = api.post("purchases", purchase_data(purchased_on=days_ago(1).isoformat()))
    assert response.status_code == 201 and response["Content-Type"] == "application/json"
    record = response.json()
    assert record["source"] == "vendor" and record["source_vendor"] == "Acme Shop"
    assert record["product_name"] == "Crunchy Peanut Butter" and record["unit_price"].startswith("3.49")
    own = records_for_owner(owner=alice, category="purchases")
    assert [r["id"] for r in own] == [record["id"]] and own[0]["source_vendor"] == "Acme Shop"
    assert api.get(f"purchases/{record['id']}").json() == record


def test_idempotent_retry_returns_the_same_record(alice: Any, api: Api) -> None:
    body = purchase_data(purchased_on=days_ago(1).isoformat())
    first = api.post("purchases", body, HTTP_IDEMPOTENCY_KEY="order-4471")
    retry = api.post("purchases", body, HTTP_IDEMPOTENCY_KEY="order-4471")
    assert first.status_code == retry.status_code == 201
    assert first.json() == retry.json()
    assert len(records_for_owner(owner=alice, category="purchases")) == 1
    other = api.post("purchases", body, HTTP_IDEMPOTENCY_KEY="order-4472")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


def test_a_replay_answers_as_first_given_never_what_the_grant_cannot_see(
    alice: Any, shop_app: Application
) -> None:
    # A write-only grant: the vendor may add purchases, never read them.
    writer = Api(issue_token(authorize(alice, shop_app, ["purchases:write"])))
    body = purchase_data(notes="from the till")
    first = writer.post("purchases", body, HTTP_IDEMPOTENCY_KEY="order-9")
    assert first.status_code == 201
    # The person hides the record and writes a private note on it.
    services.record_update(
        owner=alice,
        category="purchases",
        record_id=first.json()["id"],
        data={"shared": False, "notes": "a gift for Bob"},
    )
    retry = writer.post("purchases", body, HTTP_IDEMPOTENCY_KEY="order-9")
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert "a gift for Bob" not in retry.content.decode()
    # At rest the first answer is sealed under the person's key, never kept in clear.
    stored = IdempotencyKey.objects.get(key="order-9")
    assert b"from the till" not in bytes(stored.response)


def test_a_key_whose_answer_was_not_kept_is_a_409_not_the_current_record(alice: Any, api: Api) -> None:
    body = purchase_data()
    api.post("purchases", body, HTTP_IDEMPOTENCY_KEY="old-key")
    IdempotencyKey.objects.filter(key="old-key").update(response=b"")  # as keys stored before
    assert_problem(api.post("purchases", body, HTTP_IDEMPOTENCY_KEY="old-key"), 409, "idempotency-conflict")


def test_same_key_with_another_body_is_a_409(alice: Any, api: Api) -> None:
    api.post("purchases", purchase_data(), HTTP_IDEMPOTENCY_KEY="k1")
    conflict = api.post("purchases", purchase_data(quantity=3), HTTP_IDEMPOTENCY_KEY="k1")
    assert_problem(conflict, 409, "idempotency-conflict")
    assert len(records_for_owner(owner=alice, category="purchases")) == 1


def test_same_key_for_another_person_is_a_409(bob: Any, shop_app: Application, api: Api) -> None:
    api.post("purchases", purchase_data(), HTTP_IDEMPOTENCY_KEY="k1")
    for_bob = Api(issue_token(authorize(bob, shop_app, ["purchases:write"])))
    assert_problem(
        for_bob.post("purchases", purchase_data(), HTTP_IDEMPOTENCY_KEY="k1"), 409, "idempotency-conflict"
    )
    assert records_for_owner(owner=bob, category="purchases") == []


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({**purchase_data(), "colour": "red", "size": "M"}, {"colour", "size"}),
        ({**purchase_data(), "id": "6f1c2a7e-0b1d-4c8e-9a57-3f0d2b9e4c11"}, {"id"}),
        ({**purchase_data(), "source": "manual"}, {"source"}),
        (purchase_data(quantity=0, gtin="5012345001235", currency="XXQ"), {"quantity", "gtin", "currency"}),
        (purchase_data(purchased_on="2999-01-01"), {"purchased_on"}),
        ({"merchant": "Green Grocer"}, {"product_name", "purchased_on"}),
        ([purchase_data()], {"non_field_errors"}),
    ],
)
def test_invalid_purchase_is_a_400_naming_each_field(
    alice: Any, api: Api, body: Any, errors: set[str]
) -> None:
    response = assert_problem(api.post("purchases", body), 400, "invalid-input")
    assert set(response["errors"]) == errors
    assert records_for_owner(owner=alice, category="purchases") == []


def test_malformed_json_and_other_media_types_are_refused(api: Api) -> None:
    assert_problem(
        api.client.post(f"{API}/purchases", "{", content_type="application/json", **_auth(api)),
        400,
        "invalid-input",
    )
    assert_problem(
        api.client.post(f"{API}/purchases", "x=1", content_type="text/plain", **_auth(api)),
        415,
        "unsupported-media-type",
    )
    assert_problem(api.get("me", HTTP_ACCEPT="text/html"), 406, "not-acceptable")


def _auth(api: Api) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {api.token}"}


def test_body_over_1_mib_is_a_413(alice: Any, api: Api) -> None:
    body = json.dumps(purchase_data(notes="x" * (1024 * 1024)))
    response = api.client.post(f"{API}/purchases", body, content_type="application/json", **_auth(api))
    assert_problem(response, 413, "too-large")
    assert records_for_owner(owner=alice, category="purchases") == []


# Statements: what each read costs the database, so a lazy load cannot creep into the hot path.


@pytest.mark.parametrize(
    ("path", "selects"),
    [
        ("me", 1),  # the token with its app, grant, person and key row; the pairwise id from the key row
        ("receipts", 2),
        ("purchases", 2),  # the token, one page
        ("purchases/{id}", 2),
        ("purchases/owns?gtin={gtin}", 2),
        ("preferences", 2),
    ],
)
def test_a_read_is_one_token_statement_one_read_and_one_ledger_entry(
    alice: Any, api: Api, path: str, selects: int
) -> None:
    record = add_record(alice, "purchases")
    with CaptureQueriesContext(connection) as queries:
        response = api.get(path.format(id=record["id"], gtin=record["gtin"]))
    assert response.status_code == 200, response.content
    verbs = [query["sql"].split()[0].upper() for query in queries.captured_queries]
    assert verbs.count("SELECT") == selects, queries.captured_queries
    assert verbs.count("INSERT") == 1  # the ledger entry
    assert set(verbs) <= {"SELECT", "INSERT", "SAVEPOINT", "RELEASE", "BEGIN", "COMMIT"}


@pytest.mark.django_db(transaction=True)
def test_a_page_and_its_ledger_entry_commit_together_in_production_mode(alice: Any, api: Api) -> None:
    # Outside a test's transaction, as in production, a page is read and recorded in one
    # transaction.
    for _ in range(3):
        add_record(alice, "purchases")
    response = api.get("purchases", {"limit": 2})
    assert response.status_code == 200, response.content
    entry = LedgerEntry.objects.filter(kind="access.read").latest("id")
    assert entry.record_ids == [r["id"] for r in response.json()["results"]] and entry.record_count == 2
    # A record that fails to open (its copy under the grant's key) fails the read, and the read
    # leaves no entry.
    copy = SharedCopy.objects.get(record_id=response.json()["results"][0]["id"])
    SharedCopy.objects.filter(pk=copy.pk).update(payload=copy.payload[:-1] + bytes([copy.payload[-1] ^ 1]))
    before = LedgerEntry.objects.count()
    with pytest.raises(StoreError):
        api.get("purchases", {"limit": 2})
    assert LedgerEntry.objects.count() == before
    assert api.get("purchases", {"limit": 1, "until": "2000-01-01"}).status_code == 200
    assert LedgerEntry.objects.count() == before + 1


# Rate limits.


def test_rate_limit_is_a_429_with_retry_after(api: Api, throttle_rates: Callable[..., None]) -> None:
    throttle_rates(burst="3/minute")
    assert [api.get("me").status_code for _ in range(3)] == [200, 200, 200]
    before = LedgerEntry.objects.count()
    limited = api.get("me")
    assert_problem(limited, 429, "rate-limited")
    assert limited["Retry-After"].isdigit() and 0 < int(limited["Retry-After"]) <= 60
    # A throttled request touches nothing, so it is not worth a ledger entry (floods stay cheap).
    assert LedgerEntry.objects.count() == before


def test_the_sustained_limit_holds_under_the_burst_limit(
    api: Api, throttle_rates: Callable[..., None]
) -> None:
    throttle_rates(burst="100/second", sustained="3/hour")
    assert [api.get("me").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert 0 < int(api.get("me")["Retry-After"]) <= 3600


def test_a_limited_app_is_let_in_again_in_the_next_window(
    api: Api, throttle_rates: Callable[..., None]
) -> None:
    throttle_rates(burst="2/minute")
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert [api.get("me").status_code for _ in range(3)] == [200, 200, 429]
    with time_machine.travel(start + dt.timedelta(seconds=61), tick=False):
        assert api.get("me").status_code == 200


def test_rate_limit_is_per_application(
    alice: Any, shop_app: Application, api: Api, throttle_rates: Any
) -> None:
    throttle_rates(burst="2/minute")
    org = Organisation.objects.create(
        name="Other", website="https://o.example", privacy_contact="p@o.example"
    )
    other = Api(
        issue_token(authorize(alice, make_app(org, name="Other app", secret="o" * 40), ["profile:read"]))
    )
    assert [api.get("me").status_code for _ in range(3)] == [200, 200, 429]
    assert other.get("me").status_code == 200


# Headers.


def _every_2xx(alice: Any, api: Api) -> list[Any]:
    purchase = add_record(alice, "purchases")
    responses = [
        api.get(path)
        for path in (
            "me",
            "receipts",
            "purchases",
            f"purchases/{purchase['id']}",
            "closet",
            "appliances",
            "prescriptions",
            "preferences",
        )
    ]
    responses.append(api.get("purchases/owns", {"gtin": purchase["gtin"]}))
    responses.append(api.post("purchases", purchase_data()))
    for category in ("closet", "appliances", "prescriptions"):
        responses.append(api.get(f"{category}/{add_record(alice, category)['id']}"))
    return responses


def test_every_person_data_response_carries_grant_expires(alice: Any, api: Api, full_grant: Grant) -> None:
    responses = _every_2xx(alice, api)
    assert len(responses) == 13
    for response in responses:
        assert 200 <= response.status_code < 300, (response.request["PATH_INFO"], response.content[:200])
        header = response["Grant-Expires"]
        assert header.endswith("Z") and "T" in header
        assert dt.datetime.fromisoformat(header) == full_grant.ends_at


# The ledger: one entry for every request that reaches a grant.


@pytest.mark.parametrize(
    ("request_of", "kind", "outcome"),
    [
        (lambda api, rec: api.get("purchases"), "access.read", "allowed"),
        (lambda api, rec: api.get(f"purchases/{rec['id']}"), "access.read", "allowed"),
        (lambda api, rec: api.get("me"), "access.read", "allowed"),
        (lambda api, rec: api.get("preferences"), "access.read", "allowed"),
        (lambda api, rec: api.post("purchases", purchase_data()), "access.write", "allowed"),
        (lambda api, rec: api.get("purchases/owns", {"gtin": rec["gtin"]}), "access.check", "allowed"),
        (
            lambda api, rec: api.get("purchases/6f1c2a7e-0b1d-4c8e-9a57-3f0d2b9e4c11"),
            "access.denied",
            "denied",
        ),
        (lambda api, rec: api.get("purchases", {"limit": 999}), "access.denied", "denied"),
        (lambda api, rec: api.post("purchases", {"nope": 1}), "access.denied", "denied"),
    ],
    ids=["list", "detail", "me", "preferences", "write", "check", "not-found", "bad-query", "bad-body"],
)
def test_one_ledger_entry_per_request(
    alice: Any, api: Api, full_grant: Grant, request_of: Any, kind: str, outcome: str
) -> None:
    record = add_record(alice, "purchases")
    before = set(LedgerEntry.objects.values_list("pk", flat=True))
    response = request_of(api, record)
    entries = list(LedgerEntry.objects.exclude(pk__in=before))
    assert len(entries) == 1, response.content[:200]
    entry = entries[0]
    assert (entry.kind, entry.outcome, entry.grant_id) == (kind, outcome, str(full_grant.pk))
    assert entry.actor_type == "client" and entry.actor_id == full_grant.application.client_id
    if kind in {"access.read", "access.write"} and response.json().get("id"):
        assert entry.record_ids == [response.json()["id"]]


def test_list_entry_names_the_records_shown(alice: Any, api: Api) -> None:
    shown = {add_record(alice, "purchases")["id"] for _ in range(3)}
    add_record(alice, "purchases", shared=False)
    api.get("purchases")
    entry = LedgerEntry.objects.filter(kind="access.read").get()
    assert set(entry.record_ids) == shown and entry.record_count == 3


def test_scope_refusal_is_recorded_but_a_bad_token_is_not(alice: Any, shop_app: Application) -> None:
    api = Api(issue_token(authorize(alice, shop_app, ["profile:read"])))
    before = LedgerEntry.objects.count()
    assert api.get("purchases").status_code == 403
    denied = LedgerEntry.objects.order_by("-pk").first()
    assert LedgerEntry.objects.count() == before + 1
    assert (denied.kind, denied.reason, denied.scopes) == (
        "access.denied",
        "insufficient-scope",
        ["purchases:read"],
    )
    assert Api("forged").get("purchases").status_code == 401
    assert LedgerEntry.objects.count() == before + 1


@pytest.mark.parametrize(
    "header",
    [
        "<script>alert(1)</script> secret text",
        "alice-bought-a-pregnancy-test",  # a plain-looking id can still say something
        "0123456789abcdef0123456789abcdef",  # even one shaped like ours
    ],
)
def test_ledger_request_ids_are_made_by_the_server_never_taken_from_the_vendor(
    shop_app: Application, api: Api, header: str
) -> None:
    read = api.get("me", HTTP_X_REQUEST_ID=header)
    narrow = Api(issue_token(authorize(make_person("Carol"), shop_app, ["profile:read"])))
    denied = narrow.get("purchases", HTTP_X_REQUEST_ID=header)
    assert (read.status_code, denied.status_code) == (200, 403)
    ids = [read[REQUEST_ID_HEADER], denied[REQUEST_ID_HEADER]]
    assert all(REQUEST_ID_FORMAT.fullmatch(i) for i in ids) and ids[0] != ids[1]
    assert header not in ids
    entries = LedgerEntry.objects.filter(kind__in=["access.read", "access.denied"]).order_by("pk")
    assert [(e.kind, e.request_id) for e in entries] == [("access.read", ids[0]), ("access.denied", ids[1])]
    assert not LedgerEntry.objects.filter(request_id=header).exists()


def test_every_response_carries_a_fresh_server_request_id(client: Any) -> None:
    first = client.get("/.well-known/oauth-authorization-server", HTTP_X_REQUEST_ID="mine")
    second = client.get("/no-such-page/", HTTP_X_REQUEST_ID="mine")
    ids = {first[REQUEST_ID_HEADER], second[REQUEST_ID_HEADER]}
    assert len(ids) == 2 and all(REQUEST_ID_FORMAT.fullmatch(i) for i in ids)


def test_a_write_whose_ledger_entry_fails_is_not_stored(alice: Any, api: Api) -> None:
    with (
        mock.patch("consent.services.ledger_append", side_effect=RuntimeError("ledger down")),
        pytest.raises(RuntimeError),
    ):
        api.post("purchases", purchase_data())
    assert records_for_owner(owner=alice, category="purchases") == []


def test_a_read_that_fails_leaves_no_entry(alice: Any, api: Api) -> None:
    add_record(alice, "purchases")
    with (
        mock.patch("vendors.api.views.shares.copies_open_json", side_effect=RuntimeError("store down")),
        pytest.raises(RuntimeError),
    ):
        api.get("purchases")
    assert not LedgerEntry.objects.filter(kind__startswith="access.").exists()


# Tokens from the real flow, and what /me tells.


def test_a_token_from_the_authorization_code_flow_works_alike(
    client: Client, alice: Any, shop_app: Application
) -> None:
    client.force_login(alice)
    add_record(alice, "purchases")
    flow = Flow(client=client, app=shop_app)
    token = flow.tokens(
        authorize={"scope": "profile:read purchases:read"},
        scopes=["profile:read", "purchases:read"],
        history_months=3,
    )["access_token"]
    api = Api(token)
    me = api.get("me").json()
    assert me["name"] == "Alice Liddell" and me["grant"]["history_from"] is not None
    assert len(api.get("purchases").json()["results"]) == 1
    assert_problem(api.get("closet"), 403, "insufficient-scope")


def test_me_names_the_person_only_with_profile_read(alice: Any, shop_app: Application) -> None:
    grant = authorize(alice, shop_app, ["purchases:check"])
    me = Api(issue_token(grant)).get("me").json()
    assert "name" not in me and me["grant"]["scopes"] == ["purchases:check"]
    assert me["grant"]["expires_at"] == grant.ends_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def test_each_organisation_knows_the_person_by_another_id(alice: Any, shop_app: Application) -> None:
    org = Organisation.objects.create(
        name="Other", website="https://o.example", privacy_contact="p@o.example"
    )
    other_app = make_app(org, name="Other app", secret="o" * 40)
    ours = Api(issue_token(authorize(alice, shop_app, ["profile:read"]))).get("me").json()["sub"]
    theirs = Api(issue_token(authorize(alice, other_app, ["profile:read"]))).get("me").json()["sub"]
    assert ours != theirs and alice.email not in ours + theirs


def test_malformed_and_unknown_record_ids_look_the_same(api: Api) -> None:
    unknown = api.get("purchases/6f1c2a7e-0b1d-4c8e-9a57-3f0d2b9e4c11")
    malformed = api.get("purchases/not-a-uuid")
    assert assert_problem(malformed, 404, "not-found") == assert_problem(unknown, 404, "not-found")


def test_the_schema_documents_scopes_problems_and_headers(client: Client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert list(schema["components"]["securitySchemes"]) == ["oauth2"]
    problem = schema["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    list_op = schema["paths"]["/api/v1/purchases"]["get"]
    post_op = schema["paths"]["/api/v1/purchases"]["post"]
    assert list_op["security"] == [{"oauth2": ["purchases:read"]}]
    assert post_op["security"] == [{"oauth2": ["purchases:write"]}]
    assert schema["paths"]["/api/v1/me"]["get"]["security"] == [{"oauth2": []}]
    assert {"400", "401", "403", "409", "413", "429"} <= set(post_op["responses"])
    assert "404" in schema["paths"]["/api/v1/purchases/{record_id}"]["get"]["responses"]
    assert "404" not in list_op["responses"]
    for op in (list_op, post_op):
        for code, response in op["responses"].items():
            if code.startswith("2"):
                assert response["headers"]["Grant-Expires"]["required"] is True
            else:
                assert response["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }
    assert "WWW-Authenticate" in list_op["responses"]["401"]["headers"]
    assert "Retry-After" in list_op["responses"]["429"]["headers"]


def test_unknown_api_paths_answer_problem_json(client: Any, db: Any) -> None:
    response = client.get("/api/v1/ledger/proof/inclusion/-1")
    assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/problems/not-found")
    assert client.get("/no/such/page/")["Content-Type"].startswith("text/html")


def test_preferences_show_a_vendor_only_the_contract_fields_of_contact(alice: Any, shop_app: Any) -> None:
    """The person's reminder choices are the store's business, not the vendor's (INTERFACES.md §6)."""
    services.preferences_update(
        owner=alice,
        data={
            "dietary": ["vegan"],
            "contact": {
                "email": False,
                "safety_alerts_only": True,
                "reminders": ["refill"],
                "reminders_email": True,
            },
        },
    )
    api = Api(issue_token(authorize(alice, shop_app, ["preferences:read"])))
    document = api.get("preferences").json()
    assert document["dietary"] == ["vegan"]
    assert document["contact"] == {"email": False, "safety_alerts_only": True}
    # And after a change while the grant is live (the copy is remade).
    services.preferences_update(owner=alice, data={"contact": {"reminders": [], "reminders_email": False}})
    assert set(api.get("preferences").json()["contact"]) == {"email", "safety_alerts_only"}
