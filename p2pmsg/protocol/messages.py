"""Application messages: encoding and the one place they are validated.

The types themselves are in message_types.py and re-exported here.

Each message is a msgpack array `[type, field, ...]` with a fixed arity per
type (docs/PROTOCOL.md, "Application messages", is the table). Arrays rather
than maps keep the hot path small and make "exactly these fields" trivial to
check. `decode_message` is the one place a plaintext is validated into one of
the frozen message classes; any defect raises `RemoteProtocolError` (or its
`ReplayError` subclass for a timestamp outside the window) with a precise
reason. It never lets a KeyError, TypeError or IndexError out.

Text from a peer ends up in a terminal, so names and texts are checked for
control characters here (ANSI escapes, carriage returns, bidi overrides in
names), before any other layer sees them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import NoReturn

import msgpack

from p2pmsg.errors import GroupError, LocalProtocolError, RemoteProtocolError, ReplayError
from p2pmsg.protocol.groups.limits import GROUP_ID_SIZE
from p2pmsg.protocol.groups.limits import MAX_BODY_BYTES as GROUP_MAX_BODY_BYTES
from p2pmsg.protocol.groups.limits import SIGNATURE_SIZE as GROUP_SIGNATURE_SIZE
from p2pmsg.protocol.groups.wire import parse_marks
from p2pmsg.protocol.limits import (
    MAX_BUNDLE_ENTRIES,
    MAX_BUNDLE_PART_ENTRIES,
    MAX_BUNDLE_PATH_BYTES,
    MAX_CHUNK_SIZE,
    MAX_FILE_NAME_BYTES,
    MAX_FILE_SIZE,
    MAX_REASON_BYTES,
    MAX_RECEIPT_IDS,
    MAX_TEXT_BYTES,
    MAX_TTL_SECONDS,
    MESSAGE_MAX_ARRAY,
    MESSAGE_MAX_BIN,
    MESSAGE_MAX_MAP,
    MESSAGE_MAX_STR,
)
from p2pmsg.protocol.message_types import (
    _RECEIPT_NAMES,
    GROUP_MESSAGES,
    ID_SIZE,
    MAX_PING_NONCE,
    PAIR_ABORT_NAMES,
    PAIR_CONFIRM_SIZE,
    PAIR_MESSAGES,
    PAKE_MESSAGE_SIZE,
    SHA256_SIZE,
    USER_MESSAGES,
    X25519_PUBLIC_SIZE,
    AppMessage,
    BundleOffer,
    Bye,
    Chat,
    FileAccept,
    FileAck,
    FileCancel,
    FileChunk,
    FileDecline,
    FileDone,
    FileOffer,
    GroupMessage,
    GroupOpMessage,
    GroupPostMessage,
    GroupSummaryMessage,
    PairAbort,
    PairAbortReason,
    PairFinish,
    PairMessage,
    PairReply,
    PairStart,
    Ping,
    Pong,
    Receipt,
    ReceiptStatus,
    Rekey,
)
from p2pmsg.protocol.wire import (
    bad_field,
    check_line,
    describe,
    has_controls,
    msgpack_bin_header,
    msgpack_uint,
    read_bin_tail,
    read_uint,
    unpack_limited,
)

__all__ = [
    "GROUP_MESSAGES",
    "ID_SIZE",
    "MAX_PING_NONCE",
    "PAIR_MESSAGES",
    "SHA256_SIZE",
    "USER_MESSAGES",
    "X25519_PUBLIC_SIZE",
    "AppMessage",
    "BundleOffer",
    "Bye",
    "Chat",
    "FileAccept",
    "FileAck",
    "FileCancel",
    "FileChunk",
    "FileDecline",
    "FileDone",
    "FileOffer",
    "GroupMessage",
    "GroupOpMessage",
    "GroupPostMessage",
    "GroupSummaryMessage",
    "PairAbort",
    "PairAbortReason",
    "PairFinish",
    "PairMessage",
    "PairReply",
    "PairStart",
    "Ping",
    "Pong",
    "Receipt",
    "ReceiptStatus",
    "Rekey",
    "TimeWindow",
    "bundle_entry_id",
    "check_chat_body",
    "check_outgoing",
    "decode_message",
    "encode_message",
    "new_chat",
    "new_id",
]

Rng = Callable[[int], bytes]


def encode_message(message: AppMessage) -> bytes:
    """The msgpack plaintext of `message`. Not validated here: the connection runs
    `check_outgoing` on what the application hands it."""
    if type(message) is FileChunk:
        return _encode_file_chunk(message)
    return msgpack.packb(message.wire_fields(), use_bin_type=True)  # type: ignore[no-any-return]


#: fixarray of 4, type 6, then the 16-byte transfer id's bin 8 header
_FILE_CHUNK_HEAD = b"\x94\x06\xc4" + bytes((ID_SIZE,))


def _encode_file_chunk(chunk: FileChunk) -> bytes:
    """`[6, transfer_id, offset, data]` built by hand, byte for byte what msgpack
    writes (tests/protocol/test_chunk_codec.py holds it to that): file data is
    the bulk of all traffic, and this copies it once, where packing a list
    copies it into msgpack's buffer and out again."""
    transfer_id, offset, data = chunk.transfer_id, chunk.offset, chunk.data
    if (
        type(transfer_id) is not bytes
        or len(transfer_id) != ID_SIZE
        or type(offset) is not int
        or offset < 0
        or type(data) is not bytes
    ):
        # Not ours to encode by hand; msgpack encodes it (or refuses) as before.
        return msgpack.packb(chunk.wire_fields(), use_bin_type=True)  # type: ignore[no-any-return]
    return b"".join(
        (_FILE_CHUNK_HEAD, transfer_id, msgpack_uint(offset), msgpack_bin_header(len(data)), data)
    )


