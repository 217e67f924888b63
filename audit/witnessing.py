"""A witness of the ledger: check each new checkpoint against the last one cosigned, then cosign it.

The witness is an auditor's program, run from cron against the public endpoints only (the same
logic, without Django, is examples/witness.py). Each run:

1. loads its state (the log's origin and pinned keys, the last checkpoint it cosigned);
2. fetches the newest checkpoint and verifies the log's signature with a pinned key, pinning a
   newer log key only through a valid handover from a pinned one (docs/ledger.md, "Signing keys");
3. proves the newest checkpoint consistent with the one it cosigned last (RFC 9162), or refuses:
   a smaller tree (truncated), another root at the same size (forked), or a failed or missing
   consistency proof (inconsistent). A refusal posts the witness's last cosigned checkpoint to the
   log as evidence, so the server raises an alarm, and leaves the state as it was;
4. cosigns (C2SP tlog-cosignature, Ed25519), writes the new state, then posts the cosignature.

docs/witness.md is the operator's and auditor's copy of what this does and says.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from audit import ledger
from audit.keyfiles import key_file_write
from audit.merkle import verify_consistency
from audit.outside import MAX_BYTES, TIMEOUT_SECONDS, http_opener
from core.crypto import KeyFormatError, SigningKey, handover_verify, public_key_check, verify_signature

STATE_FORMAT = "vrm-witness-state/1"
# The C2SP signature type of a signed-note Ed25519 key (the log's); a cosigner's is 0x04.
_LOG_KEY_TYPE = b"\x01"
_EM_DASH = "\u2014"


class WitnessError(Exception):
    """The witness cannot do its work (configuration, network, a response it cannot read): exit 2."""


# The formats: audit.ledger writes cosignatures (C2SP tlog-cosignature v1, Ed25519) and vkeys.


def name_check(name: str) -> str:
    """Return name if it can be a witness's key name; raise WitnessError saying why not."""
    try:
        return ledger.witness_name_check(name)
    except ValueError as exc:
        raise WitnessError(f"{name[:60]!r} cannot be a key name: {exc}") from None


def log_key_parse(text: str) -> bytes:
    """Return the raw log key given as a signed-note vkey (type 0x01) or base64 of the 32 bytes."""
    text = text.strip()
    try:
        return public_key_check(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError, KeyFormatError):
        pass  # not raw base64: a vkey, <origin>+<hex key id>+<base64(0x01 || key)>
    parts = text.split("+", 2)  # a key name holds no '+'; base64 may
    try:
        name, key_id, blob = parts[0], bytes.fromhex(parts[1]), base64.b64decode(parts[2], validate=True)
        raw = public_key_check(blob[1:])
    except (IndexError, binascii.Error, ValueError, KeyFormatError):
        raise WitnessError(
            "the log key given is neither a vkey (<origin>+<key id>+<base64>) "
            "nor base64 of a 32-byte Ed25519 key"
        ) from None
    if blob[:1] != _LOG_KEY_TYPE or len(key_id) != 4:
        raise WitnessError("the log key given is not a signed-note Ed25519 key (type 0x01)")
    if ledger.key_id(name=name, public_raw=raw) != key_id:
        raise WitnessError("the log key given does not match its own key id")
    return raw


# The state kept between runs.


