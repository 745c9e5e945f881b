"""Fuzz target 1: the frame decoder, under arbitrary chunking.

Input: one byte choosing the chunking and the frame-size limit, then the byte
stream. Properties:

- `FrameDecoder.feed` raises nothing but `RemoteProtocolError`, and once it
  has, every later `feed` raises it again (a stream that lost its framing
  stays failed);
- cutting the stream into any chunks yields exactly the frames, the error and
  the leftover that feeding it whole does (the decoder has no chunk-boundary
  state to get wrong);
- every frame is 1..limit bytes, and `decode_frame` turns it into a typed frame
  or a `RemoteProtocolError`; a typed frame survives encode -> decode unchanged.

Run: python -m tests.fuzz.fuzz_frames -max_total_time=600   (README, "Fuzzing")
"""

from __future__ import annotations

from tests.fuzz.launcher import fuzz_main, instrumented

with instrumented(__name__ == "__main__"):
    from p2pmsg.errors import RemoteProtocolError
    from p2pmsg.protocol.framing import FrameDecoder
    from p2pmsg.protocol.limits import FRAME_HEADER_SIZE, MAX_FRAME_SIZE
    from p2pmsg.protocol.wire import (
        AbortFrame,
        Frame,
        HandshakeFrame,
        RecordFrame,
        decode_frame,
        encode_abort,
        encode_handshake,
        encode_record,
    )

#: A small limit too, so the over-limit path is reached by short inputs.
SMALL_LIMIT = 64


def decode_stream(
    stream: bytes, chunks: list[int], limit: int
) -> tuple[list[bytes], str | None, int]:
    """Feed `stream` cut at the given chunk sizes (cycled); the frames, the error, the rest."""
    decoder = FrameDecoder(limit)
    frames: list[bytes] = []
    error: str | None = None
    pos = index = 0
    while pos < len(stream) or not chunks:
        size = len(stream) - pos if not chunks else chunks[index % len(chunks)]
        index += 1
        piece = stream[pos : pos + size]
        pos += len(piece)
        try:
            frames.extend(decoder.feed(piece))
        except RemoteProtocolError as exc:
            error = str(exc)
            break
        if not chunks:
            break
    if error is not None:
        if not decoder.failed:
            raise AssertionError("decoder raised but does not report failed")
        try:
            list(decoder.feed(b"\x00\x00\x00\x01x"))
        except RemoteProtocolError:
            pass
        else:
            raise AssertionError("a failed decoder accepted more data")
    return frames, error, decoder.buffered


def chunk_plan(selector: int) -> list[int]:
    """Chunk sizes from one byte: 0 whole, else a cycle mixing tiny and larger pieces."""
    if selector == 0:
        return []
    base = selector >> 1 or 1
    return [base, 1, base // 3 + 1, FRAME_HEADER_SIZE - 1, 2 * base + 5]


def reencode(frame: Frame) -> bytes:
    if type(frame) is HandshakeFrame:
        wire = encode_handshake(frame.noise)
    elif type(frame) is RecordFrame:
        wire = encode_record(
            frame.version, frame.epoch, frame.counter, frame.suite_id, frame.sealed
        )
    else:
        assert type(frame) is AbortFrame
        wire = encode_abort(frame.reason)
    return wire[FRAME_HEADER_SIZE:]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    selector, stream = data[0], data[1:]
    limit = MAX_FRAME_SIZE if selector & 1 else SMALL_LIMIT
    whole = decode_stream(stream, [], limit)
    cut = decode_stream(stream, chunk_plan(selector), limit)
    if whole[:2] != cut[:2] or (whole[1] is None and whole[2] != cut[2]):
        raise AssertionError(f"chunking changed the result: whole={whole!r} cut={cut!r}")
    for body in whole[0]:
        if not 0 < len(body) <= limit:
            raise AssertionError(f"frame of {len(body)} bytes passed a limit of {limit}")
        try:
            frame = decode_frame(body)
        except RemoteProtocolError:
            continue
        if type(frame) not in (HandshakeFrame, RecordFrame, AbortFrame):
            raise AssertionError(f"decode_frame returned {type(frame).__name__}")
        again = decode_frame(reencode(frame))
        if again != frame:
            raise AssertionError(f"frame changed in encode/decode: {frame!r} -> {again!r}")


if __name__ == "__main__":
    fuzz_main("frames", test_one_input)
