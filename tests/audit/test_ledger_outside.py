"""verify_ledger against a checkpoint kept outside the database, gaps in entry ids, empty ledgers.

Someone who can switch the append-only triggers off can delete the newest checkpoint with its
entries, or truncate the log and grow it again: the database then verifies on its own. A
checkpoint the auditor kept earlier (a file, or the public endpoint's URL) catches both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from audit import ledger
from audit.models import LedgerCheckpoint, LedgerEntry
from audit.services import ledger_seal, ledger_verify
from audit.summaries import rebuild_request
from core.crypto import SigningKey
from tests.audit.conftest import append


def _behind_the_triggers(*statements: tuple[str, list[Any]]) -> None:
    """Run SQL as someone who switched the append-only triggers off (for this test only)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
            for sql, params in statements:
                cursor.execute(sql, params)
            cursor.execute("SET LOCAL session_replication_role = origin")
            return
        # SQLite: DDL is transactional, so the test's rollback restores the triggers too.
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'audit_ledger%'"
        )
        triggers = cursor.fetchall()
        for name, _ in triggers:
            cursor.execute(f"DROP TRIGGER {name}")
        for sql, params in statements:
            cursor.execute(sql, params)
        for _, sql in triggers:
            cursor.execute(sql)


def _drop_newest_checkpoint() -> None:
    """Delete the newest checkpoint, the leaves it added and their entries."""
    newest, previous = LedgerCheckpoint.objects.order_by("-tree_size").values_list("tree_size", flat=True)[:2]
    ids = list(LedgerEntry.objects.filter(leaf__leaf_index__gte=previous).values_list("id", flat=True))
    marks = ", ".join(["%s"] * len(ids))
    _behind_the_triggers(
        ("DELETE FROM audit_ledgerleaf WHERE leaf_index >= %s", [previous]),
        (f"DELETE FROM audit_ledgerentry WHERE id IN ({marks})", ids),  # noqa: S608
        ("DELETE FROM audit_ledgercheckpoint WHERE tree_size = %s", [newest]),
    )
    # A careful operator also has the summaries rebuilt, or verify_ledger would name them.
    rebuild_request(reason="the operator covers their tracks")


def _kept(tmp_path: Path, client: Client, *, as_json: bool = True) -> Path:
    """Keep the newest checkpoint as the endpoint serves it, as an auditor would."""
    document = client.get(reverse("ledger-checkpoint")).json()
    path = tmp_path / ("checkpoint.json" if as_json else "checkpoint.txt")
    # `jq -r .note > file` writes the note with one more newline; the reader accepts that.
    path.write_text(json.dumps(document) if as_json else document["note"] + "\n")
    return path


def _verify(capsys: Any, *args: str) -> tuple[int, str, str]:
    try:
        call_command("verify_ledger", *args)
        code = 0
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.django_db
@pytest.mark.parametrize("as_json", [True, False])
def test_deleting_the_newest_checkpoint_with_its_entries_fails_against_a_kept_checkpoint(
    sealed_ledger: list[LedgerEntry], client: Client, tmp_path: Path, capsys: Any, as_json: bool
) -> None:
    kept = _kept(tmp_path, client, as_json=as_json)
    _drop_newest_checkpoint()
    # On its own the database still looks whole: that is the weakness.
    code, out, _ = _verify(capsys)
    assert (code, out.splitlines()[0]) == (0, "ledger intact: 20 entries, 2 checkpoints")
    code, out, err = _verify(capsys, "--checkpoint", str(kept))
    assert code == 1
    assert "intact: " not in out
    assert (
        "ledger NOT intact: the checkpoint given (tree size 30) is larger than the ledger's tree "
        "(20 entries): entries it covered were removed" in err
    )


@pytest.mark.django_db
@pytest.mark.parametrize("regrown", [10, 15])
def test_a_truncated_and_regrown_log_fails_against_a_kept_checkpoint(
    sealed_ledger: list[LedgerEntry], client: Client, tmp_path: Path, capsys: Any, regrown: int
) -> None:
    kept = _kept(tmp_path, client)
    _drop_newest_checkpoint()
    append(regrown, reason="rewritten")
    assert ledger_seal() is not None
    assert _verify(capsys)[0] == 0
    code, _, err = _verify(capsys, "--checkpoint", str(kept))
    assert code == 1
    assert (
        f"ledger NOT intact: the checkpoint given (tree size 30) is not consistent with the "
        f"ledger's tree at size {20 + regrown}" in err
    )


@pytest.mark.django_db
def test_a_consistent_ledger_passes_against_older_and_current_kept_checkpoints(
    client: Client, tmp_path: Path, capsys: Any, db: Any
) -> None:
    append(7)
    ledger_seal()
    older = _kept(tmp_path, client, as_json=False)
    append(6)
    ledger_seal()
    newest = _kept(tmp_path, client)
    append(2)  # not sealed yet: not covered, not a problem
    code, out, _ = _verify(capsys, "--checkpoint", str(older))
    assert code == 0
    assert "ledger intact: 13 entries, 2 checkpoints" in out
    assert "consistent with the checkpoint given (tree size 7; the ledger's tree has 13)" in out
    code, out, _ = _verify(capsys, "--checkpoint", str(newest))
    assert code == 0
    assert "consistent with the checkpoint given (tree size 13" in out
    assert "2 entries are not sealed yet and were not checked" in out


