"""The witness against a live server: it cosigns an honest log and refuses one that lies.

Both witnesses run here: `manage.py witness` (call_command) and examples/witness.py (a
subprocess with this interpreter, as an auditor would run it). The log lies as its operator
would: with the append-only triggers off for one committed transaction, it rewrites, truncates
or forks the ledger and signs new checkpoints with its real key. Each lie must be refused with
a sentence naming it, exit 1, leave the witness's state as it was, and raise an alarm on the
server from the evidence the witness posts.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from accounts.models import User
from audit import ledger
from audit.merkle import CompactRange, leaf_hash
from audit.models import LedgerAlarm, LedgerCheckpoint, LedgerCosignature, LedgerEntry
from audit.selectors import leaf_hashes
from audit.services import ledger_seal, signing_key_use, witness_register
from audit.witnessing import key_generate
from tests.audit.conftest import append, postgres_only

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "witness.py"
NAME = "witness.example.org/alice"

pytestmark = [postgres_only, pytest.mark.usefixtures("committed_ledger")]

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def log(live_server: Any, settings: Any) -> str:
    """A ledger of ten entries sealed at tree size 10, served by the live server as its own issuer."""
    settings.VRM_ISSUER = live_server.url
    append(10)
    ledger_seal()
    return str(live_server.url)


@pytest.fixture
def key_file(tmp_path: Path, auditor: User) -> Path:
    """A witness key, registered by an auditor."""
    path = tmp_path / "witness.pem"
    vkey = key_generate(path=path, name=NAME)
    name, public_raw = ledger.witness_vkey_parse(vkey)
    witness_register(name=name, public_raw=public_raw, by=auditor)
    return path


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state" / "alice.json"


def _command(key_file: Path, state: Path, url: str, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = ["--key", str(key_file), "--name", NAME, "--url", url, "--state", str(state), *extra]
    try:
        call_command("witness", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def _script(key_file: Path, state: Path, url: str, *extra: str) -> tuple[int, str, str]:
    args = ["--key", str(key_file), "--name", NAME, "--url", url, "--state", str(state), *extra]
    # Nothing of vrm on the path: the script stands alone.
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": ""}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, env=env, cwd="/"
    )
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(params=["command", "script"])
def witness(request: pytest.FixtureRequest, key_file: Path, state: Path, log: str) -> Iterator[Run]:
    runner = _command if request.param == "command" else _script

    def run(*extra: str, url: str | None = None) -> tuple[int, str, str]:
        return runner(key_file, state, url or log, *extra)

    yield run


def _newest() -> LedgerCheckpoint:
    checkpoint = LedgerCheckpoint.objects.order_by("-tree_size").first()
    assert checkpoint is not None
    return checkpoint


def _b64_root(tree_size: int) -> str:
    return ledger.b64(bytes(LedgerCheckpoint.objects.get(tree_size=tree_size).root_hash))


def _grow(n: int = 7) -> LedgerCheckpoint:
    append(n)
    checkpoint = ledger_seal()
    assert checkpoint is not None
    return checkpoint


def _as_superuser(*statements: tuple[str, list[Any]]) -> None:
    """Run SQL with the append-only triggers off, committed: what an operator with superuser can do."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        for sql, params in statements:
            cursor.execute(sql, params)


def _resign(tree_size: int, root: bytes | None = None) -> bytes:
    """Re-sign the checkpoint of tree_size with the log's real key over the stored leaves (or root)."""
    tree = CompactRange()
    tree.extend(leaf_hashes(tree_size))
    root = tree.root() if root is None else root
    note, signature = ledger.note_sign(
        key=signing_key_use(), origin=ledger.origin(), tree_size=tree_size, root_hash=root
    )
    _as_superuser(
        (
            "UPDATE audit_ledgercheckpoint SET root_hash = %s, compact_range = %s, note = %s, signature = %s "
            "WHERE tree_size = %s",
            [root, ledger.join_hashes(tree.to_list()), note, signature, tree_size],
        )
    )
    return root


