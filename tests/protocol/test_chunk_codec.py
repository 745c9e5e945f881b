"""File chunks are encoded by hand and checked without a decode: both must equal msgpack's way.

`encode_message` builds `[6, transfer_id, offset, data]` itself (one copy of the
data instead of two) and `check_outgoing` checks a chunk's typed fields instead
of decoding the encoding again. msgpack picks the shortest int and bin forms,
so offsets and sizes either side of every switch are compared byte for byte
with `msgpack.packb`, and every invalid chunk is still refused before sending.
"""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pmsg.errors import LocalProtocolError
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
