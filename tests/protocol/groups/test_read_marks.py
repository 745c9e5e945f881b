"""The summary's read marks (docs/PROTOCOL.md, "Groups", Anti-entropy): on the wire under
the same limits as the other arrays, and read by the author clamped to what the member
holds and what was written."""

from __future__ import annotations

import msgpack
import pytest

from p2pmsg.errors import GroupMalformedError
from p2pmsg.protocol.groups.limits import MAX_AUTHORS, MAX_SEQ
from p2pmsg.protocol.groups.sync import GroupSummary, receipt_of
from p2pmsg.protocol.groups.wire import decode_group_message, encode_group_message
from tests.protocol.groups.members import SALTS, found, join

GID = b"g" * 16
A, B, C = b"a" * 32, b"b" * 32, b"c" * 32


def _decode(read: object) -> object:
    return decode_group_message(msgpack.packb([21, GID, [], [[A, 5]], read], use_bin_type=True))


def test_read_marks_round_trip() -> None:
    summary = GroupSummary(GID, ((A, 2),), ((A, 5), (B, 1)), ((A, 4), (B, 1)))
    assert decode_group_message(encode_group_message(summary)) == summary
    assert GroupSummary.empty(GID).read == ()


@pytest.mark.parametrize(
    ("read", "defect"),
    [
        (7, "read must be an array"),
        ([[B, 1], [A, 1]], "sorted, no repeats"),
        ([[A, 1], [A, 2]], "sorted, no repeats"),
        ([[A, 0]], "seq must be"),
        ([[A, MAX_SEQ + 1]], "seq must be"),
        ([[A[:31], 1]], "fingerprint"),
        ([[A, 1, 2]], "pairs"),
    ],
)
def test_bad_read_marks_are_malformed(read: object, defect: str) -> None:
    with pytest.raises(GroupMalformedError, match=defect):
        _decode(read)


def test_read_marks_are_capped_like_the_other_arrays() -> None:
    fps = sorted(i.to_bytes(32, "big") for i in range(MAX_AUTHORS + 1))
    assert type(_decode([[fp, 1] for fp in fps[:MAX_AUTHORS]])) is GroupSummary
    with pytest.raises(GroupMalformedError):
        _decode([[fp, 1] for fp in fps])


def test_the_summary_without_read_marks_is_refused() -> None:
    with pytest.raises(GroupMalformedError, match="expected 5 elements"):
        decode_group_message(msgpack.packb([21, GID, [], []], use_bin_type=True))


def test_a_receipt_is_clamped_to_what_the_member_holds_and_the_author_wrote() -> None:
    summary = GroupSummary(GID, (), ((A, 5), (B, 2)), ((A, 9), (B, 1), (C, 4)))
    assert receipt_of(summary, A, written=7) == (5, 5)  # read 9 > held 5
    assert receipt_of(summary, A, written=3) == (3, 3)  # held 5 > written 3
    assert receipt_of(summary, B, written=2) == (2, 1)
    assert receipt_of(summary, C, written=4) == (0, 0)  # read but not held: nothing
    assert receipt_of(GroupSummary.empty(GID), A, written=4) == (0, 0)


def test_a_post_of_the_timeline_is_found_by_its_key() -> None:
    alice = found("alice", ["bob"])
    bob = join("bob", alice.replica.create_op)
    posts = [alice.replica.post(alice.me, 2.0 + i, f"p{i}", rng=SALTS) for i in range(3)]
    bob.take(posts[0])
    bob.take(posts[2])  # waits for posts[1]: not shown yet
    assert alice.replica.shown_post(alice.fp, 3) == posts[2]
    assert bob.replica.shown_post(alice.fp, 1) == posts[0]
    assert bob.replica.shown_post(alice.fp, 3) is None
    assert bob.replica.shown_post(alice.fp, 9) is None