@dataclass(frozen=True)
class WitnessState:
    """The log's origin and pinned keys, and the checkpoint this witness cosigned last."""

    origin: str
    log_keys: tuple[bytes, ...]
    tree_size: int
    root_hash: bytes
    # The checkpoint as cosigned: body, blank line, the log's signature line, this witness's line.
    note: str
    cosignature: str

    def to_json(self) -> str:
        document = {
            "format": STATE_FORMAT,
            "origin": self.origin,
            "log_keys": [ledger.b64(k) for k in self.log_keys],
            "tree_size": self.tree_size,
            "root_hash": ledger.b64(self.root_hash),
            "note": self.note,
            "cosignature": self.cosignature,
        }
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def state_load(*, path: Path) -> WitnessState | None:
    """Return the state kept at path, None if there is none yet; raise WitnessError if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise WitnessError(f"cannot read the state file {path}: {exc}") from None
    try:
        document = json.loads(text)
        if document.get("format") != STATE_FORMAT:
            raise ValueError(f"its format is not {STATE_FORMAT}")
        keys = tuple(public_key_check(base64.b64decode(k, validate=True)) for k in document["log_keys"])
        if not keys or not isinstance(document["origin"], str):
            raise ValueError("it pins no log key or names no origin")
        note, cosignature = document["note"], document["cosignature"]
        parsed = ledger.note_parse(note)
        root = base64.b64decode(document["root_hash"], validate=True)
        if (parsed.origin, parsed.tree_size, parsed.root_hash) != (
            document["origin"],
            document["tree_size"],
            root,
        ):
            raise ValueError("its note does not state its origin, tree size and root")
        if not isinstance(cosignature, str) or not note.endswith(cosignature):
            raise ValueError("its note does not end with its cosignature line")
        return WitnessState(
            origin=parsed.origin,
            log_keys=keys,
            tree_size=parsed.tree_size,
            root_hash=root,
            note=note,
            cosignature=cosignature,
        )
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, KeyFormatError) as exc:
        raise WitnessError(f"the state file {path} is not a witness state: {exc}") from None


def state_save(*, path: Path, state: WitnessState) -> None:
    """Replace the state file in one rename, owner-only, so a crash leaves the old state or the new."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(state.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(staged, 0o600)
        os.replace(staged, path)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise


def default_state_path(*, base: Path, name: str) -> Path:
    """Return base/var/witness/<name, with / as _>.json: one state file per witness."""
    return base / "var" / "witness" / (name.replace("/", "_") + ".json")


# Talking to the log.


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self, what: str) -> dict[str, Any]:
        try:
            document = json.loads(self.body)
        except ValueError:
            raise WitnessError(f"the log's {what} is not JSON") from None
        if not isinstance(document, dict):
            raise WitnessError(f"the log's {what} is not a JSON object")
        return document

    def detail(self) -> str:
        """Return what the log said about its answer, printable (no terminal escapes of its choosing)."""
        try:
            document = json.loads(self.body)
            text = str(document.get("detail") or document.get("title") or "")[:300]
        except (ValueError, AttributeError):
            text = self.body[:200].decode("utf-8", "replace")
        return "".join(c if c.isprintable() else "?" for c in text)


def _request(url: str, *, data: bytes | None = None) -> Reply:
    try:
        scheme = urlsplit(url).scheme
    except ValueError as exc:
        raise WitnessError(f"{url} is not a URL: {exc}") from None
    if scheme not in ("http", "https"):
        raise WitnessError(f"{url}: only http and https URLs")
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "text/plain; charset=utf-8"
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 (scheme checked above)
    try:
        with http_opener().open(request, timeout=TIMEOUT_SECONDS) as response:
            return Reply(response.status, _bounded(response, url))
    except urllib.error.HTTPError as exc:
        with exc:
            return Reply(exc.code, _bounded(exc, url))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WitnessError(f"cannot reach {url}: {reason}") from None


def _bounded(stream: Any, url: str) -> bytes:
    body: bytes = stream.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise WitnessError(f"{url} answered more than {MAX_BYTES} bytes; that is not the ledger")
    return body


def _b64_list(value: Any, what: str) -> list[bytes]:
    if not isinstance(value, list):
        raise WitnessError(f"the log's {what} is not a list")
    try:
        hashes = [base64.b64decode(h, validate=True) for h in value]
    except (binascii.Error, TypeError, ValueError):
        raise WitnessError(f"the log's {what} is not a list of base64 hashes") from None
    if any(len(h) != ledger.HASH_BYTES for h in hashes):
        raise WitnessError(f"the log's {what} holds a hash that is not 32 bytes")
    return hashes


