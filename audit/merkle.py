"""Merkle tree hashing, inclusion and consistency proofs per RFC 9162 section 2.1.

Pure standard library, so the ledger can be verified without Django. Hashes are
raw 32-byte SHA-256 digests; a "tree of size n" is the tree over the first n
leaf hashes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

_sha256 = hashlib.sha256
EMPTY_ROOT: bytes = _sha256(b"").digest()
_MAX_SAFE_INT = 2**53 - 1


def leaf_hash(data: bytes) -> bytes:
    """Return SHA-256(0x00 || data), the hash of a leaf."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right), the hash of an interior node."""
    return _sha256(b"\x01" + left + right).digest()


def canonical_json(obj: Any) -> bytes:
    """Serialise obj as RFC 8785 (JCS) canonical JSON, UTF-8 encoded.

    Supported subset: dict with str keys, list/tuple, str, bool, None and int in
    the I-JSON safe range [-(2**53 - 1), 2**53 - 1]. Object keys are sorted by
    their UTF-16 code units, there is no whitespace, and non-ASCII characters
    are emitted as UTF-8 (only '"', '\\' and control characters are escaped, as
    in ECMAScript JSON.stringify). Floats and any other type raise TypeError;
    out-of-range ints raise ValueError (JCS would render them as doubles);
    strings with lone surrogates raise UnicodeEncodeError (a ValueError).
    """
    return _encode(obj).encode("utf-8")


def _encode(obj: Any) -> str:
    """Return the canonical JSON text of obj."""
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, str):
        return json.dumps(obj, ensure_ascii=False)
    if isinstance(obj, int):
        if abs(obj) > _MAX_SAFE_INT:
            raise ValueError(f"integer {obj} is outside the I-JSON safe range")
        return int.__repr__(obj)
    if isinstance(obj, dict):
        if not all(isinstance(key, str) for key in obj):
            raise TypeError("object keys must be str")
        # UTF-16BE bytes compare exactly like sequences of UTF-16 code units.
        items = sorted(obj.items(), key=lambda kv: kv[0].encode("utf-16-be", "surrogatepass"))
        return "{" + ",".join(f"{_encode(k)}:{_encode(v)}" for k, v in items) + "}"
    if isinstance(obj, list | tuple):
        return "[" + ",".join(_encode(item) for item in obj) + "]"
    raise TypeError(f"{type(obj).__name__} is not supported by canonical_json")


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return MTH (RFC 9162 section 2.1.1) of the tree over the given leaf hashes."""
    if not hashes:
        return EMPTY_ROOT
    level = hashes
    while len(level) > 1:
        nxt = _parents(level)
        # Promoting an unpaired last node unchanged yields exactly the RFC's
        # "largest power of two smaller than n" split.
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _parents(level: Sequence[bytes]) -> list[bytes]:
    """Hash adjacent pairs of a level, dropping an unpaired last node."""
    sha = _sha256
    return [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]


class CompactRange:
    """Incrementally build a Merkle tree keeping only the O(log n) perfect subtree roots."""

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        """Start an empty tree."""
        self._size = 0
        self._stack: list[bytes] = []

    @property
    def size(self) -> int:
        """Return the number of leaves appended so far."""
        return self._size

    def append(self, leaf: bytes, on_tile_hash: Callable[[int, bytes], None] | None = None) -> None:
        """Append one leaf hash, merging completed perfect subtrees.

        on_tile_hash(level, hash) hears of every perfect subtree of 256**level leaves (level >= 1)
        this leaf completes: the hashes C2SP tiles at that level hold, in order (audit.tiles).
        """
        stack = self._stack
        stack.append(leaf)
        n = self._size
        height = 0
        while n & 1:
            right = stack.pop()
            stack[-1] = node_hash(stack[-1], right)
            n >>= 1
            height += 1
            if on_tile_hash is not None and not height & 7:
                on_tile_hash(height >> 3, stack[-1])
        self._size += 1

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Append several leaf hashes in order."""
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """Return the root hash of the tree at its current size."""
        if not self._stack:
            return EMPTY_ROOT
        root = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            root = node_hash(left, root)
        return root

    def to_list(self) -> list[bytes]:
        """Return the perfect subtree roots, largest (leftmost) first."""
        return list(self._stack)

    @classmethod
    def from_list(cls, size: int, hashes: Sequence[bytes]) -> CompactRange:
        """Restore a range of the given size from the output of to_list()."""
        if size < 0 or len(hashes) != size.bit_count():
            raise ValueError(f"a tree of size {size} needs {max(size, 0).bit_count()} hashes")
        rng = cls()
        rng._size = size
        rng._stack = list(hashes)
        return rng


