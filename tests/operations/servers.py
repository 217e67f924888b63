"""Application servers for operations tests: gunicorn on a free loopback port, on the test database.

Each server is another process: it sees only committed rows (`transactional_db`), and it inherits
the tests' environment (tests/env.py: ephemeral keys, plain http), so it opens what the test
process writes. Every wait is bounded: a stuck server fails the test with its log, never hangs it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(*, name: str | None = None, port: int | None = None) -> str:
    """The URL of the test database, or of `name`, on the test server or on `port`."""
    settings = connection.settings_dict
    host, user = settings.get("HOST") or "127.0.0.1", settings.get("USER") or "postgres"
    return f"postgres://{user}@{host}:{port or settings.get('PORT') or 5432}/{name or settings['NAME']}"


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


def start(env: Mapping[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start gunicorn (one worker, production settings, `env` on top); return it and its base URL."""
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "vrm.wsgi:application",
        "--workers=1",
        f"--bind=127.0.0.1:{port}",
        f"--chdir={ROOT}",
        "--timeout=30",
        "--graceful-timeout=5",
    ]
    full_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "vrm.settings",
        "VRM_DEBUG": "False",
        "VRM_HTTPS": "False",
        "VRM_ALLOWED_HOSTS": "127.0.0.1",
        **env,
    }
    # gunicorn's lines and the application's own (vrm/logs.py) in one file.
    with log.open("ab") as output:
        server = subprocess.Popen(command, env=full_env, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT)
    return server, f"http://127.0.0.1:{port}"


def wait_ready(server: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gunicorn at {base} exited ({server.returncode}):\n{tail(log)}")
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or still importing
            pass
        time.sleep(0.2)
    pytest.fail(f"gunicorn at {base} was not ready within {START_TIMEOUT} s:\n{tail(log)}")


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


@contextmanager
def gunicorn(env: Mapping[str, str], log: Path) -> Iterator[str]:
    """Serve the site with `env` until the block ends, failure or not; yield its base URL."""
    server, base = start(env, log)
    try:
        wait_ready(server, base, log)
        yield base
    finally:
        stop(server)