@dataclass(frozen=True)
class Checkpoint:
    note: ledger.Note
    log_line: str  # the log's own signature line, as verified
    log_key: bytes
    listed: tuple[str, ...]  # the cosignature lines the log lists for this checkpoint


def _pin_handed_over(pinned: list[bytes], keys: Any) -> list[bytes]:
    """Pin each key of the log's chain that a pinned key handed over to (oldest first)."""
    if not isinstance(keys, list):
        raise WitnessError('the log\'s checkpoint document has no "keys" list')
    previous: bytes | None = None
    for item in keys:
        try:
            key = public_key_check(base64.b64decode(item["public_key"], validate=True))
            if previous in pinned and key not in pinned:
                handover = base64.b64decode(item.get("handover_signature") or "", validate=True)
                possession = base64.b64decode(item.get("possession_signature") or "", validate=True)
                if handover_verify(
                    old_public=previous,
                    new_public=key,
                    handover_signature=handover,
                    possession_signature=possession,
                ):
                    pinned.append(key)
        except (KeyError, TypeError, ValueError, binascii.Error, KeyFormatError):
            raise WitnessError("the log's key chain holds a key that cannot be read") from None
        previous = key
    return pinned


def _log_signature(note: ledger.Note, pinned: list[bytes]) -> tuple[str, bytes] | None:
    """Return the log's signature line that verifies under a pinned key, and that key; or None."""
    for line in note.signatures:
        for key in pinned:
            if line.name == note.origin and line.key_id == ledger.key_id(name=note.origin, public_raw=key):
                if verify_signature(key, line.signature, note.body.encode()):
                    return f"{_EM_DASH} {line.name} {ledger.b64(line.key_id + line.signature)}\n", key
    return None


def _first_key(keys: Any) -> bytes:
    try:
        return public_key_check(base64.b64decode(keys[0]["public_key"], validate=True))
    except (IndexError, KeyError, TypeError, ValueError, binascii.Error, KeyFormatError):
        raise WitnessError("the log publishes no key to pin") from None


def _listed_lines(document: dict[str, Any]) -> tuple[str, ...]:
    """Return the cosignature lines the log lists, whether as strings or objects holding a line."""
    lines: list[str] = []
    listed = document.get("cosignatures")
    for item in listed if isinstance(listed, list) else []:
        if isinstance(item, str):
            lines.append(item.strip())
        elif isinstance(item, dict):
            lines += [v.strip() for v in item.values() if isinstance(v, str) and v.startswith(_EM_DASH)]
    return tuple(lines)


# The run.


@dataclass(frozen=True)
class Outcome:
    """What a run did: exit code 0 (cosigned or nothing new) or 1 (refused), and what to print."""

    code: int
    message: str
    # Refusals only: what the server said about the evidence posted.
    evidence: str | None = None


def witness_run(
    *, key: SigningKey, name: str, url: str, state_path: Path, log_key: bytes | None = None
) -> Outcome:
    """Check the log's newest checkpoint against the state and cosign it, or refuse and say why.

    Return Outcome(0, …) after cosigning (or when there is nothing new), Outcome(1, …) after a
    refusal (the evidence posted, the state unchanged); raise WitnessError when the witness
    cannot do its work.
    """
    return _Witness(key=key, name=name, url=url, state_path=state_path, log_key=log_key).run()