TreeBuilder = CompactRange


class _Levels:
    """Hold the perfect subtree hashes of a leaf sequence, level by level, for fast MTH."""

    def __init__(self, hashes: Sequence[bytes]) -> None:
        self.levels: list[Sequence[bytes]] = [hashes]
        while len(self.levels[-1]) > 1:
            self.levels.append(_parents(self.levels[-1]))

    def mth(self, lo: int, hi: int) -> bytes:
        """Return MTH(D[lo:hi]) where lo is aligned as in the RFC's recursion."""
        return fold_right([self.levels[height][index] for height, index in perfect_subtrees(lo, hi)])


def _split(n: int) -> int:
    """Return the largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


Subtree = Callable[[int, int], bytes]


def inclusion_proof(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """Return PATH(index, D[n]) (RFC 9162 section 2.1.3.1), leaf-side sibling first."""
    return inclusion_proof_from(index, len(hashes), _Levels(hashes).mth)


def consistency_proof(old_size: int, hashes: Sequence[bytes]) -> list[bytes]:
    """Return PROOF(old_size, D[n]) (RFC 9162 section 2.1.4.1); empty when old_size == n."""
    return consistency_proof_from(old_size, len(hashes), _Levels(hashes).mth)


def inclusion_proof_from(index: int, size: int, mth: Subtree) -> list[bytes]:
    """Return PATH(index, D[size]), taking each MTH(D[lo:hi]) the proof needs from mth(lo, hi).

    The proof only ever asks for ranges the RFC's recursion produces: lo is a multiple of the
    largest power of two not above hi - lo, so each range is a few perfect subtrees.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is out of range for tree size {size}")
    path: list[bytes] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            path.append(mth(lo + k, hi))
            hi = lo + k
        else:
            path.append(mth(lo, lo + k))
            lo, m = lo + k, m - k
    path.reverse()
    return path


def consistency_proof_from(old_size: int, size: int, mth: Subtree) -> list[bytes]:
    """Return PROOF(old_size, D[size]), taking each MTH(D[lo:hi]) from mth(lo, hi)."""
    if not 0 < old_size <= size:
        raise ValueError(f"old size {old_size} is not provable against tree size {size}")
    proof: list[bytes] = []
    lo, hi, m, complete = 0, size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(mth(lo + k, hi))
            hi = lo + k
        else:
            proof.append(mth(lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        proof.append(mth(lo, hi))
    proof.reverse()
    return proof


def perfect_subtrees(lo: int, hi: int) -> list[tuple[int, int]]:
    """Split D[lo:hi] into the perfect subtrees MTH combines, as (height, index at that height).

    Valid for the ranges proofs ask for (lo aligned to the largest power of two not above
    hi - lo); left to right. MTH(D[lo:hi]) is their hashes folded from the right.
    """
    parts = []
    while lo < hi:
        height = (hi - lo).bit_length() - 1
        parts.append((height, lo >> height))
        lo += 1 << height
    return parts


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Return the root over perfect subtree hashes given left to right (largest first)."""
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Return whether proof shows leaf at index in the tree of size with root (section 2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Return whether proof shows the tree of old_size is a prefix of new_size (section 2.1.4.2).

    Equal sizes need an empty proof and equal roots. old_size == 0 is never
    provable (the RFC defines no proof for it) and returns False, as does
    old_size > new_size.
    """
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
