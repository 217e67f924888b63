"""Private signing-key files for rotate_signing_key: written once, owner-only, replaced atomically.

Private keys go to files only, never to stdout or a log. The old key is kept beside the new one
as a backup, owner-only too, so an operator can still roll back a rotation that never went live.
"""

from __future__ import annotations

import os
from pathlib import Path


def key_file_write(path: Path, pem: str) -> Path:
    """Create path holding pem, readable by its owner only; refuse to overwrite an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(pem if pem.endswith("\n") else pem + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return path


def key_file_replace(path: Path, staged: Path, backup: Path) -> None:
    """Copy path to backup, then put staged in its place in one rename (never a moment without a key)."""
    key_file_write(backup, path.read_text())
    os.replace(staged, path)


def staging_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.new")


def backup_path(path: Path, kid: str) -> Path:
    return path.with_name(f"{path.name}.retired-{kid}")
