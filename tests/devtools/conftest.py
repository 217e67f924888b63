"""devtools is installed only with VRM_DEBUG=True; its suites install it as `make run` does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import modify_settings


@pytest.fixture(autouse=True)
def _devtools_installed() -> Iterator[None]:
    with modify_settings(INSTALLED_APPS={"append": "devtools"}):
        yield