def new_id(rng: Rng) -> bytes:
    """A fresh 128-bit message or transfer id."""
    value = rng(ID_SIZE)
    if len(value) != ID_SIZE:
        raise LocalProtocolError("rng returned the wrong number of bytes")
    return value


def bundle_entry_id(bundle_id: bytes, index: int) -> bytes:
    """The transfer id of file `index` of a bundle (docs/PROTOCOL.md section 7.2).

    Derived, not chosen by the sender: a manifest cannot name two files with one id,
    nor an id of another transfer, and it costs no bytes on the wire."""
    digest = hashlib.sha256(
        b"p2pmsg/v2/bundle-entry" + bundle_id + index.to_bytes(4, "big")
    ).digest()
    return digest[:ID_SIZE]


def new_chat(rng: Rng, now: float, text: str, ttl: int | None = None) -> Chat:
    """A chat with a fresh id, checked against the same rules the receiver applies."""
    chat = Chat(new_id(rng), float(now), text, ttl)
    check_chat_body(text, ttl)
    return chat


def check_chat_body(text: str, ttl: int | None = None) -> None:
    """The receiver's rules for a chat's text and timer, as a `LocalProtocolError`.

    For a sender that wants to refuse a message before it stores it, when the
    id and timestamp are not known yet (`new_chat` without building a `Chat`)."""
    try:
        _check_text(text)
        if ttl is not None:
            _check_ttl(ttl)
    except RemoteProtocolError as exc:
        raise LocalProtocolError(str(exc)) from None


# --- decoding ----------------------------------------------------------------------------


class TimeWindow:
    """The accepted range of chat timestamps at one moment: [now - max_age, now + skew]."""

    __slots__ = ("earliest", "latest")

    def __init__(self, now: float, max_clock_skew: float, max_message_age: float) -> None:
        self.earliest = now - max_message_age
        self.latest = now + max_clock_skew


_ANY_TIME = TimeWindow(0.0, math.inf, math.inf)


