"""A real OAuth client library (Authlib) against the live server: the acceptance flows of §4.

The person's side is a plain `requests` session that logs in and posts the consent form of
INTERFACES.md §3; the vendor's side is Authlib's `OAuth2Session`. Nothing listens on the
registered redirect URI: the vendor only reads the `Location` of the consent response.
"""

from __future__ import annotations

import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from django.conf import settings

from consent.models import AccessToken, Grant
from consent.oauth import checksum
from core.formats import rfc3339
from personal_data.pseudonyms import pairwise_subject
from tests.conftest import PASSWORD
from tests.consent.conftest import REDIRECT, SECRET, make_app
from vendors.models import Application, Organisation

pytestmark = pytest.mark.django_db(transaction=True)

SCOPE = "profile:read purchases:read"
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _person(live_server: Any, email: str) -> requests.Session:
    """Log a person in through the login form, as a browser would."""
    person = requests.Session()
    login = f"{live_server.url}/accounts/login/"
    assert person.get(login, timeout=30).status_code == 200
    response = person.post(
        login,
        data={"username": email, "password": PASSWORD, "csrfmiddlewaretoken": person.cookies["csrftoken"]},
        headers={"Referer": login},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text[:500]
    assert "sessionid" in person.cookies
    return person


def _vendor(app: Application, scope: str = SCOPE) -> OAuth2Session:
    return OAuth2Session(
        client_id=app.client_id,
        client_secret=SECRET,
        scope=scope,
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )


def _consent(person: requests.Session, url: str, *, scopes: list[str], vendor: str) -> str:
    """Open the consent page, post the §3 form back to the same URL, return the Location."""
    page = person.get(url, timeout=30)
    assert page.status_code == 200, page.text[:500]
    assert vendor in page.text
    for scope in scopes:
        assert f'name="scopes" value="{scope}"' in page.text
    match = CSRF_INPUT.search(page.text)
    assert match is not None
    response = person.post(
        url,  # same query string: the form posts back to the authorization request
        data={
            "csrfmiddlewaretoken": match.group(1),
            "scopes": scopes,
            "duration_days": "30",
            "history_months": "",
            "allow": "1",
        },
        headers={"Referer": url},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text[:500]
    return response.headers["Location"]


def _authorize(
    live_server: Any, person: requests.Session, vendor: OAuth2Session, *, scopes: list[str]
) -> dict[str, Any]:
    """Run consent and the code exchange; return the token Authlib got."""
    verifier = secrets.token_urlsafe(48)
    url, state = vendor.create_authorization_url(f"{live_server.url}/o/authorize/", code_verifier=verifier)
    assert "code_challenge_method=S256" in url and "code_challenge=" in url
    location = _consent(person, url, scopes=scopes, vendor="Acme Shop")

    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == REDIRECT
    query = parse_qs(parts.query)
    assert query["state"] == [state]
    assert query["iss"] == [settings.VRM_ISSUER]  # RFC 9207
    assert "code" in query and "error" not in query

    # Authlib checks `state` again and sends the verifier and redirect_uri with HTTP Basic.
    return vendor.fetch_token(
        f"{live_server.url}/o/token/", authorization_response=location, state=state, code_verifier=verifier
    )


def _me(live_server: Any, access_token: str) -> requests.Response:
    return requests.get(
        f"{live_server.url}/api/v1/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=30
    )


def test_authlib_code_pkce_consent_token_me_refresh_introspect_revoke(
    live_server: Any, alice: Any, shop_app: Application
) -> None:
    token_url = f"{live_server.url}/o/token/"
    introspect_url = f"{live_server.url}/o/introspect/"
    person = _person(live_server, alice.email)
    vendor = _vendor(shop_app)

    first = _authorize(live_server, person, vendor, scopes=["profile:read", "purchases:read"])
    assert first["token_type"] == "Bearer" and 0 < first["expires_in"] <= 900
    assert set(first["scope"].split()) == {"profile:read", "purchases:read"}
    assert first["refresh_token"]

    grant = Grant.objects.get(person=alice, application=shop_app)
    assert grant.status == Grant.Status.ACTIVE and grant.scopes == ["profile:read", "purchases:read"]
    assert grant.history_months is None and not grant.include_gifts

    me = vendor.get(f"{live_server.url}/api/v1/me", timeout=30)  # Authlib sends its bearer token
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["sub"] == pairwise_subject(person_id=alice.pk, organisation_id=shop_app.organisation_id)
    assert body["grant"]["id"] == str(grant.pk)
    assert body["grant"]["scopes"] == ["profile:read", "purchases:read"]
    assert body["name"] == "Alice Liddell"
    assert me.headers["Grant-Expires"] == rfc3339(grant.ends_at) == body["grant"]["expires_at"]

    # Rotation: a new refresh token, and a new access token that works.
    refreshed = vendor.refresh_token(token_url)
    assert refreshed["refresh_token"] != first["refresh_token"]
    assert refreshed["access_token"] != first["access_token"]
    assert _me(live_server, refreshed["access_token"]).status_code == 200

    # Introspection by the owning client, HTTP Basic (Authlib's client_secret_basic).
    intro = vendor.introspect_token(introspect_url, token=refreshed["access_token"])
    assert intro.status_code == 200
    data = intro.json()
    assert data["active"] is True and data["token_type"] == "Bearer"
    assert data["scope"] == "profile:read purchases:read"
    assert data["client_id"] == shop_app.client_id
    assert data["sub"] == body["sub"] and data["grant_id"] == str(grant.pk)
    stored = AccessToken.objects.get(token_checksum=checksum(refreshed["access_token"]))
    assert data["exp"] == int(stored.expires.timestamp())

    # Reuse detection: the rotated-away refresh token fails, and takes the new tokens with it.
    with pytest.raises(OAuthError) as reused:
        vendor.refresh_token(token_url, refresh_token=first["refresh_token"])
    assert reused.value.error == "invalid_grant"
    assert _me(live_server, refreshed["access_token"]).status_code == 401
    with pytest.raises(OAuthError) as dead:
        vendor.refresh_token(token_url, refresh_token=refreshed["refresh_token"])
    assert dead.value.error == "invalid_grant"
    inactive = vendor.introspect_token(introspect_url, token=refreshed["access_token"])
    assert inactive.json() == {"active": False}

    # A second authorization gives a fresh pair under the same (amended) grant: revoke it.
    second = _authorize(live_server, person, vendor, scopes=["profile:read"])
    assert second["scope"] == "profile:read"
    again = _me(live_server, second["access_token"])
    assert again.status_code == 200 and again.json()["grant"]["id"] == str(grant.pk)

    revoked = vendor.revoke_token(
        f"{live_server.url}/o/revoke_token/", token=second["access_token"], token_type_hint="access_token"
    )
    assert revoked.status_code == 200
    gone = _me(live_server, second["access_token"])
    assert gone.status_code == 401
    assert "invalid_token" in gone.headers["WWW-Authenticate"]
    assert vendor.introspect_token(introspect_url, token=second["access_token"]).json() == {"active": False}

    revoked = vendor.revoke_token(
        f"{live_server.url}/o/revoke_token/", token=second["refresh_token"], token_type_hint="refresh_token"
    )
    assert revoked.status_code == 200
    with pytest.raises(OAuthError) as after_revoke:
        vendor.refresh_token(token_url, refresh_token=second["refresh_token"])
    assert after_revoke.value.error == "invalid_grant"


def test_authlib_client_credentials_for_organisation_scopes_only(
    live_server: Any, shop_org: Organisation
) -> None:
    app = make_app(shop_org, name="Recalls", grant_type="client-credentials", scopes=("recalls:publish",))
    token_url = f"{live_server.url}/o/token/"

    vendor = OAuth2Session(
        client_id=app.client_id,
        client_secret=SECRET,
        scope="recalls:publish",
        token_endpoint_auth_method="client_secret_basic",
    )
    token = vendor.fetch_token(token_url, grant_type="client_credentials")
    assert token["scope"] == "recalls:publish" and token["token_type"] == "Bearer"
    assert "refresh_token" not in token
    # An organisation token speaks for nobody: the person API refuses it.
    assert _me(live_server, token["access_token"]).status_code == 401

    with pytest.raises(OAuthError) as refused:
        vendor.fetch_token(token_url, grant_type="client_credentials", scope="profile:read")
    assert refused.value.error == "invalid_scope"


def test_two_parallel_refreshes_with_the_same_token_exactly_one_succeeds(
    live_server: Any, alice: Any, shop_app: Application
) -> None:
    person = _person(live_server, alice.email)
    token = _authorize(live_server, person, _vendor(shop_app), scopes=["profile:read"])
    barrier = threading.Barrier(2)

    def refresh() -> requests.Response:
        barrier.wait(timeout=30)
        return requests.post(
            f"{live_server.url}/o/token/",
            data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
            auth=(shop_app.client_id, SECRET),
            timeout=60,
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = [f.result() for f in [pool.submit(refresh), pool.submit(refresh)]]

    by_status = sorted(responses, key=lambda r: r.status_code)
    assert [r.status_code for r in by_status] == [200, 400], [r.text for r in responses]
    assert by_status[0].json()["refresh_token"] != token["refresh_token"]
    assert by_status[1].json()["error"] == "invalid_grant"