@pytest.mark.django_db
def test_an_outside_checkpoint_must_carry_a_valid_signature_under_a_known_key(
    sealed_ledger: list[LedgerEntry], tmp_path: Path, capsys: Any
) -> None:
    checkpoint = LedgerCheckpoint.objects.get(tree_size=20)
    root = bytes(checkpoint.root_hash)
    stranger = SigningKey.generate()
    cases = {
        "unknown key": (
            ledger.note_sign(key=stranger, origin=ledger.origin(), tree_size=20, root_hash=root)[0],
            "the checkpoint given (tree size 20): its key id "
            f"({ledger.key_id(name=ledger.origin(), public_raw=stranger.public_raw()).hex()}) "
            "is not in the key history",
        ),
        "edited root": (
            checkpoint.note.replace(ledger.b64(root), ledger.b64(b"\x07" * 32)),
            "the checkpoint given (tree size 20): its signature does not verify with the key of its key id",
        ),
        "other log": (
            ledger.note_sign(
                key=stranger, origin="https://elsewhere.example/ledger", tree_size=20, root_hash=root
            )[0],
            "the checkpoint given (tree size 20) is for 'https://elsewhere.example/ledger'",
        ),
        "not a note": ("hello\n", "the checkpoint given cannot be read: no blank line"),
    }
    for name, (note, expected) in cases.items():
        path = tmp_path / f"{name}.txt"
        path.write_text(note)
        code, out, err = _verify(capsys, "--checkpoint", str(path))
        assert code == 1, name
        assert expected in err, (name, err)
        assert "ledger intact" not in out


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read"),
        ('{"tree_size": 3}', 'the JSON given has no "note" string'),
        ("{not json", "is not valid JSON"),
        (b"\xff\xfe", "is not UTF-8 text"),
        ("x" * 300_000, "larger than"),
    ],
)
def test_an_unusable_checkpoint_source_is_refused_before_verifying(
    sealed_ledger: list[LedgerEntry], tmp_path: Path, capsys: Any, content: str | bytes | None, expected: str
) -> None:
    path = tmp_path / "kept"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    code, out, err = _verify(capsys, "--checkpoint", str(path))
    assert code == 1
    assert "ledger not verified: the checkpoint given cannot be used" in err and expected in err
    assert out == ""


@pytest.mark.django_db
def test_only_http_and_https_urls_are_fetched(sealed_ledger: list[LedgerEntry], capsys: Any) -> None:
    code, _, err = _verify(capsys, "--checkpoint", "file:///etc/passwd")
    assert code == 1
    assert "only http and https URLs" in err


@pytest.mark.usefixtures("committed_ledger")
def test_the_checkpoint_url_is_fetched_and_checked(live_server: Any, capsys: Any) -> None:
    append(5)
    ledger_seal()
    url = live_server.url + reverse("ledger-checkpoint")
    code, out, _ = _verify(capsys, "--checkpoint", url)
    assert code == 0
    assert "consistent with the checkpoint given (tree size 5" in out
    # The kept checkpoint outlives the rows it covered.
    kept = json.loads(Client().get(reverse("ledger-checkpoint")).content)
    append(3)
    ledger_seal()
    code, out, _ = _verify(capsys, "--checkpoint", url)
    assert code == 0 and "tree size 8" in out
    assert kept["tree_size"] == 5
    code, _, err = _verify(capsys, "--checkpoint", live_server.url + "/no-such-page")
    assert code == 1
    assert "cannot fetch" in err and "404" in err


# Gaps in entry ids


@pytest.mark.django_db
def test_deleted_unsealed_entries_show_as_gaps_in_entry_ids(
    sealed_ledger: list[LedgerEntry], capsys: Any
) -> None:
    pending = append(5)
    middle, newest = pending[2].pk, pending[4].pk
    _behind_the_triggers(("DELETE FROM audit_ledgerentry WHERE id IN (%s, %s)", [middle, newest]))
    code, out, err = _verify(capsys)
    # Not proof of tampering (a rolled-back append leaves the same gap on PostgreSQL): a warning.
    assert code == 0
    assert "ledger intact: 30 entries" in out
    assert f"warning: entry id {middle} is missing: a rolled-back transaction leaves such a gap" in err
    assert f"warning: entry id {newest} is missing" in err
    assert len(ledger_verify().warnings) == 2


@pytest.mark.django_db
def test_an_intact_ledger_has_no_gap_warnings(sealed_ledger: list[LedgerEntry], capsys: Any) -> None:
    append(3)
    code, _, err = _verify(capsys)
    assert code == 0
    assert "warning" not in err


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite gives a rolled-back id out again")
@pytest.mark.django_db
def test_a_rolled_back_append_is_a_warning_not_a_failure(
    sealed_ledger: list[LedgerEntry], capsys: Any
) -> None:
    from django.db import transaction

    with pytest.raises(ZeroDivisionError), transaction.atomic():
        lost = append(2)
        1 / 0  # noqa: B018 (the action fails after its entry was appended)
    append(1)
    ledger_seal()
    code, out, err = _verify(capsys)
    assert code == 0 and "ledger intact: 31 entries" in out
    assert f"warning: entry ids {lost[0].pk}..{lost[1].pk} are missing (2)" in err


@pytest.mark.django_db
def test_many_gaps_are_summarised(db: Any) -> None:
    entries = append(30)
    ids = [e.pk for e in entries[1:-1:2]]  # every other entry: 14 gaps
    marks = ", ".join(["%s"] * len(ids))
    _behind_the_triggers((f"DELETE FROM audit_ledgerentry WHERE id IN ({marks})", ids))  # noqa: S608
    result = ledger_verify()
    assert result.empty and not result.ok
    assert len(result.warnings) == 11
    assert result.warnings[-1] == "and 4 more gaps in entry ids (4 ids)"