def _decode_file_chunk(data: bytes) -> FileChunk | None:
    """A valid `[6, transfer_id, offset, data]` read without msgpack, its data a view
    of the record's plaintext instead of a copy (file data is the bulk of all traffic;
    a copy of each 192 KiB chunk was a measurable part of the receiver's time).

    Only for the shapes the general decoder turns into a valid chunk, to the same
    value (tests/protocol/test_chunk_codec.py holds the two to that); anything else,
    valid or not, returns None and the general decoder decides and words the error.
    `data` must be immutable (bytes): the view lives as long as the chunk."""
    if type(data) is not bytes or not data.startswith(_FILE_CHUNK_HEAD):
        return None
    head = len(_FILE_CHUNK_HEAD)
    read = read_uint(data, head + ID_SIZE)
    if read is None:
        return None
    offset, pos = read
    chunk = read_bin_tail(data, pos)
    if chunk is None or not 0 < len(chunk) <= MAX_CHUNK_SIZE or offset + len(chunk) > MAX_FILE_SIZE:
        return None
    return FileChunk(data[head : head + ID_SIZE], offset, chunk)


def decode_message(data: bytes, window: TimeWindow) -> AppMessage:
    """Validate one record plaintext into a typed message, or raise `RemoteProtocolError`."""
    chunk = _decode_file_chunk(data)
    if chunk is not None:
        return chunk
    obj = unpack_limited(
        data,
        what="message",
        max_array=MESSAGE_MAX_ARRAY,
        max_map=MESSAGE_MAX_MAP,
        max_str=MESSAGE_MAX_STR,
        max_bin=MESSAGE_MAX_BIN,
    )
    if type(obj) is not list or not obj:
        raise RemoteProtocolError(f"message: expected a non-empty array, got {describe(obj)}")
    kind = obj[0]
    parser = _PARSERS.get(kind) if type(kind) is int else None
    if parser is None:
        raise RemoteProtocolError(f"message: unknown message type {describe(kind)}")
    name, arity, parse = parser
    if len(obj) != arity:
        if _OLD_ARITY.get(kind) == len(obj):
            raise RemoteProtocolError(
                f"{name}: {len(obj)} elements is the protocol version 1 shape (the file "
                f"hash moved from file_offer to file_done in version 2); expected {arity}"
            )
        raise RemoteProtocolError(f"{name}: expected {arity} elements, got {len(obj)}")
    return parse(obj, window)


def _fail(where: str, field: str, value: object, expected: str) -> NoReturn:
    bad_field(where, field, value, expected)


def _id(where: str, field: str, value: object) -> bytes:
    if type(value) is not bytes or len(value) != ID_SIZE:
        _fail(where, field, value, f"bin of {ID_SIZE} bytes")
    return value


def _uint(where: str, field: str, value: object, maximum: int) -> int:
    if type(value) is not int or not 0 <= value <= maximum:
        _fail(where, field, value, f"an integer 0..{maximum}")
    return value


def _check_text(text: object) -> str:
    if type(text) is not str or not text:
        _fail("chat", "text", text, "non-empty str")
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > MAX_TEXT_BYTES:
        _fail("chat", "text", text, f"at most {MAX_TEXT_BYTES} UTF-8 bytes")
    if has_controls(data, text, allow_tab_lf=True):
        raise RemoteProtocolError("chat: field 'text' contains terminal control characters")
    return text


def _check_ttl(ttl: object) -> int:
    if type(ttl) is not int or not 1 <= ttl <= MAX_TTL_SECONDS:
        _fail("chat", "ttl", ttl, f"nil or an integer 1..{MAX_TTL_SECONDS}")
    return ttl


def _parse_chat(obj: list[object], window: TimeWindow) -> Chat:
    _, msg_id, ts, text, ttl = obj
    _id("chat", "id", msg_id)
    if type(ts) is float:
        if not math.isfinite(ts):
            _fail("chat", "ts", ts, "a finite number")
    elif type(ts) is int:
        ts = float(ts)
    else:
        _fail("chat", "ts", ts, "a number (seconds since the epoch)")
    if not window.earliest <= ts <= window.latest:
        raise ReplayError(
            f"chat: timestamp {ts:.3f} is outside the accepted window "
            f"[{window.earliest:.0f}, {window.latest:.0f}]"
        )
    _check_text(text)
    if ttl is not None:
        _check_ttl(ttl)
    return Chat(msg_id, ts, text, ttl)  # type: ignore[arg-type]


