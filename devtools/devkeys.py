"""Development keys under var/keys/ for `make run` (never used unless VRM_DEBUG=True)."""

from __future__ import annotations

import secrets
from pathlib import Path

from core.crypto import SigningKey, encode_key, random_key


def dev_keys_ensure(directory: Path) -> list[Path]:
    """Create any missing development key file in directory; return the files created."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    makers = {
        "secret_key": lambda: secrets.token_urlsafe(50),
        "master_keys": lambda: f"dev1:{encode_key(random_key())}",
        "index_key": lambda: encode_key(random_key()),
        "ledger_signing_key.pem": lambda: SigningKey.generate().private_pem(),
    }
    created = []
    for name, make in makers.items():
        path = directory / name
        if not path.exists():
            path.write_text(make() + "\n")
            path.chmod(0o600)
            created.append(path)
    return created
