"""File chunks are encoded by hand and checked without a decode: both must equal msgpack's way.

`encode_message` builds `[6, transfer_id, offset, data]` itself (one copy of the
data instead of two) and `check_outgoing` checks a chunk's typed fields instead
of decoding the encoding again. msgpack picks the shortest int and bin forms,
so offsets and sizes either side of every switch are compared byte for byte
with `msgpack.packb`, and every invalid chunk is still refused before sending.

`decode_message` reads a chunk without msgpack too (its data a view of the
plaintext, not a copy): whatever the bytes, it must decide as the general
decoder does (given a bytearray, which the fast path leaves to it).
"""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pmsg.errors import LocalProtocolError, RemoteProtocolError
from p2pmsg.protocol.limits import MAX_CHUNK_SIZE, MAX_FILE_SIZE
from p2pmsg.protocol.messages import (
    FileChunk,
    TimeWindow,
    check_outgoing,
    decode_message,
    encode_message,
)

TID = bytes(range(16))
ANY_TIME = TimeWindow(0.0, float("inf"), float("inf"))
OFFSETS = [
    0,
    1,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0xFFFF,
    0x10000,
    0xFFFFFFFF,
    0x100000000,
    MAX_FILE_SIZE - MAX_CHUNK_SIZE,
]
SIZES = [1, 0xFF, 0x100, 0xFFFF, MAX_CHUNK_SIZE]


def _msgpack(chunk: FileChunk) -> bytes:
    return msgpack.packb([6, chunk.transfer_id, chunk.offset, chunk.data], use_bin_type=True)


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("size", SIZES)
def test_hand_encoding_is_msgpacks(offset: int, size: int) -> None:
    chunk = FileChunk(TID, offset, bytes([size & 0xFF]) * size)
    wire = encode_message(chunk)
    assert wire == _msgpack(chunk)
    assert check_outgoing(chunk) == wire
    assert decode_message(wire, ANY_TIME) == chunk


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=16, max_size=16),
    st.integers(0, MAX_FILE_SIZE - MAX_CHUNK_SIZE),
    st.binary(min_size=1, max_size=600),
)
def test_hand_encoding_is_msgpacks_for_any_chunk(tid: bytes, offset: int, data: bytes) -> None:
    chunk = FileChunk(tid, offset, data)
    assert check_outgoing(chunk) == _msgpack(chunk)


@pytest.mark.parametrize(
    "chunk",
    [
        FileChunk(b"short", 0, b"x"),  # transfer id of the wrong size
        FileChunk(TID, -1, b"x"),
        FileChunk(TID, True, b"x"),  # a bool is not an offset
        FileChunk(TID, MAX_FILE_SIZE + 1, b"x"),
        FileChunk(TID, MAX_FILE_SIZE, b"x"),  # ends past the largest file
        FileChunk(TID, 0, b""),
        FileChunk(TID, 0, bytes(MAX_CHUNK_SIZE + 1)),
        FileChunk(TID, 0, "text"),  # type: ignore[arg-type]
        FileChunk("not bytes", 0, b"x"),  # type: ignore[arg-type]
    ],
)
def test_invalid_chunks_are_refused_before_sending(chunk: FileChunk) -> None:
    with pytest.raises(LocalProtocolError, match="file_chunk"):
        check_outgoing(chunk)


def _both_ways(wire: bytes) -> tuple[object, object]:
    """(the fast path's decision, the general decoder's) on the same bytes: the message,
    or the error's text."""

    def decide(data: bytes | bytearray) -> object:
        try:
            return decode_message(data, ANY_TIME)  # type: ignore[arg-type]
        except RemoteProtocolError as exc:
            return f"error: {exc}"

    return decide(wire), decide(bytearray(wire))


def _by_hand(tid: bytes, offset: int, data: bytes, uint_tag: int | None, bin_tag: int) -> bytes:
    """A chunk in a chosen (maybe not shortest) uint and bin form."""
    widths = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xC4: 1, 0xC5: 2, 0xC6: 4}
    number = bytes([offset]) if uint_tag is None else bytes([uint_tag])
    if uint_tag is not None:
        number += offset.to_bytes(widths[uint_tag], "big")
    size = bytes([bin_tag]) + len(data).to_bytes(widths[bin_tag], "big")
    return b"\x94\x06\xc4\x10" + tid + number + size + data


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("size", SIZES)
def test_a_received_chunk_is_a_view_not_a_copy(offset: int, size: int) -> None:
    wire = encode_message(FileChunk(TID, offset, bytes([size & 0xFF]) * size))
    fast, general = _both_ways(wire)
    assert fast == general
    assert isinstance(fast, FileChunk) and isinstance(fast.data, memoryview)
    assert fast.data.obj is wire  # the record's own bytes


@settings(max_examples=300, deadline=None)
@given(
    st.binary(min_size=16, max_size=16),
    st.integers(0, 2**64 - 1),
    st.binary(min_size=0, max_size=300),
    st.sampled_from([None, 0xCC, 0xCD, 0xCE, 0xCF]),
    st.sampled_from([0xC4, 0xC5, 0xC6]),
)
def test_any_chunk_form_decodes_as_msgpack_decodes_it(
    tid: bytes, offset: int, data: bytes, uint_tag: int | None, bin_tag: int
) -> None:
    limit = {None: 0x7F, 0xCC: 0xFF, 0xCD: 0xFFFF, 0xCE: 0xFFFFFFFF, 0xCF: 2**64 - 1}[uint_tag]
    wire = _by_hand(tid, offset % (limit + 1), data, uint_tag, bin_tag)
    fast, general = _both_ways(wire)
    assert fast == general


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=16, max_size=16), st.binary(max_size=40), st.data())
def test_broken_chunks_are_refused_as_msgpack_refuses_them(
    tid: bytes, data: bytes, draw: st.DataObject
) -> None:
    """Cut, extended or altered after the head: the same error, word for word."""
    wire = bytearray(_by_hand(tid, 5, data, draw.draw(st.sampled_from([None, 0xCD])), 0xC4))
    mutation = draw.draw(st.sampled_from(["cut", "extend", "flip"]))
    if mutation == "cut":
        del wire[draw.draw(st.integers(20, len(wire))) :]
    elif mutation == "extend":
        wire += draw.draw(st.binary(min_size=1, max_size=4))
    else:
        at = draw.draw(st.integers(20, len(wire) - 1))
        wire[at] = draw.draw(st.integers(0, 255))
    fast, general = _both_ways(bytes(wire))
    assert fast == general