def _parse_receipt(obj: list[object], window: TimeWindow) -> Receipt:
    _, ids, status = obj
    if type(ids) is not list or not 0 < len(ids) <= MAX_RECEIPT_IDS:
        _fail("receipt", "ids", ids, f"an array of 1..{MAX_RECEIPT_IDS} ids")
    for item in ids:
        _id("receipt", "ids[]", item)
    name = _RECEIPT_NAMES.get(status) if type(status) is int else None
    if name is None:
        _fail("receipt", "status", status, "1 (delivered) or 2 (read)")
    return Receipt(tuple(ids), name)


def _parse_file_offer(obj: list[object], window: TimeWindow) -> FileOffer:
    _, transfer_id, name, size, chunk_size = obj
    _id("file_offer", "transfer_id", transfer_id)
    if (
        type(name) is not str
        or not name
        or name in (".", "..")
        or len(name.encode("utf-8", "surrogatepass")) > MAX_FILE_NAME_BYTES
        or has_controls(name.encode("utf-8", "surrogatepass"), name, allow_tab_lf=False)
        or "/" in name
        or "\\" in name
    ):
        _fail(
            "file_offer",
            "name",
            name,
            f"a file name of 1..{MAX_FILE_NAME_BYTES} bytes without path separators or controls",
        )
    _uint("file_offer", "size", size, MAX_FILE_SIZE)
    if type(chunk_size) is not int or not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        _fail("file_offer", "chunk_size", chunk_size, f"an integer 1..{MAX_CHUNK_SIZE}")
    return FileOffer(transfer_id, name, size, chunk_size)  # type: ignore[arg-type]


def _file_name_ok(name: object) -> bool:
    return not (
        type(name) is not str
        or not name
        or name in (".", "..")
        or len(name.encode("utf-8", "surrogatepass")) > MAX_FILE_NAME_BYTES
        or has_controls(name.encode("utf-8", "surrogatepass"), name, allow_tab_lf=False)
        or "/" in name
        or "\\" in name
    )


def _parse_bundle_offer(obj: list[object], window: TimeWindow) -> BundleOffer:
    """Shape only: each path is a str without controls within the length limit. What
    a path means (absolute, `..`, device names, duplicates) is the receiver's to judge
    on the whole manifest (node/transfers/manifest.py), so a hostile path refuses the
    offer with a reason instead of ending the session."""
    _, bundle_id, name, count, total_size, first, entries = obj
    _id("bundle_offer", "bundle_id", bundle_id)
    if not _file_name_ok(name):
        _fail(
            "bundle_offer",
            "name",
            name,
            f"a folder name of 1..{MAX_FILE_NAME_BYTES} bytes without path separators or controls",
        )
    if type(count) is not int or not 1 <= count <= MAX_BUNDLE_ENTRIES:
        _fail("bundle_offer", "count", count, f"an integer 1..{MAX_BUNDLE_ENTRIES}")
    _uint("bundle_offer", "total_size", total_size, MAX_FILE_SIZE)
    first = _uint("bundle_offer", "first", first, count - 1)
    if (
        type(entries) is not list
        or not 1 <= len(entries) <= MAX_BUNDLE_PART_ENTRIES
        or first + len(entries) > count
    ):
        _fail(
            "bundle_offer",
            "entries",
            entries,
            f"an array of 1..{MAX_BUNDLE_PART_ENTRIES} entries within count",
        )
    parsed: list[tuple[str, int]] = []
    for entry in entries:
        if type(entry) is not list or len(entry) != 2:
            _fail("bundle_offer", "entries", entry, "[path, size] pairs")
        path, size = entry
        if type(path) is not str or not path:
            _fail("bundle_offer", "path", path, "a non-empty str")
        encoded = path.encode("utf-8", "surrogatepass")
        if len(encoded) > MAX_BUNDLE_PATH_BYTES:
            _fail("bundle_offer", "path", path, f"at most {MAX_BUNDLE_PATH_BYTES} UTF-8 bytes")
        if has_controls(encoded, path, allow_tab_lf=False):
            raise RemoteProtocolError("bundle_offer: a path contains control characters")
        parsed.append((path, _uint("bundle_offer", "size", size, MAX_FILE_SIZE)))
    return BundleOffer(bundle_id, name, count, total_size, first, tuple(parsed))  # type: ignore[arg-type]