def _refused(run: Run, state: Path, sentence: str, alarm: str) -> str:
    before = state.read_bytes()
    code, out, err = run()
    assert code == 1, (out, err)
    assert "refusing to cosign: " + sentence in err, err
    assert "the log acknowledged the conflict (409" in err, err
    assert "cosigned" not in out
    assert state.read_bytes() == before
    assert LedgerAlarm.objects.filter(kind=alarm).exists()
    # Refusing again changes nothing and raises no second alarm of the same evidence.
    alarms = LedgerAlarm.objects.count()
    assert run()[0] == 1 and state.read_bytes() == before
    assert LedgerAlarm.objects.count() == alarms
    return err


# An honest log.


def test_the_witness_cosigns_and_the_server_stores_it(witness: Run, state: Path) -> None:
    first = _newest()
    code, out, err = witness()
    assert (code, err) == (0, "")
    root = _b64_root(first.tree_size)
    assert out.strip() == (
        f"cosigned tree size {first.tree_size} (root {root}) (my first: nothing to be consistent with)"
    )
    stored = LedgerCosignature.objects.get()
    assert (stored.witness.name, stored.tree_size) == (NAME, first.tree_size)
    kept = json.loads(state.read_text())
    assert (kept["tree_size"], kept["root_hash"]) == (first.tree_size, root)
    assert kept["note"].startswith(first.note) and kept["note"].endswith(kept["cosignature"])
    assert oct(state.stat().st_mode & 0o777) == "0o600"

    second = _grow()
    code, out, _ = witness()
    assert code == 0
    assert out.strip() == (
        f"cosigned tree size {second.tree_size} (root {_b64_root(second.tree_size)}) "
        f"(consistent with tree size {first.tree_size})"
    )
    assert LedgerCosignature.objects.filter(tree_size=second.tree_size).exists()

    code, out, _ = witness()
    assert code == 0
    assert out.startswith(f"nothing new: tree size {second.tree_size} (root ")
    assert "the log lists my cosignature" in out
    assert LedgerCosignature.objects.count() == 2
    assert not LedgerAlarm.objects.exists()


def test_the_witness_pins_the_log_key_it_is_given(key_file: Path, state: Path, log: str) -> None:
    public_raw = signing_key_use().public_raw()
    origin = ledger.origin()
    vkey = f"{origin}+{ledger.key_id(name=origin, public_raw=public_raw).hex()}+"
    vkey += ledger.b64(b"\x01" + public_raw)
    code, out, _ = _command(key_file, state, log, "--log-key", vkey)
    assert code == 0 and out.startswith("cosigned tree size")
    assert json.loads(state.read_text())["log_keys"] == [ledger.b64(public_raw)]


def test_the_url_defaults_to_the_issuer(key_file: Path, state: Path, log: str) -> None:
    out = io.StringIO()
    call_command("witness", "--key", str(key_file), "--name", NAME, "--state", str(state), stdout=out)
    assert out.getvalue().startswith(f"cosigned tree size {_newest().tree_size}")


# A log that lies.


def test_a_rewritten_log_is_refused(witness: Run, state: Path) -> None:
    assert witness()[0] == 0
    cosigned = _newest().tree_size
    old_root = _b64_root(cosigned)
    # Change an entry the witness cosigned, with its leaf hash, re-sign the checkpoint, grow.
    victim = LedgerEntry.objects.order_by("id")[3]
    _as_superuser(("UPDATE audit_ledgerentry SET reason = 'rewritten' WHERE id = %s", [victim.pk]))
    row = LedgerEntry.objects.filter(pk=victim.pk).values_list(*ledger.ENTRY_COLUMNS).get()
    _as_superuser(
        (
            "UPDATE audit_ledgerleaf SET leaf_hash = %s WHERE entry_id = %s",
            [leaf_hash(ledger.leaf_data(row)), victim.pk],
        )
    )
    _resign(cosigned)
    grown = _grow()
    err = _refused(
        witness,
        state,
        f"the log's checkpoint of tree size {grown.tree_size} (root {_b64_root(grown.tree_size)}) is not "
        f"consistent with tree size {cosigned} (root {old_root}) that I cosigned: its consistency proof "
        "does not verify, so entries I cosigned were changed or removed.",
        # The ledger holds another checkpoint of the size the witness cosigned.
        LedgerAlarm.Kind.FORK,
    )
    assert "Alarm raised (fork at tree size" in err


