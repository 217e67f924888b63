"""The person's own keys: made at sign-up, opened by their password or recovery code.

A person's data key is stored only wrapped: by a key derived from the password (Argon2id with
the parameters stored beside the wrap) and by a key derived from a recovery code shown once.
Opening it needs one of the two, which only the person has; the opened keys live for one
request on the user object (`keys_hold`) and, between requests, sealed in the session under a
key kept in a cookie (portal/keysession.py). Accounts made before person-held keys are still
wrapped by a master key until their next sign-in moves them (`keys_unlock`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from accounts.models import User
from core import crypto
from core.keys import master_keyring
from personal_data.models import PersonKey


class StoreError(Exception):
    """A row cannot be opened: its ciphertext or its owner's key is damaged or gone."""


class StoreLocked(StoreError):
    """The person's key is not open: they are signed out, and nothing else opens it."""


class WrongSecret(StoreError):
    """The password or recovery code given does not open the person's key."""


@dataclass(frozen=True)
class Keys:
    """A person's opened keys: the data key, and the private key writes are sealed to."""

    data: bytes
    private: bytes | None = None


# The keys opened in this request (or command), by person id: code that reaches the person
# through a relation (an alert's person) gets another User object for the same account.
_OPEN: ContextVar[dict[str, Keys] | None] = ContextVar("vrm_open_keys", default=None)


def keys_hold(person: User, keys: Keys) -> None:
    """Keep opened keys for the rest of this request or command (in memory only, never stored)."""
    opened = _OPEN.get()
    if opened is None:
        opened = {}
        _OPEN.set(opened)
    opened[str(person.pk)] = keys


def keys_held(person: User | uuid.UUID) -> Keys | None:
    opened = _OPEN.get()
    if opened is None:
        return None
    return opened.get(str(person if isinstance(person, uuid.UUID) else person.pk))


def keys_drop(person: User | uuid.UUID) -> None:
    opened = _OPEN.get()
    if opened is not None:
        opened.pop(str(person if isinstance(person, uuid.UUID) else person.pk), None)


@contextmanager
def keys_scope() -> Iterator[None]:
    """Forget every key opened inside the block when it ends (one request, one test)."""
    token = _OPEN.set({})
    try:
        yield
    finally:
        _OPEN.reset(token)


_ISSUED = "_vrm_recovery_code"


def recovery_code_issue(person: User, code: str | None) -> None:
    """Keep a just-made recovery code on the user object, for the page that shows it once."""
    if code is not None:
        person.__dict__[_ISSUED] = code


def recovery_code_issued(person: User) -> str | None:
    """The recovery code made in this request, if any (never stored anywhere)."""
    code: str | None = person.__dict__.get(_ISSUED)
    return code


def password_kdf() -> crypto.PasswordKdf:
    """A fresh salt with the configured Argon2id cost (VRM_KDF_MEMORY_KIB, VRM_KDF_ITERATIONS)."""
    return crypto.PasswordKdf.new(
        memory_kib=settings.VRM_KDF_MEMORY_KIB, iterations=settings.VRM_KDF_ITERATIONS
    )


def _context(person_id: uuid.UUID | str, purpose: str) -> str:
    return f"{person_id}/{purpose}"


def wrap_with_password(person_key: PersonKey, data_key: bytes, password: str) -> None:
    """(Re)wrap the data key under a new password; the recovery wrap is untouched."""
    kdf = password_kdf()
    person_key.password_kdf = kdf.encode()
    person_key.password_wrap = crypto.key_wrap(
        kdf.derive(password), data_key, context=_context(person_key.person_id, "password")
    )


def _add_person_wraps(person_key: PersonKey, data_key: bytes, password: str | None) -> str:
    """Wrap by password (if given) and by a new recovery code; make the key pair. Return the code."""
    code = crypto.recovery_code_new()
    if password is not None:
        wrap_with_password(person_key, data_key, password)
    person_key.recovery_wrap = crypto.key_wrap(
        crypto.recovery_code_key(code), data_key, context=_context(person_key.person_id, "recovery")
    )
    private, public = crypto.keypair_new()
    person_key.public_key = public
    person_key.private_wrap = crypto.key_wrap(
        data_key, private, context=_context(person_key.person_id, "x25519")
    )
    person_key.master_key_id, person_key.wrapped_key = "", None
    return code


def person_key_new(person_id: uuid.UUID, *, password: str | None) -> tuple[PersonKey, str, Keys]:
    """Make a person's keys (unsaved row): return the row, the recovery code to show once, and
    the opened keys. Without a password (bulk seeding) only the recovery wrap is made."""
    data_key = crypto.random_key()
    # A new store has no records, so none lacks its due date.
    person_key = PersonKey(
        person_id=person_id, pseudonym_salt=crypto.random_key(), due_dates_checked_at=timezone.now()
    )
    code = _add_person_wraps(person_key, data_key, password)
    return person_key, code, keys_open(person_key, data_key)


