"""Two PeerConnections joined in memory: the whole session, and every way a peer can misbehave."""

from __future__ import annotations

import os
import struct

import msgpack
import pytest

from p2pmsg.errors import LocalProtocolError
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import (
    CipherChanged,
    ConnectionClosed,
    HandshakeCompleted,
    KeysRotated,
    RekeyCompleted,
    SecurityEventRaised,
    UserMessageReceived,
)
from p2pmsg.protocol.framing import FrameDecoder, encode_frame
from p2pmsg.protocol.limits import ProtocolConfig
from p2pmsg.protocol.messages import Chat, FileOffer, Ping, Receipt, new_chat
from p2pmsg.protocol.wire import RecordFrame, decode_frame, encode_abort, encode_record
from tests.protocol.pair import Clock, Pair, identity, make_pair

ALL = ("aes-256-gcm", "chacha20-poly1305", "twofish-cbc-hmac-sha256")


def _chat(pair: Pair, text: str) -> Chat:
    return new_chat(os.urandom, pair.clock(), text)


def _texts(pair: Pair, side: str) -> list[str]:
    return [
        e.message.text
        for e in pair.of_type(side, UserMessageReceived)  # type: ignore[attr-defined]
        if isinstance(e.message, Chat)
    ]  # type: ignore[attr-defined]


def _security(pair: Pair, side: str) -> list[str]:
    return [e.event for e in pair.of_type(side, SecurityEventRaised)]  # type: ignore[attr-defined]


def _closed(pair: Pair, side: str) -> list[str]:
    return [e.reason for e in pair.of_type(side, ConnectionClosed)]  # type: ignore[attr-defined]


def _frames(data: bytes) -> list[bytes]:
    """Split a byte string into whole frames (length prefix included)."""
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        out.append(data[pos : pos + 4 + n])
        pos += 4 + n
    return out


def test_handshake_completes_on_both_sides() -> None:
    pair = make_pair()
    [ha] = pair.of_type("a", HandshakeCompleted)
    [hb] = pair.of_type("b", HandshakeCompleted)
    assert ha.peer.public_key == pair.b_identity.public_key  # type: ignore[attr-defined]
    assert hb.peer.name == "alice"  # type: ignore[attr-defined]
    assert ha.handshake_hash == hb.handshake_hash == pair.a.handshake_hash  # type: ignore[attr-defined]
    assert pair.a.state == pair.b.state == "established"
    status = pair.a.status()
    assert status is not None and status.send.epoch == 0 and status.send.suite == "aes-256-gcm"
    assert pair.b.start() == b""


def test_thousands_of_messages_both_ways_across_count_rotations() -> None:
    pair = make_pair(
        ProtocolConfig(max_messages_per_key=97), ProtocolConfig(max_messages_per_key=61)
    )
    n = 2000
    for start in range(0, n, 50):
        pair.deliver(
            pair.a.send_messages([_chat(pair, f"a{i}") for i in range(start, start + 50)]),
            pair.b.send_messages([_chat(pair, f"b{i}") for i in range(start, start + 50)]),
        )
    assert _texts(pair, "b") == [f"a{i}" for i in range(n)]
    assert _texts(pair, "a") == [f"b{i}" for i in range(n)]
    sa, sb = pair.a.status(), pair.b.status()
    assert sa is not None and sb is not None
    assert sa.send.epoch == sb.recv.epoch == (n - 1) // 97
    assert sb.send.epoch == sa.recv.epoch == (n - 1) // 61
    rotated = [e for e in pair.of_type("a", KeysRotated) if e.direction == "send"]  # type: ignore[attr-defined]
    assert len(rotated) == (n - 1) // 97
    assert all(e.reason == "count" for e in rotated)  # type: ignore[attr-defined]
    assert not _security(pair, "a") and not _security(pair, "b")