def test_a_truncated_log_is_refused(witness: Run, state: Path) -> None:
    first = _newest().tree_size
    second = _grow().tree_size
    assert witness()[0] == 0
    cosigned_root = _b64_root(second)
    ids = list(LedgerEntry.objects.filter(leaf__leaf_index__gte=first).values_list("id", flat=True))
    _as_superuser(
        ("DELETE FROM audit_ledgercheckpoint WHERE tree_size = %s", [second]),
        ("DELETE FROM audit_ledgerleaf WHERE leaf_index >= %s", [first]),
        ("DELETE FROM audit_ledgerentry WHERE id = ANY(%s)", [ids]),
    )
    _refused(
        witness,
        state,
        f"the log's newest checkpoint has tree size {first} (root {_b64_root(first)}), smaller than tree "
        f"size {second} (root {cosigned_root}) that I cosigned: the log was truncated.",
        LedgerAlarm.Kind.TRUNCATED,
    )


def test_a_truncated_log_that_grew_again_is_refused(witness: Run, state: Path) -> None:
    first = _newest().tree_size
    second = _grow().tree_size
    assert witness()[0] == 0
    cosigned_root = _b64_root(second)
    ids = list(LedgerEntry.objects.filter(leaf__leaf_index__gte=first).values_list("id", flat=True))
    _as_superuser(
        ("DELETE FROM audit_ledgercheckpoint WHERE tree_size = %s", [second]),
        ("DELETE FROM audit_ledgerleaf WHERE leaf_index >= %s", [first]),
        ("DELETE FROM audit_ledgerentry WHERE id = ANY(%s)", [ids]),
    )
    regrown = _grow(second - first + 5)
    assert regrown.tree_size > second
    _refused(
        witness,
        state,
        f"the log's checkpoint of tree size {regrown.tree_size} (root {_b64_root(regrown.tree_size)}) is not "
        # The consistency endpoint proves from any older size (tiles), so the witness gets a
        # proof for the size it cosigned, and the proof fails against the root it kept.
        f"consistent with tree size {second} (root {cosigned_root}) that I cosigned: its consistency "
        "proof does not verify, so entries I cosigned were changed or removed.",
        LedgerAlarm.Kind.INCONSISTENT,
    )


def test_a_forked_log_is_refused(witness: Run, state: Path) -> None:
    assert witness()[0] == 0
    cosigned = _newest().tree_size
    old_root = _b64_root(cosigned)
    # Another checkpoint of the same size, properly signed by the log: the view others may get.
    forked = ledger.b64(_resign(cosigned, root=b"\x42" * 32))
    _refused(
        witness,
        state,
        f"the log's checkpoint of tree size {cosigned} has root {forked}, but I cosigned root {old_root} "
        "for that size: the log is forked.",
        LedgerAlarm.Kind.FORK,
    )


def test_a_cosignature_the_log_dropped_is_posted_again(witness: Run, state: Path) -> None:
    assert witness()[0] == 0
    _as_superuser(("DELETE FROM audit_ledgercosignature", []))
    code, out, _ = witness()
    assert code == 0 and "the log did not list my cosignature, so I posted it again" in out
    assert LedgerCosignature.objects.count() == 1


# A witness that cannot work: exit 2, a message, no traceback, the state untouched.


def test_a_state_pinning_another_log_key_is_refused(witness: Run, state: Path) -> None:
    assert witness()[0] == 0
    kept = json.loads(state.read_text())
    kept["log_keys"] = [ledger.b64(b"\x01" * 32)]
    state.write_text(json.dumps(kept))
    before = state.read_bytes()
    _grow()
    code, out, err = witness()
    assert code == 2 and out == ""
    pinned_id = ledger.key_id(name=ledger.origin(), public_raw=b"\x01" * 32).hex()
    assert f"is not signed by the log key I pinned ({pinned_id})" in err
    assert "Traceback" not in err and state.read_bytes() == before


def test_a_log_key_given_that_did_not_sign_is_refused(witness: Run, state: Path) -> None:
    code, _, err = witness("--log-key", ledger.b64(b"\x02" * 32))
    assert code == 2 and "not signed by the log key I pinned" in err
    assert not state.exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "ftp://127.0.0.1/ledger", "http://[::1"])
def test_an_unreachable_or_odd_url_is_refused(witness: Run, state: Path, url: str) -> None:
    code, out, err = witness(url=url)
    assert code == 2 and out == "" and err.strip()
    assert "Traceback" not in err and not state.exists()
