"""The witness against a log it cannot trust to answer well: a small HTTP server plays the log.

Each test serves real signed checkpoints (or something else) from a local server and runs both
witnesses, `manage.py witness` and examples/witness.py: key handovers it must accept or refuse,
answers that are not the ledger's, oversized or redirected answers, a log that will not take a
cosignature. No database: the witness needs only the public endpoints.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from audit import ledger
from audit.merkle import consistency_proof, leaf_hash, root_from_leaf_hashes
from audit.witnessing import key_generate
from core.crypto import SigningKey, handover_statement, possession_statement

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "witness.py"
NAME = "witness.example.org/bob"
LEAVES = [leaf_hash(b"entry %d" % i) for i in range(40)]
Answer = tuple[int, str, bytes]  # status, content type, body


class FakeLog(ThreadingHTTPServer):
    """Answers each (method, path) from `answers`; remembers what was posted."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers: dict[tuple[str, str], Answer] = {}
        self.posted: list[str] = []
        self.origin = f"http://127.0.0.1:{self.server_address[1]}/ledger"
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def json(self, path: str, document: Any, status: int = 200, method: str = "GET") -> None:
        self.answers[(method, path)] = (status, "application/json", json.dumps(document).encode())

    def checkpoint(self, key: SigningKey, size: int, keys: list[dict[str, Any]]) -> None:
        note, _ = ledger.note_sign(
            key=key, origin=self.origin, tree_size=size, root_hash=root_from_leaf_hashes(LEAVES[:size])
        )
        self.json("/api/v1/ledger/checkpoint", {"note": note, "keys": keys, "cosignatures": []})

    def proof(self, first: int, second: int, hashes: list[bytes] | None = None) -> None:
        if hashes is None:
            hashes = consistency_proof(first, LEAVES[:second])
        document = {"first": first, "second": second, "proof": [ledger.b64(h) for h in hashes]}
        self.json(f"/api/v1/ledger/proof/consistency?first={first}&second={second}", document)


