"""The record layer in isolation: every rejection leaves the receive state untouched."""

from __future__ import annotations

import os

import pytest

from p2pmsg.errors import (
    DecryptError,
    DowngradeError,
    LocalProtocolError,
    RemoteProtocolError,
    ReplayError,
)
from p2pmsg.protocol.framing import FrameDecoder, encode_frame
from p2pmsg.protocol.handshake import Handshake
from p2pmsg.protocol.keyschedule import record_ad, record_nonce
from p2pmsg.protocol.limits import MAX_COUNTER, ProtocolConfig
from p2pmsg.protocol.messages import Rekey, encode_message
from p2pmsg.protocol.record import RecordLayer, RekeyDone, Rotation, SessionExhaustedError
from p2pmsg.protocol.wire import RecordFrame, decode_frame, encode_record
from tests.protocol.pair import identity

NOW = 1_763_800_000.0
ALL = ("aes-256-gcm", "chacha20-poly1305", "twofish-cbc-hmac-sha256")


def _layers(
    config: ProtocolConfig | None = None,
    suites: tuple[str, ...] = ALL,
) -> tuple[RecordLayer, RecordLayer]:
    init = Handshake(
        initiator=True, identity=identity(1), display_name="a", suites=suites, rng=os.urandom
    )
    resp = Handshake(
        initiator=False, identity=identity(2), display_name="b", suites=ALL, rng=os.urandom
    )
    msg2 = resp.receive(init.start())
    assert msg2 is not None
    msg3 = init.receive(msg2)
    assert msg3 is not None
    resp.receive(msg3)
    assert init.result is not None and resp.result is not None
    cfg = config or ProtocolConfig()
    return RecordLayer(init.result, cfg, NOW), RecordLayer(resp.result, cfg, NOW)


def _frame(data: bytes) -> RecordFrame:
    frame = decode_frame(next(FrameDecoder().feed(data)))
    assert isinstance(frame, RecordFrame)
    return frame


def _recv_state(layer: RecordLayer) -> tuple[object, ...]:
    r = layer._recv
    return (
        r.chain,
        r.epoch,
        r.counter,
        r.in_epoch,
        r.suite_id,
        r.keyed,
        r.pending_secret,
        layer._recv_must_rotate,
        layer.status(),
    )


def test_records_open_in_order() -> None:
    a, b = _layers()
    for i in range(50):
        assert b.open(_frame(a.seal(b"m%d" % i, NOW)), NOW) == b"m%d" % i
    assert b.status().recv.counter == 50 == a.status().send.counter


def test_replay_of_any_earlier_record_is_rejected_and_changes_nothing() -> None:
    a, b = _layers(ProtocolConfig(max_messages_per_key=4))
    frames = [_frame(a.seal(b"m%d" % i, NOW)) for i in range(12)]
    for f in frames:
        b.open(f, NOW)
    before = _recv_state(b)
    for f in frames:
        with pytest.raises(ReplayError, match="already used"):
            b.open(f, NOW)
    assert _recv_state(b) == before
    assert b.open(_frame(a.seal(b"next", NOW)), NOW) == b"next"


def test_reordered_records_are_rejected() -> None:
    a, b = _layers()
    first, second = _frame(a.seal(b"1", NOW)), _frame(a.seal(b"2", NOW))
    before = _recv_state(b)
    with pytest.raises(ReplayError, match="skips ahead"):
        b.open(second, NOW)
    assert _recv_state(b) == before
    b.open(first, NOW)
    b.open(second, NOW)


