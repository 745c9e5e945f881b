"""`RecordLayer.seal_parts`: the two pieces make exactly the frame `encode_record` makes.

The header is built by hand around the ciphertext (so the ciphertext is copied
once, not three times); msgpack switches bin 8 / 16 / 32 at 256 and 65536 bytes,
so sizes either side of each switch are checked, up to a full file chunk.
"""

from __future__ import annotations

import pytest

from p2pmsg.protocol.framing import FrameDecoder
from p2pmsg.protocol.limits import MAX_CHUNK_SIZE, RECORD_VERSION
from p2pmsg.protocol.wire import RecordFrame, decode_frame, encode_record
from tests.protocol.test_record import NOW, _layers

TAG = 16  # every suite's ciphertext here is the plaintext plus a 16-byte tag (AES-GCM)


@pytest.mark.parametrize(
    "size", [0, 1, 255 - TAG, 256 - TAG, 65535 - TAG, 65536 - TAG, MAX_CHUNK_SIZE + 40]
)
def test_parts_join_to_the_msgpack_frame(size: int) -> None:
    a, b = _layers(suites=("aes-256-gcm",))
    head, sealed = a.seal_parts(bytes(size), NOW)
    assert len(sealed) == size + TAG
    wire = head + sealed
    body = next(FrameDecoder().feed(wire))
    frame = decode_frame(body)
    assert isinstance(frame, RecordFrame)
    assert wire == encode_record(RECORD_VERSION, frame.epoch, frame.counter, frame.suite_id, sealed)
    assert b.open(frame, NOW) == bytes(size)


def test_seal_is_the_joined_parts() -> None:
    a, b = _layers(suites=("aes-256-gcm",))
    for text in (b"one", b"two" * 100):
        frame = decode_frame(next(FrameDecoder().feed(a.seal(text, NOW))))
        assert isinstance(frame, RecordFrame)
        assert b.open(frame, NOW) == text
