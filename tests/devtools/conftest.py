"""devtools is installed only with VRM_DEBUG=True; its suites install it as `make run` does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import modify_settings


@pytest.fixture(autouse=True)
def _devtools_installed() -> Iterator[None]:
    with modify_settings(INSTALLED_APPS={"append": "devtools"}):
        yield


@pytest.fixture(autouse=True)
def _demo_recovery_codes_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.VRM_DEMO_RECOVERY_FILE = tmp_path / "demo_recovery_codes.json"
