"""Framing and outer-frame validation: every bad input is a precise RemoteProtocolError."""

from __future__ import annotations

import contextlib
import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pmsg.errors import LocalProtocolError, RemoteProtocolError
from p2pmsg.protocol.framing import FrameDecoder, encode_frame
from p2pmsg.protocol.limits import MAX_FRAME_SIZE
from p2pmsg.protocol.wire import (
    AbortFrame,
    HandshakeFrame,
    RecordFrame,
    decode_frame,
    encode_abort,
    encode_handshake,
    encode_record,
)


def _body(frame: bytes) -> bytes:
    return frame[4:]


def test_frames_split_at_every_boundary() -> None:
    frames = [encode_frame(bytes([i]) * (i * 7 + 1)) for i in range(20)]
    stream = b"".join(frames)
    for step in (1, 2, 3, 5, 64, len(stream)):
        decoder = FrameDecoder()
        out = []
        for pos in range(0, len(stream), step):
            out.extend(decoder.feed(stream[pos : pos + step]))
        assert out == [f[4:] for f in frames]
        assert decoder.buffered == 0


def test_partial_frame_stays_buffered() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(b"hello")
    assert list(decoder.feed(frame[:6])) == []
    assert decoder.buffered == 6
    assert list(decoder.feed(frame[6:])) == [b"hello"]


@pytest.mark.parametrize("length", [0, MAX_FRAME_SIZE + 1, 0xFFFFFFFF])
def test_bad_length_is_rejected_after_the_good_frames(length: int) -> None:
    decoder = FrameDecoder()
    it = decoder.feed(encode_frame(b"ok") + struct.pack(">I", length) + b"x")
    assert next(it) == b"ok"
    with pytest.raises(RemoteProtocolError, match=r"zero-length|exceeds the limit"):
        next(it)
    assert decoder.failed
    with pytest.raises(RemoteProtocolError):
        list(decoder.feed(encode_frame(b"later")))


def test_huge_declared_length_costs_no_memory() -> None:
    decoder = FrameDecoder()
    with pytest.raises(RemoteProtocolError):
        list(decoder.feed(b"\xff\xff\xff\xff"))
    assert decoder.buffered == 0


def test_encode_frame_refuses_our_own_bad_frames() -> None:
    with pytest.raises(LocalProtocolError):
        encode_frame(b"")
    with pytest.raises(LocalProtocolError):
        encode_frame(bytes(MAX_FRAME_SIZE + 1))


def test_round_trip_of_every_frame_type() -> None:
    assert decode_frame(_body(encode_handshake(b"\x01" * 32))) == HandshakeFrame(b"\x01" * 32)
    record = encode_record(1, 7, 2**64 - 2, 3, b"sealed")
    assert decode_frame(_body(record)) == RecordFrame(1, 7, 2**64 - 2, 3, b"sealed")
    assert decode_frame(_body(encode_abort("no common suite"))) == AbortFrame("no common suite")


def test_abort_reason_keeps_printable_unicode() -> None:
    # Bidi and zero-width characters are valid text on the wire (they are made visible
    # at output by p2pmsg.sanitize); only terminal controls make a frame malformed.
    reason = "pas de suite commune \u202eexe\u200b"
    assert decode_frame(_packed([3, reason])) == AbortFrame(reason)
    with pytest.raises(RemoteProtocolError) as raised:
        decode_frame(_packed([3, "\x1b]0;pwned\x07\nfake line"]))
    # The error names the field, never the peer's text.
    assert str(raised.value) == (
        "abort frame: field 'reason' must be one line of text, at "
        "most 256 bytes, no controls, got str of length 20"
    )