def keys_replace(person_key: PersonKey, password: str) -> tuple[Keys, str]:
    """Give a key row a new data key, wrapped by this password and a new recovery code, and a new
    key pair (a fresh store after a reset without the code). The row is changed, unsaved; return
    the opened keys and the code to show once. The pseudonym salt stays: the person stays the
    same person to vendors and in the ledger."""
    data_key = crypto.random_key()
    code = _add_person_wraps(person_key, data_key, password)
    return keys_open(person_key, data_key), code


def keys_open(person_key: PersonKey, data_key: bytes) -> Keys:
    """The opened keys for a data key: the private key comes out of its wrap under it."""
    if person_key.private_wrap is None:
        return Keys(data=data_key)
    try:
        private = crypto.key_unwrap(
            data_key, bytes(person_key.private_wrap), context=_context(person_key.person_id, "x25519")
        )
    except crypto.CryptoError as exc:
        raise StoreError(f"the private key of {person_key.person_id} cannot be opened") from exc
    return Keys(data=data_key, private=private)


def is_legacy(person_key: PersonKey) -> bool:
    """Whether the data key is still wrapped by a master key (made before person-held keys)."""
    return person_key.password_wrap is None and bool(person_key.master_key_id)


def legacy_data_key(person_key: PersonKey) -> bytes:
    try:
        return master_keyring().unwrap(
            person_key.master_key_id, bytes(person_key.wrapped_key or b""), context=str(person_key.person_id)
        )
    except crypto.CryptoError as exc:
        raise StoreError(f"data key of {person_key.person_id} cannot be unwrapped: {exc}") from exc


# Sign-in runs Argon2id twice at the same cost: Django's password check, and the derivation of
# the key the store is wrapped with. Both release the GIL, so the second runs on another core
# while the first is checked (`password_derive_ahead`): sign-in takes the time of one.
_AHEAD: ContextVar[dict[tuple[str, str], Future[bytes]] | None] = ContextVar("vrm_kdf_ahead", default=None)
_EXECUTOR: tuple[int, ThreadPoolExecutor] | None = None


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR  # noqa: PLW0603 (one pool per process; a forked worker makes its own)
    if _EXECUTOR is None or _EXECUTOR[0] != os.getpid():
        _EXECUTOR = (os.getpid(), ThreadPoolExecutor(max_workers=2, thread_name_prefix="vrm-kdf"))
    return _EXECUTOR[1]


@contextmanager
def password_derive_ahead(person_key: PersonKey | None, password: str) -> Iterator[None]:
    """Start deriving the password's wrapping key on another thread for the rest of the block,
    where `keys_unlock` picks it up; without a password wrap, or outside the block, it derives
    in line. The derivation is forgotten when the block ends."""
    if person_key is None or not person_key.password_kdf or not password:
        yield
        return
    kdf = crypto.PasswordKdf.decode(person_key.password_kdf)
    future = _executor().submit(kdf.derive, password)
    token = _AHEAD.set({(person_key.password_kdf, password): future})
    try:
        yield
    finally:
        _AHEAD.reset(token)
        # Waited for even when nothing used it (a wrong password): cancelling a derivation that
        # had not started yet would answer a wrong password sooner than a right one.
        wait([future])


def _password_key(person_key: PersonKey, password: str) -> bytes:
    ahead = _AHEAD.get()
    future = ahead.get((person_key.password_kdf, password)) if ahead else None
    if future is not None:
        return future.result()
    return crypto.PasswordKdf.decode(person_key.password_kdf).derive(password)


def keys_unlock(person_key: PersonKey, password: str) -> tuple[Keys, str | None]:
    """Open the data key with the password. Return the keys and, for a legacy account whose key
    this call moved to the person (the row is changed, unsaved), its new recovery code."""
    if is_legacy(person_key):
        data_key = legacy_data_key(person_key)
        code = _add_person_wraps(person_key, data_key, password)
        return keys_open(person_key, data_key), code
    if person_key.password_wrap is None:
        raise WrongSecret("this store has no password wrap: open it with the recovery code")
    try:
        data_key = crypto.key_unwrap(
            _password_key(person_key, password),
            bytes(person_key.password_wrap),
            context=_context(person_key.person_id, "password"),
        )
    except crypto.CryptoError:
        raise WrongSecret("the password does not open this store") from None
    return keys_open(person_key, data_key), None


def keys_recover(person_key: PersonKey, code: str) -> Keys:
    """Open the data key with the recovery code (a reset password)."""
    if person_key.recovery_wrap is None:
        raise WrongSecret("this store has no recovery wrap")
    try:
        kek = crypto.recovery_code_key(code)
        data_key = crypto.key_unwrap(
            kek, bytes(person_key.recovery_wrap), context=_context(person_key.person_id, "recovery")
        )
    except (crypto.CryptoError, crypto.KeyFormatError):
        raise WrongSecret("the recovery code does not open this store") from None
    return keys_open(person_key, data_key)


def recovery_rewrap(person_key: PersonKey, data_key: bytes) -> str:
    """Replace the recovery code (the old one stops working); return the new one to show once."""
    code = crypto.recovery_code_new()
    person_key.recovery_wrap = crypto.key_wrap(
        crypto.recovery_code_key(code), data_key, context=_context(person_key.person_id, "recovery")
    )
    return code
