"""An independent witness of a vrm ledger, in one file: run it on your own machine, from cron.

It needs Python 3.11+ and `cryptography` (examples/requirements.txt), nothing of vrm: it reads
only the log's public endpoints. Each run fetches the newest signed checkpoint, proves it
consistent (RFC 9162) with the last one this witness cosigned, and posts a cosignature in the
C2SP tlog-cosignature format (Ed25519). A log that was truncated, forked or rewritten is
refused: the script says why on stderr, posts its last cosigned checkpoint to the log as
evidence (the log raises an alarm auditors see), leaves its state as it was, and exits 1.

    python -m pip install -r examples/requirements.txt
    # once: make a key, and register the vkey it prints in the auditor portal
    python examples/witness.py --generate-key witness.pem --name witness.example.org/alice
    # then every few minutes
    python examples/witness.py --key witness.pem --name witness.example.org/alice \\
        --url http://127.0.0.1:8000 --state witness-state.json

The first run pins the log's key: --log-key VKEY_OR_BASE64 if given, else the first key the
log publishes (trust on first use; compare its key id with one the operator gave you). Later
runs accept a new log key only through a handover signed by a pinned key.

Exit codes: 0 cosigned (or nothing new), 1 refused (the log misbehaved), 2 cannot work
(configuration, network, an answer that is not the ledger's). docs/witness.md says more.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import fcntl
import hashlib
import json
import os
import re
import struct
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
except ImportError:
    sys.exit("cryptography is missing: python -m pip install -r examples/requirements.txt")

STATE_FORMAT = "vrm-witness-state/1"  # the same state file as `manage.py witness`
TIMEOUT = 10  # seconds per request
MAX_BYTES = 256 * 1024  # no answer of the ledger is near this
DASH = "\u2014"  # signature lines start with an em dash


class Refused(Exception):
    """The log misbehaved: do not cosign (exit 1)."""


class Failed(Exception):
    """The witness cannot do its work (exit 2)."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: Any, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise Failed(f"{what} is not base64") from None


# Formats: C2SP signed-note, checkpoint, tlog-cosignature.


def key_id(name: str, sig_type: bytes, public: bytes) -> bytes:
    """SHA-256(name || "\\n" || type || key)[:4]: type 0x01 for the log, 0x04 for a cosigner."""
    return hashlib.sha256(name.encode() + b"\n" + sig_type + public).digest()[:4]


def raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def verifies(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def parse_note(text: str) -> tuple[str, str, int, bytes, list[tuple[str, bytes]]]:
    """Return (body, origin, tree size, root hash, [(key name, key id + signature)])."""
    body, blank, signed = text.rstrip("\n").partition("\n\n")
    lines = body.split("\n")
    if not blank or len(lines) != 3 or not lines[1].isascii() or not lines[1].isdigit():
        raise Failed("the log's checkpoint is not a note of origin, tree size and root hash")
    root = unb64(lines[2], "the checkpoint's root hash")
    if len(root) != 32 or b64(root) != lines[2] or (lines[1] != "0" and lines[1][0] == "0"):
        raise Failed("the log's checkpoint states its tree size or root hash oddly")
    signatures = []
    for line in signed.split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH:
            raise Failed("the log's checkpoint has a malformed signature line")
        signatures.append((parts[1], unb64(parts[2], "a signature line")))
    return body + "\n", lines[0], int(lines[1]), root, signatures


def cosign(private: Ed25519PrivateKey, name: str, body: str, timestamp: int) -> str:
    """Return the cosignature line: key id, big-endian time and the signature of the header, time and body."""
    message = f"cosignature/v1\ntime {timestamp}\n{body}".encode()
    blob = key_id(name, b"\x04", raw(private.public_key())) + struct.pack(">Q", timestamp)
    return f"{DASH} {name} {b64(blob + private.sign(message))}\n"


def vkey(name: str, public: bytes) -> str:
    """The verifier key to register: <name>+<hex key id>+<base64(0x04 || key)>."""
    cosigner = b"\x04"
    return f"{name}+{key_id(name, cosigner, public).hex()}+{b64(cosigner + public)}"


def parse_log_key(text: str) -> bytes:
    """A signed-note vkey (<origin>+<hex id>+<base64(0x01 || key)>) or base64 of the raw 32 bytes."""
    text = text.strip()
    try:
        blob = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):  # not raw base64: a vkey (a key name holds no '+')
        parts = text.split("+", 2)
        blob = unb64(parts[2], "--log-key") if len(parts) == 3 else b""
        if blob[:1] != b"\x01" or key_id(parts[0], b"\x01", blob[1:]).hex() != parts[1]:
            raise Failed("--log-key is not an Ed25519 signed-note key matching its key id") from None
        blob = blob[1:]
    if len(blob) != 32:
        raise Failed("--log-key is not a 32-byte Ed25519 key")
    return blob


