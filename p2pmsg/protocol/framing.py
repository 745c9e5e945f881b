"""Length-prefixed framing: a 4-byte big-endian length, then that many body bytes.

The length is checked before a single body byte is buffered, so a peer that
declares a 4 GiB frame costs us four bytes of buffer and one security event,
not memory. A zero length is rejected too: no frame type is empty, and a
stream of zero-length frames would otherwise be a free busy loop.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from p2pmsg.errors import LocalProtocolError, RemoteProtocolError
from p2pmsg.protocol.limits import FRAME_HEADER_SIZE, MAX_FRAME_SIZE

_LENGTH = struct.Struct(">I")
_unpack_length = _LENGTH.unpack_from
_pack_length = _LENGTH.pack


def encode_frame(body: bytes, max_frame_size: int = MAX_FRAME_SIZE) -> bytes:
    """Prefix `body` with its length. An empty or oversized body is our own bug."""
    size = len(body)
    if not 0 < size <= max_frame_size:
        raise LocalProtocolError(f"frame body of {size} bytes is outside 1..{max_frame_size}")
    return _pack_length(size) + body


def encode_frame_length(size: int) -> bytes:
    """The 4-byte prefix of a frame whose `size`-byte body the caller writes after it."""
    return _pack_length(size)


class FrameDecoder:
    """Cuts a byte stream into frame bodies.

    `feed(data)` buffers `data` at once and returns an iterator over the
    complete frames now available, in order. When it meets a bad length the
    iterator raises `RemoteProtocolError` at that point, after yielding every
    good frame before it, and the decoder stays failed: the stream has lost
    its framing and nothing after the bad length can be trusted.

    Consume each iterator before the next `feed`; frames not yet taken stay
    buffered and come out of the next iterator.
    """

    __slots__ = ("_buffer", "_error", "max_frame_size")

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        if not 0 < max_frame_size <= MAX_FRAME_SIZE:
            raise LocalProtocolError(f"max_frame_size must be 1..{MAX_FRAME_SIZE}")
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._error: str | None = None

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet form a whole frame (non-zero at EOF = truncation)."""
        return len(self._buffer)

    @property
    def failed(self) -> bool:
        return self._error is not None

    def feed(self, data: bytes | memoryview) -> Iterator[bytes]:
        # `data` is copied in, never kept: a driver may pass a view of a buffer it reuses.
        if self._error is not None:
            raise RemoteProtocolError(self._error)
        self._buffer += data
        return self._frames()

    def _frames(self) -> Iterator[bytes]:
        buffer = self._buffer
        limit = self.max_frame_size
        while len(buffer) >= FRAME_HEADER_SIZE:
            (size,) = _unpack_length(buffer, 0)
            if size == 0 or size > limit:
                self._error = (
                    "zero-length frame"
                    if size == 0
                    else f"frame length {size} exceeds the limit of {limit} bytes"
                )
                self._buffer = bytearray()  # drop what can no longer be parsed
                raise RemoteProtocolError(self._error)
            end = FRAME_HEADER_SIZE + size
            if len(buffer) < end:
                return
            with memoryview(buffer) as view:  # one copy (a bytearray slice is one more)
                frame = bytes(view[FRAME_HEADER_SIZE:end])
            # Deleting from the front of a bytearray is amortised O(1) in CPython.
            del buffer[:end]
            yield frame
