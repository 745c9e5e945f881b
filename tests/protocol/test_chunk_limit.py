"""The file chunk limit (192 KiB) against the frame limit, and the flow-control bytes.

A chunk of `MAX_CHUNK_SIZE` must fit one frame under every suite with the
largest header any field can make (epoch 2^32-1, counter 2^64-2, offset near
2^40): `MAX_RECORD_OVERHEAD` is that bound, and the sender's default window
keeps the bytes in flight it had before the limit grew.
"""

from __future__ import annotations

import msgpack
import pytest

from p2pmsg.crypto.suites import SUITE_NAMES, available_suite_names, get_suite
from p2pmsg.node.transfers import manager
from p2pmsg.node.transfers.sender import CHUNK_SIZE, DEFAULT_WINDOW, WINDOW_BYTES
from p2pmsg.protocol.framing import FrameDecoder
from p2pmsg.protocol.limits import (
    MAX_CHUNK_SIZE,
    MAX_COUNTER,
    MAX_EPOCH,
    MAX_FILE_SIZE,
    MAX_FRAME_SIZE,
    MAX_RECORD_OVERHEAD,
    MAX_UNACKED_BYTES,
    RECORD_VERSION,
)
from p2pmsg.protocol.message_types import FileChunk
from p2pmsg.protocol.messages import TimeWindow, decode_message, encode_message
from p2pmsg.protocol.wire import FRAME_RECORD, RecordFrame, decode_frame, msgpack_bin_header
from tests.protocol.test_record import NOW, _layers

TID = bytes(range(16))
ANY_TIME = TimeWindow(NOW, 300.0, 30 * 24 * 3600.0)


def _largest_body(suite_name: str, length: int = MAX_CHUNK_SIZE) -> int:
    """The frame body of a chunk at the last offset, with the largest header."""
    suite = get_suite(suite_name)
    plaintext = encode_message(FileChunk(TID, MAX_FILE_SIZE - length, bytes(length)))
    size = suite.sealed_size(len(plaintext))
    head = msgpack.packb(
        [FRAME_RECORD, RECORD_VERSION, MAX_EPOCH, MAX_COUNTER - 1, suite.suite_id, b""],
        use_bin_type=True,
    )[:-2] + msgpack_bin_header(size)
    return len(head) + size


@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_the_largest_chunk_fits_one_frame_under_every_suite(suite: str) -> None:
    body = _largest_body(suite)
    assert body - MAX_CHUNK_SIZE <= MAX_RECORD_OVERHEAD
    assert body <= MAX_FRAME_SIZE


def test_the_overhead_bound_is_tight_for_twofish() -> None:
    # Twofish pads a whole block onto a block-aligned plaintext (the message around the
    # data is 34 bytes here): the bound is met exactly, never passed.
    length = MAX_CHUNK_SIZE - 2
    assert (length + 34) % 16 == 0
    assert _largest_body("twofish-cbc-hmac-sha256", length) - length == MAX_RECORD_OVERHEAD


@pytest.mark.parametrize("suite", [s for s in SUITE_NAMES if s in available_suite_names()])
def test_a_full_chunk_is_sealed_and_opened_through_the_record_layer(suite: str) -> None:
    a, b = _layers(suites=(suite,))
    data = bytes(i % 251 for i in range(MAX_CHUNK_SIZE))
    chunk = FileChunk(TID, 3 * MAX_CHUNK_SIZE, data)
    frames = list(FrameDecoder().feed(a.seal(encode_message(chunk), NOW)))
    assert len(frames) == 1 and len(frames[0]) <= MAX_FRAME_SIZE
    frame = decode_frame(frames[0])
    assert isinstance(frame, RecordFrame)
    assert decode_message(b.open(frame, NOW), ANY_TIME) == chunk


def test_the_default_window_keeps_the_bytes_in_flight() -> None:
    assert CHUNK_SIZE == MAX_CHUNK_SIZE
    assert DEFAULT_WINDOW >= 2  # room for an ack's round trip while a batch is written
    assert DEFAULT_WINDOW * CHUNK_SIZE <= WINDOW_BYTES <= MAX_UNACKED_BYTES
    assert WINDOW_BYTES - DEFAULT_WINDOW * CHUNK_SIZE < CHUNK_SIZE
    assert manager.MAX_UNACKED_BYTES == MAX_UNACKED_BYTES == 4 * 1024 * 1024
