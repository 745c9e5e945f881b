"""bundle_offer (protocol section 7.2): the parser's shape rules, the derived file ids,
the receiver's judgement of a whole manifest (unit level; the real-stack cases are in
tests/transfers/test_folder_hostile.py), and PROTOCOL.md's limits table."""

from __future__ import annotations

import re
from pathlib import Path

import msgpack
import pytest

from p2pmsg.errors import LocalProtocolError, RemoteProtocolError
from p2pmsg.node.transfers.manifest import ManifestError, check_manifest, check_path
from p2pmsg.protocol import limits
from p2pmsg.protocol.messages import (
    BundleOffer,
    TimeWindow,
    bundle_entry_id,
    check_outgoing,
    decode_message,
)

WINDOW = TimeWindow(0.0, 1.0, 1.0)
BID = b"\x0b" * 16
DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"


def test_a_part_survives_encoding() -> None:
    offer = BundleOffer(BID, "photos", 3, 7, 1, (("a/b.jpg", 3), ("c", 4)))
    assert decode_message(check_outgoing(offer), WINDOW) == offer


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ([18, BID, "a/b", 1, 0, 0, [["x", 0]]], "name"),
        ([18, BID, "x", 0, 0, 0, [["x", 0]]], "count"),
        ([18, BID, "x", limits.MAX_BUNDLE_ENTRIES + 1, 0, 0, [["x", 0]]], "count"),
        ([18, BID, "x", 1, 0, 1, [["x", 0]]], "first"),
        ([18, BID, "x", 1, 0, 0, []], "entries"),
        ([18, BID, "x", 2, 0, 1, [["x", 0], ["y", 0]]], "entries"),
        ([18, BID, "x", 1, 0, 0, [["x", 0, 0]]], "entries"),
        ([18, BID, "x", 1, 0, 0, [["", 0]]], "path"),
        ([18, BID, "x", 1, 0, 0, [["a\x1b[2J", 0]]], "control"),
        ([18, BID, "x", 1, 0, 0, [["x" * 1025, 0]]], "path"),
        ([18, BID, "x", 1, 0, 0, [["x", -1]]], "size"),
        ([18, BID, "x", 1, 0, 0, [["x", 1 << 41]]], "size"),
        ([18, BID, "x", 1, 1 << 41, 0, [["x", 0]]], "total_size"),
    ],
)
def test_a_part_of_the_wrong_shape_is_rejected(fields: list[object], reason: str) -> None:
    with pytest.raises(RemoteProtocolError, match=reason):
        decode_message(msgpack.packb(fields, use_bin_type=True), WINDOW)


def test_our_own_bad_part_is_refused_before_it_leaves() -> None:
    with pytest.raises(LocalProtocolError):
        check_outgoing(BundleOffer(BID, "x", 1, 0, 0, (("a\nb", 0),)))


def test_file_ids_are_derived_distinct_and_stable() -> None:
    ids = {bundle_entry_id(BID, i) for i in range(limits.MAX_BUNDLE_ENTRIES)}
    assert len(ids) == limits.MAX_BUNDLE_ENTRIES
    assert bundle_entry_id(BID, 0) != bundle_entry_id(b"\x0c" * 16, 0)
    # the derivation PROTOCOL.md section 7.2 gives
    import hashlib

    expected = hashlib.sha256(b"p2pmsg/v2/bundle-entry" + BID + (5).to_bytes(4, "big"))
    assert bundle_entry_id(BID, 5) == expected.digest()[:16]


def test_paths_are_neutralised_component_by_component() -> None:
    assert check_path("CON/nul.txt") == ("_CON", "_nul.txt")
    assert check_path("a\u202eb/.hidden/-x") == ("ab", "hidden", "x")
    assert check_path("été/日本.txt") == ("été", "日本.txt")


@pytest.mark.parametrize(
    "paths",
    [
        ["a", "A"],
        ["d/x", "D/x"],
        ["\u00e9", "e\u0301"],
        ["a", "a/b"],
        ["a/b/c", "a/b"],
        ["ok", "../x"],
        ["x" * 300 + "/y"],
    ],
)
def test_a_manifest_with_one_bad_entry_is_refused_as_a_whole(paths: list[str]) -> None:
    if len(paths[-1]) > 255:  # an over-long component is cut, not refused: still safe
        assert len(check_manifest([(p, 0) for p in paths], 0)[0][0].encode()) <= 255
        return
    with pytest.raises(ManifestError):
        check_manifest([(p, 0) for p in paths], 0)


def test_sizes_must_add_up() -> None:
    with pytest.raises(ManifestError, match="add up"):
        check_manifest([("a", 1), ("b", 2)], 4)
    assert check_manifest([("a", 1), ("b", 2)], 3) == [("a",), ("b",)]


def test_protocol_md_lists_the_folder_limits_as_the_code_has_them() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in (
        "MAX_BUNDLE_ENTRIES",
        "MAX_BUNDLE_DEPTH",
        "MAX_BUNDLE_PATH_BYTES",
        "MAX_BUNDLE_MANIFEST_BYTES",
        "MAX_BUNDLE_PART_ENTRIES",
    ):
        row = re.search(rf"\| folder offer: [^|]*`{name}`\) *\| *(\d+)", text)
        assert row is not None, f"PROTOCOL.md section 10 lacks {name}"
        assert int(row.group(1)) == getattr(limits, name), name