def test_time_driven_rotation_with_an_injected_clock() -> None:
    cfg = ProtocolConfig(key_rotation_interval=600, keepalive_interval=1000, idle_timeout=5000)
    pair = make_pair(cfg, cfg)
    # An epoch in which nothing was sent is never left (the receiver must see every
    # epoch), so the first deadline is the keepalive, not the rotation.
    assert pair.a.get_timer() == pair.clock() + 1000
    pair.deliver(pair.a.send_message(_chat(pair, "first")))
    for step in range(3):
        assert pair.a.get_timer() == pair.clock() + 600
        pair.clock.advance(600)
        pair.timers()
        pair.deliver(pair.a.send_message(_chat(pair, f"after {step}")))
    sends = [e for e in pair.of_type("a", KeysRotated) if e.direction == "send"]  # type: ignore[attr-defined]
    recvs = [e for e in pair.of_type("b", KeysRotated) if e.direction == "recv"]  # type: ignore[attr-defined]
    assert [e.reason for e in sends] == ["time"] * 3  # type: ignore[attr-defined]
    assert [e.epoch for e in recvs] == [1, 2, 3]  # type: ignore[attr-defined]
    assert _texts(pair, "b") == ["first", "after 0", "after 1", "after 2"]
    status = pair.a.status()
    assert status is not None and status.send.last_rotation == pair.clock()


@pytest.mark.parametrize("suite", ALL)
def test_switch_to_each_suite(suite: str) -> None:
    pair = make_pair()
    start = "chacha20-poly1305" if suite == "aes-256-gcm" else "aes-256-gcm"
    pair.deliver(pair.a.switch_suite(start))
    pair.deliver(pair.a.switch_suite(suite))
    pair.deliver(b"", pair.b.switch_suite(suite))
    pair.deliver(
        pair.a.send_message(_chat(pair, "a under " + suite)),
        pair.b.send_message(_chat(pair, "b under " + suite)),
    )
    assert _texts(pair, "b") == ["a under " + suite]
    assert _texts(pair, "a") == ["b under " + suite]
    changed_b = [(e.direction, e.suite) for e in pair.of_type("b", CipherChanged)]  # type: ignore[attr-defined]
    assert ("recv", suite) in changed_b
    status_a, status_b = pair.a.status(), pair.b.status()
    assert status_a is not None and status_b is not None
    assert status_a.send.suite == status_b.recv.suite == suite
    assert status_b.send.suite == status_a.recv.suite == suite


def test_switching_to_a_suite_that_was_not_negotiated_is_our_error() -> None:
    pair = make_pair(ProtocolConfig(suites=("aes-256-gcm", "chacha20-poly1305")))
    with pytest.raises(LocalProtocolError, match="not negotiated"):
        pair.a.switch_suite("twofish-cbc-hmac-sha256")
    assert pair.a.state == "established"


def _rekeyed(pair: Pair) -> None:
    assert len(pair.of_type("a", RekeyCompleted)) >= 1
    assert len(pair.of_type("b", RekeyCompleted)) >= 1
    sa, sb = pair.a.status(), pair.b.status()
    assert sa is not None and sb is not None
    assert not sa.rekey_in_progress and not sb.rekey_in_progress
    pair.deliver(pair.a.send_message(_chat(pair, "post")), pair.b.send_message(_chat(pair, "post")))
    assert _texts(pair, "a")[-1] == _texts(pair, "b")[-1] == "post"
    assert not _security(pair, "a") and not _security(pair, "b")


@pytest.mark.parametrize("who", ["a", "b"])
def test_fresh_key_agreement_on_demand(who: str) -> None:
    pair = make_pair()
    pair.clock.advance(5)
    conn = pair.a if who == "a" else pair.b
    data = conn.request_rekey()
    pair.deliver(*((data, b"") if who == "a" else (b"", data)))
    _rekeyed(pair)
    status = pair.a.status()
    assert status is not None and status.last_key_agreement == pair.clock()
    fresh = [e for e in pair.of_type("a", KeysRotated) if e.fresh_secret]  # type: ignore[attr-defined]
    assert {e.direction for e in fresh} == {"send", "recv"}  # type: ignore[attr-defined]


def test_crossing_key_agreement_offers_resolve() -> None:
    pair = make_pair()
    pair.deliver(pair.a.request_rekey(), pair.b.request_rekey())
    _rekeyed(pair)


def test_key_agreement_triggered_by_count_and_by_time() -> None:
    cfg = ProtocolConfig(
        rekey_after_messages=40, rekey_interval=7200, keepalive_interval=5000, idle_timeout=9000
    )
    pair = make_pair(cfg, cfg)
    for _ in range(3):
        pair.deliver(pair.a.send_messages([_chat(pair, "x") for _ in range(20)]))
    assert len(pair.of_type("a", RekeyCompleted)) == 1
    pair.clock.advance(7200)
    pair.timers()
    assert len(pair.of_type("a", RekeyCompleted)) == 2
    _rekeyed(pair)