class _Handler(BaseHTTPRequestHandler):
    server: FakeLog

    def _answer(self, method: str) -> None:
        status, kind, body = self.server.answers.get((method, self.path), (404, "text/plain", b"no"))
        self.send_response(status)
        if status in (301, 302):
            self.send_header("Location", body.decode())
            body = b""
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self.server.posted.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self._answer("POST")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def log() -> Iterator[FakeLog]:
    server = FakeLog()
    server.json("/api/v1/ledger/cosignatures", {"stored": True}, status=201, method="POST")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _key_document(
    key: SigningKey, previous: SigningKey | None = None, *, signer: SigningKey | None = None
) -> dict[str, Any]:
    """The `keys` member for key; a handover from previous, signed by signer (previous unless forged)."""
    document: dict[str, Any] = {"public_key": ledger.b64(key.public_raw())}
    if previous is not None:
        old, new = previous.public_raw(), key.public_raw()
        document["handover_signature"] = ledger.b64(
            (signer or previous).sign(handover_statement(old_public=old, new_public=new))
        )
        document["possession_signature"] = ledger.b64(
            key.sign(possession_statement(old_public=old, new_public=new))
        )
    return document


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(params=["command", "script"])
def witness(request: pytest.FixtureRequest, tmp_path: Path, log: FakeLog) -> Run:
    key_file = tmp_path / "bob.pem"
    key_generate(path=key_file, name=NAME)
    state = tmp_path / "bob.json"

    def run(*extra: str) -> tuple[int, str, str]:
        args = ["--key", str(key_file), "--name", NAME, "--url", log.url, "--state", str(state), *extra]
        if request.param == "script":
            done = subprocess.run(
                [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60
            )
            return done.returncode, done.stdout, done.stderr
        out, err = io.StringIO(), io.StringIO()
        try:
            call_command("witness", *args, stdout=out, stderr=err)
        except SystemExit as exc:
            return int(exc.code or 0), out.getvalue(), err.getvalue()
        return 0, out.getvalue(), err.getvalue()

    run.state = state  # type: ignore[attr-defined]
    return run


def _state(run: Run) -> dict[str, Any]:
    return json.loads(run.state.read_text())  # type: ignore[attr-defined]


def test_a_log_key_handed_over_by_the_pinned_key_is_pinned(witness: Run, log: FakeLog) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    log.checkpoint(old, 10, [_key_document(old)])
    assert witness()[0] == 0
    log.checkpoint(new, 20, [_key_document(old), _key_document(new, old)])
    log.proof(10, 20)
    code, out, err = witness()
    assert (code, err) == (0, ""), err
    assert "cosigned tree size 20" in out and "(consistent with tree size 10)" in out
    assert _state(witness)["log_keys"] == [ledger.b64(old.public_raw()), ledger.b64(new.public_raw())]
    posted = ledger.note_parse(log.posted[-1])
    assert posted.tree_size == 20 and [s.name for s in posted.signatures] == [log.origin, NAME]


def test_the_first_run_trusts_the_first_key_and_follows_its_handovers(witness: Run, log: FakeLog) -> None:
    first, second = SigningKey.generate(), SigningKey.generate()
    log.checkpoint(second, 10, [_key_document(first), _key_document(second, first)])
    code, out, _ = witness()
    assert code == 0 and out.startswith("cosigned tree size 10")
    assert _state(witness)["log_keys"] == [ledger.b64(first.public_raw()), ledger.b64(second.public_raw())]


def test_a_log_key_without_a_valid_handover_is_not_pinned(witness: Run, log: FakeLog) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    log.checkpoint(old, 10, [_key_document(old)])
    assert witness()[0] == 0
    before = witness.state.read_bytes()  # type: ignore[attr-defined]
    # The new key signs its own "handover": anyone who can write the key table could do that.
    log.checkpoint(new, 20, [_key_document(old), _key_document(new, old, signer=new)])
    log.proof(10, 20)
    code, out, err = witness()
    assert code == 2 and out == ""
    assert "the checkpoint of tree size 20 is not signed by the log key I pinned" in err
    assert witness.state.read_bytes() == before  # type: ignore[attr-defined]


def test_a_log_key_given_on_the_first_run_is_pinned_instead_of_the_first(witness: Run, log: FakeLog) -> None:
    mine, theirs = SigningKey.generate(), SigningKey.generate()
    log.checkpoint(theirs, 10, [_key_document(theirs)])
    code, _, err = witness("--log-key", ledger.b64(mine.public_raw()))
    assert code == 2 and "not signed by the log key I pinned" in err


def test_a_proof_that_does_not_verify_is_refused_with_the_evidence_posted(witness: Run, log: FakeLog) -> None:
    key = SigningKey.generate()
    log.checkpoint(key, 10, [_key_document(key)])
    assert witness()[0] == 0
    before = witness.state.read_bytes()  # type: ignore[attr-defined]
    cosigned = log.posted[-1]
    log.checkpoint(key, 20, [_key_document(key)])
    log.proof(10, 20, [b"\x00" * 32, *consistency_proof(10, LEAVES[:20])[1:]])
    log.json("/api/v1/ledger/cosignatures", {"detail": "Alarm raised"}, status=409, method="POST")
    code, out, err = witness()
    assert code == 1 and out == ""
    assert "is not consistent with tree size 10" in err and "its consistency proof does not verify" in err
    assert "the log acknowledged the conflict (409: Alarm raised)" in err
    assert log.posted[-1] == cosigned  # the evidence: what the witness cosigned at tree size 10
    assert witness.state.read_bytes() == before  # type: ignore[attr-defined]


def test_evidence_the_log_does_not_acknowledge_is_said_so(witness: Run, log: FakeLog) -> None:
    key = SigningKey.generate()
    log.checkpoint(key, 20, [_key_document(key)])
    assert witness()[0] == 0
    log.checkpoint(key, 10, [_key_document(key)])
    code, _, err = witness()
    assert code == 1 and "the log was truncated" in err
    assert "the log answered 201" in err and "not the 409" in err and "acknowledged the" not in err


def test_a_cosignature_the_log_does_not_take_is_kept_and_said_so(witness: Run, log: FakeLog) -> None:
    key = SigningKey.generate()
    log.checkpoint(key, 10, [_key_document(key)])
    log.json("/api/v1/ledger/cosignatures", {"detail": "witness not registered"}, status=403, method="POST")
    code, out, err = witness()
    assert code == 2 and "cosigned tree size 10" in err and "(403: witness not registered)" in err
    assert "the next run posts it again" in err
    # A cosignature is a promise: kept, so the next run holds the log to it.
    assert _state(witness)["tree_size"] == 10


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ((200, "text/html", b"<html>hello</html>"), "JSON"),
        ((200, "application/json", b"[1, 2]"), "JSON object"),
        ((500, "text/plain", b"oops"), "500"),
        ((404, "application/json", b'{"detail": "The ledger has no checkpoint yet."}'), "no checkpoint yet"),
        ((200, "application/json", b"x" * (256 * 1024 + 1)), "262144 bytes"),
        ((200, "application/json", b'{"note": "not a note", "keys": []}'), "checkpoint"),
        # urllib refuses a redirect to a file itself; the witness refuses any but http(s).
        ((302, "text/plain", b"file:///etc/passwd"), "302"),
        ((302, "text/plain", b"ftp://127.0.0.1/checkpoint"), "refused a redirect"),
    ],
    ids=["html", "array", "500", "404", "oversized", "bad-note", "file-redirect", "ftp-redirect"],
)
def test_an_answer_that_is_not_the_ledgers_is_refused(
    witness: Run, log: FakeLog, answer: Answer, says: str
) -> None:
    log.answers[("GET", "/api/v1/ledger/checkpoint")] = answer
    code, out, err = witness()
    assert code == 2 and out == ""
    assert says in err and "Traceback" not in err
    assert not witness.state.exists()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("proof", "says"),
    [
        ({"first": 10, "second": 20, "proof": ["not base64!"]}, "base64"),
        ({"first": 10, "second": 30, "proof": []}, "other tree sizes"),
        ({"first": 10, "second": 20, "proof": "AAAA"}, ""),
    ],
    ids=["bad-hash", "other-sizes", "not-a-list"],
)
def test_a_consistency_proof_that_is_not_one_is_refused(
    witness: Run, log: FakeLog, proof: dict[str, Any], says: str
) -> None:
    key = SigningKey.generate()
    log.checkpoint(key, 10, [_key_document(key)])
    assert witness()[0] == 0
    log.checkpoint(key, 20, [_key_document(key)])
    log.json("/api/v1/ledger/proof/consistency?first=10&second=20", proof)
    code, _, err = witness()
    assert code == 2 and says in err and "Traceback" not in err
    assert _state(witness)["tree_size"] == 10


