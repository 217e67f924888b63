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
from cryptography.hazmat.primitives import hashes, hpke, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
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


# The person's own keys (docs/security.md, "People hold the key"): a data key wrapped by a key
# derived from the password (Argon2id) and by a recovery code, and an X25519 key pair that
# anyone (the server, a vendor's write) can seal to without being able to open.

RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # Crockford-like: no I, O, 0, 1
RECOVERY_GROUPS, RECOVERY_GROUP_LEN = 6, 5  # 30 symbols of 5 bits: 150 bits
_ARGON2_ENCODED = re.compile(r"argon2id\$m=(\d{1,8}),t=(\d{1,3}),p=(\d{1,2})\$([A-Za-z0-9+/=]{20,64})")


@dataclass(frozen=True)
class PasswordKdf:
    """Argon2id parameters and salt, stored beside each password wrap so they can be raised later."""

    memory_kib: int
    iterations: int
    lanes: int
    salt: bytes

    @classmethod
    def new(cls, *, memory_kib: int, iterations: int, lanes: int = 1) -> PasswordKdf:
        return cls(memory_kib=memory_kib, iterations=iterations, lanes=lanes, salt=os.urandom(16))

    def encode(self) -> str:
        salt = base64.b64encode(self.salt).decode("ascii")
        return f"argon2id$m={self.memory_kib},t={self.iterations},p={self.lanes}${salt}"

    @classmethod
    def decode(cls, text: str) -> PasswordKdf:
        match = _ARGON2_ENCODED.fullmatch(text)
        if match is None:
            raise KeyFormatError("not an Argon2id parameter string")
        memory, iterations, lanes, salt = match.groups()
        try:
            raw_salt = base64.b64decode(salt, validate=True)
        except (binascii.Error, ValueError):
            raise KeyFormatError("Argon2id salt is not valid base64") from None
        return cls(memory_kib=int(memory), iterations=int(iterations), lanes=int(lanes), salt=raw_salt)

    def derive(self, password: str) -> bytes:
        """Derive the 256-bit key that wraps the person's keys from their password."""
        kdf = Argon2id(
            salt=self.salt,
            length=KEY_BYTES,
            iterations=self.iterations,
            lanes=self.lanes,
            memory_cost=self.memory_kib,
        )
        return kdf.derive(password.encode())


def recovery_code_new() -> str:
    """Return a printable recovery code: 6 groups of 5 symbols, 150 random bits."""
    symbols = [RECOVERY_ALPHABET[b % 32] for b in os.urandom(RECOVERY_GROUPS * RECOVERY_GROUP_LEN)]
    step = RECOVERY_GROUP_LEN
    return "-".join("".join(symbols[i : i + step]) for i in range(0, len(symbols), step))


def recovery_code_normalise(code: str) -> str:
    """Return a typed recovery code as generated: upper case, without spaces and dashes."""
    cleaned = re.sub(r"[\s-]", "", code).upper()
    wrong = any(c not in RECOVERY_ALPHABET for c in cleaned)
    if wrong or len(cleaned) != RECOVERY_GROUPS * RECOVERY_GROUP_LEN:
        raise KeyFormatError("a recovery code is 30 letters and digits, in groups of five")
    return cleaned


def recovery_code_key(code: str) -> bytes:
    """Derive the key a recovery code wraps with. 150 random bits need no slow KDF (HKDF)."""
    return derive_key(recovery_code_normalise(code).encode(), "recovery-code")


def key_wrap(kek: bytes, key: bytes, *, context: str) -> bytes:
    """Wrap a key under a key-encryption key, bound to its purpose and owner (context)."""
    return _seal(kek, key, f"vrm/key-wrap/v{FORMAT_VERSION}|{context}".encode())


def key_unwrap(kek: bytes, wrapped: bytes, *, context: str) -> bytes:
    """Unwrap a key; raise CryptoError for a wrong password/code, a moved or altered wrap."""
    return _open(kek, wrapped, f"vrm/key-wrap/v{FORMAT_VERSION}|{context}".encode())


_HPKE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
# Its own version byte, so a row's payload tells which key opens it: 1 the data key, 2 the private key.
SEALED_TO_VERSION = 2


def keypair_new() -> tuple[bytes, bytes]:
    """Return a new X25519 key pair as (private raw 32 bytes, public raw 32 bytes)."""
    private = X25519PrivateKey.generate()
    raw = serialization.Encoding.Raw
    return (
        private.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()),
        private.public_key().public_bytes(raw, serialization.PublicFormat.Raw),
    )


def seal_to(public_raw: bytes, plaintext: bytes, info: bytes) -> bytes:
    """Encrypt to a public key (HPKE base mode, RFC 9180: X25519, HKDF-SHA256, AES-256-GCM).

    Whoever seals cannot open: only the holder of the private key can. `info` binds the
    ciphertext to its place as the associated data does for records.
    """
    public = X25519PublicKey.from_public_bytes(public_raw)
    return bytes([SEALED_TO_VERSION]) + _HPKE.encrypt(plaintext, public, info=info)


def open_sealed_to(private_raw: bytes, blob: bytes, info: bytes) -> bytes:
    """Open what seal_to sealed; raise CryptoError unless key, blob and info all match."""
    if not blob or blob[0] != SEALED_TO_VERSION:
        raise CryptoError("unknown sealed-to format")
    try:
        return _HPKE.decrypt(blob[1:], X25519PrivateKey.from_private_bytes(private_raw), info=info)
    except (InvalidTag, ValueError) as exc:
        raise CryptoError(f"sealed-to ciphertext failed authentication: {type(exc).__name__}") from None


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


# A signing-key handover (docs/ledger.md, "Signing keys"): the old key signs a statement naming
# the new one, and the new key signs a statement of its own, proving that whoever takes over
# holds its private half. Distinct first lines keep one signature from standing in for the other.
_HANDOVER = "vrm/signing-key-handover/v1"
_POSSESSION = "vrm/signing-key-possession/v1"


def _key_statement(context: str, old_public: bytes, new_public: bytes) -> bytes:
    return f"{context}\nold {b64url(old_public)}\nnew {b64url(new_public)}\n".encode("ascii")


def handover_statement(*, old_public: bytes, new_public: bytes) -> bytes:
    """Return the statement the old key signs to hand over to the new key."""
    return _key_statement(_HANDOVER, old_public, new_public)


def possession_statement(*, old_public: bytes, new_public: bytes) -> bytes:
    """Return the statement the new key signs to prove its holder takes over from the old key."""
    return _key_statement(_POSSESSION, old_public, new_public)


def handover_verify(
    *, old_public: bytes, new_public: bytes, handover_signature: bytes, possession_signature: bytes
) -> bool:
    """Return whether the old key handed over to the new key and the new key accepted it."""
    return verify_signature(
        old_public, handover_signature, handover_statement(old_public=old_public, new_public=new_public)
    ) and verify_signature(
        new_public, possession_signature, possession_statement(old_public=old_public, new_public=new_public)
    )
