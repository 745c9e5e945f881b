"""The group messages on the wire, inside the pairwise sessions' records.

    [19, body: bin, signature: bin(64)]                       group_op
    [20, body: bin, signature: bin(64), [salt: bin(16), text: str] | nil]   group_post
    [21, group_id: bin(16), ops: [[fp, seq]...], posts: [[fp, seq]...],
        read: [[fp, seq]...]]                                 group_summary

An item travels as the author's body and signature, untouched by relays
(items.py); a post's text travels beside its body (nil: a stub, whose text
this member does not hold). Decoding is strict like protocol/messages.py: one msgpack array of
exactly this arity under hard limits, or a `GroupMalformedError` /
`GroupSignatureError` / `GroupLimitError` naming the defect. The types are not
in messages.py's table too (`GroupOpMessage`, `GroupPostMessage`,
`GroupSummaryMessage`), which checks only the items' envelope, so that a
relayed item's defect never ends the session that carried it; the node's
group service judges the body and signature (`parse_op`, `parse_post`).
"""

from __future__ import annotations

import msgpack

from p2pmsg.errors import GroupMalformedError, RemoteProtocolError
from p2pmsg.protocol.groups.items import GroupOp, GroupPost, Item, parse_op, parse_post
from p2pmsg.protocol.groups.limits import (
    FINGERPRINT_SIZE,
    GROUP_ID_SIZE,
    MAX_AUTHORS,
    MAX_BODY_BYTES,
    MAX_SEQ,
    MAX_TEXT_BYTES,
    SIGNATURE_SIZE,
)
from p2pmsg.protocol.groups.sync import GroupSummary, Marks
from p2pmsg.protocol.wire import describe, unpack_limited

GROUP_OP = 19
GROUP_POST = 20
GROUP_SUMMARY = 21
GROUP_TYPES = (GROUP_OP, GROUP_POST, GROUP_SUMMARY)

GroupMessage = GroupOp | GroupPost | GroupSummary


def encode_group_message(message: GroupMessage) -> bytes:
    """The record plaintext of an item or a summary."""
    if type(message) is GroupOp:
        fields: list[object] = [GROUP_OP, message.body, message.signature]
    elif type(message) is GroupPost:
        content = message.content
        fields = [
            GROUP_POST,
            message.body,
            message.signature,
            None if content is None else list(content),
        ]
    elif type(message) is GroupSummary:
        fields = [
            GROUP_SUMMARY,
            message.group_id,
            [[fp, seq] for fp, seq in message.ops],
            [[fp, seq] for fp, seq in message.posts],
            [[fp, seq] for fp, seq in message.read],
        ]
    else:
        raise TypeError(f"not a group message: {type(message).__name__}")
    return msgpack.packb(fields, use_bin_type=True)  # type: ignore[no-any-return]


def decode_group_message(data: bytes) -> GroupMessage:
    """Validate one record plaintext into a verified item or a summary."""
    try:
        obj = unpack_limited(
            data,
            what="group message",
            max_array=MAX_AUTHORS,
            max_map=0,
            max_str=MAX_TEXT_BYTES,
            max_bin=MAX_BODY_BYTES,
        )
    except RemoteProtocolError as exc:
        raise GroupMalformedError(str(exc)) from None
    if type(obj) is not list or not obj or type(obj[0]) is not int or obj[0] not in GROUP_TYPES:
        raise GroupMalformedError(f"group message: not a group message type ({describe(obj)})")
    kind = obj[0]
    if kind in (GROUP_OP, GROUP_POST):
        arity = 3 if kind == GROUP_OP else 4
        if len(obj) != arity:
            raise GroupMalformedError(
                f"group message {kind}: expected {arity} elements, got {len(obj)}"
            )
        body, signature = obj[1], obj[2]
        if type(body) is not bytes or type(signature) is not bytes:
            raise GroupMalformedError(f"group message {kind}: body and signature must be bin")
        if len(signature) != SIGNATURE_SIZE:
            raise GroupMalformedError(f"group message {kind}: signature must be 64 bytes")
        if kind == GROUP_OP:
            return parse_op(body, signature)
        return parse_post(body, signature, parse_content(obj[3]))
    if len(obj) != 5:
        raise GroupMalformedError(f"group_summary: expected 5 elements, got {len(obj)}")
    _, group_id, ops, posts, read = obj
    if type(group_id) is not bytes or len(group_id) != GROUP_ID_SIZE:
        raise GroupMalformedError(f"group_summary: group_id must be bin({GROUP_ID_SIZE})")
    return GroupSummary(
        group_id, parse_marks("ops", ops), parse_marks("posts", posts), parse_marks("read", read)
    )


def parse_content(value: object) -> tuple[object, object] | None:
    """A post's `[salt, text] | nil` beside its body; the values are judged by
    `parse_post` (salt size, the text rule, the hash)."""
    if value is None:
        return None
    if type(value) is not list or len(value) != 2:
        raise GroupMalformedError("group_post: text must be [salt, text] or nil")
    return (value[0], value[1])


def parse_marks(field: str, value: object) -> Marks:
    if type(value) is not list:
        raise GroupMalformedError(f"group_summary: {field} must be an array")
    out: list[tuple[bytes, int]] = []
    for entry in value:
        if type(entry) is not list or len(entry) != 2:
            raise GroupMalformedError(f"group_summary: {field} holds [fingerprint, seq] pairs")
        fp, seq = entry
        if type(fp) is not bytes or len(fp) != FINGERPRINT_SIZE:
            raise GroupMalformedError(f"group_summary: {field} fingerprint must be bin(32)")
        if out and fp <= out[-1][0]:
            raise GroupMalformedError(f"group_summary: {field} must be sorted, no repeats")
        if type(seq) is not int or not 1 <= seq <= MAX_SEQ:
            raise GroupMalformedError(f"group_summary: {field} seq must be 1..{MAX_SEQ}")
        out.append((fp, seq))
    return tuple(out)


def is_group_message(item: object) -> bool:
    return type(item) in (GroupOp, GroupPost, GroupSummary)


__all__ = [
    "GROUP_OP",
    "GROUP_POST",
    "GROUP_SUMMARY",
    "GROUP_TYPES",
    "GroupMessage",
    "Item",
    "decode_group_message",
    "encode_group_message",
    "is_group_message",
    "parse_content",
    "parse_marks",
]
