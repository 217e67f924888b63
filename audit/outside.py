"""Read a checkpoint kept outside the database: a file or an http(s) URL, raw note or JSON.

Auditors keep the signed note that GET /api/v1/ledger/checkpoint serves (the JSON document, or
its `note` member saved as text) and give it to `verify_ledger --checkpoint`. Fetching is
bounded: http and https only (redirects too), a timeout, and a size limit.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from audit.ledger import MAX_NOTE_CHARS

TIMEOUT_SECONDS = 10
# The JSON document holds the note, the key history and a few fields: far below this.
MAX_BYTES = 256 * 1024
_SCHEMES = ("http", "https")


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme not in _SCHEMES:
            raise urllib.error.URLError(f"refused a redirect to {newurl!r}: only http and https")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def http_opener() -> urllib.request.OpenerDirector:
    """Return an opener that follows redirects to http and https URLs only."""
    return urllib.request.build_opener(_HttpOnlyRedirects)


def _read_bounded(stream: IO[bytes], source: str) -> bytes:
    data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ValueError(f"{source} is larger than {MAX_BYTES} bytes; that is not a checkpoint")
    return data


def checkpoint_source_read(source: str) -> str:
    """Return the checkpoint note held by a file or served at an http(s) URL; raise ValueError."""
    scheme = urlsplit(source).scheme.lower()
    if scheme in _SCHEMES:
        opener = http_opener()
        request = urllib.request.Request(source, headers={"Accept": "application/json, text/plain"})  # noqa: S310 (scheme checked above)
        try:
            with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
                data = _read_bounded(response, source)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ValueError(f"cannot fetch {source}: {exc}") from None
    elif "://" in source:
        raise ValueError(f"{source}: only http and https URLs, or a file path")
    else:
        try:
            with Path(source).open("rb") as handle:
                data = _read_bounded(handle, source)
        except OSError as exc:
            raise ValueError(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{source} is not UTF-8 text") from None
    return checkpoint_note_from(text)


def checkpoint_note_from(text: str) -> str:
    """Return the note of a checkpoint given as the endpoint's JSON document or as the note itself."""
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            raise ValueError("the checkpoint given is not valid JSON") from None
        note = document.get("note") if isinstance(document, dict) else None
        if not isinstance(note, str):
            raise ValueError('the JSON given has no "note" string')
        text = note
    if len(text) > MAX_NOTE_CHARS:
        raise ValueError(f"a checkpoint note is at most {MAX_NOTE_CHARS} characters")
    return text
