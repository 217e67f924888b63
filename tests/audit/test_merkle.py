"""Tests for audit.merkle against RFC 9162 test vectors and an independent reference."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    TreeBuilder,
    canonical_json,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# --------------------------------------------------------------------------------------------
# Independent reference, written from the RFC 9162 text without reusing any module code.
# --------------------------------------------------------------------------------------------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ref_leaf(data: bytes) -> bytes:
    return _h(b"\x00" + data)


def ref_node(left: bytes, right: bytes) -> bytes:
    return _h(b"\x01" + left + right)


def ref_k(n: int) -> int:
    """Largest power of two smaller than n, found by counting up (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves, recursing over slices as in RFC 9162 2.1.1."""
    n = len(hashes)
    if n == 0:
        return _h(b"")
    if n == 1:
        return hashes[0]
    k = ref_k(n)
    return ref_node(ref_mth(hashes[:k]), ref_mth(hashes[k:]))


def ref_path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) from RFC 9162 2.1.3.1."""
    n = len(hashes)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return ref_path(m, hashes[:k]) + [ref_mth(hashes[k:])]
    return ref_path(m - k, hashes[k:]) + [ref_mth(hashes[:k])]


def ref_subproof(m: int, hashes: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) from RFC 9162 2.1.4.1."""
    n = len(hashes)
    if m == n:
        return [] if b else [ref_mth(hashes)]
    k = ref_k(n)
    if m <= k:
        return ref_subproof(m, hashes[:k], b) + [ref_mth(hashes[k:])]
    return ref_subproof(m - k, hashes[k:], False) + [ref_mth(hashes[:k])]


def ref_verify_inclusion(
    leaf_index: int, tree_size: int, hash_: bytes, inclusion_path: Sequence[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 2.1.3.2, step by step."""
    # 1.
    if leaf_index >= tree_size:
        return False
    # 2. and 3.
    fn = leaf_index
    sn = tree_size - 1
    r = hash_
    # 4.
    for p in inclusion_path:
        if sn == 0:  # a.
            return False
        if fn % 2 == 1 or fn == sn:  # b.
            r = ref_node(p, r)
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn //= 2
                    sn //= 2
        else:
            r = ref_node(r, p)
        fn //= 2  # c.
        sn //= 2
    # 5.
    return sn == 0 and r == root_hash


def ref_verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2, step by step; equal sizes need an empty proof and equal roots."""
    if first <= 0 or first > second:
        return False
    if first == second:
        return len(path) == 0 and first_hash == second_hash
    # 1.
    if len(path) == 0:
        return False
    # 2.
    consistency_path = list(path)
    if 2 ** int(math.log2(first)) == first:
        consistency_path = [first_hash] + consistency_path
    # 3.
    fn = first - 1
    sn = second - 1
    # 4.
    while fn % 2 == 1:
        fn //= 2
        sn //= 2
    # 5.
    fr = consistency_path[0]
    sr = consistency_path[0]
    # 6.
    for c in consistency_path[1:]:
        if sn == 0:  # a.
            return False
        if fn % 2 == 1 or fn == sn:  # b.
            fr = ref_node(c, fr)
            sr = ref_node(c, sr)
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn //= 2
                    sn //= 2
        else:
            sr = ref_node(sr, c)
        fn //= 2  # c.
        sn //= 2
    # 7.
    return fr == first_hash and sr == second_hash and sn == 0


def make_leaves(n: int, salt: int = 0) -> list[bytes]:
    """Distinct leaf hashes, so no two subtrees share a hash."""
    return [ref_leaf(salt.to_bytes(8, "big") + i.to_bytes(4, "big")) for i in range(n)]


def flip(data: bytes, pos: int) -> bytes:
    pos %= len(data)
    return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :]


# --------------------------------------------------------------------------------------------
# Known answers
# --------------------------------------------------------------------------------------------

# The eight test inputs of the certificate-transparency reference implementation.
CT_INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_LEAVES = [leaf_hash(d) for d in CT_INPUTS]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
H01 = "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
H0123 = "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
L1 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
H23 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
H4567 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
L4 = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
H67 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
L5 = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
L0 = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


def test_hash_primitives() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()


def test_empty_tree_root() -> None:
    assert root_from_leaf_hashes([]) == hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert TreeBuilder().root() == EMPTY_ROOT


def test_one_and_two_leaf_roots() -> None:
    a = hashlib.sha256(b"\x00" + b"alpha").digest()
    b = hashlib.sha256(b"\x00" + b"beta").digest()
    assert root_from_leaf_hashes([a]) == a
    assert root_from_leaf_hashes([a, b]) == hashlib.sha256(b"\x01" + a + b).digest()
    c = hashlib.sha256(b"\x00" + b"gamma").digest()
    ab = hashlib.sha256(b"\x01" + a + b).digest()
    assert root_from_leaf_hashes([a, b, c]) == hashlib.sha256(b"\x01" + ab + c).digest()


@pytest.mark.parametrize("n", range(1, 9))
def test_ct_reference_roots(n: int) -> None:
    assert root_from_leaf_hashes(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]
    assert ref_mth([ref_leaf(d) for d in CT_INPUTS[:n]]).hex() == CT_ROOTS[n - 1]
    builder = TreeBuilder()
    builder.extend(CT_LEAVES[:n])
    assert builder.root().hex() == CT_ROOTS[n - 1]


@pytest.mark.parametrize(
    ("index", "size", "expected"),
    [
        (0, 1, []),
        (0, 8, [L1, H23, H4567]),
        (5, 8, [L4, H67, H0123]),
        (2, 3, [H01]),
        (1, 5, [L0, H23, L4]),
    ],
)
def test_ct_reference_inclusion_proofs(index: int, size: int, expected: list[str]) -> None:
    proof = inclusion_proof(index, CT_LEAVES[:size])
    assert [p.hex() for p in proof] == expected
    root = bytes.fromhex(CT_ROOTS[size - 1])
    assert verify_inclusion(index, size, CT_LEAVES[index], proof, root)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (1, 1, []),
        (1, 8, [L1, H23, H4567]),
        (6, 8, [L5, H67, H0123]),
        (2, 5, [H23, L4]),
    ],
)
def test_ct_reference_consistency_proofs(old: int, new: int, expected: list[str]) -> None:
    proof = consistency_proof(old, CT_LEAVES[:new])
    assert [p.hex() for p in proof] == expected
    old_root = bytes.fromhex(CT_ROOTS[old - 1])
    new_root = bytes.fromhex(CT_ROOTS[new - 1])
    assert verify_consistency(old, new, old_root, new_root, proof)
    assert ref_verify_consistency(old, new, old_root, new_root, proof)


# --------------------------------------------------------------------------------------------
# Edge cases
# --------------------------------------------------------------------------------------------


def test_inclusion_index_out_of_range() -> None:
    leaves = make_leaves(5)
    for bad in (-1, 5, 6):
        with pytest.raises(ValueError):
            inclusion_proof(bad, leaves)
    with pytest.raises(ValueError):
        inclusion_proof(0, [])
    root = root_from_leaf_hashes(leaves)
    assert not verify_inclusion(5, 5, leaves[0], [], root)
    assert not verify_inclusion(-1, 5, leaves[0], [], root)
    assert not verify_inclusion(0, 0, leaves[0], [], EMPTY_ROOT)


def test_consistency_edge_cases() -> None:
    leaves = make_leaves(7)
    root = root_from_leaf_hashes(leaves)
    assert consistency_proof(7, leaves) == []
    assert verify_consistency(7, 7, root, root, [])
    assert not verify_consistency(7, 7, root, flip(root, 0), [])
    assert not verify_consistency(7, 7, root, root, [root])
    for bad in (0, -1, 8):
        with pytest.raises(ValueError):
            consistency_proof(bad, leaves)
    # The empty tree is not provable: no proof exists for old_size == 0.
    assert not verify_consistency(0, 7, EMPTY_ROOT, root, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    old_root = root_from_leaf_hashes(leaves[:3])
    assert not verify_consistency(7, 3, root, old_root, consistency_proof(3, leaves))
    # A proof is mandatory when the sizes differ.
    assert not verify_consistency(3, 7, old_root, root, [])


def test_compact_range_state_validation() -> None:
    with pytest.raises(ValueError):
        CompactRange.from_list(5, [b"x" * 32])
    with pytest.raises(ValueError):
        CompactRange.from_list(-1, [])
    assert CompactRange.from_list(0, []).root() == EMPTY_ROOT


def test_inclusion_size_is_bound_by_the_root_not_the_proof() -> None:
    """The RFC algorithm accepts a proof for size 3 under size 4 given the size-3 root.

    That is why a verifier must take (size, root) together from a signed tree head;
    given the true size-4 root the same proof fails.
    """
    leaves = make_leaves(4)
    proof = inclusion_proof(0, leaves[:3])
    assert verify_inclusion(0, 4, leaves[0], proof, root_from_leaf_hashes(leaves[:3]))
    assert not verify_inclusion(0, 4, leaves[0], proof, root_from_leaf_hashes(leaves))
    # A proof one level too short leaves sn != 0 (RFC step 5) even though r matches.
    full = inclusion_proof(0, leaves)
    assert verify_inclusion(0, 4, leaves[0], full, root_from_leaf_hashes(leaves))
    assert not verify_inclusion(0, 5, leaves[0], full, root_from_leaf_hashes(leaves))
    assert not ref_verify_inclusion(0, 5, leaves[0], full, root_from_leaf_hashes(leaves))


# --------------------------------------------------------------------------------------------
# Property tests against the reference
# --------------------------------------------------------------------------------------------

sizes = st.integers(min_value=1, max_value=300)


@given(n=st.integers(min_value=0, max_value=300), salt=st.integers(0, 2**32))
def test_root_matches_reference(n: int, salt: int) -> None:
    leaves = make_leaves(n, salt)
    assert root_from_leaf_hashes(leaves) == ref_mth(leaves)


# Quadratic by design (a reference root at every size): no deadline on a shared machine.
@settings(max_examples=30, deadline=None)
@given(n=st.integers(min_value=0, max_value=300))
def test_builder_matches_batch_root_at_every_size(n: int) -> None:
    leaves = make_leaves(n)
    builder = TreeBuilder()
    assert builder.root() == EMPTY_ROOT
    for i, leaf in enumerate(leaves, start=1):
        builder.append(leaf)
        assert builder.size == i
        assert builder.root() == ref_mth(leaves[:i])


@given(n=sizes, split=st.data())
def test_builder_state_round_trip(n: int, split: st.DataObject) -> None:
    leaves = make_leaves(n)
    cut = split.draw(st.integers(0, n))
    first = CompactRange()
    first.extend(leaves[:cut])
    state = first.to_list()
    assert len(state) == bin(cut).count("1")
    resumed = CompactRange.from_list(cut, state)
    assert resumed.root() == first.root()
    resumed.extend(leaves[cut:])
    assert resumed.size == n
    assert resumed.root() == root_from_leaf_hashes(leaves)


@given(n=sizes, data=st.data())
def test_inclusion_proofs(n: int, data: st.DataObject) -> None:
    leaves = make_leaves(n)
    index = data.draw(st.integers(0, n - 1), label="index")
    root = ref_mth(leaves)
    proof = inclusion_proof(index, leaves)
    assert proof == ref_path(index, leaves)
    assert verify_inclusion(index, n, leaves[index], proof, root)
    assert ref_verify_inclusion(index, n, leaves[index], proof, root)


@given(n=sizes, data=st.data())
def test_inclusion_tampering_fails(n: int, data: st.DataObject) -> None:
    leaves = make_leaves(n)
    index = data.draw(st.integers(0, n - 1), label="index")
    root = ref_mth(leaves)
    leaf = leaves[index]
    proof = inclusion_proof(index, leaves)
    pos = data.draw(st.integers(0, 31), label="byte")

    def both(i: int, size: int, lf: bytes, pf: Sequence[bytes], rt: bytes) -> bool:
        ours = verify_inclusion(i, size, lf, pf, rt)
        assert ours == ref_verify_inclusion(i, size, lf, pf, rt)
        return ours

    assert not both(index, n, flip(leaf, pos), proof, root)
    assert not both(index, n, leaf, proof, flip(root, pos))
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1), label="element")
        bad = list(proof)
        bad[k] = flip(bad[k], pos)
        assert not both(index, n, leaf, bad, root)
        assert not both(index, n, leaf, proof[:-1], root)
    assert not both(index, n, leaf, [*proof, root], root)

    wrong_index = data.draw(st.integers(0, n - 1), label="wrong_index")
    if wrong_index != index:
        assert not both(wrong_index, n, leaf, proof, root)
        assert not both(wrong_index, n, leaves[wrong_index], proof, root)

    wrong_size = data.draw(st.integers(index + 1, 301), label="wrong_size")
    if wrong_size != n:
        assert not both(index, wrong_size, leaf, proof, ref_mth(make_leaves(wrong_size)))
        # With the old root the outcome depends on the proof's shape; both must agree.
        both(index, wrong_size, leaf, proof, root)


@given(n=sizes, data=st.data())
def test_consistency_proofs(n: int, data: st.DataObject) -> None:
    leaves = make_leaves(n)
    old = data.draw(st.integers(1, n), label="old")
    old_root, new_root = ref_mth(leaves[:old]), ref_mth(leaves)
    proof = consistency_proof(old, leaves)
    assert proof == ref_subproof(old, leaves, True)
    assert verify_consistency(old, n, old_root, new_root, proof)
    assert ref_verify_consistency(old, n, old_root, new_root, proof)


@given(n=st.integers(2, 300), data=st.data())
def test_consistency_tampering_fails(n: int, data: st.DataObject) -> None:
    leaves = make_leaves(n)
    old = data.draw(st.integers(1, n - 1), label="old")
    old_root, new_root = ref_mth(leaves[:old]), ref_mth(leaves)
    proof = consistency_proof(old, leaves)
    pos = data.draw(st.integers(0, 31), label="byte")

    def both(m: int, size: int, r1: bytes, r2: bytes, pf: Sequence[bytes]) -> bool:
        ours = verify_consistency(m, size, r1, r2, pf)
        assert ours == ref_verify_consistency(m, size, r1, r2, pf)
        return ours

    assert not both(old, n, flip(old_root, pos), new_root, proof)
    assert not both(old, n, old_root, flip(new_root, pos), proof)
    k = data.draw(st.integers(0, len(proof) - 1), label="element")
    bad = list(proof)
    bad[k] = flip(bad[k], pos)
    assert not both(old, n, old_root, new_root, bad)
    assert not both(old, n, old_root, new_root, proof[:-1])
    assert not both(old, n, old_root, new_root, [*proof, new_root])

    wrong_old = data.draw(st.integers(1, n - 1), label="wrong_old")
    if wrong_old != old:
        assert not both(wrong_old, n, ref_mth(leaves[:wrong_old]), new_root, proof)
    wrong_new = data.draw(st.integers(old + 1, 301), label="wrong_new")
    if wrong_new != n:
        assert not both(old, wrong_new, old_root, ref_mth(make_leaves(wrong_new)), proof)


@given(n=st.integers(2, 300), data=st.data())
def test_consistency_rejects_forked_history(n: int, data: st.DataObject) -> None:
    leaves = make_leaves(n)
    old = data.draw(st.integers(1, n - 1), label="old")
    forked = make_leaves(old, salt=1)
    assume(forked != leaves[:old])
    proof = consistency_proof(old, leaves)
    assert not verify_consistency(old, n, ref_mth(forked), ref_mth(leaves), proof)


def test_large_tree_root() -> None:
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(200_000)]
    root = root_from_leaf_hashes(leaves)
    builder = CompactRange()
    builder.extend(leaves)
    assert root == builder.root()
    proof = inclusion_proof(123_456, leaves)
    assert verify_inclusion(123_456, len(leaves), leaves[123_456], proof, root)


# --------------------------------------------------------------------------------------------
# Canonical JSON
# --------------------------------------------------------------------------------------------


def test_canonical_json_basics() -> None:
    assert canonical_json({"b": 1, "a": [True, False, None, "x"]}) == b'{"a":[true,false,null,"x"],"b":1}'
    assert canonical_json([]) == b"[]"
    assert canonical_json({}) == b"{}"
    assert canonical_json(-42) == b"-42"
    assert canonical_json((1, 2)) == b"[1,2]"


def test_canonical_json_nested() -> None:
    obj = {"z": {"y": [{"b": 2, "a": 1}], "x": {}}, "a": [[], [{"k": None}]]}
    assert canonical_json(obj) == b'{"a":[[],[{"k":null}]],"z":{"x":{},"y":[{"a":1,"b":2}]}}'


def test_canonical_json_rfc8785_key_order() -> None:
    # RFC 8785 section 3.2.3: sorting is by UTF-16 code units, not code points.
    obj = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
    assert canonical_json(obj) == expected.encode("utf-8")


def test_canonical_json_unicode_and_escapes() -> None:
    assert canonical_json("h\u00e9llo \u2603") == '"h\u00e9llo \u2603"'.encode()
    # RFC 8785 section 3.2.2.2 string example.
    value = "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/"
    assert canonical_json(value) == '"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"'.encode()


@pytest.mark.parametrize("bad", [1.0, float("nan"), {"a": [0.5]}, {1: "x"}, {1, 2}, b"x", object()])
def test_canonical_json_rejects_unsupported(bad: object) -> None:
    with pytest.raises(TypeError):
        canonical_json(bad)


def test_canonical_json_rejects_unsafe_integers() -> None:
    assert canonical_json(2**53 - 1) == b"9007199254740991"
    with pytest.raises(ValueError):
        canonical_json(2**53)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_canonical_json_is_deterministic_and_valid(obj: object) -> None:
    encoded = canonical_json(obj)
    assert json.loads(encoded.decode("utf-8")) == obj
    assert canonical_json(json.loads(encoded)) == encoded