@dataclass
class _Witness:
    """One run of a witness: its key and name, the log it watches, where it keeps its state."""

    key: SigningKey
    name: str
    url: str
    state_path: Path
    log_key: bytes | None = None

    def endpoint(self, path: str) -> str:
        return self.url.rstrip("/") + "/api/v1/ledger/" + path

    def run(self) -> Outcome:
        name_check(self.name)
        # One run per state file at a time: two overlapping runs (cron starting one while the
        # last still waits on the network) would both read the state and both cosign from it.
        lock_path = self.state_path.with_name(self.state_path.name + ".lock")
        lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(lock_path, "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return Outcome(0, "another run of this witness is still going; this one did nothing")
            return self._run()

    def _run(self) -> Outcome:
        state = state_load(path=self.state_path)
        reply = _request(self.endpoint("checkpoint"))
        if reply.status != 200:
            raise WitnessError(f"{self.endpoint('checkpoint')} answered {reply.status}: {reply.detail()}")
        document = reply.json("checkpoint")
        checkpoint, pinned = self._verified(document, state)
        note = checkpoint.note
        new_root = ledger.b64(note.root_hash)
        if state is None:
            return self._cosign(checkpoint, pinned, "(my first: nothing to be consistent with)")
        old_size, old_root = state.tree_size, ledger.b64(state.root_hash)
        if note.tree_size < old_size:
            return self._refuse(
                state,
                f"the log's newest checkpoint has tree size {note.tree_size} (root {new_root}), smaller "
                f"than tree size {old_size} (root {old_root}) that I cosigned: the log was truncated",
            )
        if note.tree_size == old_size:
            if note.root_hash != state.root_hash:
                return self._refuse(
                    state,
                    f"the log's checkpoint of tree size {old_size} has root {new_root}, but I cosigned "
                    f"root {old_root} for that size: the log is forked",
                )
            return self._again(state, checkpoint)
        # The empty tree is a prefix of every tree (and RFC 9162 has no proof for it).
        problem = None if old_size == 0 else self._inconsistency(state, note)
        if problem is not None:
            return self._refuse(
                state,
                f"the log's checkpoint of tree size {note.tree_size} (root {new_root}) is not consistent "
                f"with tree size {old_size} (root {old_root}) that I cosigned: {problem}",
            )
        return self._cosign(checkpoint, pinned, f"(consistent with tree size {old_size})")

    def _verified(
        self, document: dict[str, Any], state: WitnessState | None
    ) -> tuple[Checkpoint, list[bytes]]:
        note_text = document.get("note")
        if not isinstance(note_text, str):
            raise WitnessError('the log\'s checkpoint document has no "note"')
        try:
            note = ledger.note_parse(note_text)
        except ValueError as exc:
            raise WitnessError(f"the log's checkpoint note cannot be read: {exc}") from None
        if state is not None:
            if note.origin != state.origin:
                raise WitnessError(
                    f"the checkpoint is for the log {note.origin!r}, but I witness {state.origin!r}"
                )
            pinned = list(state.log_keys)
        else:
            pinned = [self.log_key if self.log_key is not None else _first_key(document.get("keys"))]
        pinned = _pin_handed_over(pinned, document.get("keys"))
        signed = _log_signature(note, pinned)
        if signed is None:
            ids = ", ".join(ledger.key_id(name=note.origin, public_raw=k).hex() for k in pinned)
            raise WitnessError(
                f"refusing: the checkpoint of tree size {note.tree_size} is not signed by the log key "
                f"I pinned ({ids}); if the log changed its key without a valid handover, check with "
                "its operator before pinning another"
            )
        log_line, signer = signed
        return Checkpoint(note, log_line, signer, _listed_lines(document)), pinned

    def _inconsistency(self, state: WitnessState, note: ledger.Note) -> str | None:
        url = self.endpoint(f"proof/consistency?first={state.tree_size}&second={note.tree_size}")
        reply = _request(url)
        if reply.status == 404:
            return f"the log no longer has the checkpoint of tree size {state.tree_size} ({reply.detail()})"
        if reply.status != 200:
            raise WitnessError(f"{url} answered {reply.status}: {reply.detail()}")
        document = reply.json("consistency proof")
        if (document.get("first"), document.get("second")) != (state.tree_size, note.tree_size):
            raise WitnessError("the log answered a consistency proof between other tree sizes")
        proof = _b64_list(document.get("proof"), "consistency proof")
        if not verify_consistency(state.tree_size, note.tree_size, state.root_hash, note.root_hash, proof):
            return "its consistency proof does not verify, so entries I cosigned were changed or removed"
        return None

    def _cosign(self, checkpoint: Checkpoint, pinned: list[bytes], why: str) -> Outcome:
        now = int(time.time())
        line = ledger.cosignature_sign(key=self.key, name=self.name, body=checkpoint.note.body, timestamp=now)
        note = f"{checkpoint.note.body}\n{checkpoint.log_line}{line}"
        state = WitnessState(
            origin=checkpoint.note.origin,
            log_keys=tuple(pinned),
            tree_size=checkpoint.note.tree_size,
            root_hash=checkpoint.note.root_hash,
            note=note,
            cosignature=line,
        )
        # Written before posting: a cosignature is a promise, kept even if the post fails.
        try:
            state_save(path=self.state_path, state=state)
        except OSError as exc:
            raise WitnessError(
                f"cannot write the state file {self.state_path}: {exc}; not cosigned"
            ) from None
        reply = self._post(note)
        size, root = checkpoint.note.tree_size, ledger.b64(checkpoint.note.root_hash)
        summary = f"cosigned tree size {size} (root {root}) {why}"
        if reply.status not in (200, 201):
            raise WitnessError(
                f"{summary}, but the log did not accept the cosignature ({reply.status}: {reply.detail()}); "
                "the next run posts it again"
            )
        return Outcome(0, summary)

    def _again(self, state: WitnessState, checkpoint: Checkpoint) -> Outcome:
        root = ledger.b64(state.root_hash)
        summary = f"nothing new: tree size {state.tree_size} (root {root}) is what I cosigned"
        if state.cosignature.strip() in checkpoint.listed:
            return Outcome(0, f"{summary}, and the log lists my cosignature")
        reply = self._post(state.note)
        if reply.status not in (200, 201):
            raise WitnessError(
                f"{summary}; the log does not list my cosignature and did not take it again "
                f"({reply.status}: {reply.detail()})"
            )
        return Outcome(0, f"{summary}; the log did not list my cosignature, so I posted it again")

    def _refuse(self, state: WitnessState, why: str) -> Outcome:
        try:
            reply = self._post(state.note)
        except WitnessError as exc:
            evidence = f"could not post my last cosigned checkpoint as evidence: {exc}"
        else:
            if reply.status == 409:
                evidence = f"the log acknowledged the conflict (409: {reply.detail()})"
            else:
                evidence = (
                    f"posted my last cosigned checkpoint as evidence; the log answered {reply.status} "
                    f"({reply.detail() or 'no detail'}), not the 409 that acknowledges a conflict"
                )
        return Outcome(1, f"refusing to cosign: {why}.", evidence)

    def _post(self, note: str) -> Reply:
        return _request(self.endpoint("cosignatures"), data=note.encode())


def key_generate(*, path: Path, name: str) -> str:
    """Write a new Ed25519 witness key to path (owner-only, never over a file); return its vkey."""
    name_check(name)
    key = SigningKey.generate()
    try:
        key_file_write(path, key.private_pem())
    except FileExistsError:
        raise WitnessError(f"{path} exists; I never overwrite a key") from None
    except OSError as exc:
        raise WitnessError(f"cannot write {path}: {exc.strerror or exc}") from None
    return ledger.witness_vkey(name=name, public_raw=key.public_raw())


def key_load(*, path: Path) -> SigningKey:
    """Read the witness's private key; raise WitnessError saying why it cannot be used."""
    try:
        return SigningKey.parse(path.read_text())
    except OSError as exc:
        raise WitnessError(f"cannot read the key {path}: {exc.strerror or exc}") from None
    except (KeyFormatError, ValueError) as exc:
        raise WitnessError(f"the key {path} cannot be used: {exc}") from None
