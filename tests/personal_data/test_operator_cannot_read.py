"""Issue #14, "must show": with everything the operator has, a signed-out person's records stay shut.

The attacker here is the operator, or whoever takes the database together with the operator's
secrets. It holds only:

- a raw dump of every table (`SELECT *` over every table the database has), sessions included;
- the master key ring, the index key (and every key derived from it for the purposes named in
  the code), the ledger signing key and Django's SECRET_KEY (to read session rows);
- the source code: every associated-data and key-wrap format vrm uses.

It tries every way those give to open a ciphertext:

1. authenticated unwrapping of every blob under every master key, with every context the code
   uses (an owner id, "share/<id>", "<person>/<purpose>"), for every id in the dump;
2. tag-free decryption: AES-GCM is AES-CTR plus a tag, and whoever holds the key can decrypt
   without checking the tag, so the associated data is no secrecy barrier. Every AES-GCM-shaped
   blob is decrypted in CTR mode under every candidate key; every 32- or 64-byte result becomes a
   candidate key in turn (two levels deep: master -> data or grant key -> private key), and every
   result that is UTF-8 JSON counts as opened;
3. every candidate 32 bytes is tried as an X25519 private key: one whose public half is in the
   dump opens the blobs sealed to that person (HPKE, info guessed from the row as the code builds
   it).

It must open 0 records of a person signed out with no live grant (even with a session row in the
dump), exactly the records a live grant covers, and 0 once the grant is revoked or expired. The
attack is shown to work on a legacy account (its data key wrapped by the master key), where it
opens every record, and on the HPKE path when handed a person's private key.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import json
import re
import secrets
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import CommandError, call_command, get_commands
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import User
from consent.models import Grant
from consent.services import grant_authorize, grant_revoke
from core import crypto
from core.keys import master_keyring
from personal_data import services
from personal_data.categories import RECORD_CATEGORIES
from personal_data.keys import Keys, keys_held, keys_hold, keys_scope
from personal_data.models import Share, SharedCopy
from personal_data.transfer import import_parse
from portal.services import person_signup
from tests.admin_crawl import admin_pages
from tests.conftest import purchase_data
from tests.personal_data.test_keys_lifecycle import make_legacy

GRANTED_SCOPES = ["profile:read", "purchases:read", "closet:read", "preferences:read"]


def _marker(person: str, what: str) -> str:
    return f"Qzv{person.capitalize()}{what.title().replace('-', '')}Mark"


def _records_of(person: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Distinctive records in every category: {what: (category, data)}, one marker each."""
    m = {w: _marker(person, w) for w in ("purchase", "gift", "hidden", "closet", "appliance", "rx")}
    return {
        "purchase": ("purchases", purchase_data(notes=m["purchase"], merchant=m["purchase"])),
        "gift": ("purchases", purchase_data(notes=m["gift"], is_gift=True)),
        "hidden": ("purchases", purchase_data(notes=m["hidden"], shared=False)),
        "closet": ("closet", {"kind": "top", "name": m["closet"], "acquired_on": "2025-02-01"}),
        "appliance": ("appliances", {"kind": "tv", "serial_number": m["appliance"], "notes": m["appliance"]}),
        "rx": (
            "prescriptions",
            {"medication": m["rx"], "directions": m["rx"], "prescribed_on": "2025-03-03"},
        ),
    }


def _fill_store(person: User, name: str) -> set[str]:
    """Give a signed-in person a record of each kind, preferences and a pending import."""
    for category, data in _records_of(name).values():
        services.record_create(owner=person, category=category, data=data)
    services.preferences_update(owner=person, data={"allergies": [_marker(name, "pref")]})
    csv = f"merchant,product_name,quantity,purchased_on\nGrocer,{_marker(name, 'import')},1,2026-01-05\n"
    services.import_stage(
        owner=person,
        plan=import_parse(raw=csv.encode(), filename="p.csv", category="purchases"),
        filename="p.csv",
    )
    return {_marker(name, w) for w in (*_records_of(name), "pref", "import")}


@dataclass
class World:
    alice: User
    bob: User
    carol: User
    # What the person holds (the test plays the person): never given to the attacker.
    alice_keys: Keys
    grant: Grant
    markers: dict[str, set[str]]
    # Alice's records a grant to the shop for GRANTED_SCOPES (no gifts) covers.
    alice_granted: set[str]