def test_a_storm_of_key_agreements_ends_the_session() -> None:
    """Each rekey costs an X25519 agreement: back to back by the dozen it is a storm."""
    pair = make_pair(ProtocolConfig(), ProtocolConfig(rekey_burst=6, rekey_rate=0.5))
    for _ in range(20):
        if pair.b.closed:
            break
        pair.deliver(pair.a.request_rekey())
    assert pair.b.closed
    assert _security(pair, "b") == ["rate_limited"]
    (event,) = pair.of_type("b", SecurityEventRaised)
    assert event.detail["reason"].startswith("rekey_storm")  # type: ignore[attr-defined]
    # b answered no more agreements than its burst allowed.
    assert len(pair.of_type("b", RekeyCompleted)) <= 6


def test_key_agreements_at_an_honest_pace_are_no_storm() -> None:
    pair = make_pair(ProtocolConfig(), ProtocolConfig(rekey_burst=2, rekey_rate=0.5))
    for _ in range(30):
        pair.clock.advance(5.0)  # one agreement every 5 s: within 0.5/s
        pair.deliver(pair.a.request_rekey())
    assert not pair.b.closed and not _security(pair, "b")
    assert len(pair.of_type("b", RekeyCompleted)) == 30
    _rekeyed(pair)


def test_a_ping_storm_ends_the_session_and_keepalives_are_no_storm() -> None:
    """Each ping asks for a sealed pong: thousands in one read were thousands of seals."""
    pair = make_pair(ProtocolConfig(), ProtocolConfig(ping_burst=10, ping_rate=1.0))
    pair.deliver(b"".join(pair.a.ping() for _ in range(30)))
    assert pair.b.closed
    assert _security(pair, "b") == ["rate_limited"]
    (event,) = pair.of_type("b", SecurityEventRaised)
    assert event.detail["reason"].startswith("ping_storm")  # type: ignore[attr-defined]
    calm = make_pair(ProtocolConfig(), ProtocolConfig(ping_burst=2, ping_rate=1.0))
    for _ in range(50):
        calm.clock.advance(1.0)
        calm.deliver(calm.a.ping())
    assert not calm.b.closed and not _security(calm, "b")


def test_unanswered_key_agreement_times_out() -> None:
    pair = make_pair(
        ProtocolConfig(keepalive_interval=10, idle_timeout=30),
        ProtocolConfig(keepalive_interval=10, idle_timeout=1000),
    )
    pair.a.request_rekey()  # never delivered: the peer never answers
    for _ in range(4):
        pair.clock.advance(10)
        pair.b.handle_timer()
        pair.a.receive_data(pair.b.data_to_send())  # b's keepalives keep a from idling out
        pair.a.handle_timer()
        pair.drain()
    assert _closed(pair, "a") == ["rekey_timeout"]


def test_capture_and_replay_of_any_record() -> None:
    for k in range(8):
        pair = make_pair(ProtocolConfig(max_messages_per_key=3))
        sent = [pair.a.send_message(_chat(pair, f"m{i}")) for i in range(8)]
        for data in sent:
            pair.deliver(data)
        pair.deliver(sent[k])
        assert _security(pair, "b") == ["replay_rejected"], k
        assert _closed(pair, "b") == ["protocol_error"]
        assert _texts(pair, "b") == [f"m{i}" for i in range(8)]  # nothing delivered twice
        # b told a (authenticated bye), so a closes too.
        assert _closed(pair, "a") == ["peer_closed"]


def test_duplicated_frame_in_one_read() -> None:
    pair = make_pair()
    data = pair.a.send_message(_chat(pair, "once"))
    pair.deliver(data + data)
    assert _texts(pair, "b") == ["once"]
    assert _security(pair, "b") == ["replay_rejected"]


def test_reordered_frames() -> None:
    pair = make_pair()
    first = pair.a.send_message(_chat(pair, "1"))
    second = pair.a.send_message(_chat(pair, "2"))
    pair.deliver(second + first)
    assert _texts(pair, "b") == []
    assert _security(pair, "b") == ["replay_rejected"]


def test_truncated_frame_waits_then_completes() -> None:
    pair = make_pair()
    data = pair.a.send_message(_chat(pair, "split"))
    for piece in (data[:2], data[2:6], data[6:20], data[20:-1]):
        pair.deliver(piece)
        assert _texts(pair, "b") == [] and pair.b.state == "established"
    pair.deliver(data[-1:])
    assert _texts(pair, "b") == ["split"]


