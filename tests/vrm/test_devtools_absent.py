"""Demo seeding resets passwords and client secrets: production must not even have the command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def test_devtools_is_not_installed_without_debug() -> None:
    # The suite runs with VRM_DEBUG=False (tests/env.py); tests/devtools adds it for its own tests.
    assert settings.DEBUG is False
    assert "devtools" not in settings.INSTALLED_APPS


@pytest.mark.parametrize("command", ["seed_demo", "seed_scale", "dev_keys"])
def test_seed_commands_are_unknown_in_production(command: str) -> None:
    env = {**os.environ, "VRM_DEBUG": "False"}
    result = subprocess.run(
        [sys.executable, "manage.py", command, "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"Unknown command: '{command}'" in result.stderr
