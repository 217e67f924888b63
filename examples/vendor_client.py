"""A vendor's client for vrm, end to end: authorization code + PKCE (S256), then the API.

Against `make run` and its demo app (docs/vendors.md walks through the same steps):

    .venv/bin/python -m pip install -r examples/requirements.txt   # requests and Authlib
    VRM_DEBUG=True .venv/bin/python manage.py seed_demo --json > /tmp/demo.json
    .venv/bin/python examples/vendor_client.py --demo-json /tmp/demo.json

It prints the authorization URL; open it in a browser, log in as the demo person, allow, and
the redirect to http://127.0.0.1:8765/callback lands on a one-shot HTTP server this script
runs. To run unattended, let the script play the person too (log in, post the consent form):

    .venv/bin/python examples/vendor_client.py --demo-json /tmp/demo.json --auto-consent

(with --demo-json, --auto-consent takes the first demo person's login; or give
`--auto-consent EMAIL PASSWORD`). Client credentials can also come from --client-id and
--client-secret or the environment (VRM_CLIENT_ID, VRM_CLIENT_SECRET).

Only `requests` and Authlib are needed (examples/requirements.txt); without them the script
says how to install them.
"""

from __future__ import annotations

import argparse
import html.parser
import json
import os
import secrets
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

try:
    import requests
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.requests_client import OAuth2Session
except ImportError as missing:  # vrm's own requirements.txt does not have them
    sys.exit(
        f"{missing.name} is missing: install what this example needs with\n"
        "  .venv/bin/python -m pip install -r examples/requirements.txt"
    )

DEFAULT_SCOPES = "profile:read purchases:read purchases:check closet:read appliances:read preferences:read"
# What to show for each granted scope: (title, API path).
SHOW = [
    ("purchases:read", "Purchases (5 newest)", "/api/v1/purchases?limit=5"),
    ("closet:read", "Closet (5)", "/api/v1/closet?limit=5"),
    ("appliances:read", "Appliances (5)", "/api/v1/appliances?limit=5"),
    ("prescriptions:read", "Prescriptions (5)", "/api/v1/prescriptions?limit=5"),
    ("preferences:read", "Preferences", "/api/v1/preferences"),
]
TIMEOUT = 30


class ClientError(Exception):
    """The flow failed; the message says where."""


# The redirect catcher.


class _CallbackServer(HTTPServer):
    callback_url: str | None = None


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if urlsplit(self.path).path != "/callback":
            self.send_error(404)
            return
        host, port = self.server.server_address[:2]
        self.server.callback_url = f"http://{host}:{port}{self.path}"
        body = b"<!doctype html><title>vrm example</title><p>Done: you can close this window."
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's signature)
        pass  # the URL carries the code: keep it out of the terminal


class Callback:
    """A one-request HTTP server on 127.0.0.1:port that waits for the authorization redirect."""

    def __init__(self, port: int) -> None:
        self.server = _CallbackServer(("127.0.0.1", port), _CallbackHandler)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while self.server.callback_url is None and not self._stopped:
            self.server.handle_request()

    def __enter__(self) -> Callback:
        self._stopped = False
        self.server.timeout = 0.5
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped = True
        self.thread.join(timeout=2)
        self.server.server_close()

    def wait(self, timeout: float) -> str:
        self.thread.join(timeout=timeout)
        if self.server.callback_url is None:
            raise ClientError(f"no redirect reached the callback within {timeout:.0f} s")
        return self.server.callback_url


# The person's side, for --auto-consent (what a browser would do).