def _grant(world_alice: User, shop_app: Any) -> Grant:
    return grant_authorize(
        person=world_alice, application=shop_app, scopes=GRANTED_SCOPES, duration_days=30, include_gifts=False
    )


@pytest.fixture
def world(shop_app: Any) -> World:
    """alice with a live grant, bob without any (but with a live session row), carol legacy.

    Each signs up with a strong password (the attacker is not asked to guess passwords), fills
    their store while signed in, and signs out: the keys opened in the block are forgotten.
    """
    with keys_scope():
        alice, bob, carol = (
            person_signup(email=f"{n}@example.com", password=secrets.token_urlsafe(24), display_name=n)
            for n in ("alice", "bob", "carol")
        )
        markers = {n: _fill_store(p, n) for n, p in (("alice", alice), ("bob", bob), ("carol", carol))}
        grant = _grant(alice, shop_app)
        # Added after the grant (the copy follows), then one shared record hidden after it.
        services.record_create(
            owner=alice, category="purchases", data=purchase_data(notes=_marker("alice", "late"))
        )
        hid = services.record_create(
            owner=alice, category="purchases", data=purchase_data(notes=_marker("alice", "hid-later"))
        )
        services.record_update(owner=alice, category="purchases", record_id=hid["id"], data={"shared": False})
        markers["alice"] |= {_marker("alice", "late"), _marker("alice", "hid-later")}
        make_legacy(carol)
        # bob is still signed in somewhere: his keys, sealed under a cookie key, sit in the session.
        Client().force_login(bob)
        alice_keys = keys_held(alice)
        assert alice_keys is not None
    with keys_scope():  # alice is away: a vendor writes back; sealed to her, copied into the grant
        assert keys_held(alice) is None
        for what, category, data in (
            ("away-purchase", "purchases", purchase_data(notes=_marker("alice", "away-purchase"))),
            ("away-appliance", "appliances", {"kind": "tv", "notes": _marker("alice", "away-appliance")}),
        ):
            services.record_create(owner=alice, category=category, data=data, source="vendor")
            markers["alice"].add(_marker("alice", what))
    granted = {_marker("alice", w) for w in ("purchase", "closet", "pref", "late", "away-purchase")}
    return World(alice, bob, carol, alice_keys, grant, markers, granted)


# The attacker.


def _uuid_forms(value: Any) -> set[str]:
    text = str(value)
    forms = {text}
    if re.fullmatch(r"[0-9a-f]{32}", text):  # SQLite keeps UUIDs as 32 hex digits
        forms.add(str(uuid.UUID(text)))
    return forms


@dataclass
class Loot:
    blobs: dict[bytes, tuple[str, frozenset[str]]] = field(default_factory=dict)  # blob: (table, row ids)
    clear: list[str] = field(default_factory=list)  # every text in the dump, as read
    person_ids: set[str] = field(default_factory=set)
    public_keys: set[bytes] = field(default_factory=set)
    # Every 32 bytes the dump holds as such (a key left lying about would be one of them).
    raw_keys: set[bytes] = field(default_factory=set)
    opened: set[str] = field(default_factory=set)  # every plaintext JSON document recovered
    keys_tried: int = 0
    attempts: int = 0
    verified_private_keys: int = 0


def _b64(text: str) -> bytes | None:
    if len(text) < 24 or not re.fullmatch(r"[A-Za-z0-9+/_-]+=*", text):
        return None
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            continue
    return None


def _walk(value: Any, table: str, ids: frozenset[str], loot: Loot) -> None:
    if isinstance(value, memoryview | bytes | bytearray):
        blob = bytes(value)
        loot.clear.append(blob.decode("latin-1"))
        if len(blob) >= 29:
            loot.blobs.setdefault(blob, (table, ids))
        if len(blob) == 32:
            loot.public_keys.add(blob)
        if len(blob) in (32, 64):
            loot.raw_keys |= {blob[:32], blob[32:]} - {b""}
        for wbits in (zlib.MAX_WBITS, -zlib.MAX_WBITS):
            try:
                loot.clear.append(zlib.decompress(blob, wbits).decode("latin-1"))
            except zlib.error:
                pass
    elif isinstance(value, str):
        loot.clear.append(value)
        if value[:1] in "{[":
            try:
                _walk(json.loads(value), table, ids, loot)
            except ValueError:
                pass
        if (raw := _b64(value)) is not None:
            _walk(raw, table, ids, loot)
        if re.fullmatch(r"[0-9a-fA-F]{64}", value):  # a key or digest written in hex
            _walk(bytes.fromhex(value), table, ids, loot)
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(key, table, ids, loot)
            _walk(item, table, ids, loot)
    elif isinstance(value, list | tuple):
        for item in value:
            _walk(item, table, ids, loot)
    elif value is not None:
        loot.clear.append(str(value))