def test_truncated_frame_at_end_of_stream() -> None:
    pair = make_pair()
    data = pair.a.send_message(_chat(pair, "cut"))
    pair.b.receive_data(data[:-3])
    pair.b.receive_data(b"")
    pair.drain()
    assert _security(pair, "b") == ["frame_rejected"]
    assert _closed(pair, "b") == ["eof"]


def test_clean_end_of_stream() -> None:
    pair = make_pair()
    pair.b.receive_data(b"")
    pair.drain()
    assert _security(pair, "b") == [] and _closed(pair, "b") == ["eof"]


def test_bit_flip_in_ciphertext_is_decrypt_fail() -> None:
    pair = make_pair()
    data = bytearray(pair.a.send_message(_chat(pair, "tamper")))
    data[-5] ^= 0x01
    pair.deliver(bytes(data))
    assert _security(pair, "b") == ["decrypt_fail"]
    assert _closed(pair, "b") == ["protocol_error"]


def test_every_bit_flip_of_a_record_through_the_connection() -> None:
    template = make_pair()
    size = len(template.a.send_message(Receipt((b"\x01" * 16,), "read")))
    for bit in range(0, size * 8, 3):
        pair = make_pair()
        data = bytearray(pair.a.send_message(Receipt((b"\x01" * 16,), "read")))
        data[bit // 8] ^= 1 << (bit % 8)
        pair.deliver(bytes(data))
        assert not pair.of_type("b", UserMessageReceived), bit
        if bit >= 32:  # a flipped length merely waits for more bytes, or is refused
            assert _security(pair, "b"), bit
            assert pair.b.state == "closed"


def _reframe(data: bytes, **changes: int) -> bytes:
    frame = decode_frame(next(FrameDecoder().feed(data)))
    assert isinstance(frame, RecordFrame)
    fields = {
        "version": frame.version,
        "epoch": frame.epoch,
        "counter": frame.counter,
        "suite_id": frame.suite_id,
    } | changes
    return encode_record(
        fields["version"], fields["epoch"], fields["counter"], fields["suite_id"], frame.sealed
    )


def test_suite_outside_the_negotiated_set_through_the_connection() -> None:
    pair = make_pair(ProtocolConfig(suites=("aes-256-gcm", "chacha20-poly1305")))
    data = pair.a.send_message(_chat(pair, "x"))
    pair.deliver(_reframe(data, suite_id=3))
    assert _security(pair, "b") == ["downgrade_rejected"]


def test_record_from_a_past_epoch_through_the_connection() -> None:
    pair = make_pair()
    old = pair.a.send_message(_chat(pair, "epoch 0"))
    pair.deliver(old)
    pair.deliver(pair.a.rotate_keys())
    pair.deliver(_reframe(old, counter=2))
    assert _security(pair, "b") == ["replay_rejected"]


@pytest.mark.parametrize(
    "plaintext",
    [
        b"\x91" * 2000 + b"\x01",  # deep nesting
        b"\x95\x01\xc6\xff\xff\xff\xff",  # bin declaring 4 GiB
        b"\xdd\xff\xff\xff\xff",  # array declaring 4 Gi items
        msgpack.packb([1, "not-an-id", 0.0, "x", None]),  # wrong type
        msgpack.packb({"type": "chat"}),  # a map
        msgpack.packb([1, b"\x01" * 16, 1.0, "x", None]),  # ts far outside the window
    ],
)
def test_hostile_msgpack_inside_a_valid_record(plaintext: bytes) -> None:
    pair = make_pair()
    records = pair.a._records
    assert records is not None
    pair.deliver(records.seal(plaintext, pair.clock()))
    [event] = pair.of_type("b", SecurityEventRaised)
    assert event.event in ("frame_rejected", "replay_rejected")  # type: ignore[attr-defined]
    assert _closed(pair, "b") == ["protocol_error"]


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # length field far over the limit
        b"\x00\x00\x00\x00",  # zero length
        b"\x00\x00\x00\x03\xc1\xc1\xc1",  # not msgpack
        b"\x00\x00\x00\x02\x92\x09",  # truncated array
        b"\x00\x00\x00\x08" + msgpack.packb([2, 1, 0, 0, 1, b""]),  # a record before the handshake
        b"\x00\x00\x00\x03" + msgpack.packb([1, b"x"]),  # a short Noise message
        bytes(range(64)),  # plausible length, then EOF
    ],
    ids=["http", "zero", "c1", "truncated", "record", "short-noise", "waits"],
)
def test_garbage_before_the_handshake(garbage: bytes) -> None:
    pair = make_pair(handshake=False)
    pair.b.receive_data(garbage)
    pair.b.receive_data(b"")
    pair.drain()
    assert _security(pair, "b") in (["frame_rejected"], ["handshake_fail"])
    assert pair.b.state == "closed"
    assert not pair.of_type("b", HandshakeCompleted)


