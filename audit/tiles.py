"""The Merkle tree as C2SP tlog-tiles: tile paths, the tiles a seal writes, and proofs from tiles.

A tile at level L, index N, holds up to 256 consecutive hashes: hash i is
MTH(D[(N*256 + i) * 256**L : (N*256 + i + 1) * 256**L]). Level 0 holds the leaf hashes
themselves, which the ledger already keeps one per row (audit_ledgerleaf), so only levels 1 and up
are stored as tiles (audit_ledgertile). A tile grows from the right until it is full; the partial
tile of width W for a tree size is simply its first W hashes, which never change afterwards.

Pure functions and classes over bytes: the database reads and writes are in selectors and
services, so the same code serves proofs, the sealer and the property tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from audit.merkle import (
    CompactRange,
    consistency_proof_from,
    fold_right,
    inclusion_proof_from,
    node_hash,
    perfect_subtrees,
)

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
HASH_BYTES = 32
FULL_TILE_BYTES = TILE_WIDTH * HASH_BYTES
MAX_LEVEL = 63
_INDEX_PATH = re.compile(r"(?:x[0-9]{3}/)*[0-9]{3}")

# fetch(level, index) -> the stored hashes of that tile (concatenated), or b"" when none is stored.
TileFetch = Callable[[int, int], bytes]


def index_path(index: int) -> str:
    """Encode a tile index as C2SP path elements: 1234067 -> x001/x234/067."""
    if index < 0:
        raise ValueError("a tile index cannot be negative")
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def index_parse(path: str) -> int:
    """Decode C2SP tile index path elements; raise ValueError on any other spelling."""
    if not _INDEX_PATH.fullmatch(path):
        raise ValueError(f"{path!r} is not a tile index path")
    return int(path.replace("x", "").replace("/", ""))


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """Return the tile's path below the log prefix: tile/<L>/<N>[.p/<W>]."""
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{index_path(index)}{suffix}"


def edge_width(tree_size: int, level: int) -> int:
    """Return the width of the partial tile at a level for a tree size (0 when there is none)."""
    return (tree_size >> (TILE_HEIGHT * level)) % TILE_WIDTH


def tiles_at(tree_size: int, level: int) -> int:
    """Return how many tiles (full, and a partial one if any) a level has for a tree size."""
    hashes = tree_size >> (TILE_HEIGHT * level)
    return -(-hashes // TILE_WIDTH)


def top_level(tree_size: int) -> int:
    """Return the highest level that holds any hash for a tree size (0 for a tree of < 256 leaves)."""
    level = 0
    while tree_size >> (TILE_HEIGHT * (level + 1)):
        level += 1
    return level


def split(blob: bytes) -> list[bytes]:
    """Split a tile's bytes into its 32-byte hashes."""
    if len(blob) % HASH_BYTES:
        raise ValueError("a tile's length must be a multiple of 32 bytes")
    return [blob[i : i + HASH_BYTES] for i in range(0, len(blob), HASH_BYTES)]


class TileWriter:
    """Collect the tile hashes (levels >= 1) that appending leaves produces.

    Feed it as CompactRange.append's on_tile_hash; `edge` is the partial tile of each level as the
    last seal left it (tiles_edge), so a seal continues without reading full tiles. `take()`
    returns the tiles changed since the last call, as (level, index, all their hashes), for an
    upsert: a tile only ever grows.
    """

    def __init__(self, tree_size: int, edge: dict[int, bytes]) -> None:
        self._counts: dict[int, int] = {}
        self._open: dict[int, bytearray] = {}
        for level in range(1, top_level(tree_size) + 1):
            self._counts[level] = tree_size >> (TILE_HEIGHT * level)
            self._open[level] = bytearray(edge.get(level, b""))
        self._dirty: dict[tuple[int, int], bytes] = {}

    def __call__(self, level: int, digest: bytes) -> None:
        count = self._counts.get(level, 0)
        tile = self._open.setdefault(level, bytearray())
        if count % TILE_WIDTH == 0:
            tile.clear()
        tile += digest
        self._counts[level] = count + 1
        self._dirty[(level, count // TILE_WIDTH)] = bytes(tile)

    def take(self) -> list[tuple[int, int, bytes]]:
        """Return and forget the tiles changed since the last call, lowest level first."""
        changed = sorted((level, index, hashes) for (level, index), hashes in self._dirty.items())
        self._dirty.clear()
        return changed


class TileTree:
    """A tree of `size` leaves read from tiles: subtree hashes, its root and RFC 9162 proofs.

    Each tile is fetched at most once (fetch(level, index); level 0 is the leaf hashes) and its
    inner levels are hashed once, so a proof costs one read per tile it touches: O(log n) reads of
    at most 8 KiB, and at most 255 hashes each.
    """

    def __init__(self, size: int, fetch: TileFetch) -> None:
        self.size = size
        self._fetch = fetch
        self._tiles: dict[tuple[int, int], list[list[bytes]]] = {}
        self.reads = 0

    def _levels(self, level: int, index: int) -> list[list[bytes]]:
        levels = self._tiles.get((level, index))
        if levels is None:
            self.reads += 1
            levels = [split(self._fetch(level, index))]
            while len(levels[-1]) > 1:
                row = levels[-1]
                levels.append([node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)])
            self._tiles[(level, index)] = levels
        return levels

    def subtree(self, height: int, index: int) -> bytes:
        """Return the hash of the perfect subtree over leaves [index * 2**height, (index+1) * 2**height)."""
        if (index + 1) << height > self.size:
            raise ValueError(f"subtree {index} at height {height} is not inside tree size {self.size}")
        level, inner = divmod(height, TILE_HEIGHT)
        # Its 2**inner hashes at the tile level are aligned, so they lie in one tile.
        first = index << inner
        tile, offset = divmod(first, TILE_WIDTH)
        rows = self._levels(level, tile)
        if inner >= len(rows) or (offset >> inner) >= len(rows[inner]):
            raise LookupError(f"tile {tile_path(level, tile)} is missing or too short for size {self.size}")
        return rows[inner][offset >> inner]

    def mth(self, lo: int, hi: int) -> bytes:
        """Return MTH(D[lo:hi]) for a range a proof asks for (lo aligned as in RFC 9162)."""
        return fold_right([self.subtree(height, index) for height, index in perfect_subtrees(lo, hi)])

    def root(self, size: int | None = None) -> bytes:
        """Return the root of the tree of the first `size` leaves (all of them by default)."""
        size = self.size if size is None else size
        if not 0 < size <= self.size:
            raise ValueError(f"tree size {size} is not within 1..{self.size}")
        return self.mth(0, size)

    def inclusion_proof(self, index: int) -> list[bytes]:
        """Return PATH(index, D[size]) (RFC 9162 section 2.1.3.1)."""
        return inclusion_proof_from(index, self.size, self.mth)

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """Return PROOF(old_size, D[size]) (RFC 9162 section 2.1.4.1)."""
        return consistency_proof_from(old_size, self.size, self.mth)


def tiles_from_leaves(leaves: Iterator[bytes] | list[bytes]) -> dict[tuple[int, int], bytes]:
    """Return every tile (levels >= 1) of the tree over the given leaf hashes (tests, rebuilds)."""
    writer = TileWriter(0, {})
    tree = CompactRange()
    for leaf in leaves:
        tree.append(leaf, writer)
    return {(level, index): hashes for level, index, hashes in writer.take()}
