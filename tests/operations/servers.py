"""Application servers for operations tests: gunicorn on a free loopback port, on the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(*, name: str | None = None, port: int | None = None) -> str:
    """The URL of the test database (committed rows only: the server is another process)."""
    settings = connection.settings_dict
    host, user = settings.get("HOST") or "127.0.0.1", settings.get("USER") or "postgres"
    return f"postgres://{user}@{host}:{port or settings.get('PORT') or 5432}/{name or settings['NAME']}"


@contextmanager
def gunicorn(env: Mapping[str, str], log: Path, *, workers: int = 1) -> Iterator[str]:
    """Serve the site with production settings and `env` on top; yield its base URL.

    The tests' own environment (tests/env.py: ephemeral keys, plain http) is inherited, so the
    server opens what the test process writes. It is stopped on the way out, failure or not.
    """
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "vrm.wsgi:application",
        f"--workers={workers}",
        f"--bind=127.0.0.1:{port}",
        f"--chdir={ROOT}",
        f"--error-logfile={log}",
        "--graceful-timeout=5",
    ]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "VRM_ALLOWED_HOSTS": "127.0.0.1", **env}
    # The application's own log lines (vrm/logs.py) go to the same file as gunicorn's.
    with log.open("ab") as output:
        server = subprocess.Popen(command, env=full_env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise AssertionError(f"gunicorn exited ({server.returncode}):\n{log.read_text()[-3000:]}")
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still importing
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"gunicorn did not answer within 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