def test_handshake_message_after_completion_is_rejected() -> None:
    pair = make_pair(handshake=False)
    first = pair.a.start()
    pair.deliver(first)
    pair.deliver(first)
    assert _security(pair, "b") == ["frame_rejected"]


def test_handshake_deadline() -> None:
    pair = make_pair(handshake=False)
    pair.b.receive_data(pair.a.start())
    pair.drain()
    assert pair.b.get_timer() == pytest.approx(pair.clock() + 10, abs=1e-6)
    pair.clock.advance(9.9)
    pair.b.handle_timer()
    assert pair.b.state == "handshaking"
    pair.clock.advance(0.2)
    pair.b.handle_timer()
    pair.drain()
    assert _security(pair, "b") == ["handshake_fail"]
    assert _closed(pair, "b") == ["handshake_timeout"]
    assert pair.b.get_timer() is None


def test_keepalive_and_idle_timeout() -> None:
    cfg = ProtocolConfig(keepalive_interval=30, idle_timeout=90)
    pair = make_pair(cfg, cfg)
    for _ in range(5):  # both alive: pings and pongs keep the session up
        pair.clock.advance(30)
        pair.timers()
    assert pair.a.state == pair.b.state == "established"
    pair.clock.advance(30)
    pair.a.handle_timer()
    pair.clock.advance(30)
    pair.a.handle_timer()  # b's answers never delivered from here on
    pair.clock.advance(30)
    pair.a.handle_timer()
    pair.drain()
    assert _closed(pair, "a") == ["idle_timeout"]


def test_close_says_bye() -> None:
    pair = make_pair()
    pair.deliver(pair.a.close("going offline"))
    assert _closed(pair, "a") == ["local_close"]
    [closed] = pair.of_type("b", ConnectionClosed)
    assert closed == ConnectionClosed("peer_closed", "going offline")
    assert pair.a.close() == b""
    with pytest.raises(LocalProtocolError):
        pair.a.send_message(_chat(pair, "too late"))
    pair.b.receive_data(b"anything after close is ignored")


def test_local_misuse_raises() -> None:
    pair = make_pair(handshake=False)
    with pytest.raises(LocalProtocolError, match="state handshaking"):
        pair.a.send_message(Receipt((b"\x01" * 16,), "read"))
    pair.deliver(pair.a.start())
    with pytest.raises(LocalProtocolError, match="not an application message"):
        pair.a.send_message(Ping(1))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="invalid message"):
        pair.a.send_messages([_chat(pair, "fine"), FileOffer(b"x", "f", 1, 1)])
    with pytest.raises(LocalProtocolError):
        pair.a.start()
    # The bad batch sent nothing: the next message still has the next counter.
    pair.deliver(pair.a.send_message(_chat(pair, "still fine")))
    assert _texts(pair, "b") == ["still fine"]


def test_policy_refusal_through_connections() -> None:
    clock = Clock()
    a = PeerConnection("initiator", identity(1), "a", os.urandom, clock)
    b = PeerConnection(
        "responder",
        identity(2),
        "b",
        os.urandom,
        clock,
        policy=lambda peer, suites: "not on the allow list",
    )
    b.receive_data(a.start())
    a.receive_data(b.data_to_send())
    b.receive_data(a.data_to_send())
    events_b = [b.next_event(), b.next_event()]
    assert isinstance(events_b[0], SecurityEventRaised) and events_b[0].event == "handshake_fail"
    assert isinstance(events_b[1], ConnectionClosed)
    a.receive_data(b.data_to_send())  # the abort tells a why
    events_a = [a.next_event() for _ in range(3)]
    assert isinstance(events_a[0], HandshakeCompleted)
    assert isinstance(events_a[1], SecurityEventRaised) and events_a[1].event == "handshake_fail"
    assert isinstance(events_a[2], ConnectionClosed)
    assert "not on the allow list" in events_a[2].detail