def test_a_forged_log_line_beside_the_real_one_is_left_out(witness: Run, log: FakeLog) -> None:
    key = SigningKey.generate()
    note, _ = ledger.note_sign(
        key=key, origin=log.origin, tree_size=10, root_hash=root_from_leaf_hashes(LEAVES[:10])
    )
    body, _, real = note.partition("\n\n")
    # A line under the log's name and key id whose signature is zeros, placed first.
    forged = f"\u2014 {log.origin} {ledger.b64(_key_id(key, log) + bytes(64))}\n"
    document = {"note": f"{body}\n\n{forged}{real}", "keys": [_key_document(key)], "cosignatures": []}
    log.json("/api/v1/ledger/checkpoint", document)
    code, out, err = witness()
    assert code == 0, err
    posted = log.posted[-1]
    assert real in posted and forged not in posted


def _key_id(key: SigningKey, log: FakeLog) -> bytes:
    return ledger.key_id(name=log.origin, public_raw=key.public_raw())


def test_after_an_empty_tree_any_tree_is_consistent(witness: Run, log: FakeLog) -> None:
    key = SigningKey.generate()
    log.checkpoint(key, 0, [_key_document(key)])
    assert witness()[0] == 0
    log.checkpoint(key, 10, [_key_document(key)])
    code, out, _ = witness()
    assert code == 0 and "cosigned tree size 10" in out and "(consistent with tree size 0)" in out


def test_what_the_log_says_reaches_the_terminal_without_its_escapes(witness: Run, log: FakeLog) -> None:
    log.json("/api/v1/ledger/checkpoint", {"detail": "\x1b[2J\x1b]0;owned\x07gone"}, status=503)
    code, _, err = witness()
    assert code == 2 and "\x1b" not in err and "\x07" not in err
    assert "?[2J?]0;owned?gone" in err
