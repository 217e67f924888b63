"""Tiles (C2SP tlog-tiles): paths, what the sealer writes, proofs from tiles, the tile URLs.

The reference for every proof is the leaf-based implementation in audit.merkle (RFC 9162 over
the full list of leaf hashes): proofs from tiles must equal it exactly.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import tiles
from audit.merkle import (
    consistency_proof,
    inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from audit.models import LedgerCheckpoint, LedgerEntry, LedgerTile
from audit.selectors import leaf_hashes, ledger_consistency_proof, ledger_inclusion_proof, ledger_root_at
from audit.services import ledger_seal, ledger_verify
from tests.audit.conftest import append, postgres_only


def _leaves(n: int, salt: int = 0) -> list[bytes]:
    return [hashlib.sha256(f"{salt}:{i}".encode()).digest() for i in range(n)]


def _memory_tree(leaves: list[bytes], size: int | None = None) -> tiles.TileTree:
    """A TileTree reading the tiles of `leaves` from memory, level 0 being the leaves themselves."""
    upper = tiles.tiles_from_leaves(leaves)

    def fetch(level: int, index: int) -> bytes:
        if level == 0:
            return b"".join(leaves[index * 256 : (index + 1) * 256])
        return upper.get((level, index), b"")

    return tiles.TileTree(len(leaves) if size is None else size, fetch)


# Paths


@pytest.mark.parametrize(
    ("index", "path"),
    [
        (0, "000"),
        (7, "007"),
        (999, "999"),
        (1000, "x001/000"),
        (1234067, "x001/x234/067"),
        (10**9, "x001/x000/x000/000"),
    ],
)
def test_tile_index_paths_follow_c2sp(index: int, path: str) -> None:
    assert tiles.index_path(index) == path
    assert tiles.index_parse(path) == index


@given(st.integers(min_value=0, max_value=2**63))
def test_tile_index_paths_round_trip(index: int) -> None:
    assert tiles.index_parse(tiles.index_path(index)) == index


@pytest.mark.parametrize(
    "path", ["", "0", "07", "1234", "x001", "001/234", "x01/067", "x001/067/", "/067", "x001/x234/67"]
)
def test_other_spellings_of_a_tile_index_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        tiles.index_parse(path)


def test_tile_paths_name_partial_tiles() -> None:
    assert tiles.tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tiles.tile_path(2, 3, width=17) == "tile/2/003.p/17"


def test_a_tree_of_70000_leaves_has_the_tiles_c2sp_describes() -> None:
    # "273 full level 0 tiles, one partial level 0 tile of width 112, one full level 1 tile, one
    # partial level 1 tile of width 17, and one partial level 2 tile of width 1."
    size = 70_000
    assert (size // 256, tiles.edge_width(size, 0)) == (273, 112)
    upper = tiles.tiles_from_leaves(_leaves(size))
    widths = {key: len(blob) // 32 for key, blob in upper.items()}
    assert widths == {(1, 0): 256, (1, 1): 17, (2, 0): 1}
    assert [tiles.tiles_at(size, level) for level in range(4)] == [274, 2, 1, 0]
    assert tiles.top_level(size) == 2


# Proofs from tiles equal proofs from leaves


SIZES = st.one_of(
    st.integers(min_value=1, max_value=700),
    st.sampled_from([255, 256, 257, 511, 512, 513, 65_535, 65_536, 65_537, 70_000]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=SIZES, data=st.data())
def test_proofs_from_tiles_equal_proofs_from_leaves(size: int, data: st.DataObject) -> None:
    leaves = _leaves(size, salt=size)
    tree = _memory_tree(leaves)
    assert tree.root() == root_from_leaf_hashes(leaves)
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    assert tree.inclusion_proof(index) == inclusion_proof(index, leaves)
    old = data.draw(st.integers(min_value=1, max_value=size), label="old size")
    assert tree.consistency_proof(old) == consistency_proof(old, leaves)
    assert tree.root(old) == root_from_leaf_hashes(leaves[:old])


@settings(max_examples=40, deadline=None)
@given(size=SIZES, data=st.data())
def test_a_smaller_tree_reads_the_same_tiles_as_of_a_later_seal(size: int, data: st.DataObject) -> None:
    # The stored tiles are those of the newest tree; an older checkpoint's proofs read them too.
    later = size + data.draw(st.integers(min_value=0, max_value=600), label="grown by")
    leaves = _leaves(later, salt=7)
    tree = _memory_tree(leaves, size=size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    assert tree.inclusion_proof(index) == inclusion_proof(index, leaves[:size])
    old = data.draw(st.integers(min_value=1, max_value=size), label="old size")
    assert tree.consistency_proof(old) == consistency_proof(old, leaves[:size])


@settings(max_examples=40, deadline=None)
@given(first=st.integers(min_value=0, max_value=70_000), more=st.integers(min_value=0, max_value=70_000))
def test_a_seal_continuing_from_the_edge_writes_the_tiles_of_the_whole_tree(first: int, more: int) -> None:
    from audit.merkle import CompactRange

    leaves = _leaves(first + more, salt=3)
    before = tiles.tiles_from_leaves(leaves[:first])
    edge = {
        level: before[(level, first >> (8 * (level + 1)))]
        for level in range(1, tiles.top_level(first) + 1)
        if tiles.edge_width(first, level)
    }
    writer = tiles.TileWriter(first, edge)
    tree = CompactRange()
    tree.extend(leaves[:first])
    for leaf in leaves[first:]:
        tree.append(leaf, writer)
    after = dict(before)
    after.update({(level, index): blob for level, index, blob in writer.take()})
    assert after == tiles.tiles_from_leaves(leaves)


def test_a_proof_reads_a_few_tiles_not_every_leaf() -> None:
    leaves = _leaves(70_000)
    tree = _memory_tree(leaves)
    tree.inclusion_proof(12_345)
    # One tile per level along the path and the right edge: far from the 274 level-0 tiles.
    assert tree.reads <= 6
    tree = _memory_tree(leaves)
    tree.consistency_proof(33_333)
    assert tree.reads <= 8


def test_a_missing_tile_is_a_lookup_error() -> None:
    tree = tiles.TileTree(70_000, lambda level, index: b"")
    with pytest.raises(LookupError, match=r"tile tile/1/00[01] is missing"):
        tree.inclusion_proof(5)
    with pytest.raises(ValueError):
        tree.root(70_001)


# What the sealer writes


def _bulk_entries(n: int) -> None:
    """Insert n entries at once (the tests here are about the tree, not about appends)."""
    LedgerEntry.objects.bulk_create(
        LedgerEntry(kind="access.read", actor_type="client", actor_id="client-7", request_id=f"bulk-{i}")
        for i in range(n)
    )


def _stored_tiles() -> dict[tuple[int, int], bytes]:
    return {(t.level, t.tile_index): bytes(t.hashes) for t in LedgerTile.objects.all()}


@pytest.mark.django_db
def test_sealing_writes_the_tiles_of_the_tree_and_proofs_come_from_them() -> None:
    sizes = []
    for n in (300, 212, 1, 255, 70):  # crosses tile edges at 256, 512, 768
        _bulk_entries(n)
        checkpoint = ledger_seal()
        assert checkpoint is not None
        sizes.append(checkpoint.tree_size)
        stored = leaf_hashes(checkpoint.tree_size)
        assert _stored_tiles() == tiles.tiles_from_leaves(stored)
    leaves = leaf_hashes(sizes[-1])
    roots = dict(LedgerCheckpoint.objects.values_list("tree_size", "root_hash"))
    entry_ids = list(LedgerEntry.objects.order_by("leaf__leaf_index").values_list("id", flat=True))
    for size in sizes:
        for index in (0, 255, 256, size - 1):
            doc = ledger_inclusion_proof(entry_id=entry_ids[index], tree_size=size)
            proof = [base64.b64decode(h) for h in doc["proof"]]
            assert proof == inclusion_proof(index, leaves[:size])
            assert verify_inclusion(index, size, leaves[index], proof, bytes(roots[size]))
        for first in (1, 255, 256, 257, size):
            if first <= size:
                doc = ledger_consistency_proof(first=first, second=size)
                proof = [base64.b64decode(h) for h in doc["proof"]]
                assert proof == consistency_proof(first, leaves[:size])
                assert base64.b64decode(doc["first_root_hash"]) == root_from_leaf_hashes(leaves[:first])
                assert verify_consistency(
                    first, size, root_from_leaf_hashes(leaves[:first]), bytes(roots[size]), proof
                )
        assert ledger_root_at(tree_size=size) == bytes(roots[size])
    assert ledger_verify().ok


@postgres_only
@pytest.mark.django_db
def test_sealing_across_level_2_continues_the_tiles() -> None:
    _bulk_entries(65_000)
    ledger_seal(chunk_size=20_000)
    _bulk_entries(1_100)  # the level-1 tile 0 fills and level 2 appears in this seal
    checkpoint = ledger_seal(chunk_size=700)
    assert checkpoint is not None and checkpoint.tree_size == 66_100
    stored = _stored_tiles()
    assert stored == tiles.tiles_from_leaves(leaf_hashes(66_100))
    assert {key: len(blob) // 32 for key, blob in stored.items()} == {(1, 0): 256, (1, 1): 2, (2, 0): 1}
    assert ledger_root_at(tree_size=66_100) == bytes(checkpoint.root_hash)
    result = ledger_verify()
    assert result.ok, result.first_problem
    assert not result.warnings


# The tile URLs


@pytest.mark.django_db
def test_tile_urls_serve_full_and_partial_tiles_as_c2sp_says(client: Client) -> None:
    _bulk_entries(600)
    checkpoint = ledger_seal()
    assert checkpoint is not None
    leaves = leaf_hashes(600)
    full = client.get("/ledger/tile/0/001")
    assert full.status_code == 200
    assert full["Content-Type"] == "application/octet-stream"
    assert full["Cache-Control"] == "public, max-age=31536000, immutable"
    assert full.content == b"".join(leaves[256:512])
    assert client.get("/ledger/tile/0/002.p/88").content == b"".join(leaves[512:600])
    assert client.get("/ledger/tile/0/002.p/5").content == b"".join(leaves[512:517])
    level1 = tiles.tiles_from_leaves(leaves)[(1, 0)]
    assert client.get("/ledger/tile/1/000.p/2").content == level1
    assert client.get("/ledger/tile/1/000.p/1").content == level1[:32]
    assert (
        reverse("ledger-tile", kwargs={"level": "0", "index": "x001/x234/067"})
        == "/ledger/tile/0/x001/x234/067"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/ledger/tile/0/002",  # the level-0 tile 2 is partial (88 wide)
        "/ledger/tile/0/002.p/89",  # wider than the tree
        "/ledger/tile/0/003.p/1",  # beyond the tree
        "/ledger/tile/1/000",  # partial at level 1
        "/ledger/tile/2/000.p/1",  # no level 2 yet
        "/ledger/tile/0/000.p/256",  # a full tile has no .p/ suffix
        "/ledger/tile/64/000",  # above the highest level
        "/ledger/tile/0/01",
        "/ledger/tile/00/000",
        "/ledger/tile/0/000.p/0",
        "/ledger/tile/0/000.p/012",
        "/ledger/tile/-1/000",
        "/ledger/tile/0/x999999999999999999999/000",
    ],
)
def test_tiles_the_tree_does_not_have_answer_404(client: Client, path: str) -> None:
    _bulk_entries(600)
    ledger_seal()
    response = client.get(path)
    assert response.status_code == 404


@pytest.mark.django_db
def test_tiles_answer_404_before_the_first_seal_and_entry_bundles_are_not_public(client: Client) -> None:
    assert client.get("/ledger/tile/0/000.p/1").status_code == 404
    append(3)
    ledger_seal()
    assert client.get("/ledger/tile/0/000.p/3").status_code == 200
    response = client.get("/ledger/tile/entries/000.p/3")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert "not published" in response.json()["detail"]
    assert client.post("/ledger/tile/0/000.p/3").status_code == 405


@pytest.mark.django_db
def test_tile_requests_are_limited_per_address(client: Client, settings: Any) -> None:
    from django.core.cache import cache

    cache.clear()
    settings.VRM_LEDGER_TILE_RATE = "3/m"
    append(3)
    ledger_seal()
    statuses = [client.get("/ledger/tile/0/000.p/3").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    cache.clear()


# A ledger sealed before tiles existed, and tampered tiles


def _without_tiles() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_ledgertile DISABLE TRIGGER USER")
        cursor.execute("DELETE FROM audit_ledgertile")
        cursor.execute("ALTER TABLE audit_ledgertile ENABLE TRIGGER USER")


@postgres_only
@pytest.mark.django_db
def test_the_next_seal_builds_the_tiles_of_a_ledger_sealed_before_tiles(client: Client) -> None:
    _bulk_entries(700)
    ledger_seal()
    _without_tiles()
    result = ledger_verify()
    assert result.ok
    assert any("tiles are not stored yet" in warning for warning in result.warnings)
    (entry,) = append(1)
    response = client.get(reverse("ledger-proof-inclusion", kwargs={"entry_id": entry.pk - 1}))
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    ledger_seal()
    assert _stored_tiles() == tiles.tiles_from_leaves(leaf_hashes(701))
    response = client.get(reverse("ledger-proof-inclusion", kwargs={"entry_id": entry.pk}))
    assert response.status_code == 200
    assert not ledger_verify().warnings


@postgres_only
@pytest.mark.django_db
def test_verify_ledger_names_a_tampered_tile(triggers_off: None, capsys: Any) -> None:
    _bulk_entries(600)
    ledger_seal()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_ledgertile SET hashes = %s WHERE level = 1 AND tile_index = 0", [bytes(64)]
        )
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_ledger")
    assert exit_info.value.code == 1
    assert "tile tile/1/000.p/2 does not match the entries" in capsys.readouterr().err


@postgres_only
@pytest.mark.django_db
def test_verify_ledger_names_a_tile_beyond_the_tree(triggers_off: None) -> None:
    _bulk_entries(600)
    ledger_seal()
    LedgerTile.objects.create(level=1, tile_index=5, hashes=bytes(32))
    result = ledger_verify()
    assert not result.ok
    assert result.first_problem == "tile tile/1/005.p/1 lies beyond the ledger's tree of 600 entries"


# The grow-only trigger


def _raw(sql: str, params: list[Any] | None = None) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.django_db
def test_a_tile_may_only_grow() -> None:
    _bulk_entries(600)
    ledger_seal()
    tile = LedgerTile.objects.get(level=1, tile_index=0)
    old = bytes(tile.hashes)
    for sql, params in [
        ("UPDATE audit_ledgertile SET hashes = %s", [old[:32]]),  # shrink
        ("UPDATE audit_ledgertile SET hashes = %s", [bytes(32) + old[32:]]),  # change
        ("UPDATE audit_ledgertile SET hashes = %s", [bytes(32) + old]),  # prepend
        ("UPDATE audit_ledgertile SET tile_index = 9", None),
        ("DELETE FROM audit_ledgertile", None),
    ]:
        with pytest.raises(DatabaseError, match="append-only"):
            _raw(sql, params)
    _raw("UPDATE audit_ledgertile SET hashes = %s", [old + bytes(32)])  # growing is what the sealer does
    assert bytes(LedgerTile.objects.get(pk=tile.pk).hashes) == old + bytes(32)


@postgres_only
@pytest.mark.django_db
def test_tiles_cannot_be_truncated() -> None:
    _bulk_entries(600)
    ledger_seal()
    _raw("SET CONSTRAINTS ALL IMMEDIATE")
    with pytest.raises(DatabaseError, match="append-only"):
        _raw("TRUNCATE audit_ledgertile")
