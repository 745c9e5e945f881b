"""Types 19-21 in the session's message table: items pass as envelopes (their body and
signature are the group service's to judge), summaries are checked in full."""

from __future__ import annotations

import msgpack
import pytest

from p2pmsg.errors import RemoteProtocolError
from p2pmsg.protocol.groups import GroupReplica, MemberInfo, encode_group_message, parse_post
from p2pmsg.protocol.messages import (
    GroupOpMessage,
    GroupPostMessage,
    GroupSummaryMessage,
    TimeWindow,
    check_outgoing,
    decode_message,
)
from tests.protocol.groups.members import SALTS, fixed_rng, identity

WINDOW = TimeWindow(1000.0, 60.0, 3600.0)


def _group() -> tuple[GroupReplica, bytes, bytes]:
    alice, bob = identity("alice"), identity("bob")
    replica = GroupReplica.create(
        alice, fixed_rng(b"g"), 1000.0, "team", "alice", [MemberInfo(bob.public_key, "bob")]
    )
    post = replica.post(alice, 1001.0, "hello", rng=SALTS)
    return replica, post.body, post.signature


def test_an_item_decodes_to_the_same_bytes_the_group_core_encodes() -> None:
    replica, body, signature = _group()
    data = encode_group_message(replica.held_posts()[0])
    message = decode_message(data, WINDOW)
    post = replica.held_posts()[0]
    assert message == GroupPostMessage(body, signature, post.content)
    assert check_outgoing(message) == data
    assert parse_post(message.body, message.signature, message.text).text == "hello"
    assert parse_post(message.body, message.signature).text is None  # a stub
    op = replica.create_op
    assert decode_message(encode_group_message(op), WINDOW) == GroupOpMessage(op.body, op.signature)


def test_a_forged_item_passes_the_envelope_so_the_session_survives_it() -> None:
    _, body, signature = _group()
    forged = bytes([signature[0] ^ 1]) + signature[1:]
    data = msgpack.packb([20, body, forged, [b"s" * 16, "not the text"]], use_bin_type=True)
    assert decode_message(data, WINDOW) == GroupPostMessage(
        body, forged, (b"s" * 16, "not the text")
    )
    stub = msgpack.packb([20, body, forged, None], use_bin_type=True)
    assert decode_message(stub, WINDOW) == GroupPostMessage(body, forged)


@pytest.mark.parametrize(
    "fields",
    [
        [19, b"", b"s" * 64],
        [20, b"body", b"short", None],
        [20, "body", b"s" * 64, None],
        [20, b"body", b"s" * 64],  # the post before texts travelled beside the body
        [20, b"body", b"s" * 64, "text"],
        [20, b"body", b"s" * 64, [b"salt", "text", 1]],
        [20, b"body", b"s" * 64, ["salt", "text"]],
        [21, b"g" * 15, [], [], []],
        [21, b"g" * 16, [[b"f" * 32, 0]], [], []],
        [21, b"g" * 16, [[b"f" * 32, 2], [b"e" * 32, 1]], [], []],
        [21, b"g" * 16, [], [[b"f" * 31, 1]], []],
        [21, b"g" * 16, [], []],  # the summary before read marks
        [21, b"g" * 16, [], [], [[b"f" * 32, 1], [b"f" * 32, 1]]],
        [21, b"g" * 16, [], [], [[b"f" * 32, 0]]],
    ],
)
def test_bad_envelopes_and_summaries_are_protocol_errors(fields: list[object]) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_message(msgpack.packb(fields, use_bin_type=True), WINDOW)


def test_a_summary_round_trips() -> None:
    replica, _, _ = _group()
    s = replica.summary()
    message = GroupSummaryMessage(s.group_id, s.ops, s.posts, ((b"r" * 32, 3),))
    assert decode_message(check_outgoing(message), WINDOW) == message
