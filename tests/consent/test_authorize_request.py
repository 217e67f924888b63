"""The authorization request is checked whole before the consent page, and again on its POST.

RFC 6749 §4.1.2.1: a missing, unknown or duplicated client or redirect URI is shown to the person
and never redirected; every other refusal goes back to the client with `error`,
`error_description`, `state` and `iss` (RFC 9207). A refused or failed authorization leaves no
grant, receipt, ledger entry or code.
"""

from __future__ import annotations

from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings
from django.test import Client
from oauthlib.oauth2.rfc6749 import errors

from audit.models import LedgerEntry
from consent.models import AuthorizationCode, Grant, Receipt
from tests.consent.conftest import REDIRECT, Flow, pkce_pair

CONSENT_FORM = 'name="allow"'


def _params(flow: Flow, **changes: str | None) -> list[tuple[str, str]]:
    """A valid request's parameters, with some changed (None drops one)."""
    _verifier, challenge = pkce_pair()
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": flow.app.client_id,
        "redirect_uri": REDIRECT,
        "scope": "profile:read purchases:read",
        "state": "st-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **changes,
    }
    return [(k, v) for k, v in params.items() if v is not None]


def _path(pairs: list[tuple[str, str]]) -> str:
    return "/o/authorize/?" + urlencode(pairs)


def _rows() -> tuple[int, int, int, int]:
    return (
        Grant.objects.count(),
        Receipt.objects.count(),
        LedgerEntry.objects.count(),
        AuthorizationCode.objects.count(),
    )


def _error_redirect(response: Any) -> dict[str, list[str]]:
    """Assert the response sends the person back to the client with an error; return its query."""
    assert response.status_code == 302, response.content[:300]
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert "code" not in query
    assert query["iss"] == [settings.VRM_ISSUER]
    assert query["error_description"][0]
    return query


def _error_page(response: Any) -> str:
    """Assert the response is the error page shown to the person, never a redirect."""
    assert response.status_code == 400
    assert "Location" not in response
    html = response.content.decode()
    assert CONSENT_FORM not in html and 'name="scopes"' not in html
    assert "This request cannot go ahead" in html
    return html


# Requests whose redirect URI cannot be trusted: an error page for the person.


@pytest.mark.parametrize(
    "changes",
    [
        {"client_id": None},
        {"client_id": ""},
        {"client_id": "no-such-client"},
        {"redirect_uri": None},
        {"redirect_uri": REDIRECT + "/"},
        {"redirect_uri": "https://evil.example/callback"},
    ],
    ids=[
        "client-missing",
        "client-empty",
        "client-unknown",
        "redirect-missing",
        "redirect-near",
        "redirect-evil",
    ],
)
def test_an_untrusted_client_or_redirect_uri_shows_an_error_page(flow: Flow, changes: dict[str, Any]) -> None:
    _error_page(flow.client.get(_path(_params(flow, **changes))))


@pytest.mark.parametrize("name", ["client_id", "redirect_uri"])
def test_a_duplicated_client_or_redirect_uri_shows_an_error_page(flow: Flow, name: str) -> None:
    pairs = _params(flow)
    pairs.append((name, dict(pairs)[name]))  # the same value twice is still two values
    _error_page(flow.client.get(_path(pairs)))


def test_an_untrusted_request_is_refused_before_the_login_page(shop_app: Any) -> None:
    anonymous = Client()
    flow = Flow(client=anonymous, app=shop_app)
    _error_page(anonymous.get(_path(_params(flow, redirect_uri="https://evil.example/cb"))))
    valid = anonymous.get(_path(_params(flow)))
    assert valid.status_code == 302 and valid["Location"].startswith("/accounts/login/")


# Every other refusal goes back to the client, with state and iss.


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),  # RFC 7636 would default to plain
        ({"code_challenge_method": "s256"}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"code_challenge": "a" * 42 + "!"}, "invalid_request"),
        ({"response_type": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"scope": None}, "invalid_scope"),
        ({"scope": "profile:read admin"}, "invalid_scope"),
        ({"scope": "recalls:publish"}, "invalid_scope"),  # an organisation scope
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"response_mode": "form_post"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "urn:ietf:params:oauth:request_uri:abc"}, "request_uri_not_supported"),
    ],
    ids=lambda v: v if isinstance(v, str) else ",".join(f"{k}={v}" for k, v in v.items()),
)
def test_an_invalid_request_goes_back_to_the_client_and_shows_no_consent_page(
    flow: Flow, changes: dict[str, Any], error: str
) -> None:
    response = flow.client.get(_path(_params(flow, **changes)))
    query = _error_redirect(response)
    assert query["error"] == [error]
    assert query["state"] == ["st-123"]
    assert CONSENT_FORM not in response.content.decode()


def test_an_app_may_ask_only_for_scopes_registered_for_it(flow: Flow, shop_org: Any) -> None:
    from tests.consent.conftest import make_app

    flow.app = make_app(shop_org, name="Narrow", scopes=("profile:read",))
    query = _error_redirect(flow.client.get(_path(_params(flow, scope="profile:read purchases:read"))))
    assert query["error"] == ["invalid_scope"] and query["state"] == ["st-123"]


@pytest.mark.parametrize(
    "name", ["response_type", "scope", "code_challenge", "code_challenge_method", "response_mode"]
)
def test_a_duplicated_parameter_goes_back_as_invalid_request(flow: Flow, name: str) -> None:
    pairs = _params(flow, response_mode="query")
    pairs.append((name, "plain" if name == "code_challenge_method" else dict(pairs)[name]))
    query = _error_redirect(flow.client.get(_path(pairs)))
    assert query["error"] == ["invalid_request"] and name in query["error_description"][0]
    assert query["state"] == ["st-123"]


