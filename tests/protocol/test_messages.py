"""Application messages: every type round-trips; every defect is a precise RemoteProtocolError."""

from __future__ import annotations

import math

import msgpack
import pytest

from p2pmsg.errors import LocalProtocolError, RemoteProtocolError, ReplayError
from p2pmsg.protocol.limits import MAX_CHUNK_SIZE, MAX_TEXT_BYTES
from p2pmsg.protocol.messages import (
    Bye,
    Chat,
    FileAccept,
    FileAck,
    FileCancel,
    FileChunk,
    FileDecline,
    FileDone,
    FileOffer,
    PairAbort,
    PairFinish,
    PairReply,
    PairStart,
    Ping,
    Pong,
    Receipt,
    Rekey,
    TimeWindow,
    check_chat_body,
    check_outgoing,
    decode_message,
    encode_message,
    new_chat,
)

NOW = 1_763_800_000.0
WINDOW = TimeWindow(NOW, 300.0, 30 * 86400.0)
TID = bytes(range(16))

EVERY_TYPE = [
    Chat(b"\x01" * 16, NOW, "hello\n\tworld ✓", None),
    Chat(b"\x02" * 16, NOW - 5, "disappearing", 3600),
    Receipt((b"\x01" * 16, b"\x02" * 16), "delivered"),
    Receipt((b"\x03" * 16,), "read"),
    FileOffer(TID, "report final (2).pdf", 123_456, 32768),
    FileAccept(TID, 65536),
    FileDecline(TID, "no space left"),
    FileChunk(TID, 0, b"\x00" * MAX_CHUNK_SIZE),
    FileAck(TID, 32768),
    FileDone(TID, b"\xaa" * 32),
    FileCancel(TID, "user cancelled"),
    Rekey(1, b"\x09" * 32),
    Rekey(2, b"\x08" * 32),
    Rekey(3, None),
    Ping(0),
    Pong(2**32 - 1),
    Bye("see you"),
    PairStart(TID, b"A" + b"\x07" * 32),
    PairReply(TID, b"B" + b"\x06" * 32, b"\x05" * 32),
    PairFinish(TID, b"\x04" * 32),
    PairAbort(TID, "wrong_code"),
    PairAbort(TID, "cancelled"),
]


@pytest.mark.parametrize("message", EVERY_TYPE, ids=lambda m: type(m).__name__)
def test_every_type_round_trips(message: object) -> None:
    assert decode_message(encode_message(message), WINDOW) == message  # type: ignore[arg-type]


def test_integer_timestamp_is_accepted_as_float() -> None:
    decoded = decode_message(msgpack.packb([1, b"\x01" * 16, int(NOW), "x", None]), WINDOW)
    assert isinstance(decoded, Chat) and decoded.ts == NOW