def _parse_file_accept(obj: list[object], window: TimeWindow) -> FileAccept:
    _, transfer_id, offset = obj
    return FileAccept(
        _id("file_accept", "transfer_id", transfer_id),
        _uint("file_accept", "offset", offset, MAX_FILE_SIZE),
    )


def _parse_file_decline(obj: list[object], window: TimeWindow) -> FileDecline:
    _, transfer_id, reason = obj
    return FileDecline(
        _id("file_decline", "transfer_id", transfer_id),
        check_line("file_decline", "reason", reason, MAX_REASON_BYTES),
    )


def _parse_file_chunk(obj: list[object], window: TimeWindow) -> FileChunk:
    _, transfer_id, offset, data = obj
    _id("file_chunk", "transfer_id", transfer_id)
    _uint("file_chunk", "offset", offset, MAX_FILE_SIZE)
    if type(data) is not bytes or not 0 < len(data) <= MAX_CHUNK_SIZE:
        _fail("file_chunk", "data", data, f"bin of 1..{MAX_CHUNK_SIZE} bytes")
    if offset + len(data) > MAX_FILE_SIZE:  # type: ignore[operator]
        raise RemoteProtocolError("file_chunk: chunk ends beyond the largest file size")
    return FileChunk(transfer_id, offset, data)  # type: ignore[arg-type]


def _parse_file_ack(obj: list[object], window: TimeWindow) -> FileAck:
    _, transfer_id, offset = obj
    return FileAck(
        _id("file_ack", "transfer_id", transfer_id),
        _uint("file_ack", "offset", offset, MAX_FILE_SIZE),
    )


def _parse_file_done(obj: list[object], window: TimeWindow) -> FileDone:
    _, transfer_id, sha256 = obj
    return FileDone(
        _id("file_done", "transfer_id", transfer_id),
        _bin("file_done", "sha256", sha256, SHA256_SIZE),
    )


def _parse_file_cancel(obj: list[object], window: TimeWindow) -> FileCancel:
    _, transfer_id, reason = obj
    return FileCancel(
        _id("file_cancel", "transfer_id", transfer_id),
        check_line("file_cancel", "reason", reason, MAX_REASON_BYTES),
    )


def _parse_rekey(obj: list[object], window: TimeWindow) -> Rekey:
    _, step, public_key = obj
    if step in (1, 2) and type(step) is int:
        if type(public_key) is not bytes or len(public_key) != X25519_PUBLIC_SIZE:
            _fail("rekey", "public_key", public_key, f"bin of {X25519_PUBLIC_SIZE} bytes")
    elif step == 3 and type(step) is int:
        if public_key is not None:
            _fail("rekey", "public_key", public_key, "nil in step 3")
    else:
        _fail("rekey", "step", step, "1, 2 or 3")
    return Rekey(step, public_key)


def _parse_ping(obj: list[object], window: TimeWindow) -> Ping:
    return Ping(_uint("ping", "nonce", obj[1], MAX_PING_NONCE))


def _parse_pong(obj: list[object], window: TimeWindow) -> Pong:
    return Pong(_uint("pong", "nonce", obj[1], MAX_PING_NONCE))


def _parse_bye(obj: list[object], window: TimeWindow) -> Bye:
    return Bye(check_line("bye", "reason", obj[1], MAX_REASON_BYTES))


def _bin(where: str, field: str, value: object, size: int) -> bytes:
    if type(value) is not bytes or len(value) != size:
        _fail(where, field, value, f"bin of {size} bytes")
    return value