@pytest.mark.parametrize(
    "pairs",
    [
        [("state", "one"), ("state", "two")],
        [("state", "a" * 1025)],
        [("state", "line\nbreak")],
        [("state", "")],
    ],
    ids=["duplicated", "too-long", "control-character", "empty"],
)
def test_a_bad_state_is_refused_and_never_echoed(flow: Flow, pairs: list[tuple[str, str]]) -> None:
    request = [(k, v) for k, v in _params(flow) if k != "state"] + pairs
    response = flow.client.get(_path(request))
    query = _error_redirect(response)
    assert query["error"] == ["invalid_request"] and "state" not in query


def test_a_request_without_state_is_served_and_answered_without_state(flow: Flow) -> None:
    path = _path(_params(flow, state=None))
    assert CONSENT_FORM in flow.client.get(path).content.decode()
    query = parse_qs(urlsplit(flow.consent(path)["Location"]).query)
    assert query["code"] and "state" not in query and query["iss"] == [settings.VRM_ISSUER]


@pytest.mark.parametrize("tail", ["&utm=%zz", "&%g1=1", "&note=100%"])
def test_a_malformed_query_string_is_refused_not_a_server_error(flow: Flow, tail: str) -> None:
    query = _error_redirect(flow.client.get(_path(_params(flow)) + tail))
    assert query["error"] == ["invalid_request"] and "state" not in query


def test_unknown_parameters_are_ignored(flow: Flow) -> None:
    # RFC 6749 §3.1: the server MUST ignore parameters it does not recognise.
    page = flow.client.get(_path([*_params(flow), ("utm_source", "newsletter")]))
    assert page.status_code == 200 and CONSENT_FORM in page.content.decode()


# The POST: validated again, and all or nothing.


def test_a_post_with_plain_pkce_leaves_nothing(flow: Flow) -> None:
    before = _rows()
    query = _error_redirect(flow.consent(flow.authorize_path(method="plain")))
    assert query["error"] == ["invalid_request"] and query["state"] == ["st-123"]
    assert _rows() == before


@pytest.mark.parametrize(
    "choice",
    [
        {"scopes": ["profile:read", "prescriptions:read"]},  # a scope the request did not ask for
        {"scopes": ["profile:read", "recalls:publish"]},
        {"duration": 3},
        {"duration": 365, "scopes": ["prescriptions:read"]},  # over the cap for sensitive data
        {"history_months": 5},
        {"scopes": []},
    ],
    ids=[
        "unrequested-scope",
        "organisation-scope",
        "bad-duration",
        "sensitive-too-long",
        "bad-history",
        "none",
    ],
)
def test_a_tampered_consent_post_leaves_nothing(flow: Flow, choice: dict[str, Any]) -> None:
    scope = "profile:read purchases:read prescriptions:read" if "duration" in choice else None
    path = flow.authorize_path(scope=scope) if scope else flow.authorize_path()
    before = _rows()
    # As if the password was just given, so a sensitive choice reaches the checks, not re-auth.
    with mock.patch("consent.oauth_views.recently_confirmed", return_value=True):
        response = flow.consent(path, **choice)
    assert response.status_code == 400 and "Location" not in response
    assert _rows() == before


def test_a_post_body_cannot_change_the_authorization_request(flow: Flow) -> None:
    path = flow.authorize_path()
    response = flow.consent(
        path,
        code_challenge_method="plain",
        code_challenge=flow.verifier,
        redirect_uri="https://evil.example/callback",
        scope="profile:read prescriptions:read",
        state="forged",
    )
    query = parse_qs(urlsplit(response["Location"]).query)
    assert response["Location"].startswith(REDIRECT + "?") and query["state"] == ["st-123"]
    code = AuthorizationCode.objects.get()
    assert code.code_challenge_method == "S256" and code.redirect_uri == REDIRECT
    assert code.scope == "profile:read purchases:read"
    assert flow.exchange(query["code"][0]).status_code == 200


def test_a_refusal_when_the_code_is_made_rolls_the_grant_back(flow: Flow) -> None:
    before = _rows()
    refusal = errors.InvalidRequestError(description="refused late")
    with mock.patch("consent.oauth.GrantValidator._create_authorization_code", side_effect=refusal):
        response = flow.consent(flow.authorize_path())
    query = _error_redirect(response)
    assert query["error"] == ["invalid_request"]
    assert _rows() == before


def test_a_code_that_cannot_be_stored_rolls_the_grant_back(flow: Flow) -> None:
    before = _rows()
    with (
        mock.patch("consent.oauth.GrantValidator.save_authorization_code", side_effect=RuntimeError("db")),
        pytest.raises(RuntimeError),
    ):
        flow.consent(flow.authorize_path())
    assert _rows() == before


def test_deny_goes_back_with_access_denied_state_and_iss(flow: Flow) -> None:
    before = _rows()
    query = _error_redirect(flow.consent(flow.authorize_path(), allow=False))
    assert query["error"] == ["access_denied"] and query["state"] == ["st-123"]
    assert _rows() == before


def test_success_makes_one_grant_receipt_entry_and_code(flow: Flow) -> None:
    before = _rows()
    response = flow.consent(flow.authorize_path())
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["iss"] == [settings.VRM_ISSUER] and query["state"] == ["st-123"]
    assert _rows() == (before[0] + 1, before[1] + 1, before[2] + 1, before[3] + 1)
    assert flow.exchange(query["code"][0]).status_code == 200
