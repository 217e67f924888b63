"""The issuer follows the port in development: `PORT=9000 make run` advertises port 9000."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _make_run_lines(**env: str) -> list[str]:
    """The manage.py command lines `make run` would run, without running them (make -n)."""
    environ = {k: v for k, v in os.environ.items() if k not in {"PORT", "VRM_ISSUER"}} | env
    result = subprocess.run(
        ["make", "-n", "run"], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60, check=True
    )
    return [line for line in result.stdout.splitlines() if "manage.py" in line and "dev_keys" not in line]


@pytest.mark.parametrize(
    ("env", "issuer", "address"),
    [
        ({}, "http://127.0.0.1:8000", "127.0.0.1:8000"),
        ({"PORT": "9000"}, "http://127.0.0.1:9000", "127.0.0.1:9000"),
        (
            {"PORT": "9000", "VRM_ISSUER": "https://vrm.example.org"},
            "https://vrm.example.org",
            "127.0.0.1:9000",
        ),
    ],
)
def test_make_run_gives_every_command_the_issuer_of_its_port(
    env: dict[str, str], issuer: str, address: str
) -> None:
    lines = _make_run_lines(**env)
    assert [re.search(r"manage\.py (\w+)", line)[1] for line in lines] == [  # type: ignore[index]
        "migrate",
        "seed_demo",
        "serve_demo",
    ]
    for line in lines:
        assert f"VRM_ISSUER={issuer} " in line, line
    assert lines[-1].endswith(address)
    assert "--verbosity 0" in lines[0]  # migrate's ~90 lines no longer bury the logins


def test_the_issuer_from_the_environment_reaches_metadata_and_the_api_schema() -> None:
    """What `make run` passes is what the server says: metadata, `iss` base, problem types."""
    code = (
        "from django.conf import settings; from django.test import Client; "
        "meta = Client().get('/.well-known/oauth-authorization-server', HTTP_HOST='127.0.0.1:9000').json(); "
        "print(meta['issuer'], meta['token_endpoint'], settings.OAUTH2_PROVIDER['OIDC_ISS_ENDPOINT'], "
        "settings.SPECTACULAR_SETTINGS['OAUTH2_TOKEN_URL'])"
    )
    env = os.environ | {"VRM_ISSUER": "http://127.0.0.1:9000", "DATABASE_URL": "sqlite://:memory:"}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "http://127.0.0.1:9000",
        "http://127.0.0.1:9000/o/token/",
        "http://127.0.0.1:9000",
        "http://127.0.0.1:9000/o/token/",
    ]
