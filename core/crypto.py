"""Envelope encryption, blind indexes, keyed pseudonyms and Ed25519 signatures.

The only module in vrm that imports `cryptography`. It takes and returns bytes and knows
nothing of Django or HTTP, so it can be reviewed and property-tested on its own.

Formats (version byte first, so a future format can be told apart):
- sealed record:  0x01 ‖ nonce(12) ‖ AES-256-GCM(data key, plaintext, aad) (ciphertext ‖ tag)
- wrapped key:    0x01 ‖ nonce(12) ‖ AES-256-GCM(master key, data key, aad)
The associated data binds a ciphertext to its place (table, record id, owner id, version), so a
ciphertext copied to another row or another person fails authentication instead of decrypting.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT_VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
BLIND_INDEX_BYTES = 16
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")


class CryptoError(Exception):
    """A ciphertext failed authentication: tampered, moved, or under the wrong key."""


class KeyFormatError(ValueError):
    """A configured key is missing or malformed."""


def random_key() -> bytes:
    return os.urandom(KEY_BYTES)


def _b64_key(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError(f"{what} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyFormatError(f"{what} must decode to {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def encode_key(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return bytes([FORMAT_VERSION]) + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, blob: bytes, aad: bytes) -> bytes:
    return _open_with(AESGCM(key), blob, aad)


def _open_with(aead: AESGCM, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < 1 + NONCE_BYTES + 16:
        raise CryptoError("ciphertext is truncated")
    if blob[0] != FORMAT_VERSION:
        raise CryptoError(f"unknown ciphertext format version {blob[0]}")
    nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    try:
        return aead.decrypt(nonce, body, aad)
    except InvalidTag:
        raise CryptoError("ciphertext failed authentication") from None


def record_aad(*, table: str, record_id: str, owner_id: str) -> bytes:
    """Return the associated data that binds a record ciphertext to its row and owner."""
    return f"vrm/record/v{FORMAT_VERSION}|{table}|{record_id}|{owner_id}".encode()


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate plaintext under a data key."""
    return _seal(key, plaintext, aad)


def unseal(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Decrypt a sealed blob; raise CryptoError unless key, blob and aad all match."""
    return _open(key, blob, aad)


def unsealer(key: bytes) -> Callable[[bytes, bytes], bytes]:
    """Return unseal(blob, aad) under one key, with the key set up once for many blobs."""
    aead = AESGCM(key)
    return partial(_open_with, aead)


@dataclass(frozen=True)
class MasterKeyRing:
    """Master keys, newest first. The newest wraps; every key in the ring can unwrap."""

    keys: tuple[tuple[str, bytes], ...]

    @classmethod
    def parse(cls, text: str | None) -> MasterKeyRing:
        """Parse `keyid:base64,keyid:base64` (newest first)."""
        if not text or not text.strip():
            raise KeyFormatError("no master key configured")
        keys: list[tuple[str, bytes]] = []
        for item in text.split(","):
            key_id, sep, encoded = item.strip().partition(":")
            if not sep or not _KEY_ID.fullmatch(key_id):
                raise KeyFormatError(
                    "each master key must look like keyid:base64(32 bytes), keyid of 1-32 "
                    "letters, digits, '.', '_' or '-'"
                )
            if any(existing == key_id for existing, _ in keys):
                raise KeyFormatError(f"master key id {key_id!r} appears twice")
            keys.append((key_id, _b64_key(encoded, f"master key {key_id!r}")))
        return cls(tuple(keys))

    @property
    def newest_id(self) -> str:
        return self.keys[0][0]

    def _key(self, key_id: str) -> bytes:
        for candidate, key in self.keys:
            if candidate == key_id:
                return key
        raise CryptoError(f"master key {key_id!r} is not in the key ring")

    @staticmethod
    def _aad(key_id: str, context: str) -> bytes:
        return f"vrm/data-key/v{FORMAT_VERSION}|{key_id}|{context}".encode()

    def wrap(self, data_key: bytes, *, context: str) -> tuple[str, bytes]:
        """Wrap a data key under the newest master key, bound to context (the owner id)."""
        key_id = self.newest_id
        return key_id, _seal(self._key(key_id), data_key, self._aad(key_id, context))

    def unwrap(self, key_id: str, wrapped: bytes, *, context: str) -> bytes:
        """Unwrap a data key; raise CryptoError if it was moved, altered or the key is gone."""
        return _open(self._key(key_id), wrapped, self._aad(key_id, context))


def parse_index_key(text: str | None) -> bytes:
    if not text or not text.strip():
        raise KeyFormatError("no index key configured")
    return _b64_key(text, "index key")


def derive_key(root: bytes, purpose: str) -> bytes:
    """Derive an independent 256-bit key for one purpose (HKDF-SHA256)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=f"vrm/{purpose}".encode())
    return hkdf.derive(root)


def keyed_hash(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def blind_index(field_key: bytes, value: str) -> bytes:
    """Return the truncated HMAC-SHA256 of a normalised value under a per-field key."""
    return keyed_hash(field_key, value.encode())[:BLIND_INDEX_BYTES]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# Ed25519 signatures (ledger checkpoints, consent receipts).


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey

    @classmethod
    def parse(cls, text: str | None) -> SigningKey:
        """Parse an Ed25519 private key given as PEM (PKCS#8) or base64 of the raw 32 bytes."""
        if not text or not text.strip():
            raise KeyFormatError("no signing key configured")
        text = text.strip()
        if text.startswith("-----BEGIN"):
            try:
                key = serialization.load_pem_private_key(text.encode(), password=None)
            except (ValueError, TypeError):
                raise KeyFormatError("signing key PEM cannot be read") from None
            if not isinstance(key, Ed25519PrivateKey):
                raise KeyFormatError("signing key must be an Ed25519 key")
            return cls(key)
        return cls(Ed25519PrivateKey.from_private_bytes(_b64_key(text, "signing key")))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    def private_pem(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


def public_key_check(public_raw: bytes) -> bytes:
    """Return public_raw if it is a valid raw Ed25519 public key; raise KeyFormatError otherwise."""
    try:
        Ed25519PublicKey.from_public_bytes(public_raw)
    except ValueError:
        raise KeyFormatError("not a raw 32-byte Ed25519 public key") from None
    return public_raw


def public_key_pem(public_raw: bytes) -> str:
    """Return a raw Ed25519 public key as PEM (SubjectPublicKeyInfo)."""
    return (
        Ed25519PublicKey.from_public_bytes(public_raw)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def b64url(data: bytes) -> str:
    """Return unpadded base64url (RFC 7515 section 2), as JOSE writes keys and key ids."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(public_raw: bytes) -> str:
    """Return the RFC 7638 SHA-256 thumbprint of a raw Ed25519 key: the `kid` of its JWK.

    RFC 8037 section 2: the required members of an OKP key are crv, kty and x, hashed as JSON
    with sorted keys and no whitespace.
    """
    members = f'{{"crv":"Ed25519","kty":"OKP","x":"{b64url(public_raw)}"}}'
    return b64url(sha256(members.encode("ascii")))


def verify_signature(public_raw: bytes, signature: bytes, message: bytes) -> bool:
    """Return whether signature is a valid Ed25519 signature of message by public_raw."""
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