def _dump() -> Loot:
    """Read every row of every table, as a database dump would have them."""
    loot = Loot()
    tables = connection.introspection.table_names()
    assert "personal_data_sharedcopy" in tables and "django_session" in tables
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            columns = [c[0] for c in cursor.description]
            for values in cursor.fetchall():
                row = dict(zip(columns, values, strict=True))
                ids = frozenset(
                    form
                    for value in row.values()
                    if isinstance(value, str | int | uuid.UUID) and not isinstance(value, bool)
                    for form in _uuid_forms(value)
                    if len(form) <= 40
                )
                if table == "accounts_user":
                    loot.person_ids |= _uuid_forms(row["id"])
                if table == "django_session":  # the operator has SECRET_KEY: sessions decode
                    _walk(SessionStore().decode(row["session_data"]), table, ids, loot)
                for value in row.values():
                    _walk(value, table, ids, loot)
    return loot


def _operator_keys() -> list[bytes]:
    """Every key the operator holds or derives: master keys, index key and its purposes, signing key."""
    keys = [key for _, key in master_keyring().keys]
    index = base64.b64decode(settings.VRM_INDEX_KEY)
    keys.append(index)
    purposes = (
        "blind-index/gtin",
        "blind-index/lot",
        "pseudonym/ledger",
        "pseudonym/pairwise",
        "idempotency",
    )
    keys += [crypto.derive_key(index, p) for p in purposes]
    signing = crypto.SigningKey.parse(settings.VRM_LEDGER_SIGNING_KEY).private
    raw = serialization.Encoding.Raw
    keys.append(signing.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()))
    keys.append(crypto.sha256(settings.SECRET_KEY.encode()))
    return keys


def _ctr_open(key: bytes, blob: bytes) -> bytes | None:
    """Decrypt an AES-256-GCM blob (0x01 | nonce | ciphertext | tag) without checking its tag."""
    if len(blob) < 29 or blob[0] != crypto.FORMAT_VERSION:
        return None
    nonce, body = blob[1:13], blob[13:-16]
    # GCM's first keystream block for a 96-bit nonce is AES(nonce || 00000002).
    decryptor = Cipher(algorithms.AES(key), modes.CTR(nonce + b"\x00\x00\x00\x02")).decryptor()
    return decryptor.update(body) + decryptor.finalize()


def _as_document(plain: bytes) -> str | None:
    if plain[:1] not in (b"{", b"["):
        return None
    try:
        text = plain.decode()
        json.loads(text)
    except ValueError:
        return None
    return text


def _unwrap_contexts(loot: Loot, ids: frozenset[str]) -> set[str]:
    every = ids | loot.person_ids
    return every | {f"share/{i}" for i in every}


def _infos(loot: Loot, table: str, ids: frozenset[str]) -> set[bytes]:
    """The associated data / HPKE info a sealed row may carry, built from its own ids as the code does."""
    tables = {table} | {c.table for c in RECORD_CATEGORIES.values()}
    places = ids | loot.person_ids
    return {
        crypto.record_aad(table=t, record_id=r, owner_id=o) for t in tables for r in places for o in places
    }


