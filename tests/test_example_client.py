"""examples/vendor_client.py runs the whole flow against a live server, unattended."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from consent.models import Grant, TermsChoice
from consent.scopes import PERSON_SCOPES
from devtools.records import demo_records_seed
from portal.services import person_signup
from tests.conftest import PASSWORD
from vendors.models import Application, Organisation

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "example-" + "z" * 40
CLIENT = Path(__file__).resolve().parent.parent / "examples" / "vendor_client.py"


def _load_client() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vendor_client", CLIENT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def issuer(live_server: Any, settings: Any) -> str:
    """Make the live server its own issuer, so metadata and the `iss` parameter point at it."""
    settings.VRM_ISSUER = live_server.url
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": live_server.url}
    return str(live_server.url)


def _app(port: int) -> Application:
    org = Organisation.objects.create(
        name="Example Shop", website="https://shop.example", privacy_contact="p@shop.example", verified=True
    )
    app = Application(
        organisation=org,
        name="Example client",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=f"http://127.0.0.1:{port}/callback",
        client_secret=SECRET,
        scopes=list(PERSON_SCOPES),
        scope_purposes={s: f"to show {s} in the example" for s in PERSON_SCOPES},
        required_scopes=["profile:read"],
        algorithm="",
    )
    app.full_clean()
    app.save()
    return app


def test_example_client_runs_the_whole_flow(issuer: str, capsys: pytest.CaptureFixture[str]) -> None:
    person = person_signup(email="casey@example.com", password=PASSWORD, display_name="Casey Jones")
    demo_records_seed(person=person, scale="small")
    TermsChoice.objects.create(person=person, proffered=["sd-base"])
    port = _free_port()
    app = _app(port)
    app.organisation.accepted_terms = ["sd-base"]
    app.organisation.save(update_fields=["accepted_terms"])

    code = _load_client().main(
        [
            "--base-url",
            issuer,
            "--client-id",
            app.client_id,
            "--client-secret",
            SECRET,
            "--port",
            str(port),
            "--timeout",
            "30",
            "--auto-consent",
            "casey@example.com",
            PASSWORD,
        ]
    )

    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Open this URL as the person" in out and "code_challenge_method=S256" in out
    grant = Grant.objects.get(person=person, application=app)
    assert "== Grant (GET /api/v1/me; Grant-Expires: " in out
    assert f'"id": "{grant.pk}"' in out
    assert '"name": "Casey Jones"' in out
    assert "== Purchases (5 newest) (GET /api/v1/purchases?limit=5)" in out
    assert '"merchant": ' in out and '"gtin": ' in out
    assert "== Preferences (GET /api/v1/preferences)" in out and '"vegetarian"' in out
    assert "== Closet (5)" in out and "== Appliances (5)" in out
    assert "Prescriptions" not in out  # not asked for by default
    # The grant stands under Casey's terms; the client kept the record and acknowledged it.
    assert "The grant stands under the person's terms: Service delivery only (sd-base 1.0)" in out
    assert grant.agreement is not None and grant.agreement.acknowledged_at is not None


def test_example_client_reports_a_bad_secret(issuer: str, capsys: pytest.CaptureFixture[str]) -> None:
    person_signup(email="casey@example.com", password=PASSWORD)
    port = _free_port()
    app = _app(port)

    code = _load_client().main(
        [
            "--base-url",
            issuer,
            "--client-id",
            app.client_id,
            "--client-secret",
            "wrong-" + "w" * 40,
            "--port",
            str(port),
            "--timeout",
            "30",
            "--auto-consent",
            "casey@example.com",
            PASSWORD,
        ]
    )

    assert code == 1
    assert "error: the token endpoint said invalid_client" in capsys.readouterr().err
