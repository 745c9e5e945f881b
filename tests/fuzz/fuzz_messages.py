"""Fuzz target 2: the validators that turn decoded msgpack into typed messages.

Input: one selector byte, then the body. Selector % 4:

  0  `decode_message` (a record plaintext -> Chat, Receipt, File*, Rekey, ...)
  1  `decode_frame` (a frame body -> HandshakeFrame, RecordFrame, AbortFrame)
  2  the handshake payload validator (message 1, 2 or 3 by selector // 4 % 3),
     then the suite list and display-name checks the handshake applies to it
  3  `unpack_limited`, the raw msgpack-with-limits decode, under limits taken
     from the next four bytes

Properties: only the documented error escapes (`RemoteProtocolError`, incl. its
`ReplayError` subclass, for messages and frames; `HandshakeError` for handshake
payloads); what is accepted has the right type, survives encode -> decode
unchanged, and (for user messages) passes `check_outgoing`: anything we accept
from a peer we would also send, so the two directions agree on the rules.

Run: python -m tests.fuzz.fuzz_messages -max_total_time=600   (README, "Fuzzing")
"""

from __future__ import annotations

from tests.fuzz.launcher import fuzz_main, instrumented

with instrumented(__name__ == "__main__"):
    from p2pmsg.errors import HandshakeError, RemoteProtocolError
    from p2pmsg.protocol import handshake
    from p2pmsg.protocol.messages import (
        PAIR_MESSAGES,
        USER_MESSAGES,
        AppMessage,
        BundleOffer,
        Bye,
        Chat,
        FileAccept,
        FileAck,
        FileCancel,
        FileChunk,
        FileDecline,
        FileDone,
        FileOffer,
        GroupOpMessage,
        GroupPostMessage,
        GroupSummaryMessage,
        Ping,
        Pong,
        Receipt,
        Rekey,
        TimeWindow,
        check_outgoing,
        decode_message,
        encode_message,
    )
    from p2pmsg.protocol.wire import decode_frame, unpack_limited
    from tests.fuzz.fuzz_frames import reencode
    from tests.fuzz.session import FUZZ_CONFIG, START_TIME

APP_TYPES = (
    Chat,
    Receipt,
    FileOffer,
    FileAccept,
    FileDecline,
    FileChunk,
    FileAck,
    FileDone,
    FileCancel,
    BundleOffer,
    Rekey,
    Ping,
    Pong,
    Bye,
    # Groups: items are envelopes here (the group service judges body, signature and a
    # post's text), summaries are checked in full (docs/PROTOCOL.md "Groups").
    GroupOpMessage,
    GroupPostMessage,
    GroupSummaryMessage,
    *PAIR_MESSAGES,
)
WINDOW = TimeWindow(START_TIME, FUZZ_CONFIG.max_clock_skew, FUZZ_CONFIG.max_message_age)
#: The handshake's private payload validator: the one place a payload's shape is
#: checked (test-only use; the connection target reaches it through Noise as well).
PAYLOAD_KEYS = (handshake._OFFER_KEYS, handshake._RESPONSE_KEYS, handshake._FINAL_KEYS)
MSGPACK_TYPES = (type(None), bool, int, float, str, bytes, list, dict)


def check_message(body: bytes) -> None:
    try:
        message: AppMessage = decode_message(body, WINDOW)
    except RemoteProtocolError:
        return
    if type(message) not in APP_TYPES:
        raise AssertionError(f"decode_message returned {type(message).__name__}")
    again = decode_message(encode_message(message), WINDOW)
    if again != message:
        raise AssertionError(f"message changed in encode/decode: {message!r} -> {again!r}")
    if type(message) in USER_MESSAGES:
        check_outgoing(message)  # LocalProtocolError here: we accept what we would not send


def check_frame(body: bytes) -> None:
    try:
        frame = decode_frame(body)
    except RemoteProtocolError:
        return
    if decode_frame(reencode(frame)) != frame:
        raise AssertionError(f"frame changed in encode/decode: {frame!r}")


def check_payload(body: bytes, which: int) -> None:
    keys = PAYLOAD_KEYS[which % 3]
    try:
        fields = handshake._decode(body, keys, f"message {which % 3 + 1}")
        if type(fields) is not dict or fields.keys() != keys:
            raise AssertionError(f"payload validator returned {fields!r}")
        if "suites" in fields:
            handshake._suite_list(fields["suites"], "offered")
        if "name" in fields:
            handshake.check_display_name(fields["name"])
    except HandshakeError:
        return


def check_unpack(body: bytes) -> None:
    limits, body = body[:4].ljust(4, b"\x00"), body[4:]
    try:
        obj = unpack_limited(
            body,
            what="fuzz",
            max_array=limits[0],
            max_map=limits[1],
            max_str=limits[2] * 4,
            max_bin=limits[3] * 4,
        )
    except RemoteProtocolError:
        return
    stack = [obj]
    while stack:
        item = stack.pop()
        if type(item) not in MSGPACK_TYPES:
            raise AssertionError(f"unpack_limited produced a {type(item).__name__}")
        if type(item) is list:
            if len(item) > limits[0]:
                raise AssertionError("array longer than max_array")
            stack.extend(item)
        elif type(item) is dict:
            if len(item) > limits[1] or any(type(k) is not str for k in item):
                raise AssertionError("map over max_map or with a non-str key")
            stack.extend(item.values())
        elif type(item) is str and len(item.encode("utf-8")) > limits[2] * 4:
            raise AssertionError("str longer than max_str")
        elif type(item) is bytes and len(item) > limits[3] * 4:
            raise AssertionError("bin longer than max_bin")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    selector, body = data[0], data[1:]
    target = selector % 4
    if target == 0:
        check_message(body)
    elif target == 1:
        check_frame(body)
    elif target == 2:
        check_payload(body, selector // 4)
    else:
        check_unpack(body)


if __name__ == "__main__":
    fuzz_main("messages", test_one_input)
