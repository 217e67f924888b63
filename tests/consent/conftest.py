"""OAuth fixtures: a vendor with a confidential app, a stranger app, and a flow driver."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client

from consent.scopes import PERSON_SCOPES
from vendors.models import Application, Organisation

REDIRECT = "http://127.0.0.1:8765/callback"
SECRET = "s3cret-" + "x" * 40


def make_app(
    org: Organisation,
    *,
    name: str = "Shop app",
    scopes: tuple[str, ...] = PERSON_SCOPES,
    grant_type: str = Application.GRANT_AUTHORIZATION_CODE,
    redirect: str = REDIRECT,
    secret: str = SECRET,
) -> Application:
    app = Application(
        organisation=org,
        name=name,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=grant_type,
        redirect_uris=redirect if grant_type == "authorization-code" else "",
        client_secret=secret,
        scopes=list(scopes),
        scope_purposes={s: f"to serve you better with {s}" for s in scopes},
        required_scopes=["profile:read"],
        algorithm="",
    )
    app.full_clean()
    app.save()
    return app


@pytest.fixture
def shop_org(db: Any) -> Organisation:
    return Organisation.objects.create(
        name="Acme Shop",
        website="https://acme.example",
        privacy_contact="privacy@acme.example",
        verified=True,
    )


@pytest.fixture
def shop_app(shop_org: Organisation) -> Application:
    return make_app(shop_org)


@pytest.fixture
def stranger_app(db: Any) -> Application:
    org = Organisation.objects.create(
        name="Stranger Ltd", website="https://stranger.example", privacy_contact="p@stranger.example"
    )
    return make_app(org, name="Stranger app", secret="other-" + "y" * 40)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@dataclass
class Flow:
    """Drive the authorization-code flow with Django's test client, as a person and a vendor."""

    client: Client
    app: Application
    secret: str = SECRET
    verifier: str = ""

    def authorize_path(
        self,
        *,
        scope: str = "profile:read purchases:read",
        method: str | None = "S256",
        redirect_uri: str = REDIRECT,
        **extra: str,
    ) -> str:
        self.verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": self.app.client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": "st-123",
        }
        if method:
            params.update(
                code_challenge=challenge if method == "S256" else self.verifier, code_challenge_method=method
            )
        params.update(extra)
        return "/o/authorize/?" + urlencode(params)

    def consent(
        self,
        path: str,
        *,
        scopes: list[str] | None = None,
        duration: int = 30,
        allow: bool = True,
        **fields: Any,
    ) -> Any:
        data: dict[str, Any] = {
            "scopes": scopes if scopes is not None else ["profile:read", "purchases:read"],
            "duration_days": duration,
            **fields,
        }
        data["allow" if allow else "deny"] = "1"
        return self.client.post(path, data)

    def code(self, **kwargs: Any) -> str:
        response = self.consent(self.authorize_path(**kwargs.pop("authorize", {})), **kwargs)
        assert response.status_code == 302, response.content[:500]
        query = parse_qs(urlsplit(response["Location"]).query)
        return query["code"][0]

    def token(self, data: dict[str, str], *, secret: str | None = None, client_id: str | None = None) -> Any:
        return self.client.post(
            "/o/token/", data, **basic(client_id or self.app.client_id, secret or self.secret)
        )

    def exchange(self, code: str, *, verifier: str | None = None, redirect_uri: str = REDIRECT) -> Any:
        return self.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier if verifier is not None else self.verifier,
            }
        )

    def tokens(self, **kwargs: Any) -> dict[str, Any]:
        response = self.exchange(self.code(**kwargs))
        assert response.status_code == 200, response.content
        return response.json()

    def refresh(self, refresh_token: str) -> Any:
        return self.token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def me(self, access_token: str) -> Any:
        return Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {access_token}")


@pytest.fixture
def flow(client: Client, alice: Any, shop_app: Application) -> Flow:
    client.force_login(alice)
    return Flow(client=client, app=shop_app)
