"""Length-prefixed framing: a 4-byte big-endian length, then that many body bytes.

The length is checked before a single body byte is buffered, so a peer that
declares a 4 GiB frame costs us four bytes of buffer and one security event,
not memory. A zero length is rejected too: no frame type is empty, and a
stream of zero-length frames would otherwise be a free busy loop.
"""

from __future__ import annotations

import struct
from collections import deque
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

    `feed(data)` takes `data` at once (the complete frames cut out of it, a
    frame it ends inside of buffered) and returns an iterator over the
    complete frames now available, in order. When it meets a bad length the
    iterator raises `RemoteProtocolError` at that point, after yielding every
    good frame before it, and the decoder stays failed (`failed` from that
    `feed` on): the stream has lost its framing and nothing after the bad
    length can be trusted.

    Consume each iterator before the next `feed`; frames not yet taken stay
    buffered and come out of the next iterator.
    """

    __slots__ = ("_buffer", "_error", "_ready", "max_frame_size")

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        if not 0 < max_frame_size <= MAX_FRAME_SIZE:
            raise LocalProtocolError(f"max_frame_size must be 1..{MAX_FRAME_SIZE}")
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._ready: deque[bytes] = deque()  # cut, not yet handed out
        self._error: str | None = None

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet form a whole frame (non-zero at EOF = truncation)."""
        return len(self._buffer)

    @property
    def failed(self) -> bool:
        return self._error is not None

    def feed(self, data: bytes | memoryview) -> Iterator[bytes]:
        # `data` is never kept: a driver may pass a view of a buffer it reuses. Whole
        # frames in it are cut out of it directly, one copy each, and only a frame cut
        # by the end of `data` is buffered: for a 256 MiB file, going through the
        # buffer first cost the receiver a second copy of every byte. Frames are cut at
        # once and wait in `_ready` until the iterator hands them out; a bad length is
        # raised after the good frames before it, as if met while iterating.
        if self._error is not None and not self._ready:
            raise RemoteProtocolError(self._error)
        if self._error is None:
            with memoryview(data) as view:
                flat = view if view.format == "B" and view.ndim == 1 else view.cast("B")
                try:
                    self._cut(flat, self._ready)
                except RemoteProtocolError:
                    self._buffer = bytearray()  # drop what can no longer be parsed
        return self._frames()

    def _frames(self) -> Iterator[bytes]:
        ready = self._ready
        while ready:
            yield ready.popleft()
        if self._error is not None:
            raise RemoteProtocolError(self._error)

    def _cut(self, view: memoryview, frames: deque[bytes]) -> None:
        buffer = self._buffer
        limit = self.max_frame_size
        total = len(view)
        pos = 0
        if buffer:  # finish the frame the last feed ended inside of, then go on from `view`
            if len(buffer) < FRAME_HEADER_SIZE:
                pos = min(FRAME_HEADER_SIZE - len(buffer), total)
                buffer += view[:pos]
                if len(buffer) < FRAME_HEADER_SIZE:
                    return
            end = FRAME_HEADER_SIZE + self._size(_unpack_length(buffer, 0)[0], limit)
            take = min(end - len(buffer), total - pos)
            buffer += view[pos : pos + take]
            pos += take
            if len(buffer) < end:
                return
            with memoryview(buffer) as held:
                frames.append(bytes(held[FRAME_HEADER_SIZE:end]))
            buffer.clear()
        while total - pos >= FRAME_HEADER_SIZE:
            end = pos + FRAME_HEADER_SIZE + self._size(_unpack_length(view, pos)[0], limit)
            if end > total:
                break
            frames.append(bytes(view[pos + FRAME_HEADER_SIZE : end]))
            pos = end
        if pos < total:
            buffer += view[pos:]

    def _size(self, size: int, limit: int) -> int:
        if size == 0 or size > limit:
            self._error = (
                "zero-length frame"
                if size == 0
                else f"frame length {size} exceeds the limit of {limit} bytes"
            )
            raise RemoteProtocolError(self._error)
        return size