def _raw(*fields: object) -> bytes:
    return msgpack.packb(list(fields), use_bin_type=True)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ((), "non-empty array"),
        ((99,), "unknown message type 99"),
        (("chat",), "unknown message type"),
        ((True, b"", 0.0, "", None), "unknown message type True"),
        ((1, b"\x01" * 16, NOW, "x"), "chat: expected 5 elements, got 4"),
        ((1, b"\x01" * 15, NOW, "x", None), "'id' must be bin of 16"),
        ((1, "x" * 16, NOW, "x", None), "'id' must be bin of 16"),
        ((1, b"\x01" * 16, "now", "x", None), "'ts' must be a number"),
        ((1, b"\x01" * 16, math.nan, "x", None), "'ts' must be a finite"),
        ((1, b"\x01" * 16, NOW, "", None), "'text' must be non-empty"),
        ((1, b"\x01" * 16, NOW, b"bytes", None), "'text' must be non-empty str"),
        ((1, b"\x01" * 16, NOW, "\x1b[2J", None), "control characters"),
        ((1, b"\x01" * 16, NOW, "a\rb", None), "control characters"),
        ((1, b"\x01" * 16, NOW, "x", 0), "'ttl' must be nil or"),
        ((1, b"\x01" * 16, NOW, "x", 1.5), "'ttl' must be nil or"),
        ((2, [], 1), "'ids' must be an array of 1"),
        ((2, [b"\x01" * 16], 3), "'status' must be 1"),
        ((2, [b"\x01" * 16, 5], 1), r"'ids\[\]' must be bin"),
        ((3, TID, "../etc/passwd", 1, 1), "'name' must be a file name"),
        ((3, TID, "..", 1, 1), "'name' must be a file name"),
        ((3, TID, "a\\b", 1, 1), "'name' must be a file name"),
        ((3, TID, "a\x00b", 1, 1), "'name' must be a file name"),
        ((3, TID, "ok", -1, 1), "'size' must be an integer"),
        ((3, TID, "ok", 1 << 41, 1), "'size' must be an integer"),
        ((8, TID, b"\x00" * 31), "'sha256' must be bin of 32"),
        ((8, TID, "\x00" * 32), "'sha256' must be bin of 32"),
        ((3, TID, "ok", 1, 0), "'chunk_size' must be"),
        ((3, TID, "ok", 1, MAX_CHUNK_SIZE + 1), "'chunk_size' must be"),
        # protocol version 1 shapes: named as such (the hash moved to file_done in 2)
        ((3, TID, "ok", 1, b"\x00" * 32, 1), "file_offer: 6 elements is the protocol version 1"),
        ((8, TID), "file_done: 2 elements is the protocol version 1 shape"),
        ((4, TID, "0"), "'offset' must be an integer"),
        ((5, TID, "line\nbreak"), "'reason' must be one line"),
        ((6, TID, 0, b""), "'data' must be bin of 1"),
        ((6, TID, (1 << 40) - 1, b"xx"), "ends beyond"),
        ((7, TID, -5), "'offset' must be"),
        ((8, TID, b"\x00" * 32, 1), "file_done: expected 3 elements, got 4"),
        ((9, TID, 7), "'reason' must be one line"),
        ((10, 1, None), "'public_key' must be bin of 32"),
        ((10, 3, b"\x00" * 32), "'public_key' must be nil"),
        ((10, 4, None), "'step' must be 1, 2 or 3"),
        ((11, -1), "'nonce' must be"),
        ((12, 2**32), "'nonce' must be"),
        ((13, None), "'reason' must be"),
        ((14, TID, b"A" + b"\x00" * 31), "'pake' must be bin of 33"),
        ((14, TID[:8], b"A" + b"\x00" * 32), "'attempt' must be bin of 16"),
        ((14, TID, b"A" + b"\x00" * 32, b""), "pair_start: expected 3 elements"),
        ((15, TID, b"B" + b"\x00" * 32, b"\x00" * 33), "'confirm' must be bin of 32"),
        ((15, TID, "B" * 33, b"\x00" * 32), "'pake' must be bin of 33"),
        ((16, TID, None), "'confirm' must be bin of 32"),
        ((17, TID, 0), "'reason' must be an integer 1..5"),
        ((17, TID, 6), "'reason' must be an integer 1..5"),
        ((17, TID, "wrong_code"), "'reason' must be an integer 1..5"),
    ],
)
def test_defects_are_named(fields: tuple[object, ...], reason: str) -> None:
    with pytest.raises(RemoteProtocolError, match=reason):
        decode_message(_raw(*fields), WINDOW)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x81\xa1a\x01",  # a map: not allowed at all
        b"\xdd\x00\x01\x00\x00" + b"\xc0",  # array of 65536 declared
        b"\x95\x01\xc6\x00\x01\x00\x01",  # bin of 65537 bytes declared (over the limit)
        b"\x95\x01\xdb\x00\x01\x00\x00",  # str32 over the limit
        b"\x91" * 3000 + b"\x01",  # nesting bomb
        b"\xc7\x01\x05\x00",  # ext8
    ],
)
def test_hostile_msgpack_in_a_plaintext(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_message(raw, WINDOW)


@pytest.mark.parametrize("ts", [NOW + 301, NOW - 30 * 86400 - 1])
def test_timestamp_outside_the_window_is_a_replay_error(ts: float) -> None:
    with pytest.raises(ReplayError, match="outside the accepted window"):
        decode_message(_raw(1, b"\x01" * 16, ts, "x", None), WINDOW)


def test_text_limit_is_in_utf8_bytes() -> None:
    ok = "é" * (MAX_TEXT_BYTES // 2)
    assert decode_message(_raw(1, b"\x01" * 16, NOW, ok, None), WINDOW).text == ok  # type: ignore[union-attr]
    with pytest.raises(RemoteProtocolError):
        decode_message(_raw(1, b"\x01" * 16, NOW, ok + "é", None), WINDOW)


def test_new_chat_and_check_outgoing_refuse_our_own_bad_messages() -> None:
    chat = new_chat(lambda n: b"\x07" * n, NOW, "hi", ttl=60)
    assert chat.id == b"\x07" * 16 and chat.ts == NOW
    with pytest.raises(LocalProtocolError, match="control"):
        new_chat(lambda n: b"\x07" * n, NOW, "\x1b]0;pwned\x07")
    with pytest.raises(LocalProtocolError):
        check_outgoing(FileChunk(TID, 0, b""))
    with pytest.raises(LocalProtocolError):
        check_outgoing(Chat(b"short", NOW, "x"))
    with pytest.raises(LocalProtocolError):
        check_outgoing(Receipt((b"\x01" * 16,), "seen"))  # type: ignore[arg-type]
    assert check_outgoing(EVERY_TYPE[0]) == encode_message(EVERY_TYPE[0])  # type: ignore[arg-type]


def _round_trip_verdict(chat: Chat) -> bytes | None:
    """What the general check (encode, decode, compare) says: the bytes, or None."""
    try:
        data = encode_message(chat)
        ok = decode_message(data, TimeWindow(0.0, math.inf, math.inf)) == chat
    except (RemoteProtocolError, ValueError, TypeError, OverflowError):
        return None
    return data if ok else None


@pytest.mark.parametrize(
    "chat",
    [
        Chat(b"\x01" * 16, NOW, "hello\n\tworld ✓"),
        Chat(b"\x01" * 16, NOW, "timer", 1),
        Chat(b"\x01" * 16, NOW, "x" * MAX_TEXT_BYTES),
        Chat(b"\x01" * 16, 0.0, "epoch zero"),
        Chat(b"\x01" * 16, NOW, "x" * (MAX_TEXT_BYTES + 1)),
        Chat(b"\x01" * 16, NOW, ""),
        Chat(b"\x01" * 16, NOW, "esc\x1b[0m"),
        Chat(b"\x01" * 16, NOW, "c1 \x9b"),
        Chat(b"\x01" * 16, NOW, "lone \ud800 surrogate"),
        Chat(b"\x01" * 15, NOW, "short id"),
        Chat(b"\x01" * 16, math.nan, "nan"),
        Chat(b"\x01" * 16, math.inf, "inf"),
        Chat(b"\x01" * 16, NOW, "ttl 0", 0),
        Chat(b"\x01" * 16, NOW, "bool ttl", True),
        Chat(b"\x01" * 16, 1_763_800_000, "int ts"),  # type: ignore[arg-type]
        Chat(bytearray(16), NOW, "bytearray id"),  # type: ignore[arg-type]
        Chat(b"\x01" * 16, NOW, "float ttl", 5.0),  # type: ignore[arg-type]
    ],
    ids=lambda c: c.text[:16],
)
def test_check_outgoing_chat_agrees_with_the_round_trip(chat: Chat) -> None:
    # check_outgoing checks typed chats field by field (no decode): it must accept
    # exactly what the peer's decoder accepts, and send the same bytes.
    expected = _round_trip_verdict(chat)
    if expected is None:
        with pytest.raises(LocalProtocolError):
            check_outgoing(chat)
    else:
        assert check_outgoing(chat) == expected


def test_check_chat_body_applies_the_receivers_text_and_timer_rules() -> None:
    check_chat_body("fine", None)
    check_chat_body("fine", 60)
    for text, ttl in [
        ("", None),
        ("bell\x07", None),
        ("x" * (MAX_TEXT_BYTES + 1), None),
        ("fine", 0),
    ]:
        with pytest.raises(LocalProtocolError):
            check_chat_body(text, ttl)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("plain", True),
        ("tab\tand\nnewline", True),
        ("©«±° latin-1 symbols", True),
        ("é" * 10, True),
        ("emoji 🎉", True),
        ("bell\x07", False),
        ("esc\x1b[0m", False),
        ("del\x7f", False),
        ("c1 \x9b csi", False),
        ("c1 \x85 nel", False),
        ("cr\r", False),
        ("\x00", False),
    ],
)
def test_terminal_controls_in_chat_text(text: str, ok: bool) -> None:
    raw = _raw(1, b"\x01" * 16, NOW, text, None)
    if ok:
        assert decode_message(raw, WINDOW).text == text  # type: ignore[union-attr]
    else:
        with pytest.raises(RemoteProtocolError, match="control characters"):
            decode_message(raw, WINDOW)


@pytest.mark.parametrize("reason", ["tab\there", "nl\n", "c1\x9b", "esc\x1b"])
def test_one_line_fields_refuse_all_controls(reason: str) -> None:
    with pytest.raises(RemoteProtocolError, match="one line"):
        decode_message(_raw(13, reason), WINDOW)