# RFC 9162 section 2.1.4.2: is the tree of old_size a prefix of the tree of new_size?


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def consistent(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]) -> bool:
    if not 0 < old_size < new_size or not proof:
        return False
    path = [old_root, *proof] if old_size & (old_size - 1) == 0 else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0


# HTTP: http and https only, a timeout, a size limit.


class HttpOnly(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.URLError(f"refused a redirect to {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def http(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    try:
        scheme = urlsplit(url).scheme
    except ValueError as error:
        raise Failed(f"{url} is not a URL: {error}") from None
    if scheme not in ("http", "https"):
        raise Failed(f"{url}: only http and https URLs")
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "text/plain; charset=utf-8"
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 (scheme checked)
    try:
        with urllib.request.build_opener(HttpOnly).open(request, timeout=TIMEOUT) as response:
            status, body = response.status, response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as error:
        with error:
            status, body = error.code, error.read(MAX_BYTES + 1)
    except (urllib.error.URLError, OSError) as error:
        raise Failed(f"cannot reach {url}: {getattr(error, 'reason', error)}") from None
    if len(body) > MAX_BYTES:
        raise Failed(f"{url} answered more than {MAX_BYTES} bytes")
    return status, body


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    status, body = http(url)
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise Failed(f"{url} answered {status} with something that is not a JSON object")
    return status, document


def printable(text: Any) -> str:
    """What the log said, without terminal escapes of its choosing."""
    return "".join(c if c.isprintable() else "?" for c in str(text)[:300])


def detail(body: bytes) -> str:
    try:
        return printable(json.loads(body).get("detail", ""))
    except (ValueError, AttributeError):
        return printable(body[:200].decode("utf-8", "replace"))


# The state between runs: written to a temporary file, then renamed over the old one.


def load_state(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if state["format"] != STATE_FORMAT:
            raise ValueError
        state["pinned"] = [unb64(k, "a pinned key") for k in state["log_keys"]]
        state["root"] = unb64(state["root_hash"], "the root hash")
        if not state["pinned"] or not all(len(k) == 32 for k in state["pinned"]):
            raise ValueError
        _, origin, size, root, _ = parse_note(state["note"])
        if (origin, size, root) != (state["origin"], state["tree_size"], state["root"]):
            raise ValueError
    except (OSError, ValueError, KeyError, TypeError, Failed):
        raise Failed(f"{path} is not a witness state file I can read") from None
    return state


def save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(staged, 0o600)
    os.replace(staged, path)


# The run.


def pin_handovers(pinned: list[bytes], keys: Any) -> None:
    """Pin each key of the log's chain (oldest first) that a pinned key handed over to."""
    if not isinstance(keys, list):
        raise Failed('the checkpoint document has no "keys" list')
    previous: bytes | None = None
    for item in keys:
        key = unb64(item.get("public_key") if isinstance(item, dict) else None, "a log key")
        if previous is not None and previous in pinned and key not in pinned:
            old, new = (base64.urlsafe_b64encode(k).rstrip(b"=").decode() for k in (previous, key))
            statement = f"old {old}\nnew {new}\n"
            handover = unb64(item.get("handover_signature") or "", "a handover signature")
            possession = unb64(item.get("possession_signature") or "", "a possession signature")
            if verifies(previous, handover, f"vrm/signing-key-handover/v1\n{statement}".encode()) and (
                verifies(key, possession, f"vrm/signing-key-possession/v1\n{statement}".encode())
            ):
                pinned.append(key)
        previous = key


def log_signature(
    origin: str, body: str, signatures: list[tuple[str, bytes]], pinned: list[bytes]
) -> str | None:
    """Return the log's signature line that verifies under a pinned key, or None."""
    for name, blob in signatures:
        for key in pinned:
            if (
                name == origin
                and blob[:4] == key_id(origin, b"\x01", key)
                and verifies(key, blob[4:], body.encode())
            ):
                return f"{DASH} {name} {b64(blob)}\n"
    return None


def lists(document: dict[str, Any], line: str) -> bool:
    """Whether the log lists this cosignature line (as a string, or a member of an object)."""
    items = document.get("cosignatures")
    for item in items if isinstance(items, list) else []:
        values = item.values() if isinstance(item, dict) else [item]
        if any(isinstance(v, str) and v.strip() == line.strip() for v in values):
            return True
    return False


def post(base: str, note: str) -> tuple[int, str]:
    status, answer = http(base + "cosignatures", note.encode())
    return status, detail(answer)


def inconsistency(base: str, old_size: int, size: int, old_root: bytes, root: bytes) -> str:
    """Fetch and check the RFC 9162 proof that the tree I cosigned is a prefix of the new one.

    Return why it is not ("" if it is); raise Failed for an answer that is not a proof.
    """
    if old_size == 0:  # the empty tree is a prefix of every tree (RFC 9162 has no proof for it)
        return ""
    status, proof = get_json(f"{base}proof/consistency?first={old_size}&second={size}")
    if status == 404:
        said = printable(proof.get("detail", ""))
        return f"the log no longer has the checkpoint of tree size {old_size} ({said})"
    if status != 200:
        raise Failed(f"the consistency proof answered {status}: {printable(proof.get('detail', ''))}")
    if (proof.get("first"), proof.get("second")) != (old_size, size):
        raise Failed("the log answered a consistency proof between other tree sizes")
    if not isinstance(proof.get("proof"), list):
        raise Failed("the log's consistency proof is not a list of hashes")
    hashes = [unb64(h, "the consistency proof") for h in proof["proof"]]
    if not consistent(old_size, size, old_root, root, hashes):
        return "its consistency proof does not verify, so entries I cosigned were changed or removed"
    return ""


def run(args: argparse.Namespace) -> str:
    """Cosign the newest checkpoint or raise Refused / Failed; return what was done."""
    try:
        private = serialization.load_pem_private_key(Path(args.key).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise Failed(f"cannot use the key {args.key}: {error}") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise Failed(f"{args.key} is not an Ed25519 private key")
    base = args.url.rstrip("/") + "/api/v1/ledger/"
    # One run per state file at a time: an overlapping run (cron) would cosign from the same state.
    Path(args.state).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = open(args.state + ".lock", "w")  # noqa: SIM115 (held until the process ends)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return "another run of this witness is still going; this one did nothing"
    state = load_state(Path(args.state))

    # 1. The newest checkpoint, signed by a pinned key (or one a pinned key handed over to).
    status, document = get_json(base + "checkpoint")
    if status != 200 or not isinstance(document.get("note"), str):
        raise Failed(
            f"{base}checkpoint answered {status}: {printable(document.get('detail', 'no checkpoint'))}"
        )
    body, origin, size, root, signatures = parse_note(document["note"])
    keys = document.get("keys")
    if state:
        if origin != state["origin"]:
            raise Failed(f"the checkpoint is for the log {origin!r}, but I witness {state['origin']!r}")
        pinned = state["pinned"]
    elif args.log_key:
        pinned = [parse_log_key(args.log_key)]
    else:  # trust on first use
        first = (
            keys[0].get("public_key")
            if isinstance(keys, list) and keys and isinstance(keys[0], dict)
            else None
        )
        pinned = [unb64(first, "the log's first key")]
    pin_handovers(pinned, keys)
    log_line = log_signature(origin, body, signatures, pinned)
    if log_line is None:
        ids = ", ".join(key_id(origin, b"\x01", k).hex() for k in pinned)
        raise Failed(
            f"refusing: the checkpoint of tree size {size} is not signed by the log key I pinned ({ids})"
        )

    # 2. Consistency with the checkpoint I cosigned last.
    if state is None:
        why = "(my first: nothing to be consistent with)"
    else:
        old_size, old_root = state["tree_size"], state["root"]
        was, now = f"tree size {old_size} (root {b64(old_root)})", f"root {b64(root)}"
        if size < old_size:
            raise Refused(
                f"the log's newest checkpoint has tree size {size} ({now}), smaller than {was} "
                "that I cosigned: the log was truncated"
            )
        if size == old_size and root != old_root:
            raise Refused(
                f"the log's checkpoint of tree size {size} has {now}, but I cosigned root "
                f"{b64(old_root)} for that size: the log is forked"
            )
        if size == old_size:
            if lists(document, state["cosignature"]):
                return f"nothing new: {was} is what I cosigned, and the log lists my cosignature"
            status, said = post(base, state["note"])
            if status not in (200, 201):
                raise Failed(
                    f"nothing new, but the log does not list my cosignature and refused it ({status}: {said})"
                )
            again = "the log did not list my cosignature, so I posted it again"
            return f"nothing new: {was} is what I cosigned; {again}"
        problem = inconsistency(base, old_size, size, old_root, root)
        if problem:
            raise Refused(
                f"the log's checkpoint of tree size {size} ({now}) is not consistent with {was} "
                f"that I cosigned: {problem}"
            )
        why = f"(consistent with tree size {old_size})"

    # 3. Cosign: keep the promise in the state before telling the log.
    line = cosign(private, args.name, body, int(time.time()))
    note = f"{body}\n{log_line}{line}"
    save_state(
        Path(args.state),
        {
            "format": STATE_FORMAT,
            "origin": origin,
            "log_keys": [b64(k) for k in pinned],
            "tree_size": size,
            "root_hash": b64(root),
            "note": note,
            "cosignature": line,
        },
    )
    status, said = post(base, note)
    if status not in (200, 201):
        raise Failed(
            f"cosigned tree size {size}, but the log refused it ({status}: {said}); "
            "the next run posts it again"
        )
    return f"cosigned tree size {size} (root {b64(root)}) {why}"


def refuse(args: argparse.Namespace, why: str) -> int:
    """Say why, post my last cosigned checkpoint as evidence (the log raises an alarm), keep the state."""
    print(f"refusing to cosign: {why}.", file=sys.stderr)
    state = load_state(Path(args.state))
    try:
        status, said = post(args.url.rstrip("/") + "/api/v1/ledger/", state["note"] if state else "")
    except Failed as error:
        print(f"could not post my last cosigned checkpoint as evidence: {error}", file=sys.stderr)
        return 1
    if status == 409:
        print(f"the log acknowledged the conflict (409: {said})", file=sys.stderr)
    else:
        print(
            f"posted my last cosigned checkpoint as evidence; the log answered {status} "
            f"({said or 'no detail'}), not the 409 that acknowledges a conflict",
            file=sys.stderr,
        )
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--name", required=True, help="this witness's key name, e.g. witness.example.org/alice"
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--key", help="this witness's Ed25519 private key (PEM)")
    action.add_argument("--generate-key", metavar="FILE", help="write a new key to FILE and print its vkey")
    parser.add_argument("--url", help="the log's base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--state", help="this witness's state file (JSON)")
    parser.add_argument("--log-key", metavar="VKEY_OR_BASE64", help="the log key to pin on the first run")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9._/:-]{1,100}", args.name):
        parser.error("--name is 1-100 letters, digits and . _ / : - (e.g. witness.example.org/alice)")
    if args.generate_key:
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(args.generate_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as error:
            sys.exit(f"cannot write {args.generate_key}: {error.strerror} (I never overwrite a key)")
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        print(f"wrote {args.generate_key}; register this key in the auditor portal:")
        print(vkey(args.name, raw(private.public_key())))
        return 0
    if not args.url or not args.state:
        parser.error("--url and --state are required with --key")
    try:
        print(run(args))
        return 0
    except Refused as refusal:
        return refuse(args, str(refusal))
    except Failed as error:
        print(error, file=sys.stderr)
        return 2
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        # An answer shaped unlike the ledger's, or a state directory that cannot be written.
        print(f"cannot witness: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