class _FormReader(html.parser.HTMLParser):
    """Collect the CSRF token and the offered scope checkboxes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.csrf = ""
        self.scopes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag != "input":
            return
        if a.get("name") == "csrfmiddlewaretoken":
            self.csrf = a.get("value") or ""
        elif a.get("name") == "scopes" and a.get("value"):
            self.scopes.append(a["value"] or "")


def _read_form(text: str) -> _FormReader:
    reader = _FormReader()
    reader.feed(text)
    return reader


def auto_consent(base_url: str, authorization_url: str, email: str, password: str) -> None:
    """Log in as the person, allow every requested scope for 30 days, follow the redirect."""
    person = requests.Session()
    login_url = f"{base_url}/accounts/login/"
    page = person.get(login_url, timeout=TIMEOUT)
    response = person.post(
        login_url,
        data={"username": email, "password": password, "csrfmiddlewaretoken": _read_form(page.text).csrf},
        headers={"Referer": login_url},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    if response.status_code != 302:
        raise ClientError(f"login as {email} failed (HTTP {response.status_code})")
    consent_page = person.get(authorization_url, timeout=TIMEOUT)
    form = _read_form(consent_page.text)
    if consent_page.status_code != 200 or not form.csrf:
        raise ClientError(f"the consent page did not load (HTTP {consent_page.status_code})")
    response = person.post(
        authorization_url,  # the form posts back to the authorization request itself
        data={
            "csrfmiddlewaretoken": form.csrf,
            "scopes": form.scopes,
            "duration_days": "30",
            "allow": "1",
        },
        headers={"Referer": authorization_url},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    if response.status_code != 302:
        raise ClientError(f"the consent form was refused (HTTP {response.status_code})")
    # The browser follows the redirect to the vendor's callback: our own one-shot server.
    requests.get(response.headers["Location"], timeout=TIMEOUT)


# The vendor's side.


def _metadata(base_url: str) -> dict[str, Any]:
    response = requests.get(f"{base_url}/.well-known/oauth-authorization-server", timeout=TIMEOUT)
    response.raise_for_status()
    return dict(response.json())


def _check_callback(callback_url: str, *, state: str, issuer: str) -> None:
    query = parse_qs(urlsplit(callback_url).query)
    if "error" in query:
        raise ClientError(f"authorization refused: {query['error'][0]}")
    if query.get("state") != [state]:
        raise ClientError("the state parameter does not match: not our request")
    # RFC 9207: the response must come from the issuer we sent the person to (mix-up defence).
    if query.get("iss") != [issuer]:
        raise ClientError(f"unexpected issuer {query.get('iss')} (expected {issuer})")


def _print_json(title: str, value: Any, out: Any) -> None:
    print(f"\n== {title}", file=out)
    print(json.dumps(value, indent=2, ensure_ascii=False), file=out)


def run(
    *,
    base_url: str,
    client_id: str,
    client_secret: str,
    scope: str,
    port: int,
    auto_login: tuple[str, str] | None,
    wait_seconds: float,
    out: Any = sys.stdout,
) -> dict[str, Any]:
    """Do the whole flow and print what the grant allows; return the token response."""
    base_url = base_url.rstrip("/")
    metadata = _metadata(base_url)
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    vendor = OAuth2Session(
        client_id=client_id,
        client_secret=client_secret,
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 (a method name)
    )
    code_verifier = secrets.token_urlsafe(64)
    state = secrets.token_urlsafe(16)
    authorization_url, _ = vendor.create_authorization_url(
        metadata["authorization_endpoint"], state=state, code_verifier=code_verifier
    )
    with Callback(port) as callback:
        print("Open this URL as the person, log in and allow:", file=out)
        print(f"  {authorization_url}", file=out)
        if auto_login is not None:
            auto_consent(base_url, authorization_url, *auto_login)
        callback_url = callback.wait(wait_seconds)
    _check_callback(callback_url, state=state, issuer=metadata["issuer"])
    token = vendor.fetch_token(
        metadata["token_endpoint"],
        authorization_response=callback_url,
        code_verifier=code_verifier,
        state=state,
    )
    print(
        f"\nGot an access token (expires in {token['expires_in']} s) and a refresh token; "
        f"scope: {token['scope']}",
        file=out,
    )

    def api(path: str) -> Any:
        response = vendor.get(base_url + path, timeout=TIMEOUT)
        if response.status_code != 200:
            raise ClientError(f"GET {path}: HTTP {response.status_code} {response.text[:300]}")
        return response.json(), response.headers.get("Grant-Expires")

    me, grant_expires = api("/api/v1/me")
    _print_json(f"Grant (GET /api/v1/me; Grant-Expires: {grant_expires})", me, out)
    # The person's MyTerms agreement, if the grant was made under one: keep it, then say so.
    agreement = vendor.get(base_url + "/api/v1/agreement", timeout=TIMEOUT)
    if agreement.status_code == 200:
        record = agreement.json()["record"]
        terms = record["agreement"]
        print(
            f"\nThe grant stands under the person's terms: {terms['title']} "
            f"({terms['id']} {terms['version']})",
            file=out,
        )
        acknowledged = vendor.post(base_url + "/api/v1/agreement/accept", timeout=TIMEOUT)
        if acknowledged.status_code != 200:
            raise ClientError(f"POST /api/v1/agreement/accept: HTTP {acknowledged.status_code}")
        print(
            f"Acknowledged the signed agreement record at {acknowledged.json()['acknowledged_at']}", file=out
        )
    elif agreement.status_code != 404:
        raise ClientError(f"GET /api/v1/agreement: HTTP {agreement.status_code} {agreement.text[:300]}")
    granted = set(me["grant"]["scopes"])
    for needed, title, path in SHOW:
        if needed in granted:
            body, _ = api(path)
            _print_json(f"{title} (GET {path})", body, out)
    return dict(token)


def _credentials(args: argparse.Namespace) -> tuple[str, str, tuple[str, str] | None]:
    client_id = args.client_id or os.environ.get("VRM_CLIENT_ID", "")
    client_secret = args.client_secret or os.environ.get("VRM_CLIENT_SECRET", "")
    person: tuple[str, str] | None = None
    if args.demo_json:
        with sys.stdin if args.demo_json == "-" else open(args.demo_json) as handle:
            demo = json.load(handle)
        client_id = client_id or demo["app"]["client_id"]
        client_secret = client_secret or demo["app"]["client_secret"]
        person = (demo["people"][0]["email"], demo["people"][0]["password"])
    if not client_id or not client_secret:
        raise ClientError("give --client-id/--client-secret, VRM_CLIENT_ID/VRM_CLIENT_SECRET or --demo-json")
    auto: tuple[str, str] | None = None
    if args.auto_consent is not None:
        if len(args.auto_consent) == 2:
            auto = (args.auto_consent[0], args.auto_consent[1])
        elif not args.auto_consent and person is not None:
            auto = person
        else:
            raise ClientError("--auto-consent takes EMAIL PASSWORD (or none, with --demo-json)")
    return client_id, client_secret, auto


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="the vrm server")
    parser.add_argument("--client-id", help="or VRM_CLIENT_ID")
    parser.add_argument("--client-secret", help="or VRM_CLIENT_SECRET")
    parser.add_argument("--demo-json", metavar="FILE", help="output of `seed_demo --json` ('-' for stdin)")
    parser.add_argument("--scope", default=DEFAULT_SCOPES, help="space-separated scopes to ask for")
    parser.add_argument(
        "--port",
        type=int,
        default=8765,
        help="callback port; the app must be registered with http://127.0.0.1:PORT/callback",
    )
    parser.add_argument(
        "--auto-consent",
        nargs="*",
        metavar="EMAIL PASSWORD",
        help="play the person too: log in and allow (unattended runs, tests)",
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the redirect")
    args = parser.parse_args(argv)
    try:
        client_id, client_secret, auto = _credentials(args)
        run(
            base_url=args.base_url,
            client_id=client_id,
            client_secret=client_secret,
            scope=args.scope,
            port=args.port,
            auto_login=auto,
            wait_seconds=args.timeout,
        )
    except OAuthError as error:
        print(f"error: the token endpoint said {error.error}: {error.description or ''}", file=sys.stderr)
        return 1
    except (ClientError, requests.RequestException, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
