"""Personas shared by every suite: alice and bob (people), an auditor, vendor staff."""

from __future__ import annotations

import base64
import logging
import logging.config
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection, transaction
from django.http import HttpRequest
from django.test import Client, override_settings
from oauthlib import common as oauthlib_common
from pythonjsonlogger.json import JsonFormatter

from accounts.models import User
from accounts.services import account_upsert
from personal_data.keys import keys_held, keys_scope
from portal.keysession import COOKIE, keys_into_session
from portal.services import person_signup
from vrm.logs import Scrub

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery staple"
# What vrm/settings.py configures, read before the fast hasher below replaces it for the run.
PRODUCTION_PASSWORD_HASHERS = list(django_settings.PASSWORD_HASHERS)
LEDGER_TABLES = ("audit_ledgertile", "audit_ledgerleaf", "audit_ledgercheckpoint", "audit_ledgerentry")
# The summaries beside it (audit.summaries): emptied with it, so they stay in step.
SUMMARY_TABLES = (
    "audit_ledgergrant",
    "audit_ledgervendorday",
    "audit_ledgerlateread",
    "audit_ledgersummaryrebuild",
)
# The signing-key history is append-only too (audit migration 0005).
KEY_TABLE = "audit_ledgerpublickey"
# Witnesses' cosignatures and alarms are append-only too (audit migration 0014).
WITNESS_TABLES = ("audit_ledgercosignature", "audit_ledgeralarm")


def ledger_wipe(
    tables: tuple[str, ...] = (*WITNESS_TABLES, *SUMMARY_TABLES, *LEDGER_TABLES, KEY_TABLE),
) -> None:
    """Empty the ledger tables (and the key history) behind the triggers' back (test databases only)."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Foreign keys are deferred; pending checks would block ALTER TABLE.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        else:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'audit_ledger%'"
            )
            triggers = cursor.fetchall()
            for name, _ in triggers:
                cursor.execute(f"DROP TRIGGER {name}")
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")
            for _, sql in triggers:
                cursor.execute(sql)


# What must never appear in a log line (checked over the whole run, _logs_hold_nothing_personal):
# the test password, the personas' names and a seeded record's content; e-mail addresses, bearer
# credentials and any OAuth token the run issued are matched by pattern and by value below.
SEEDED = (PASSWORD, "Alice Liddell", "Bob Builder", "Crunchy Peanut Butter", "Nutty Farms", "for the pantry")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_-]{20,}")


@pytest.fixture(autouse=True, scope="session")
def _logs_hold_nothing_personal(worker_id: str) -> Iterator[None]:
    """Write every log record of the run as production does (JSON, scrubbed), then read it all.

    The run signs people up, reads and writes their records, issues and refuses tokens, and fails
    on purpose; not one line may carry a person's e-mail or name, a record's content, the
    password, a bearer credential or a token the OAuth server issued (issue #19).
    """
    issued: set[str] = set()
    generate = oauthlib_common.generate_token

    def recorded(*args: Any, **kwargs: Any) -> str:
        token = generate(*args, **kwargs)
        issued.add(token)
        return token

    oauthlib_common.generate_token = recorded
    path = ROOT / "test-artifacts" / "logs" / f"{worker_id}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
    # Appending: a reconfiguration closes every handler, and a closed one reopens only to append.
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    config = django_settings.LOGGING
    handler.setFormatter(
        JsonFormatter(**{k: v for k, v in config["formatters"]["json"].items() if k != "()"})
    )
    handler.addFilter(Scrub())
    logging.getLogger().addHandler(handler)
    # A test that sets Django up again (get_wsgi_application) reconfigures logging, which drops
    # the root's handlers: put this one back each time, or the rest of the run goes unread.
    dict_config = logging.config.dictConfig

    def reconfigured(config: dict[str, Any]) -> None:
        dict_config(config)
        logging.getLogger().addHandler(handler)

    logging.config.dictConfig = reconfigured
    yield
    logging.config.dictConfig = dict_config
    logging.getLogger().removeHandler(handler)
    handler.close()
    oauthlib_common.generate_token = generate
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        leaks = [seed for seed in SEEDED if seed in line]
        leaks += _EMAIL.findall(line)
        leaks += ["Bearer"] if "Bearer " in line else []
        leaks += [word for word in _TOKEN_LIKE.findall(line) if word in issued]
        if leaks:
            found.append(f"{path.name}:{number}: {leaks}: {line[:300]}")
    assert not found, "log lines carry personal content or credentials:\n" + "\n".join(found[:20])


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing() -> Iterator[None]:
    """Hash with MD5 for the whole run: Argon2 costs about 0.1 s and 100 MB per password.

    Tests that check the production hasher ask for `production_password_hashers`.
    """
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


def _force_login_with_keys(self: Client, user: Any, backend: str | None = None) -> None:
    """Client.force_login that, like a real sign-in with the password, also opens a person's
    store for the session: with the keys the user object holds (person_signup leaves them open).

    A user read afresh from the database holds no keys, exactly as after a password reset.
    """
    _original_force_login(self, user, backend)
    keys = keys_held(user)
    if keys is None:
        return
    request = HttpRequest()
    request.session = self.session
    request.user = user
    keys_into_session(request, keys)
    request.session.save()
    self.cookies[COOKIE] = base64.b64encode(request._vrm_new_keys_cookie).decode()


_original_force_login = Client.force_login


@pytest.fixture(autouse=True, scope="session")
def _sign_in_opens_the_store() -> Iterator[None]:
    Client.force_login = _force_login_with_keys  # type: ignore[method-assign]
    yield
    Client.force_login = _original_force_login  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _keys_opened_in_this_test_only() -> Iterator[None]:
    with keys_scope():
        yield


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Every test starts with empty rate-limit counters (the local-memory cache outlives tests)."""
    cache.clear()
    yield


@pytest.fixture
def production_password_hashers(settings: Any) -> list[str]:
    settings.PASSWORD_HASHERS = PRODUCTION_PASSWORD_HASHERS
    return PRODUCTION_PASSWORD_HASHERS


@pytest.fixture(autouse=True)
def _empty_ledger_after_transactional_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty the append-only ledger before Django flushes a transactional test's database.

    The triggers refuse DELETE (and TRUNCATE of a non-empty table), so the flush would fail.
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction")) or bool(
        {"transactional_db", "live_server"} & set(request.fixturenames)
    )
    if not transactional:
        yield
        return
    request.getfixturevalue("transactional_db")  # set up first, so flushed after the wipe below
    yield
    ledger_wipe()


