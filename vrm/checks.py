"""System checks for the keys and settings vrm cannot run without."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError

from audit.selectors import signing_key_known
from core.crypto import KeyFormatError, MasterKeyRing, SigningKey, jwk_thumbprint, parse_index_key

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


@register(Tags.database)
def check_signing_key_history(
    app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report a configured signing key that the key history does not know (`migrate`, `check --database`).

    The sealer and receipt signing refuse such a key at run time anyway (audit.services.
    signing_key_use); this says so before the first request does.
    """
    if not databases:
        return []
    try:
        public_raw = SigningKey.parse(settings.VRM_LEDGER_SIGNING_KEY).public_raw()
    except KeyFormatError:
        return []  # vrm.E003 reports it
    try:
        known = signing_key_known(public_raw=public_raw)
    except DatabaseError:
        return []  # not migrated yet
    if known is False:
        return [
            Error(
                f"VRM_LEDGER_SIGNING_KEY (kid {jwk_thumbprint(public_raw)}) is not in the key history.",
                hint="Configure the key the history names as current, or introduce a new key with "
                "`manage.py rotate_signing_key` (docs/ledger.md, 'Signing keys').",
                id="vrm.E004",
            )
        ]
    return []


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