def _parse_pair_start(obj: list[object], window: TimeWindow) -> PairStart:
    _, attempt, pake = obj
    return PairStart(
        _id("pair_start", "attempt", attempt), _bin("pair_start", "pake", pake, PAKE_MESSAGE_SIZE)
    )


def _parse_pair_reply(obj: list[object], window: TimeWindow) -> PairReply:
    _, attempt, pake, confirm = obj
    return PairReply(
        _id("pair_reply", "attempt", attempt),
        _bin("pair_reply", "pake", pake, PAKE_MESSAGE_SIZE),
        _bin("pair_reply", "confirm", confirm, PAIR_CONFIRM_SIZE),
    )


def _parse_pair_finish(obj: list[object], window: TimeWindow) -> PairFinish:
    _, attempt, confirm = obj
    return PairFinish(
        _id("pair_finish", "attempt", attempt),
        _bin("pair_finish", "confirm", confirm, PAIR_CONFIRM_SIZE),
    )


def _parse_pair_abort(obj: list[object], window: TimeWindow) -> PairAbort:
    _, attempt, reason = obj
    _id("pair_abort", "attempt", attempt)
    name = PAIR_ABORT_NAMES.get(reason) if type(reason) is int else None
    if name is None:
        _fail("pair_abort", "reason", reason, f"an integer 1..{len(PAIR_ABORT_NAMES)}")
    return PairAbort(attempt, name)  # type: ignore[arg-type]


def _parse_group_item(obj: list[object], window: TimeWindow) -> AppMessage:
    """The envelope of a group item: a body and a 64-byte signature. What the body says
    and whether the signature verifies is the group service's to judge (a relayed
    item's defect is its author's, not this session's)."""
    kind, body, signature = obj[:3]
    where = "group_op" if kind == 19 else "group_post"
    if type(body) is not bytes or not 0 < len(body) <= GROUP_MAX_BODY_BYTES:
        _fail(where, "body", body, f"bin of 1..{GROUP_MAX_BODY_BYTES} bytes")
    _bin(where, "signature", signature, GROUP_SIGNATURE_SIZE)
    if kind == 19:
        return GroupOpMessage(body, signature)  # type: ignore[arg-type]
    text = obj[3]
    if text is not None and (
        type(text) is not list
        or len(text) != 2
        or type(text[0]) is not bytes
        or type(text[1]) is not str
    ):
        _fail(where, "text", text, "[salt: bin, text: str] or nil")
    content = None if text is None else (text[0], text[1])
    return GroupPostMessage(body, signature, content)  # type: ignore[arg-type]


def _parse_group_summary(obj: list[object], window: TimeWindow) -> GroupSummaryMessage:
    """A summary is the sending member's own: a defect in it is this peer's."""
    _, group_id, ops, posts, read = obj
    _bin("group_summary", "group_id", group_id, GROUP_ID_SIZE)
    try:
        return GroupSummaryMessage(
            group_id,  # type: ignore[arg-type]
            parse_marks("ops", ops),
            parse_marks("posts", posts),
            parse_marks("read", read),
        )
    except GroupError as exc:
        raise RemoteProtocolError(str(exc)) from None


_Parser = Callable[[list[object], TimeWindow], AppMessage]
_PARSERS: dict[int, tuple[str, int, _Parser]] = {
    1: ("chat", 5, _parse_chat),
    2: ("receipt", 3, _parse_receipt),
    3: ("file_offer", 5, _parse_file_offer),
    4: ("file_accept", 3, _parse_file_accept),
    5: ("file_decline", 3, _parse_file_decline),
    6: ("file_chunk", 4, _parse_file_chunk),
    7: ("file_ack", 3, _parse_file_ack),
    8: ("file_done", 3, _parse_file_done),
    9: ("file_cancel", 3, _parse_file_cancel),
    10: ("rekey", 3, _parse_rekey),
    11: ("ping", 2, _parse_ping),
    12: ("pong", 2, _parse_pong),
    13: ("bye", 2, _parse_bye),
    14: ("pair_start", 3, _parse_pair_start),
    15: ("pair_reply", 4, _parse_pair_reply),
    16: ("pair_finish", 3, _parse_pair_finish),
    17: ("pair_abort", 3, _parse_pair_abort),
    18: ("bundle_offer", 7, _parse_bundle_offer),
    19: ("group_op", 3, _parse_group_item),
    20: ("group_post", 4, _parse_group_item),
    21: ("group_summary", 5, _parse_group_summary),
}

