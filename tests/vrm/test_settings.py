"""Settings from the environment, key checks, and the production-safe defaults."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.crypto import SigningKey, random_key

ROOT = Path(__file__).resolve().parents[2]


def _production_env(**overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VRM_", "DJANGO_", "CACHE_URL"))}
    env.update(
        {
            "VRM_SECRET_KEY": base64.b64encode(os.urandom(48)).decode(),
            "VRM_MASTER_KEYS": f"prod1:{base64.b64encode(random_key()).decode()}",
            "VRM_INDEX_KEY": base64.b64encode(random_key()).decode(),
            "VRM_LEDGER_SIGNING_KEY": SigningKey.generate().private_pem(),
            "VRM_ALLOWED_HOSTS": "vrm.example.org",
            "VRM_ISSUER": "https://vrm.example.org",
            "CACHE_URL": "redis://127.0.0.1:6379/0",
            "DATABASE_URL": "sqlite:////tmp/vrm-check-deploy.sqlite3",
        }
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_reports_nothing_with_production_settings() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "check_id"),
    [
        ("VRM_MASTER_KEYS", None, "vrm.E001"),
        ("VRM_MASTER_KEYS", "k1:tooshort", "vrm.E001"),
        ("VRM_INDEX_KEY", None, "vrm.E002"),
        ("VRM_INDEX_KEY", "!!!", "vrm.E002"),
        ("VRM_LEDGER_SIGNING_KEY", None, "vrm.E003"),
        ("VRM_LEDGER_SIGNING_KEY", "-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----", "vrm.E003"),
        ("VRM_SECRET_KEY", None, "vrm.E000"),
    ],
)
def test_missing_or_malformed_key_is_a_check_error_naming_it(
    variable: str, value: str | None, check_id: str
) -> None:
    result = _manage("check", env=_production_env(**{variable: value}))
    assert result.returncode != 0
    assert check_id in result.stderr and variable in result.stderr


def test_keys_can_come_from_files(tmp_path: Path) -> None:
    key_file = tmp_path / "master"
    key_file.write_text(f"file1:{base64.b64encode(random_key()).decode()}\n")
    result = _manage("check", env=_production_env(VRM_MASTER_KEYS=None, VRM_MASTER_KEYS_FILE=str(key_file)))
    assert result.returncode == 0, result.stderr


def test_wsgi_refuses_to_start_without_keys() -> None:
    env = _production_env(VRM_INDEX_KEY=None)
    result = subprocess.run(
        [sys.executable, "-c", "import vrm.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "VRM_INDEX_KEY" in result.stderr


def test_a_bad_boolean_fails_loudly() -> None:
    result = _manage("check", env=_production_env(VRM_DEBUG="maybe"))
    assert result.returncode != 0 and "VRM_DEBUG must be a boolean" in result.stderr


def test_security_headers_on_every_page(client: Any, db: Any) -> None:
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_authenticated_pages_are_never_cached(client: Any, alice: Any) -> None:
    client.force_login(alice)
    response = client.get("/dashboard/")
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    assert "no-store" not in client.get("/static/css/vrm.css").get("Cache-Control", "")


def test_no_inline_script_or_style_in_templates() -> None:
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        assert "<script>" not in text and "style=" not in text and "<style" not in text, template