def _packed(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({"a": 1}, "map"),  # maps are not allowed in the outer frame at all
        (5, "expected a non-empty array"),
        ([], "expected a non-empty array"),
        ([9, b"x"], "unknown frame type 9"),
        (["record"], "unknown frame type"),
        ([True, b"x"], "unknown frame type True"),
        ([2, 1, 0, 0, 1], "expected 6 elements"),
        ([2, "1", 0, 0, 1, b""], "'version' must be"),
        ([2, 1, -1, 0, 1, b""], "'epoch' must be"),
        ([2, 1, 2**32, 0, 1, b""], "'epoch' must be"),
        ([2, 1, 0, 1.5, 1, b""], "'counter' must be"),
        ([2, 1, 0, 0, 256, b""], "'suite' must be"),
        ([2, 1, 0, 0, 1, "text"], "'sealed' must be bin"),
        ([2, 1, 0, 0, 1, [b""]], "'sealed' must be bin"),
        ([1, b""], "'noise' must be bin of 1.."),
        ([1, "e"], "'noise' must be bin"),
        ([1, b"x", b"y"], "expected 2 elements"),
        ([3, 7], "'reason' must be one line of text"),
        # An ABORT reason is checked like a bye reason: one line, no controls at all.
        ([3, "\x1b]0;pwned\x07\nfake line"], "'reason' must be one line of text"),
        ([3, "ok\rforged"], "'reason' must be one line of text"),
        ([3, "ok\nforged"], "'reason' must be one line of text"),
        ([3, "csi \x9b2J"], "'reason' must be one line of text"),
        ([3, "del \x7f"], "'reason' must be one line of text"),
        ([1] * 9, "exceeds max_array_len"),
        ([3, "x" * 300], "exceeds max_str_len"),
    ],
)
def test_malformed_frames_name_the_problem(obj: object, reason: str) -> None:
    with pytest.raises(RemoteProtocolError, match=reason):
        decode_frame(_packed(obj))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xc1", "undecodable"),  # never-used type byte
        (b"\x92\x01", "undecodable"),  # truncated array
        (b"\x92\x01\xc4\x01x\x00", "trailing bytes"),  # extra data
        (b"\xc6\xff\xff\xff\xff", "undecodable"),  # bin32 declaring 4 GiB
        (b"\xdd\xff\xff\xff\xff", "undecodable"),  # array32 declaring 4 Gi elements
        (b"\xdf\xff\xff\xff\xff", "undecodable"),  # map32 declaring 4 Gi pairs
        (b"\xd4\x05\x00", "ext"),  # fixext1
        (b"\xd6\xff\x00\x00\x00\x00", "ext"),  # timestamp ext
        (b"\x91" * 5000 + b"\x01", "nested too deeply|undecodable"),
        (b"\x92\x03\xa2\xff\xfe", "UTF-8"),  # invalid UTF-8 string
    ],
)
def test_hostile_msgpack_is_contained(raw: bytes, reason: str) -> None:
    with pytest.raises(RemoteProtocolError, match=reason):
        decode_frame(raw)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=64), max_size=12))
def test_fuzz_decoder_never_raises_anything_else(chunks: list[bytes]) -> None:
    decoder = FrameDecoder(max_frame_size=1024)
    try:
        for chunk in chunks:
            for body in decoder.feed(chunk):
                assert 0 < len(body) <= 1024
                with contextlib.suppress(RemoteProtocolError):
                    decode_frame(body)
    except RemoteProtocolError:
        assert decoder.failed


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_decode_frame_only_raises_remote_protocol_error(body: bytes) -> None:
    try:
        frame = decode_frame(body)
    except RemoteProtocolError:
        return
    assert isinstance(frame, HandshakeFrame | RecordFrame | AbortFrame)


def test_frames_are_cut_from_a_reused_buffer_and_across_feeds() -> None:
    """Whole frames are cut straight out of what is fed (a view of a buffer the driver
    reuses, as the session's reader passes): each frame is a copy that outlives the
    buffer's next contents, and a frame split over several feeds, even inside its
    length prefix, comes out whole."""
    bodies = [bytes([i]) * size for i, size in enumerate((1, 5, 300, 70_000, 2, 200_000))]
    stream = b"".join(encode_frame(b) for b in bodies)
    for cut in (1, 3, 4, 7, 4096, 65_536, len(stream)):
        decoder = FrameDecoder()
        reused = bytearray(cut)
        got: list[bytes] = []
        for start in range(0, len(stream), cut):
            piece = stream[start : start + cut]
            reused[: len(piece)] = piece
            with memoryview(reused) as view:
                got.extend(decoder.feed(view[: len(piece)]))
            reused[:] = b"\xff" * len(reused)  # the driver reads into it again
        assert got == bodies and decoder.buffered == 0


def test_frames_not_taken_come_out_of_the_next_iterator() -> None:
    decoder = FrameDecoder()
    first = decoder.feed(encode_frame(b"a") + encode_frame(b"b") + encode_frame(b"c")[:3])
    assert next(first) == b"a"
    assert list(decoder.feed(encode_frame(b"c")[3:])) == [b"b", b"c"]
