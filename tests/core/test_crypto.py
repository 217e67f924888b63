"""The crypto module on its own: round trips, tampering, moved ciphertexts, wrong keys."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import crypto

keys = st.binary(min_size=32, max_size=32)
aads = st.binary(max_size=200)


@given(key=keys, plaintext=st.binary(max_size=4096), aad=aads)
def test_seal_round_trips(key: bytes, plaintext: bytes, aad: bytes) -> None:
    blob = crypto.seal(key, plaintext, aad)
    assert blob[0] == crypto.FORMAT_VERSION
    assert crypto.unseal(key, blob, aad) == plaintext


@given(key=keys, plaintext=st.binary(min_size=1, max_size=512), aad=aads, data=st.data())
def test_any_flipped_byte_is_refused(key: bytes, plaintext: bytes, aad: bytes, data: st.DataObject) -> None:
    blob = bytearray(crypto.seal(key, plaintext, aad))
    position = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    blob[position] ^= data.draw(st.integers(min_value=1, max_value=255))
    with pytest.raises(crypto.CryptoError):
        crypto.unseal(key, bytes(blob), aad)


@given(key=keys, other=keys, plaintext=st.binary(max_size=256), aad=aads)
def test_wrong_key_is_refused(key: bytes, other: bytes, plaintext: bytes, aad: bytes) -> None:
    if key == other:
        return
    with pytest.raises(crypto.CryptoError):
        crypto.unseal(other, crypto.seal(key, plaintext, aad), aad)


@given(key=keys, plaintext=st.binary(max_size=256), aad=aads, other_aad=aads)
def test_moved_ciphertext_is_refused(key: bytes, plaintext: bytes, aad: bytes, other_aad: bytes) -> None:
    if aad == other_aad:
        return
    with pytest.raises(crypto.CryptoError):
        crypto.unseal(key, crypto.seal(key, plaintext, aad), other_aad)


@given(
    key=keys, other=keys, plaintexts=st.lists(st.binary(max_size=256), max_size=4), aad=aads, data=st.data()
)
def test_an_unsealer_is_unseal_under_its_key(
    key: bytes, other: bytes, plaintexts: list[bytes], aad: bytes, data: st.DataObject
) -> None:
    unseal = crypto.unsealer(key)
    for plaintext in plaintexts:
        assert unseal(crypto.seal(key, plaintext, aad), aad) == plaintext
        if other != key:
            with pytest.raises(crypto.CryptoError):
                crypto.unsealer(other)(crypto.seal(key, plaintext, aad), aad)
        blob = bytearray(crypto.seal(key, plaintext, aad))
        blob[data.draw(st.integers(0, len(blob) - 1))] ^= 1
        with pytest.raises(crypto.CryptoError):
            unseal(bytes(blob), aad)


def test_truncated_and_unknown_version_are_refused() -> None:
    key = crypto.random_key()
    blob = crypto.seal(key, b"x", b"")
    with pytest.raises(crypto.CryptoError, match="truncated"):
        crypto.unseal(key, blob[:10], b"")
    with pytest.raises(crypto.CryptoError, match="version"):
        crypto.unseal(key, b"\x02" + blob[1:], b"")


def test_record_aad_binds_table_row_and_owner() -> None:
    base = crypto.record_aad(table="t", record_id="r1", owner_id="o1")
    assert base != crypto.record_aad(table="u", record_id="r1", owner_id="o1")
    assert base != crypto.record_aad(table="t", record_id="r2", owner_id="o1")
    assert base != crypto.record_aad(table="t", record_id="r1", owner_id="o2")


def _ring(*ids: str) -> tuple[crypto.MasterKeyRing, dict[str, str]]:
    encoded = {i: base64.b64encode(crypto.random_key()).decode() for i in ids}
    return crypto.MasterKeyRing.parse(",".join(f"{i}:{k}" for i, k in encoded.items())), encoded


@given(data_key=keys, context=st.text(max_size=40))
def test_wrap_round_trips_and_is_bound_to_context(data_key: bytes, context: str) -> None:
    ring, _ = _ring("k2", "k1")
    key_id, wrapped = ring.wrap(data_key, context=context)
    assert key_id == "k2"
    assert ring.unwrap(key_id, wrapped, context=context) == data_key
    with pytest.raises(crypto.CryptoError):
        ring.unwrap(key_id, wrapped, context=context + "x")


def test_older_master_keys_still_unwrap_and_missing_ones_fail() -> None:
    old, encoded = _ring("k1")
    key_id, wrapped = old.wrap(b"k" * 32, context="p")
    both = crypto.MasterKeyRing.parse(
        f"k2:{base64.b64encode(crypto.random_key()).decode()},k1:{encoded['k1']}"
    )
    assert both.unwrap(key_id, wrapped, context="p") == b"k" * 32
    newest_only, _ = _ring("k2")
    with pytest.raises(crypto.CryptoError, match="not in the key ring"):
        newest_only.unwrap(key_id, wrapped, context="p")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "nokey",
        "k1:",
        ":abcd",
        "k1:not-base64!",
        f"k1:{base64.b64encode(b'short').decode()}",
        f"k1:{base64.b64encode(bytes(32)).decode()},k1:{base64.b64encode(bytes(32)).decode()}",
    ],
)
def test_malformed_master_keys_are_refused(text: str) -> None:
    with pytest.raises(crypto.KeyFormatError):
        crypto.MasterKeyRing.parse(text)


@given(value=st.text(max_size=50))
def test_blind_index_is_deterministic_per_field_key(value: str) -> None:
    gtin_key, lot_key = crypto.derive_key(b"r" * 32, "gtin"), crypto.derive_key(b"r" * 32, "lot")
    assert crypto.blind_index(gtin_key, value) == crypto.blind_index(gtin_key, value)
    assert len(crypto.blind_index(gtin_key, value)) == crypto.BLIND_INDEX_BYTES
    assert crypto.blind_index(gtin_key, value) != crypto.blind_index(lot_key, value)


@given(message=st.binary(max_size=512))
def test_signatures_verify_and_tampering_fails(message: bytes) -> None:
    key = crypto.SigningKey.generate()
    signature = key.sign(message)
    assert crypto.verify_signature(key.public_raw(), signature, message)
    assert not crypto.verify_signature(key.public_raw(), signature, message + b"!")
    assert not crypto.verify_signature(crypto.SigningKey.generate().public_raw(), signature, message)


def test_a_handover_verifies_only_signed_by_the_old_key_and_accepted_by_the_new() -> None:
    old, new, other = (crypto.SigningKey.generate() for _ in range(3))
    names = {"old_public": old.public_raw(), "new_public": new.public_raw()}
    handover = old.sign(crypto.handover_statement(**names))
    possession = new.sign(crypto.possession_statement(**names))
    assert crypto.handover_verify(**names, handover_signature=handover, possession_signature=possession)
    forgeries = [
        # signed by a key other than the old one
        (other.sign(crypto.handover_statement(**names)), possession),
        # the new key signing the handover itself
        (new.sign(crypto.handover_statement(**names)), possession),
        # one statement's signature standing in for the other
        (handover, old.sign(crypto.possession_statement(**names))),
        (possession, handover),
        # a handover to another key, replayed for this one
        (
            old.sign(crypto.handover_statement(old_public=old.public_raw(), new_public=other.public_raw())),
            possession,
        ),
    ]
    for handover_signature, possession_signature in forgeries:
        assert not crypto.handover_verify(
            **names, handover_signature=handover_signature, possession_signature=possession_signature
        )


def test_signing_key_parses_pem_and_raw_base64() -> None:
    key = crypto.SigningKey.generate()
    assert crypto.SigningKey.parse(key.private_pem()).public_raw() == key.public_raw()
    raw = base64.b64encode(crypto.random_key()).decode()
    assert len(crypto.SigningKey.parse(raw).public_raw()) == 32
    for bad in ["", "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----", "abc"]:
        with pytest.raises(crypto.KeyFormatError):
            crypto.SigningKey.parse(bad)


def test_jwk_thumbprint_and_public_pem_agree_with_jwcrypto() -> None:
    from jwcrypto import jwk

    key = crypto.SigningKey.generate()
    reference = jwk.JWK.from_pem(key.private_pem().encode())
    assert crypto.jwk_thumbprint(key.public_raw()) == reference.thumbprint()
    assert crypto.public_key_pem(key.public_raw()) == key.public_pem()
    assert crypto.public_key_check(key.public_raw()) == key.public_raw()
    with pytest.raises(crypto.KeyFormatError):
        crypto.public_key_check(b"\x01" * 31)


def test_only_the_crypto_module_imports_cryptography() -> None:
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for path in root.glob("*/**/*.py")
        if not path.is_relative_to(root / ".venv")
        and not path.is_relative_to(root / "tests")
        # Standalone scripts for vendors and witnesses run outside the house, without vrm.
        and not path.is_relative_to(root / "examples")
        and path != root / "core" / "crypto.py"
        and re.search(r"^\s*(from|import) cryptography", path.read_text(), re.M)
    ]
    assert offenders == []


# The person's own keys (issue #14): password and recovery wraps, and sealing to a public key.

FAST = {"memory_kib": 1024, "iterations": 1}  # the production cost is tuned in bench/keys.py


def test_password_kdf_parameters_round_trip_and_refuse_garbage() -> None:
    kdf = crypto.PasswordKdf.new(memory_kib=65536, iterations=3)
    assert crypto.PasswordKdf.decode(kdf.encode()) == kdf
    assert kdf.encode().startswith("argon2id$m=65536,t=3,p=1$")
    for bad in ("", "argon2i$m=1,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA==", "argon2id$m=1,t=1,p=1$***", "x" * 500):
        with pytest.raises(crypto.KeyFormatError):
            crypto.PasswordKdf.decode(bad)


def test_a_password_wrap_opens_with_that_password_only() -> None:
    kdf = crypto.PasswordKdf.new(**FAST)
    data_key = crypto.random_key()
    kek = kdf.derive("correct horse battery")
    wrapped = crypto.key_wrap(kek, data_key, context="person-1/password")
    assert crypto.key_unwrap(kek, wrapped, context="person-1/password") == data_key
    with pytest.raises(crypto.CryptoError):
        crypto.key_unwrap(kdf.derive("correct horse batterY"), wrapped, context="person-1/password")
    with pytest.raises(crypto.CryptoError):  # the same wrap moved to another person
        crypto.key_unwrap(kdf.derive("correct horse battery"), wrapped, context="person-2/password")
    other_salt = crypto.PasswordKdf.new(**FAST)
    with pytest.raises(crypto.CryptoError):
        crypto.key_unwrap(other_salt.derive("correct horse battery"), wrapped, context="person-1/password")


def test_recovery_codes_are_printable_random_and_forgiving_of_case_and_spacing() -> None:
    codes = {crypto.recovery_code_new() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [5] * 6
        assert set("".join(groups)) <= set(crypto.RECOVERY_ALPHABET)
    code = next(iter(codes))
    key = crypto.recovery_code_key(code)
    assert crypto.recovery_code_key(code.lower().replace("-", " ")) == key
    assert crypto.recovery_code_key(code.replace("-", "")) == key
    for bad in ("", code[:-1], code + "A", code.replace(code[0], "0", 1), "I" * 30):
        with pytest.raises(crypto.KeyFormatError):
            crypto.recovery_code_key(bad)


@given(plaintext=st.binary(max_size=2048), info=aads)
def test_sealed_to_a_public_key_opens_only_with_its_private_key(plaintext: bytes, info: bytes) -> None:
    private, public = crypto.keypair_new()
    blob = crypto.seal_to(public, plaintext, info)
    assert crypto.open_sealed_to(private, blob, info) == plaintext
    other_private, _ = crypto.keypair_new()
    with pytest.raises(crypto.CryptoError):
        crypto.open_sealed_to(other_private, blob, info)
    with pytest.raises(crypto.CryptoError):
        crypto.open_sealed_to(private, blob, info + b"|moved")
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(crypto.CryptoError):
        crypto.open_sealed_to(private, bytes(tampered), info)
