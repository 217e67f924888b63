"""The witness's pure parts: C2SP cosignature formats, the log key it pins, its state file.

The command signs with audit.ledger's cosignature functions (the server verifies with the same
module); the standalone script (examples/witness.py) has its own copy, which must write byte for
byte what audit.ledger writes, so the same checks run on both.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.util
import itertools
import json
import os
import re
import stat
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from audit import ledger, witnessing
from audit.merkle import consistency_proof, leaf_hash, root_from_leaf_hashes
from audit.witnessing import WitnessError, WitnessState
from core.crypto import SigningKey, verify_signature

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "witness.py"
NAME = "witness.example.org/alice"
ORIGIN = "http://127.0.0.1:8000/ledger"
ROOT = bytes(range(32))
BODY = ledger.checkpoint_body(origin=ORIGIN, tree_size=20, root_hash=ROOT)


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("witness_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return _script()


def test_the_cosignature_line_is_c2sp_tlog_cosignature_v1() -> None:
    key = SigningKey.generate()
    line = ledger.cosignature_sign(key=key, name=NAME, body=BODY, timestamp=1_679_315_147)
    dash, name, blob_text = line.rstrip("\n").split(" ")
    assert (dash, name) == ("\u2014", NAME) and line.endswith("\n")
    blob = base64.b64decode(blob_text, validate=True)
    assert len(blob) == 4 + 8 + 64
    expected_id = hashlib.sha256(NAME.encode() + b"\n\x04" + key.public_raw()).digest()[:4]
    assert blob[:4] == expected_id
    assert struct.unpack(">Q", blob[4:12]) == (1_679_315_147,)
    message = (
        b"cosignature/v1\ntime 1679315147\n"
        b"http://127.0.0.1:8000/ledger\n20\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    )
    assert ledger.cosigned_message(body=BODY, timestamp=1_679_315_147) == message
    assert verify_signature(key.public_raw(), blob[12:], message)
    # The log's key id (type 0x01) differs from a cosigner's (0x04) for the same name and key.
    assert ledger.key_id(name=NAME, public_raw=key.public_raw()) != expected_id


def test_a_cosignature_does_not_verify_for_another_time_or_body() -> None:
    key = SigningKey.generate()
    line = ledger.cosignature_sign(key=key, name=NAME, body=BODY, timestamp=5)
    blob = base64.b64decode(line.split()[2])
    other_body = ledger.checkpoint_body(origin=ORIGIN, tree_size=21, root_hash=ROOT)
    for message in (
        ledger.cosigned_message(body=BODY, timestamp=6),
        ledger.cosigned_message(body=other_body, timestamp=5),
        BODY.encode(),  # a cosignature is not a log signature of the bare note
    ):
        assert not verify_signature(key.public_raw(), blob[12:], message)


def test_the_vkey_names_the_key_its_id_and_type() -> None:
    key = SigningKey.generate()
    vkey = ledger.witness_vkey(name=NAME, public_raw=key.public_raw())
    name, key_id, material = vkey.split("+", 2)
    assert name == NAME
    assert bytes.fromhex(key_id) == ledger.witness_key_id(name=NAME, public_raw=key.public_raw())
    assert base64.b64decode(material) == b"\x04" + key.public_raw()


def test_the_script_writes_the_same_lines_and_vkeys(script: ModuleType) -> None:
    key = SigningKey.generate()
    for timestamp in (0, 1, 1_700_000_000, 2**63 - 1):
        assert script.cosign(key.private, NAME, BODY, timestamp) == ledger.cosignature_sign(
            key=key, name=NAME, body=BODY, timestamp=timestamp
        )
    assert script.vkey(NAME, key.public_raw()) == ledger.witness_vkey(name=NAME, public_raw=key.public_raw())


@pytest.mark.parametrize("name", ["", "has space", "a+b", "tab\there", "new\nline", "x" * 101])
def test_a_name_that_cannot_be_a_note_key_name_is_refused(name: str, script: ModuleType) -> None:
    with pytest.raises(WitnessError, match="cannot be a key name"):
        witnessing.name_check(name)
    with pytest.raises(SystemExit):
        script.main(["--generate-key", "/nonexistent/key.pem", "--name", name])


def _log_vkey(key: SigningKey, origin: str = ORIGIN) -> str:
    key_id = ledger.key_id(name=origin, public_raw=key.public_raw()).hex()
    material = ledger.b64(b"\x01" + key.public_raw())
    return f"{origin}+{key_id}+{material}"


def test_the_log_key_is_taken_as_a_vkey_or_base64(script: ModuleType) -> None:
    key = SigningKey.generate()
    for text in (_log_vkey(key), ledger.b64(key.public_raw()), f"  {ledger.b64(key.public_raw())}\n"):
        assert witnessing.log_key_parse(text) == key.public_raw()
        assert script.parse_log_key(text) == key.public_raw()


def test_a_log_key_that_is_not_one_is_refused(script: ModuleType) -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    good = _log_vkey(key)
    wrong_id = good.replace(good.split("+")[-2], "00000000")
    cosigner = ledger.witness_vkey(name=ORIGIN, public_raw=key.public_raw())
    swapped = _log_vkey(key).rsplit("+", 1)[0] + "+" + ledger.b64(b"\x01" + other.public_raw())
    for text in (wrong_id, cosigner, swapped, "garbage", ledger.b64(b"short"), ""):
        with pytest.raises(WitnessError, match="log key given"):
            witnessing.log_key_parse(text)
        with pytest.raises(script.Failed, match="--log-key"):
            script.parse_log_key(text)


def test_the_script_proves_consistency_exactly_as_rfc_9162_does(script: ModuleType) -> None:
    hashes = [leaf_hash(str(i).encode()) for i in range(17)]
    for old, new in itertools.combinations(range(1, 18), 2):
        proof = consistency_proof(old, hashes[:new])
        old_root, new_root = root_from_leaf_hashes(hashes[:old]), root_from_leaf_hashes(hashes[:new])
        assert script.consistent(old, new, old_root, new_root, proof)
        assert not script.consistent(old, new, new_root, new_root, proof)
        assert not script.consistent(old, new, old_root, old_root, proof)
        if proof:
            assert not script.consistent(old, new, old_root, new_root, proof[:-1])
            assert not script.consistent(old, new, old_root, new_root, [bytes(32), *proof[1:]])
    assert not script.consistent(3, 3, ROOT, ROOT, [])
    assert not script.consistent(0, 3, ROOT, ROOT, [ROOT])


def _state(tmp_path: Path, **changes: object) -> Path:
    key = SigningKey.generate()
    note, _ = ledger.note_sign(key=key, origin=ORIGIN, tree_size=20, root_hash=ROOT)
    line = ledger.cosignature_sign(key=SigningKey.generate(), name=NAME, body=BODY, timestamp=7)
    state = WitnessState(
        origin=ORIGIN,
        log_keys=(key.public_raw(),),
        tree_size=20,
        root_hash=ROOT,
        note=note + line,
        cosignature=line,
    )
    path = tmp_path / "nested" / "state.json"
    witnessing.state_save(path=path, state=state)
    if changes:
        document = json.loads(path.read_text())
        document.update(changes)
        path.write_text(json.dumps(document))
    return path


def test_the_state_is_written_owner_only_in_one_rename_and_read_back(
    tmp_path: Path, script: ModuleType
) -> None:
    path = _state(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]  # no temporary file left
    state = witnessing.state_load(path=path)
    assert state is not None and state.tree_size == 20 and state.root_hash == ROOT
    witnessing.state_save(path=path, state=state)
    assert witnessing.state_load(path=path) == state
    # The script reads the command's state file (an auditor may switch from one to the other).
    assert script.load_state(path)["tree_size"] == 20


def test_no_state_file_is_a_first_run(tmp_path: Path, script: ModuleType) -> None:
    assert witnessing.state_load(path=tmp_path / "none.json") is None
    assert script.load_state(tmp_path / "none.json") is None


@pytest.mark.parametrize(
    "changes",
    [
        {"format": "something-else/1"},
        {"log_keys": []},
        {"log_keys": ["not base64!"]},
        {"log_keys": [ledger.b64(b"short")]},
        {"tree_size": 21},  # the note says 20
        {"root_hash": ledger.b64(b"\x00" * 32)},
        {"note": "not a note"},
        {"cosignature": "\u2014 someone else AAAA\n"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_a_state_file_that_does_not_hold_together_is_refused(
    tmp_path: Path, script: ModuleType, changes: dict[str, object]
) -> None:
    path = _state(tmp_path, **changes)
    with pytest.raises(WitnessError, match="is not a witness state"):
        witnessing.state_load(path=path)
    if next(iter(changes)) != "cosignature":  # the script trusts its own line as written
        with pytest.raises(script.Failed, match="not a witness state file"):
            script.load_state(path)


def test_a_state_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(WitnessError, match="is not a witness state"):
        witnessing.state_load(path=path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(WitnessError, match="cannot read the state file"):
        witnessing.state_load(path=path)


def test_a_key_is_generated_owner_only_and_never_over_a_file(tmp_path: Path) -> None:
    path = tmp_path / "witness.pem"
    vkey = witnessing.key_generate(path=path, name=NAME)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = witnessing.key_load(path=path)
    assert vkey == ledger.witness_vkey(name=NAME, public_raw=key.public_raw())
    with pytest.raises(WitnessError, match="never overwrite"):
        witnessing.key_generate(path=path, name=NAME)
    assert witnessing.key_load(path=path).public_raw() == key.public_raw()


def test_a_key_file_that_is_missing_or_not_a_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WitnessError, match="cannot read the key"):
        witnessing.key_load(path=tmp_path / "missing.pem")
    (tmp_path / "bad.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(WitnessError, match="cannot be used"):
        witnessing.key_load(path=tmp_path / "bad.pem")


def test_the_default_state_path_keeps_the_name_in_one_file() -> None:
    path = witnessing.default_state_path(base=Path("/srv/vrm"), name=NAME)
    assert path == Path("/srv/vrm/var/witness/witness.example.org_alice.json")


def test_the_script_needs_only_cryptography_and_pins_it() -> None:
    """An auditor installs examples/requirements.txt on a machine without vrm: nothing else may be needed."""
    imported = set()
    for node in ast.walk(ast.parse(SCRIPT.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "__future__"}
    assert third_party == {"cryptography"}
    pinned = (SCRIPT.parent / "requirements.txt").read_text()
    assert re.search(r"^cryptography==[0-9.]+$", pinned, re.MULTILINE)
    assert "pip install -r examples/requirements.txt" in SCRIPT.read_text()


def test_the_command_runs_without_the_servers_keys_or_settings(tmp_path: Path) -> None:
    """An auditor runs `manage.py witness` in a bare checkout: no VRM_* keys, no debug, no database."""
    manage = Path(__file__).resolve().parents[2] / "manage.py"
    done = subprocess.run(
        [sys.executable, str(manage), "witness", "--generate-key", str(tmp_path / "k.pem"), "--name", NAME],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ.get("PATH", "")},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    key = witnessing.key_load(path=tmp_path / "k.pem")
    assert done.stdout.splitlines()[-1] == ledger.witness_vkey(name=NAME, public_raw=key.public_raw())


def test_a_run_that_overlaps_a_running_one_does_nothing(tmp_path: Path, script: ModuleType) -> None:
    """Cron may start a witness while the last run still waits on the log: the second does nothing.

    Both would read the same state and cosign from it; the second finds the state's lock held and
    stops before reading the state or asking the log anything (the URL here answers nothing).
    """
    import argparse
    import fcntl

    state = tmp_path / "witness-state.json"
    key_file = tmp_path / "witness.pem"
    witnessing.key_generate(path=key_file, name="witness.example.org/t")
    with open(f"{state}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        outcome = witnessing.witness_run(
            key=witnessing.key_load(path=key_file),
            name="witness.example.org/t",
            url="http://127.0.0.1:9",
            state_path=state,
        )
        said = script.run(
            argparse.Namespace(
                key=str(key_file),
                url="http://127.0.0.1:9",
                state=str(state),
                log_key=None,
                name="witness.example.org/t",
            )
        )
    assert (outcome.code, outcome.message) == (
        0,
        "another run of this witness is still going; this one did nothing",
    )
    assert said == "another run of this witness is still going; this one did nothing"
    assert not state.exists()