def test_every_bit_flip_of_a_record_is_rejected_without_state_change() -> None:
    a, b = _layers()
    b.open(_frame(a.seal(b"warm-up", NOW)), NOW)
    wire = a.seal(encode_message(Rekey(3, None)), NOW)  # any plaintext will do
    body = wire[4:]
    before = _recv_state(b)
    outcomes: set[str] = set()
    for bit in range(len(body) * 8):
        mutated = bytearray(body)
        mutated[bit // 8] ^= 1 << (bit % 8)
        try:
            frame = decode_frame(bytes(mutated))
            b.open(frame, NOW)  # type: ignore[arg-type]
        except (RemoteProtocolError, DecryptError) as exc:
            outcomes.add(type(exc).__name__)
        else:
            pytest.fail(f"bit {bit} flipped and the record still opened")
        assert _recv_state(b) == before, f"state changed after flipping bit {bit}"
    # Flips land in the framing, the header checks and the AEAD alike.
    assert {"DecryptError", "ReplayError", "DowngradeError", "RemoteProtocolError"} <= outcomes
    b.open(_frame(wire), NOW)


@pytest.mark.parametrize("suite", ALL)
def test_header_is_bound_as_associated_data(suite: str) -> None:
    a, b = _layers(suites=(suite,))
    f = _frame(a.seal(b"x", NOW))
    # Re-frame the same ciphertext under another epoch: the AD differs, so it must not open.
    forged = RecordFrame(f.version, f.epoch + 1, f.counter, f.suite_id, f.sealed)
    with pytest.raises(DecryptError):
        b.open(forged, NOW)
    b.open(f, NOW)


def test_count_rotation_and_the_receiver_following() -> None:
    a, b = _layers(ProtocolConfig(max_messages_per_key=3))
    for i in range(10):
        b.open(_frame(a.seal(b"%d" % i, NOW)), NOW)
    assert a.status().send.epoch == 3 and b.status().recv.epoch == 3
    sends = [n for n in a.notices if isinstance(n, Rotation)]
    assert [(n.direction, n.epoch, n.reason) for n in sends] == [
        ("send", 1, "count"),
        ("send", 2, "count"),
        ("send", 3, "count"),
    ]
    assert [(n.direction, n.epoch) for n in b.notices] == [("recv", 1), ("recv", 2), ("recv", 3)]


def test_time_rotation() -> None:
    a, b = _layers(ProtocolConfig(key_rotation_interval=60))
    b.open(_frame(a.seal(b"early", NOW)), NOW)
    assert a.rotation_due(NOW + 59) is None and a.rotation_due(NOW + 60) == "time"
    b.open(_frame(a.seal(b"late", NOW + 61)), NOW + 61)
    assert a.status().send.epoch == 1 and a.status().send.last_rotation == NOW + 61
    assert b.status().recv.epoch == 1


def test_past_epoch_record_is_rejected() -> None:
    a, b = _layers()
    old = _frame(a.seal(b"epoch 0", NOW))
    b.open(old, NOW)
    a.rotate_send(NOW, "requested")
    b.open(_frame(a.seal(b"epoch 1", NOW)), NOW)
    before = _recv_state(b)
    # The right counter but an epoch the receiver has left (and erased the keys of).
    stale = RecordFrame(1, 0, 2, old.suite_id, old.sealed)
    with pytest.raises(ReplayError, match="past epoch 0"):
        b.open(stale, NOW)
    assert _recv_state(b) == before


def test_skipped_epoch_is_rejected() -> None:
    a, b = _layers()
    b.open(_frame(a.seal(b"epoch 0", NOW)), NOW)
    a.rotate_send(NOW, "requested")
    a.seal(b"epoch 1, lost", NOW)
    a.rotate_send(NOW, "requested")
    b._recv.counter += 1  # pretend the lost record's counter was consumed
    before = _recv_state(b)
    with pytest.raises(RemoteProtocolError, match="epochs advance one at a time"):
        b.open(_frame(a.seal(b"epoch 2", NOW)), NOW)
    assert _recv_state(b) == before


def test_suite_outside_the_negotiated_set_is_a_downgrade() -> None:
    a, b = _layers(suites=("chacha20-poly1305", "aes-256-gcm"))
    f = _frame(a.seal(b"x", NOW))
    before = _recv_state(b)
    with pytest.raises(DowngradeError, match="suite id 3, which was not negotiated"):
        b.open(RecordFrame(1, f.epoch, f.counter, 3, f.sealed), NOW)
    with pytest.raises(DowngradeError):
        b.open(RecordFrame(1, f.epoch + 1, f.counter, 3, f.sealed), NOW)
    assert _recv_state(b) == before
    with pytest.raises(LocalProtocolError, match="not negotiated"):
        a.rotate_send(NOW, "switch", "twofish-cbc-hmac-sha256")


def test_suite_change_inside_an_epoch_is_a_downgrade() -> None:
    a, b = _layers()
    f = _frame(a.seal(b"x", NOW))
    with pytest.raises(DowngradeError, match="inside epoch 0"):
        b.open(RecordFrame(1, 0, 0, 2, f.sealed), NOW)


@pytest.mark.parametrize("suite", ALL)
def test_switch_to_each_suite_at_an_epoch_boundary(suite: str) -> None:
    a, b = _layers()
    with pytest.raises(LocalProtocolError, match="no record was sent in this epoch"):
        a.rotate_send(NOW, "switch", suite)
    b.open(_frame(a.seal(b"epoch 0", NOW)), NOW)
    a.rotate_send(NOW, "switch", suite)
    text = b"under " + suite.encode()
    assert b.open(_frame(a.seal(text, NOW)), NOW) == text
    assert b.status().recv.suite == suite == a.status().send.suite


def test_unknown_record_version() -> None:
    a, b = _layers()
    f = _frame(a.seal(b"x", NOW))
    with pytest.raises(RemoteProtocolError, match="version 2"):
        b.open(RecordFrame(2, f.epoch, f.counter, f.suite_id, f.sealed), NOW)


def test_counter_exhaustion_ends_the_session() -> None:
    a, _ = _layers()
    a._send.counter = MAX_COUNTER - 1
    a.seal(b"last", NOW)
    with pytest.raises(SessionExhaustedError):
        a.seal(b"one too many", NOW)


def test_nonce_is_the_counter_and_never_repeats() -> None:
    a, b = _layers(ProtocolConfig(max_messages_per_key=2))
    seen = set()
    for _ in range(7):
        f = _frame(a.seal(b"x", NOW))
        assert record_nonce(f.counter) not in seen
        seen.add(record_nonce(f.counter))
        b.open(f, NOW)
    assert record_nonce(5) == bytes(4) + (5).to_bytes(8, "big")
    assert record_ad(1, 2, 3, 1) == bytes([1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 1])


def _pump(src: RecordLayer, dst: RecordLayer, frames: list[bytes]) -> list[bytes]:
    return [dst.open(_frame(f), NOW) for f in frames]


def test_fresh_key_agreement_mixes_into_both_chains() -> None:
    a, b = _layers()
    chains_before = (a._send.chain, a._recv.chain)
    offer = a.begin_rekey(os.urandom)
    [plain] = _pump(a, b, [a.seal_rekey(offer, NOW)])
    from p2pmsg.protocol.messages import TimeWindow, decode_message

    window = TimeWindow(NOW, 300, 1e9)
    received = decode_message(plain, window)
    assert isinstance(received, Rekey)
    answer = b.on_rekey(received, os.urandom, wins_ties=False)
    assert answer is not None and answer.step == 2
    [plain] = _pump(b, a, [b.seal_rekey(answer, NOW)])
    confirm = a.on_rekey(decode_message(plain, window), os.urandom, True)  # type: ignore[arg-type]
    assert confirm == Rekey(3, None)
    [plain] = _pump(a, b, [a.seal_rekey(confirm, NOW)])
    assert b.on_rekey(decode_message(plain, window), os.urandom, False) is None  # type: ignore[arg-type]
    # The first record each way under the mixed chains completes the agreement.
    _pump(a, b, [a.seal(b"after a", NOW)])
    _pump(b, a, [b.seal(b"after b", NOW)])
    assert any(isinstance(n, RekeyDone) for n in a.notices)
    assert any(isinstance(n, RekeyDone) for n in b.notices)
    assert not a.rekey_in_progress and not b.rekey_in_progress
    # The mixed chain is not the plain next link: a leaked old chain does not predict it.
    from p2pmsg.protocol.keyschedule import next_chain

    assert a._send.chain not in (
        chains_before[0],
        next_chain(chains_before[0]),
        next_chain(next_chain(chains_before[0])),
    )
    assert a._send.chain == b._recv.chain and a._recv.chain == b._send.chain


def test_peer_staying_in_its_epoch_after_a_rekey_step_is_rejected() -> None:
    a, b = _layers()
    offer = a.begin_rekey(os.urandom)
    _pump(a, b, [a.seal_rekey(offer, NOW)])
    answer = b.on_rekey(offer, os.urandom, wins_ties=False)
    assert answer is not None
    # A misbehaving answerer that seals step 2 but does not rotate afterwards.
    step2 = b.seal(encode_message(answer), NOW)
    _pump(b, a, [step2])
    a.on_rekey(answer, os.urandom, True)
    with pytest.raises(RemoteProtocolError, match="must rotate"):
        _pump(b, a, [b.seal(b"still old epoch", NOW)])


@pytest.mark.parametrize("step", [2, 3])
def test_unexpected_rekey_steps_are_protocol_errors(step: int) -> None:
    _, b = _layers()
    with pytest.raises(RemoteProtocolError):
        b.on_rekey(Rekey(step, b"\x09" * 32 if step == 2 else None), os.urandom, False)


def test_low_order_rekey_key_is_refused() -> None:
    _, b = _layers()
    with pytest.raises(RemoteProtocolError, match="low-order"):
        b.on_rekey(Rekey(1, bytes(32)), os.urandom, False)


def test_encode_record_matches_what_seal_writes() -> None:
    a, _ = _layers()
    wire = a.seal(b"x", NOW)
    f = _frame(wire)
    assert encode_record(f.version, f.epoch, f.counter, f.suite_id, f.sealed) == wire
    assert encode_frame(wire[4:]) == wire
