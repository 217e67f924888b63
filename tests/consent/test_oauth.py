"""The authorization server: the happy path and every refusal of INTERFACES.md §4."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.test import Client

from audit.models import LedgerEntry
from consent.models import AccessToken, Grant, RefreshToken
from consent.services import grant_amend, grant_revoke
from tests.consent.conftest import REDIRECT, Flow, basic


def test_consent_page_shows_vendor_purpose_and_plain_scopes(flow: Flow) -> None:
    page = flow.client.get(flow.authorize_path(scope="profile:read purchases:read prescriptions:read"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Acme Shop" in html and "verified vendor" in html
    assert "to serve you better with purchases:read" in html
    assert 'name="scopes" value="profile:read" id="scope-1" checked' in html  # required by the app
    assert 'value="purchases:read" id="scope-2">' in html  # opt-in: not pre-ticked
    assert 'value="prescriptions:read" id="scope-3">' in html and "sensitive" in html
    assert (
        'name="duration_days"' in html and 'name="history_months"' in html and 'name="include_gifts"' in html
    )
    assert 'name="allow"' in html and 'name="deny"' in html and "csrfmiddlewaretoken" in html


def test_full_flow_token_me_refresh_introspect_revoke(flow: Flow, alice: Any) -> None:
    path = flow.authorize_path()
    response = flow.consent(path)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    assert query["state"] == ["st-123"] and query["iss"] == ["http://127.0.0.1:8000"]

    token = flow.exchange(query["code"][0]).json()
    assert token["token_type"] == "Bearer" and token["expires_in"] <= 900
    assert set(token["scope"].split()) == {"profile:read", "purchases:read"}

    me = flow.me(token["access_token"])
    assert me.status_code == 200
    body = me.json()
    assert body["name"] == "Alice Liddell" and body["grant"]["scopes"] == ["profile:read", "purchases:read"]
    assert "Grant-Expires" in me

    refreshed = flow.refresh(token["refresh_token"]).json()
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert flow.me(refreshed["access_token"]).status_code == 200

    intro = (
        Client()
        .post(
            "/o/introspect/", {"token": refreshed["access_token"]}, **basic(flow.app.client_id, flow.secret)
        )
        .json()
    )
    assert (
        intro["active"] is True and intro["sub"] == body["sub"] and intro["grant_id"] == body["grant"]["id"]
    )
    assert intro["client_id"] == flow.app.client_id and intro["scope"] == "profile:read purchases:read"
    assert isinstance(intro["exp"], int)

    revoked = Client().post(
        "/o/revoke_token/", {"token": refreshed["access_token"]}, **basic(flow.app.client_id, flow.secret)
    )
    assert revoked.status_code == 200
    assert flow.me(refreshed["access_token"]).status_code == 401
    kinds = set(LedgerEntry.objects.values_list("kind", flat=True))
    assert {"grant.created", "token.issued", "token.refreshed", "token.revoked"} <= kinds
    assert Grant.objects.get(person=alice).receipts.count() == 1


def test_introspection_is_post_only_and_for_the_owning_client(flow: Flow, stranger_app: Any) -> None:
    token = flow.tokens()["access_token"]
    assert (
        Client().get("/o/introspect/", {"token": token}, **basic(flow.app.client_id, flow.secret)).status_code
        == 405
    )
    other = (
        Client()
        .post("/o/introspect/", {"token": token}, **basic(stranger_app.client_id, "other-" + "y" * 40))
        .json()
    )
    assert other == {"active": False}


def test_deny_redirects_with_access_denied(flow: Flow) -> None:
    response = flow.consent(flow.authorize_path(), allow=False)
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == ["st-123"]
    assert not Grant.objects.exists()


def test_unticking_narrows_the_grant(flow: Flow) -> None:
    token = flow.tokens(scopes=["profile:read"])
    assert token["scope"] == "profile:read"
    assert Grant.objects.get().scopes == ["profile:read"]


@pytest.mark.parametrize(
    "redirect_uri",
    [
        REDIRECT + "/",
        REDIRECT.replace("8765", "8766"),
        REDIRECT.replace("127.0.0.1", "localhost"),
        REDIRECT.upper(),
        REDIRECT + "?x=1",
        "https://evil.example/callback",
    ],
)
def test_redirect_uri_must_match_exactly(flow: Flow, redirect_uri: str) -> None:
    response = flow.client.get(flow.authorize_path(redirect_uri=redirect_uri))
    assert response.status_code == 400  # never redirected to an unregistered URI
    assert "Location" not in response


def test_pkce_is_required_and_plain_is_refused(flow: Flow) -> None:
    missing = flow.client.get(flow.authorize_path(method=None))
    assert missing.status_code == 302 and "error=invalid_request" in missing["Location"]
    plain = flow.consent(flow.authorize_path(method="plain"))
    assert plain.status_code == 302 and "error=invalid_request" in plain["Location"]
    assert "code=" not in plain["Location"]


def test_wrong_verifier_is_refused(flow: Flow) -> None:
    response = flow.exchange(flow.code(), verifier="wrong-" + "v" * 50)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_replayed_code_fails_and_kills_the_tokens_it_issued(flow: Flow) -> None:
    code = flow.code()
    first = flow.exchange(code).json()
    replay = flow.exchange(code)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert flow.me(first["access_token"]).status_code == 401
    assert flow.refresh(first["refresh_token"]).status_code == 400
    assert LedgerEntry.objects.filter(kind="token.code_replayed").count() == 1


def test_unregistered_scope_is_refused(flow: Flow, shop_org: Any) -> None:
    from tests.consent.conftest import make_app

    narrow_app = make_app(shop_org, name="Narrow", scopes=("profile:read",))
    flow.app = narrow_app
    response = flow.client.get(flow.authorize_path(scope="profile:read purchases:read"))
    assert response.status_code == 302 and "error=invalid_scope" in response["Location"]
    recall = flow.client.get(flow.authorize_path(scope="recalls:publish"))
    assert "error=invalid_scope" in recall["Location"]


def test_refresh_after_revoke_is_refused(flow: Flow, alice: Any) -> None:
    token = flow.tokens()
    grant_revoke(grant=Grant.objects.get(), by=alice)
    response = flow.refresh(token["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_reused_refresh_token_withdraws_every_token_of_the_grant(flow: Flow) -> None:
    token = flow.tokens()
    fresh = flow.refresh(token["refresh_token"]).json()
    reuse = flow.refresh(token["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert flow.me(fresh["access_token"]).status_code == 401
    assert flow.refresh(fresh["refresh_token"]).status_code == 400
    assert not AccessToken.objects.exists()
    assert LedgerEntry.objects.filter(kind="token.reuse_detected").count() == 1


def test_token_fails_the_moment_the_grant_is_revoked(flow: Flow, alice: Any) -> None:
    token = flow.tokens()
    assert flow.me(token["access_token"]).status_code == 200
    grant_revoke(grant=Grant.objects.get(), by=alice)
    response = flow.me(token["access_token"])
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert not RefreshToken.objects.exists()


def _introspect(flow: Flow, token: str) -> dict[str, Any]:
    response = Client().post("/o/introspect/", {"token": token}, **basic(flow.app.client_id, flow.secret))
    return dict(response.json())


def test_a_deactivated_persons_tokens_die_on_the_next_request(flow: Flow, alice: Any) -> None:
    token = flow.tokens()
    spare_code = flow.code()
    code_verifier = flow.verifier
    assert flow.me(token["access_token"]).status_code == 200
    # Whatever deactivates the account (the operator's service, a shell, a migration): the
    # tokens check the account on every use, so no path can forget to withdraw them.
    type(alice).objects.filter(pk=alice.pk).update(is_active=False)
    response = flow.me(token["access_token"])
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert _introspect(flow, token["access_token"]) == {"active": False}
    refresh = flow.refresh(token["refresh_token"])
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    exchange = flow.exchange(spare_code, verifier=code_verifier)
    assert exchange.status_code == 400 and exchange.json()["error"] == "invalid_grant"
    # Deactivation is reversible: the grant stands, so its tokens work again on reactivation.
    type(alice).objects.filter(pk=alice.pk).update(is_active=True)
    assert flow.me(token["access_token"]).status_code == 200
    assert _introspect(flow, token["access_token"])["active"] is True


def test_narrowing_takes_effect_on_the_next_request(flow: Flow, alice: Any) -> None:
    token = flow.tokens()
    assert "name" in flow.me(token["access_token"]).json()
    grant_amend(grant=Grant.objects.get(), by=alice, scopes=["purchases:read"])
    body = flow.me(token["access_token"]).json()
    assert "name" not in body and body["grant"]["scopes"] == ["purchases:read"]


def test_token_fails_past_the_grant_end_even_without_expire_grants(flow: Flow) -> None:
    token = flow.tokens(duration=1)
    grant = Grant.objects.get()
    assert AccessToken.objects.get().expires <= grant.ends_at
    with time_machine.travel(grant.ends_at + dt.timedelta(seconds=1)):
        assert flow.me(token["access_token"]).status_code == 401
        assert flow.refresh(token["refresh_token"]).status_code == 400


def test_access_token_is_capped_at_the_grant_end(flow: Flow) -> None:
    token = flow.tokens(duration=1)
    grant = Grant.objects.get()
    with time_machine.travel(grant.ends_at - dt.timedelta(minutes=5)):
        refreshed = flow.refresh(token["refresh_token"]).json()
        assert refreshed["expires_in"] <= 300
        assert AccessToken.objects.get().expires <= grant.ends_at


def test_another_apps_secret_is_refused(flow: Flow, stranger_app: Any) -> None:
    code = flow.code()
    response = flow.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": flow.verifier,
        },
        secret="other-" + "y" * 40,
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_implicit_and_password_grants_are_refused(flow: Flow, alice: Any) -> None:
    implicit = flow.client.get(flow.authorize_path(response_type="token"))
    assert implicit.status_code == 302 and "access_token" not in implicit["Location"]
    assert (
        "error=unsupported_response_type" in implicit["Location"]
        or "error=unauthorized_client" in implicit["Location"]
    )
    password = flow.token(
        {
            "grant_type": "password",
            "username": "alice@example.com",
            "password": "correct horse battery staple",
        }
    )
    assert password.status_code in (400, 401) and password.json()["error"] in {
        "unauthorized_client",
        "unsupported_grant_type",
    }


def test_token_in_the_query_string_is_refused(flow: Flow) -> None:
    token = flow.tokens()["access_token"]
    response = Client().get(f"/api/v1/me?access_token={token}")
    assert response.status_code == 401
    # Not even beside a valid header: the URI copy may already sit in a log (RFC 9700 §4.3.2).
    both = Client().get(f"/api/v1/me?access_token={token}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert both.status_code == 401


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("Bearer {token}", 200),
        ("bearer {token}", 200),  # the scheme is case-insensitive (RFC 6750 §2.1, RFC 9110 §11.1)
        ("BEARER  {token} ", 200),
        ("Basic {token}", 401),
        ("Bearer", 401),
        ("Bearer {token} {token}", 401),
        ("Bearer {token}x", 401),
        ("{token}", 401),
    ],
)
def test_only_a_well_formed_bearer_header_authenticates(flow: Flow, header: str, status: int) -> None:
    token = flow.tokens()["access_token"]
    response = Client().get("/api/v1/me", HTTP_AUTHORIZATION=header.format(token=token))
    assert response.status_code == status
    if status == 401:
        assert response["WWW-Authenticate"].startswith('Bearer realm="vrm"')


def test_token_endpoint_is_rate_limited_per_client(flow: Flow, settings: Any, time_machine: Any) -> None:
    from django.core.cache import cache

    # The limit counts in fixed windows: with the clock running, the four requests could
    # straddle a window's end and the fourth would rightly be let through.
    time_machine.move_to(dt.datetime.now(dt.UTC), tick=False)
    cache.clear()
    settings.VRM_TOKEN_RATE_PER_MINUTE = 3
    statuses = [
        flow.token({"grant_type": "authorization_code", "code": "nope"}).status_code for _ in range(4)
    ]
    assert statuses[:3] == [400, 400, 400] and statuses[3] == 429
    limited = flow.token({"grant_type": "authorization_code", "code": "nope"})
    assert int(limited["Retry-After"]) >= 1
    cache.clear()


def test_sensitive_scope_is_capped_at_90_days(flow: Flow) -> None:
    response = flow.consent(
        flow.authorize_path(scope="prescriptions:read"), scopes=["prescriptions:read"], duration=365
    )
    assert response.status_code == 400 and "at most 90 days" in response.content.decode()
    assert not Grant.objects.exists()


def test_a_second_authorization_amends_the_active_grant(flow: Flow) -> None:
    flow.tokens(scopes=["profile:read"])
    flow.tokens()
    grant = Grant.objects.get()
    assert grant.scopes == ["profile:read", "purchases:read"]
    assert list(grant.receipts.values_list("event", flat=True)) == ["created", "amended"]


def test_metadata_document(client: Client, db: Any) -> None:
    meta = client.get("/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == "http://127.0.0.1:8000"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["grant_types_supported"] == ["authorization_code", "refresh_token", "client_credentials"]
    assert meta["token_endpoint"] == "http://127.0.0.1:8000/o/token/"
    assert "prescriptions:read" in meta["scopes_supported"]
    assert meta.get("authorization_response_iss_parameter_supported") is True


def test_dot_management_pages_are_not_mounted(client: Client, db: Any) -> None:
    for path in ("/o/applications/", "/o/register/", "/o/authorized_tokens/"):
        assert client.get(path).status_code == 404


def test_granting_a_sensitive_scope_needs_a_recent_password(flow: Flow) -> None:
    from accounts.reauth import SESSION_KEY
    from tests.conftest import PASSWORD

    session = flow.client.session
    session[SESSION_KEY] = 0  # the password was last given long ago
    session.save()
    path = flow.authorize_path(scope="prescriptions:read")
    response = flow.consent(path, scopes=["prescriptions:read"])
    assert response.status_code == 302 and response["Location"].startswith("/accounts/confirm/")
    assert not Grant.objects.exists()
    # Non-sensitive scopes go through without asking again.
    assert flow.consent(flow.authorize_path(), scopes=["profile:read"]).status_code == 302
    assert Grant.objects.get().scopes == ["profile:read"]
    # After confirming, the sensitive grant goes through.
    flow.client.post(response["Location"], {"password": PASSWORD})
    allowed = flow.consent(path, scopes=["prescriptions:read"])
    assert allowed.status_code == 302 and "code=" in allowed["Location"]
    assert Grant.objects.get().scopes == ["prescriptions:read"]