#: Arity of the messages whose shape protocol version 1 had otherwise: a version-1
#: file_offer carried the sha256, a version-1 file_done did not. Version 1 peers are
#: refused at the handshake; this names the defect should one get through anyway.
_OLD_ARITY: dict[int, int] = {3: 6, 8: 2}


def check_outgoing(message: AppMessage) -> bytes:
    """Encode `message` and hold it to exactly the rules the peer will apply (bar the
    clock window), so our own bad message is a `LocalProtocolError` here rather than
    a broken session there. Returns the encoded plaintext."""
    if type(message) is FileChunk:
        return _check_file_chunk(message)
    if type(message) is Chat:
        data = _check_chat(message)
        if data is not None:
            return data
    try:
        data = encode_message(message)
        decoded = decode_message(data, _ANY_TIME)
    except RemoteProtocolError as exc:
        raise LocalProtocolError(f"refusing to send an invalid message: {exc}") from None
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
        raise LocalProtocolError(f"refusing to send an unencodable message: {exc}") from None
    if decoded != message:
        raise LocalProtocolError(f"{type(message).__name__} does not survive encoding")
    return data


def _check_chat(chat: Chat) -> bytes | None:
    """`check_outgoing` for a chat whose fields have exactly the wire's types: the
    rules of `_parse_chat` on the typed fields, then the encoding, without decoding
    it again and comparing (half the sender's cost of a chat record otherwise). A
    field of any other type (a subclass, an int timestamp) returns None, and the
    caller takes the general round trip, which decides as before."""
    message_id, ts, text, ttl = chat.id, chat.ts, chat.text, chat.ttl
    if (
        type(message_id) is not bytes
        or type(ts) is not float
        or type(text) is not str
        or (ttl is not None and type(ttl) is not int)
    ):
        return None
    try:
        _id("chat", "id", message_id)
        if not math.isfinite(ts):
            _fail("chat", "ts", ts, "a finite number")
        _check_text(text)
        if ttl is not None:
            _check_ttl(ttl)
        # msgpack writes these four types exactly (a float as float 64), so the peer
        # decodes the same fields; a lone surrogate in the text still fails here.
        packed: bytes = msgpack.packb([1, message_id, ts, text, ttl], use_bin_type=True)
        return packed
    except RemoteProtocolError as exc:
        raise LocalProtocolError(f"refusing to send an invalid message: {exc}") from None
    except ValueError as exc:
        raise LocalProtocolError(f"refusing to send an unencodable message: {exc}") from None


def _check_file_chunk(chunk: FileChunk) -> bytes:
    """`check_outgoing` for a file chunk: its typed fields checked against the rules of
    `_parse_file_chunk`, without decoding the encoding again (a copy of the data and
    a comparison of it, per chunk, for nothing: the hand-built encoding is exact)."""
    transfer_id, offset, data = chunk.transfer_id, chunk.offset, chunk.data
    if type(data) is memoryview:  # a received chunk passed on (tests, tools): as bytes
        data = data.tobytes()
        chunk = FileChunk(transfer_id, offset, data)
    try:
        _id("file_chunk", "transfer_id", transfer_id)
        _uint("file_chunk", "offset", offset, MAX_FILE_SIZE)
        if type(data) is not bytes or not 0 < len(data) <= MAX_CHUNK_SIZE:
            _fail("file_chunk", "data", data, f"bin of 1..{MAX_CHUNK_SIZE} bytes")
        if offset + len(data) > MAX_FILE_SIZE:
            raise RemoteProtocolError("file_chunk: chunk ends beyond the largest file size")
    except RemoteProtocolError as exc:
        raise LocalProtocolError(f"refusing to send an invalid message: {exc}") from None
    return _encode_file_chunk(chunk)