def _attack(extra_keys: tuple[bytes, ...] = ()) -> Loot:
    """Everything the operator can open from a dump with its own keys. Run it signed out."""
    assert not any(keys_held(u) for u in User.objects.all()), "the attacker must hold no person's key"
    loot = _dump()
    blobs = [b for b in loot.blobs if b[0] == crypto.FORMAT_VERSION]
    wraps = [b for b in blobs if len(b) in (1 + 12 + 32 + 16, 1 + 12 + 64 + 16)]
    level = list(dict.fromkeys([*_operator_keys(), *extra_keys, *loot.raw_keys]))
    candidates: dict[bytes, None] = dict.fromkeys(level)

    # 1. Authenticated unwrapping with every master key under every context the code uses.
    ring = master_keyring()
    for blob in wraps:
        table, ids = loot.blobs[blob]
        for key_id, _ in ring.keys:
            for context in _unwrap_contexts(loot, ids):
                loot.attempts += 1
                try:
                    candidates.setdefault(ring.unwrap(key_id, blob, context=context))
                except crypto.CryptoError:
                    pass

    # 2. Tag-free decryption, two key levels deep (master -> data or grant key -> private key).
    for _depth in range(2):
        found: list[bytes] = []
        for key in level:
            for blob in wraps:
                plain = _ctr_open(key, blob)
                loot.attempts += 1
                if plain is not None:
                    found += [plain[i : i + 32] for i in range(0, len(plain), 32)]
        level = [k for k in dict.fromkeys(found) if k not in candidates]
        candidates.update(dict.fromkeys(level))
    loot.keys_tried = len(candidates)
    for key in candidates:
        for blob in blobs:
            loot.attempts += 1
            plain = _ctr_open(key, blob)
            if plain is not None and (document := _as_document(plain)) is not None:
                loot.opened.add(document)

    # 3. Any candidate whose X25519 public half is in the dump opens what was sealed to it.
    private_keys = [
        key
        for key in candidates
        if X25519PrivateKey.from_private_bytes(key).public_key().public_bytes_raw() in loot.public_keys
    ]
    loot.verified_private_keys = len(private_keys)
    sealed_to = [b for b in loot.blobs if b[0] == crypto.SEALED_TO_VERSION]
    for private in private_keys:
        for blob in sealed_to:
            table, ids = loot.blobs[blob]
            for info in _infos(loot, table, ids):
                loot.attempts += 1
                try:
                    plain = crypto.open_sealed_to(private, blob, info)
                except crypto.CryptoError:
                    continue
                if (document := _as_document(plain)) is not None:
                    loot.opened.add(document)
                break
    return loot


def _read(loot: Loot, world: World) -> dict[str, set[str]]:
    """Which of each person's records the attacker opened; no marker may be in the dump in clear."""
    everything = set().union(*world.markers.values())
    in_clear = {m for m in everything for text in loot.clear if m in text}
    assert not in_clear, f"personal content in clear in the database: {sorted(in_clear)}"
    return {
        person: {m for m in markers if any(m in doc for doc in loot.opened)}
        for person, markers in world.markers.items()
    }


def test_the_operator_opens_only_what_a_live_grant_covers(world: World, shop_app: Any) -> None:
    with keys_scope():
        loot = _attack()
    read = _read(loot, world)
    # The attack works: carol's key is still wrapped by the master key, and it opens all of her
    # store (every category, the hidden record, the gift, preferences, the pending import).
    assert read["carol"] == world.markers["carol"]
    # alice is signed out: only the copies her live grant covers, nothing hidden, gifted, outside
    # its scopes, or waiting for her; bob is signed out (his session row in the dump) with no grant.
    assert read["alice"] == world.alice_granted
    assert read["bob"] == set()
    assert any(table == "django_session" for table, _ in loot.blobs.values())  # his sealed keys
    assert len(loot.blobs) > 40 and loot.keys_tried > 100 and loot.verified_private_keys == 0, (
        len(loot.blobs),
        loot.keys_tried,
    )

    # The HPKE path works too: handed alice's private key, the attack opens what was sealed to her.
    assert world.alice_keys.private is not None
    with keys_scope():
        handed = _attack(extra_keys=(world.alice_keys.private,))
    assert handed.verified_private_keys == 1
    assert _read(handed, world)["alice"] == world.alice_granted | {_marker("alice", "away-appliance")}

    # Revoked: the grant key and its copies are gone; nothing of alice opens any more.
    grant_revoke(grant=world.grant, by=world.alice)
    with keys_scope():
        read = _read(_attack(), world)
    assert read == {"alice": set(), "bob": set(), "carol": world.markers["carol"]}
    assert not Share.objects.filter(owner_id=world.alice.pk).exists()

    # She signs in and grants again (the copies are made anew), then the grant runs out.
    with keys_scope():
        keys_hold(world.alice, world.alice_keys)
        again = _grant(world.alice, shop_app)
    with keys_scope():
        assert _read(_attack(), world)["alice"] == world.alice_granted
    Grant.objects.filter(pk=again.pk).update(ends_at=timezone.now() - dt.timedelta(minutes=1))
    call_command("expire_grants", stdout=io.StringIO())
    with keys_scope():
        read = _read(_attack(), world)
    assert read == {"alice": set(), "bob": set(), "carol": world.markers["carol"]}
    assert not SharedCopy.objects.exists()


