"""The configured keys, parsed once per configured value.

Caching on the raw setting (not on nothing) keeps `override_settings` in tests honest.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from core.crypto import MasterKeyRing, SigningKey, derive_key, parse_index_key


@lru_cache(maxsize=8)
def _ring(raw: str | None) -> MasterKeyRing:
    return MasterKeyRing.parse(raw)


@lru_cache(maxsize=64)
def _subkey(raw: str | None, purpose: str) -> bytes:
    return derive_key(parse_index_key(raw), purpose)


@lru_cache(maxsize=8)
def _signing(raw: str | None) -> SigningKey:
    return SigningKey.parse(raw)


def master_keyring() -> MasterKeyRing:
    return _ring(settings.VRM_MASTER_KEYS)


def index_subkey(purpose: str) -> bytes:
    """Return the key derived from VRM_INDEX_KEY for one purpose (a field's blind index, ...)."""
    return _subkey(settings.VRM_INDEX_KEY, purpose)


def signing_key() -> SigningKey:
    return _signing(settings.VRM_LEDGER_SIGNING_KEY)
