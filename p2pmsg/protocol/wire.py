"""Frame bodies: hardened msgpack decoding and the three outer frame types.

Every frame body is a msgpack array whose first element is the frame type:

    [1, noise_message: bin]                                   HANDSHAKE
    [2, version: int, epoch: int, counter: int, suite: int,
        sealed: bin]                                          RECORD
    [3, reason: str]                                          ABORT (handshake only)

`decode_frame` is the one place a frame body is checked: it returns a typed,
frozen frame or raises `RemoteProtocolError` with a precise reason. Nothing
else in the protocol looks at raw msgpack objects of the outer layer.

msgpack is decoded with hard per-context limits (lengths of str, bin, array,
map; no ext types; string map keys only). The whole input is already bounded
by the frame length, so the limits stop a small frame from declaring a huge
container; nesting depth is bounded by msgpack's own parser stack, and the
shape checks below reject any nesting the schema does not have.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

import msgpack

from p2pmsg.errors import RemoteProtocolError
from p2pmsg.protocol.framing import encode_frame
from p2pmsg.protocol.limits import (
    FRAME_MAX_ARRAY,
    FRAME_MAX_MAP,
    FRAME_MAX_STR,
    MAX_COUNTER,
    MAX_EPOCH,
    MAX_FRAME_SIZE,
    MAX_NOISE_MESSAGE,
    MAX_REASON_BYTES,
)

# What a terminal may interpret: C0 controls (but TAB and LF in chat text), DEL, and C1
# controls. Checked on the UTF-8 bytes with bytes.translate, which is several times
# faster than a regex over the str; C1 controls (U+0080..U+009F) are b"\xc2\x80".."\xc2\x9f"
# in UTF-8, so only text containing a 0xC2 byte needs the slower second look.
_C0_BUT_TAB_LF = bytes(range(0x00, 0x09)) + bytes(range(0x0B, 0x20)) + b"\x7f"
_C0_ALL = bytes(range(0x00, 0x20)) + b"\x7f"
_C1 = re.compile("[\x80-\x9f]")


def has_controls(data: bytes, text: str, allow_tab_lf: bool) -> bool:
    """Whether `text` (whose UTF-8 encoding is `data`) holds a C0 control, DEL or a C1
    control. Wire rule only: bidi and zero-width characters are valid text here and are
    made visible at output by `p2pmsg.sanitize.printable`."""
    if len(data.translate(None, _C0_BUT_TAB_LF if allow_tab_lf else _C0_ALL)) != len(data):
        return True
    return b"\xc2" in data and _C1.search(text) is not None


FRAME_HANDSHAKE = 1
FRAME_RECORD = 2
#: fixarray of 6, then FRAME_RECORD: how every record frame body begins
_RECORD_ARRAY_HEAD = bytes((0x96, FRAME_RECORD))
FRAME_ABORT = 3


def _reject_ext(code: int, data: bytes) -> NoReturn:
    raise RemoteProtocolError(f"msgpack ext type {code} is not allowed")


def _str_keyed(pairs: list[tuple[object, object]]) -> dict[object, object]:
    # strict_map_key=True still admits bytes keys; the spec allows str only.
    for key, _ in pairs:
        if type(key) is not str:
            raise RemoteProtocolError(
                f"msgpack map key of type {type(key).__name__}; keys must be str"
            )
    return dict(pairs)


def unpack_limited(
    data: bytes, *, what: str, max_array: int, max_map: int, max_str: int, max_bin: int
) -> object:
    """Decode one msgpack object under hard limits; any failure is `RemoteProtocolError`.

    `what` names the context in the error ("frame", "handshake payload", ...).
    Trailing bytes after the object are an error too.
    """
    try:
        return msgpack.unpackb(
            data,
            use_list=True,
            raw=False,
            strict_map_key=True,
            timestamp=0,
            ext_hook=_reject_ext,
            object_pairs_hook=_str_keyed,
            max_ext_len=0,
            max_array_len=max_array,
            max_map_len=max_map,
            max_str_len=max_str,
            max_bin_len=max_bin,
        )
    except RemoteProtocolError:
        raise
    except msgpack.ExtraData:
        raise RemoteProtocolError(f"{what}: trailing bytes after the msgpack object") from None
    except msgpack.StackError:
        raise RemoteProtocolError(f"{what}: msgpack nested too deeply") from None
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"{what}: string is not valid UTF-8") from None
    except Exception as exc:  # any parser failure is the peer's fault
        # msgpack signals limits, truncation and bad type bytes with ValueError or its
        # own subclasses; the text names the limit, which helps whoever reads the log.
        raise RemoteProtocolError(f"{what}: undecodable msgpack ({exc})") from None


@dataclass(frozen=True, slots=True)
class HandshakeFrame:
    noise: bytes


@dataclass(frozen=True, slots=True)
class RecordFrame:
    version: int
    epoch: int
    counter: int
    suite_id: int
    #: a received frame's is a read-only view of the frame's bytes (no copy)
    sealed: bytes | memoryview


@dataclass(frozen=True, slots=True)
class AbortFrame:
    reason: str


Frame = HandshakeFrame | RecordFrame | AbortFrame


def _pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def msgpack_uint(value: int) -> bytes:
    """A non-negative int as msgpack encodes it: the shortest of fixint, uint 8/16/32/64.
    With `msgpack_bin_header`, for hot paths that write an encoding around a large bin
    themselves instead of copying it through `packb`."""
    if value < 0x80:
        return bytes((value,))
    if value < 0x100:
        return b"\xcc" + value.to_bytes(1, "big")
    if value < 0x10000:
        return b"\xcd" + value.to_bytes(2, "big")
    if value < 0x100000000:
        return b"\xce" + value.to_bytes(4, "big")
    return b"\xcf" + value.to_bytes(8, "big")


def msgpack_bin_header(size: int) -> bytes:
    """The msgpack header of a bin of `size` bytes (bin 8, 16 or 32, as msgpack picks)."""
    if size < 0x100:
        return b"\xc4" + size.to_bytes(1, "big")
    if size < 0x10000:
        return b"\xc5" + size.to_bytes(2, "big")
    return b"\xc6" + size.to_bytes(4, "big")


#: the width of a msgpack uint or bin length after its tag byte
_UINT_WIDTH = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
_BIN_WIDTH = {0xC4: 1, 0xC5: 2, 0xC6: 4}


def read_uint(data: bytes, pos: int) -> tuple[int, int] | None:
    """The msgpack uint at `pos` (any width, as msgpack reads it) and where it ends, or
    None when something else (or nothing) is there. With `read_bin_tail`, for the hot
    paths that read a large bin without msgpack copying it; whatever they cannot read
    goes to the general decoder, which decides and words the error."""
    if pos >= len(data):
        return None
    tag = data[pos]
    if tag <= 0x7F:
        return tag, pos + 1
    width = _UINT_WIDTH.get(tag)
    if width is None or pos + 1 + width > len(data):
        return None
    return int.from_bytes(data[pos + 1 : pos + 1 + width], "big"), pos + 1 + width


def read_bin_tail(data: bytes, pos: int) -> memoryview | None:
    """The msgpack bin at `pos` as a view, if it is exactly the rest of `data` (else None).
    `data` must be immutable (bytes): the view is handed on."""
    if pos >= len(data):
        return None
    width = _BIN_WIDTH.get(data[pos])
    if width is None:
        return None
    start = pos + 1 + width
    if start > len(data) or int.from_bytes(data[pos + 1 : start], "big") != len(data) - start:
        return None
    return memoryview(data)[start:]


def _decode_record_frame(body: bytes) -> RecordFrame | None:
    """A valid RECORD frame read without msgpack, `sealed` a view of `body` instead of a
    copy (records are nearly every frame, and a file chunk's is 192 KiB). Only shapes
    the general decoder turns into the same valid frame; anything else returns None
    (tests/protocol/test_record_frame_codec.py holds the two to that)."""
    if type(body) is not bytes or body[:2] != _RECORD_ARRAY_HEAD:
        return None
    fields = []
    pos = 2
    for limit in (255, MAX_EPOCH, MAX_COUNTER, 255):  # version, epoch, counter, suite
        read = read_uint(body, pos)
        if read is None or read[0] > limit:
            return None
        fields.append(read[0])
        pos = read[1]
    sealed = read_bin_tail(body, pos)
    if sealed is None:
        return None
    version, epoch, counter, suite_id = fields
    return RecordFrame(version, epoch, counter, suite_id, sealed)


def encode_handshake(noise_message: bytes) -> bytes:
    """A complete HANDSHAKE frame (length prefix included)."""
    return encode_frame(_pack([FRAME_HANDSHAKE, noise_message]))


def encode_record(version: int, epoch: int, counter: int, suite_id: int, sealed: bytes) -> bytes:
    """A complete RECORD frame (length prefix included)."""
    return encode_frame(_pack([FRAME_RECORD, version, epoch, counter, suite_id, sealed]))


def encode_abort(reason: str) -> bytes:
    """A complete ABORT frame; the reason is cut to the wire limit."""
    raw = reason.encode("utf-8")[:MAX_REASON_BYTES].decode("utf-8", "ignore")
    return encode_frame(_pack([FRAME_ABORT, raw]))


def decode_frame(body: bytes) -> Frame:
    """Validate one frame body into a typed frame, or raise `RemoteProtocolError`."""
    record = _decode_record_frame(body)
    if record is not None:
        return record
    obj = unpack_limited(
        body,
        what="frame",
        max_array=FRAME_MAX_ARRAY,
        max_map=FRAME_MAX_MAP,
        max_str=FRAME_MAX_STR,
        max_bin=MAX_FRAME_SIZE,
    )
    if type(obj) is not list or not obj:
        raise RemoteProtocolError(f"frame: expected a non-empty array, got {type(obj).__name__}")
    kind = obj[0]
    # The record is by far the most common frame: test for it first and inline its checks.
    if kind == FRAME_RECORD and type(kind) is int:
        if len(obj) != 6:
            raise RemoteProtocolError(f"record frame: expected 6 elements, got {len(obj)}")
        _, version, epoch, counter, suite_id, sealed = obj
        if type(version) is not int or not 0 <= version <= 255:
            bad_field("record frame", "version", version, "an integer 0..255")
        if type(epoch) is not int or not 0 <= epoch <= MAX_EPOCH:
            bad_field("record frame", "epoch", epoch, "an integer 0..2^32-1")
        if type(counter) is not int or not 0 <= counter <= MAX_COUNTER:
            bad_field("record frame", "counter", counter, "an integer 0..2^64-1")
        if type(suite_id) is not int or not 0 <= suite_id <= 255:
            bad_field("record frame", "suite", suite_id, "an integer 0..255")
        if type(sealed) is not bytes:
            bad_field("record frame", "sealed", sealed, "bin")
        return RecordFrame(version, epoch, counter, suite_id, sealed)
    if kind == FRAME_HANDSHAKE and type(kind) is int:
        if len(obj) != 2:
            raise RemoteProtocolError(f"handshake frame: expected 2 elements, got {len(obj)}")
        noise = obj[1]
        if type(noise) is not bytes or not 0 < len(noise) <= MAX_NOISE_MESSAGE:
            bad_field("handshake frame", "noise", noise, f"bin of 1..{MAX_NOISE_MESSAGE} bytes")
        return HandshakeFrame(noise)
    if kind == FRAME_ABORT and type(kind) is int:
        if len(obj) != 2:
            raise RemoteProtocolError(f"abort frame: expected 2 elements, got {len(obj)}")
        # Validated like a bye reason: anyone can send an ABORT before any handshake,
        # and its reason ends up in security events and on `listen`'s screen. A bad
        # one is a malformed frame like any other (frame_rejected, the connection
        # ends), not text to clean up and pass on: the sender broke the spec.
        return AbortFrame(check_line("abort frame", "reason", obj[1], MAX_REASON_BYTES))
    raise RemoteProtocolError(f"frame: unknown frame type {describe(kind)}")


def describe(value: object) -> str:
    """A short, safe description of a peer-supplied value for an error message."""
    if isinstance(value, bool | int | float) or value is None:
        return repr(value)
    if isinstance(value, bytes | str):
        return f"{type(value).__name__} of length {len(value)}"
    return type(value).__name__


def bad_field(where: str, field: str, value: object, expected: str) -> NoReturn:
    raise RemoteProtocolError(f"{where}: field {field!r} must be {expected}, got {describe(value)}")


def check_line(where: str, field: str, value: object, max_bytes: int) -> str:
    """A reason (ABORT, bye, file_decline, file_cancel): one line of at most `max_bytes`
    UTF-8 bytes with no control character at all, or `RemoteProtocolError`."""
    if type(value) is str:
        data = value.encode("utf-8", "surrogatepass")
        if len(data) <= max_bytes and not has_controls(data, value, allow_tab_lf=False):
            return value
    bad_field(where, field, value, f"one line of text, at most {max_bytes} bytes, no controls")
