"""System checks for the keys and settings vrm cannot run without."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from core.crypto import KeyFormatError, MasterKeyRing, SigningKey, parse_index_key

_KEYS: list[tuple[str, str, Callable[[str | None], object]]] = [
    ("vrm.E001", "VRM_MASTER_KEYS", MasterKeyRing.parse),
    ("vrm.E002", "VRM_INDEX_KEY", parse_index_key),
    ("vrm.E003", "VRM_LEDGER_SIGNING_KEY", SigningKey.parse),
]


@register(Tags.security, deploy=False)
def check_keys(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report every missing or malformed key variable by name."""
    errors: list[CheckMessage] = []
    if not settings.VRM_SECRET_KEY_SET:
        errors.append(
            Error(
                "VRM_SECRET_KEY is not set.",
                hint="Set VRM_SECRET_KEY (or VRM_SECRET_KEY_FILE); only VRM_DEBUG=True has a default.",
                id="vrm.E000",
            )
        )
    for check_id, name, parse in _KEYS:
        try:
            parse(getattr(settings, name))
        except KeyFormatError as exc:
            errors.append(
                Error(
                    f"{name} is missing or malformed: {exc}.",
                    hint=f"Set {name} (or {name}_FILE) as INTERFACES.md §2 describes; "
                    "with VRM_DEBUG=True run `manage.py dev_keys` to create development keys.",
                    id=check_id,
                )
            )
    return errors


@register(Tags.security, deploy=True)
def check_shared_cache(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn when login throttling and rate limits live in one process's memory."""
    backend = settings.CACHES["default"]["BACKEND"]
    if backend.endswith(("LocMemCache", "DummyCache")):
        return [
            Warning(
                "CACHE_URL is not set: login throttling and rate limits are kept per process.",
                hint="Set CACHE_URL=redis://… so every worker shares them.",
                id="vrm.W001",
            )
        ]
    return []