def test_counter_exhaustion_ends_the_session_cleanly() -> None:
    from p2pmsg.protocol.limits import MAX_COUNTER
    from p2pmsg.protocol.record import SessionExhaustedError

    pair = make_pair()
    records = pair.a._records
    assert records is not None
    records._send.counter = MAX_COUNTER - 1
    last = pair.a.send_message(_chat(pair, "the very last record"))
    assert last
    with pytest.raises(SessionExhaustedError):
        pair.a.send_message(_chat(pair, "one too many"))
    pair.drain()
    assert pair.a.state == "closed"
    assert _closed(pair, "a") == ["session_exhausted"]
    assert pair.a.get_timer() is None


def test_an_abort_with_a_hostile_reason_is_a_malformed_frame() -> None:
    """Anyone can send an ABORT before a handshake. A reason with terminal controls is
    refused where it is decoded: frame_rejected, the connection ends with the code
    only, and the reason text reaches no event."""
    hostile = "\x1b]0;pwned\x07\nfake line"
    responder = PeerConnection("responder", identity(2), "b", os.urandom, Clock())
    responder.receive_data(encode_frame(msgpack.packb([3, hostile])))
    events = [responder.next_event(), responder.next_event(), responder.next_event()]
    assert isinstance(events[0], SecurityEventRaised) and events[0].event == "frame_rejected"
    assert events[0].detail["reason"] == (
        "abort frame: field 'reason' must be one line of "
        "text, at most 256 bytes, no controls, got str of "
        "length 20"
    )
    assert isinstance(events[1], ConnectionClosed) and events[1].reason == "protocol_error"
    assert events[2] is None and responder.closed
    assert "pwned" not in repr(events)
    # The peer is told the code, as after any other protocol error.
    [answer] = list(FrameDecoder().feed(responder.data_to_send()))
    assert msgpack.unpackb(answer) == [3, "protocol_error"]


def test_an_abort_with_a_clean_reason_still_ends_the_handshake() -> None:
    responder = PeerConnection("responder", identity(2), "b", os.urandom, Clock())
    responder.receive_data(encode_abort("no cipher suite in common \u202e"))
    first = responder.next_event()
    assert isinstance(first, SecurityEventRaised) and first.event == "handshake_fail"
    assert first.detail["reason"] == "peer aborted the handshake: no cipher suite in common \u202e"


def test_a_storm_of_one_record_epochs_ends_the_session() -> None:
    """A peer may rotate before every record, but each rotation is a logged event:
    past its allowance (a burst, then a rate plus one per few records) it is a storm."""
    storm = ProtocolConfig(max_messages_per_key=1)  # a new epoch for every record
    pair = make_pair(storm, ProtocolConfig(rotation_burst=50, rotation_rate=1.0))
    for i in range(0, 200, 10):
        pair.deliver(pair.a.send_messages([_chat(pair, f"s{j}") for j in range(i, i + 10)]))
        if pair.b.closed:
            break
    assert pair.b.closed
    assert _security(pair, "b") == ["rate_limited"]
    (event,) = pair.of_type("b", SecurityEventRaised)
    assert event.detail["reason"].startswith("rotation_storm")  # type: ignore[attr-defined]
    closed = pair.of_type("b", ConnectionClosed)
    assert [c.reason for c in closed] == ["protocol_error"]  # type: ignore[attr-defined]
    # The allowance was spent: the burst plus what the records earned (1 per 8).
    assert 50 <= len(_texts(pair, "b")) <= 50 + 200 // 8 + 1


def test_one_record_epochs_at_a_human_pace_are_no_storm() -> None:
    """max_messages_per_key=1 is a legal (if odd) setting: at typing speed it never
    runs out, and bulk traffic with the default epochs earns far more than it spends."""
    pair = make_pair(
        ProtocolConfig(max_messages_per_key=1), ProtocolConfig(rotation_burst=50, rotation_rate=1.0)
    )
    for i in range(300):
        pair.deliver(pair.a.send_messages([_chat(pair, f"typed {i}")]))
        pair.clock.advance(1.0)  # one message a second: one epoch a second
    assert not pair.b.closed and not _security(pair, "b")
    bulk = make_pair(ProtocolConfig(max_messages_per_key=64), ProtocolConfig(rotation_burst=1))
    for start in range(0, 5000, 100):
        bulk.deliver(
            bulk.a.send_messages([_chat(bulk, f"b{i}") for i in range(start, start + 100)])
        )
    assert not bulk.b.closed and len(_texts(bulk, "b")) == 5000
