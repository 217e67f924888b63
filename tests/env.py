"""A pytest plugin loaded before Django reads its settings (`-p tests.env` in pyproject).

It gives the test run ephemeral keys of its own, so tests never touch development or
production keys, and serves plain http on loopback as `make run` does.
"""

import base64
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def _b64(n: int = 32) -> str:
    return base64.b64encode(os.urandom(n)).decode()


os.environ["VRM_DEBUG"] = "False"
os.environ["VRM_HTTPS"] = "False"
os.environ.setdefault("VRM_SECRET_KEY", _b64(48))
os.environ["VRM_MASTER_KEYS"] = f"test1:{_b64()}"
os.environ["VRM_INDEX_KEY"] = _b64()
os.environ["VRM_LEDGER_SIGNING_KEY"] = (
    Ed25519PrivateKey.generate()
    .private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    .decode()
)
os.environ["VRM_EMAIL_URL"] = "locmem"
os.environ["VRM_TASKS_BACKEND"] = "immediate"
# Opening a person's store costs an Argon2id derivation (64 MiB, about 0.13 s in production); tests
# sign people in thousands of times, so they use the cheapest valid cost, as with the password hasher.
os.environ["VRM_KDF_MEMORY_KIB"] = "8"
os.environ["VRM_KDF_ITERATIONS"] = "1"
# The live server answers each keep-alive HTTP connection in a thread of its own; with persistent
# database connections such a thread holds one for as long as the client (a browser, a
# requests.Session) keeps the socket open, which can outlast the run and keep the test database
# from being dropped. Closing the database connection after each request leaves none behind.
os.environ["VRM_CONN_MAX_AGE"] = "0"
os.environ.pop("CACHE_URL", None)
# Playwright's sync API runs an event loop in the test thread; Django's ORM calls made by the
# test itself (fixtures, assertions) are still plain synchronous calls.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
# Many tests read the public ledger endpoints from one address; the test of the limit sets its own.
os.environ["VRM_LEDGER_RATE"] = "100000/minute"
