"""What the HTTP benchmarks share: a free port, wrk's latency figures, a token from the real flow."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import socket
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
REDIRECT = "http://127.0.0.1:8765/callback"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


class FlowFailed(RuntimeError):
    """A step of the sign-in, consent or token flow answered something else than it should."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gunicorn_command(*, port: int, workers: int, log: Path) -> list[str]:
    """gunicorn serving the site from this checkout on a loopback port, its errors to `log`."""
    return [
        str(Path(sys.executable).parent / "gunicorn"),
        "vrm.wsgi:application",
        f"--workers={workers}",
        f"--bind=127.0.0.1:{port}",
        f"--chdir={ROOT}",
        f"--error-logfile={log}",
    ]


def wrk_ms(text: str) -> float:
    """A latency as wrk prints it (`812.00us`, `3.21ms`, `1.02s`), in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def bench_app(*, name: str, scopes: Iterable[str]) -> tuple[Any, str]:
    """A confidential app of the verified "Bench Shop" allowed `scopes`; return it and its secret."""
    from vendors.models import Application, Organisation

    organisation, _ = Organisation.objects.get_or_create(
        name="Bench Shop",
        defaults={"website": "https://bench.example", "privacy_contact": "p@bench.example", "verified": True},
    )
    secret = secrets.token_urlsafe(32)
    scopes = list(scopes)
    app = Application(
        organisation=organisation,
        name=name,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=REDIRECT,
        client_secret=secret,
        scopes=scopes,
        scope_purposes=dict.fromkeys(scopes, "benchmark"),
        required_scopes=[],
        algorithm="",
    )
    app.full_clean()
    app.save()
    return app, secret


def consent_token(*, email: str, password: str, app: Any, secret: str, scopes: Iterable[str]) -> str:
    """Sign the person in, consent to every scope for 30 days, exchange the code; return the token.

    Through the site's own pages and endpoints (Django's test client, in this process), as a
    person and a vendor would: the grant, its share and its receipt are the real ones.
    """
    from django.test import Client

    scopes = list(scopes)
    client = Client()
    # Signing in opens the person's store, which granting needs (their key is theirs alone).
    signed_in = client.post("/accounts/login/", {"username": email, "password": password})
    if signed_in.status_code != 302:
        raise FlowFailed(f"sign-in answered {signed_in.status_code}")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "scope": " ".join(scopes),
        "state": "bench",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    consent = client.post(
        "/o/authorize/?" + urlencode(query), {"scopes": scopes, "duration_days": "30", "allow": "1"}
    )
    if consent.status_code != 302:
        raise FlowFailed(f"consent answered {consent.status_code}")
    code = parse_qs(urlsplit(consent["Location"]).query)["code"][0]
    basic = base64.b64encode(f"{app.client_id}:{secret}".encode()).decode()
    token = client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    if token.status_code != 200:
        raise FlowFailed(f"token endpoint answered {token.status_code}: {token.content[:200]!r}")
    return str(token.json()["access_token"])