@pytest.fixture
def alice(db: Any) -> User:
    return person_signup(email="alice@example.com", password=PASSWORD, display_name="Alice Liddell")


@pytest.fixture
def bob(db: Any) -> User:
    return person_signup(email="bob@example.com", password=PASSWORD, display_name="Bob Builder")


@pytest.fixture
def auditor(db: Any) -> User:
    return account_upsert(email="auditor@example.com", password=PASSWORD, role=User.Role.AUDITOR)[0]


@pytest.fixture
def vendor_staff(db: Any) -> User:
    return account_upsert(email="staff@shop.example", password=PASSWORD, role=User.Role.VENDOR_STAFF)[0]


@pytest.fixture
def operator(db: Any) -> User:
    return User.objects.create_superuser(email="ops@example.com", password=PASSWORD)


def signup_link(email: str) -> str:
    """The path of the newest sign-up confirmation link e-mailed to `email` (locmem outbox)."""
    from django.core import mail

    for message in reversed(mail.outbox):
        if email in message.to and (
            found := re.search(r"https?://[^/\s]+(/\S*/signup/confirm/\S+/)", message.body)
        ):
            return found.group(1)
    raise AssertionError(f"no sign-up link was e-mailed to {email}")


def purchase_data(**overrides: Any) -> dict[str, Any]:
    """A valid purchase document; override any field."""
    data: dict[str, Any] = {
        "merchant": "Green Grocer",
        "product_name": "Crunchy Peanut Butter",
        "brand": "Nutty Farms",
        "gtin": "5012345001234",
        "quantity": 2,
        "unit_price": "3.49",
        "currency": "EUR",
        "lot": "L4471",
        "purchased_on": "2026-03-14",
        "notes": "for the pantry",
    }
    data.update(overrides)
    return data


# The OAuth personas (a vendor with an app, a stranger app, the flow driver) for every suite.
from tests.consent.conftest import flow, shop_app, shop_org, stranger_app  # noqa: E402, F401


def matched_alert(person: Any) -> Any:
    """A verified publisher's recall of a peanut butter the person bought, matched: their alert."""
    from personal_data.services import record_create
    from tests.consent.conftest import make_app
    from vendors.models import Alert, Organisation
    from vendors.recalls import recall_match, recall_publish

    record_create(owner=person, category="purchases", data=purchase_data(gtin="5012345001234"))
    publisher = Organisation.objects.create(
        name="Recall Foods",
        website="https://recall.example",
        privacy_contact="p@recall.example",
        verified=True,
    )
    recall = recall_publish(
        application=make_app(publisher, name="Recall app", secret="recall-" + "z" * 40),
        data={
            "title": "Peanut butter recall",
            "message": "Salmonella risk.",
            "severity": "warning",
            "gtins": ["5012345001234"],
            "remedy_url": "https://recall.example/peanut",
        },
    )
    recall_match(recall_id=recall.pk)
    return Alert.objects.get(person=person)