def test_the_operator_opens_nothing_of_a_store_set_aside_after_a_reset(world: World) -> None:
    """A reset without the recovery code sets the old store aside, still sealed under the old key
    (which only the old code opens), and starts an empty one: neither opens for the operator."""
    with keys_scope():
        dora = person_signup(email="dora@example.com", password=secrets.token_urlsafe(24))
        before = _fill_store(dora, "dora")
    new_password = secrets.token_urlsafe(24)
    with keys_scope():
        restart = services.person_store_restart(person=User.objects.get(pk=dora.pk), password=new_password)
        assert restart.retired is not None and restart.retired.record_count == 6
        services.record_create(
            owner=dora, category="purchases", data=purchase_data(notes=_marker("dora", "after"))
        )
    markers = before | {_marker("dora", "after")}
    with keys_scope():
        loot = _attack()
    assert any(table == "personal_data_retiredrecord" for table, _ in loot.blobs.values())
    assert not [m for m in markers for text in loot.clear if m in text]
    assert not [m for m in markers for doc in loot.opened if m in doc]
    # The attack is the same that opens carol's legacy store.
    assert _read(loot, world)["carol"] == world.markers["carol"]


# The admin and the management commands.


def _forbidden(world: World) -> set[str]:
    # carol is legacy (the server can open her store); the promise is about alice and bob.
    return world.markers["alice"] | world.markers["bob"]


def test_the_admin_shows_no_content_of_signed_out_people(world: World, operator: User) -> None:
    forbidden = _forbidden(world)
    client = Client()
    client.force_login(operator)
    seen: set[str] = set()
    for path, status, body in admin_pages(client):
        seen.add(path)
        assert status in (200, 302, 403), (path, status)
        assert not [m for m in forbidden if m in body], path
    opened = [p for p in seen if p.startswith("/admin/personal_data/") and p.endswith("/change/")]
    assert len(opened) >= 20, sorted(seen)  # alice's and bob's records, preferences and keys


# Every management command of vrm's own apps, and Django's dumpdata (what an operator would try);
# dev_keys too when devtools is installed (VRM_DEBUG), writing into a temporary directory. Left
# out, and why: runserver (serves until stopped), seed_demo (resets the demo people and writes
# their recovery codes under var/), seed_scale (needs --people; it writes generated data and reads
# nothing back), axes_* and spectacular (third-party; no access to the store).
VRM_APPS = {
    "accounts",
    "audit",
    "consent",
    "personal_data",
    "vendors",
    "portal",
    "auditor",
    "vrm",
    "devtools",
}
SKIPPED = {"runserver", "seed_demo", "seed_scale"}


def test_no_management_command_prints_content(world: World, tmp_path: Any, settings: Any) -> None:
    settings.DEV_KEYS_DIR = tmp_path / "keys"
    own = sorted(name for name, app in get_commands().items() if app in VRM_APPS and name not in SKIPPED)
    assert {"key_status", "rotate_master_key", "expire_grants", "verify_ledger", "seal_ledger"} <= set(own)
    arguments = {
        "rotate_signing_key": ["--out", str(tmp_path / "signing.pem")],
        # Offline: a witness run would fetch from VRM_ISSUER, which may be any server.
        "witness": ["--generate-key", str(tmp_path / "witness.pem"), "--name", "witness.example.org/t"],
        # Without --once it runs the schedule until stopped.
        "periodic": ["--once"],
    }
    runs = [[name, *arguments.get(name, [])] for name in own]
    # The signing-key rotation goes last: it changes the key later commands would sign with.
    runs.sort(key=lambda run: run[0] == "rotate_signing_key")
    runs += [["key_status", "--json"], ["dumpdata"]]
    forbidden = _forbidden(world)
    ran = []
    with keys_scope():
        for run in runs:
            out, err = io.StringIO(), io.StringIO()
            try:
                call_command(*run, stdout=out, stderr=err)
            except (SystemExit, CommandError) as exc:  # e.g. verify_ledger on an unsealed ledger
                err.write(f"failed: {exc}")
            text = out.getvalue() + err.getvalue()
            assert not [m for m in forbidden if m in text], run
            ran.append(run[0])
    assert ran == [run[0] for run in runs] and len(ran) >= 8, ran
