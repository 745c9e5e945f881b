"""Hypothesis: random and mutated byte streams never break a PeerConnection.

A real session is recorded once with deterministic randomness, so a fresh
connection fed the same bytes replays it exactly; the fuzzer then mutates
that stream (bit flips, cuts, insertions, duplications, odd chunking). Whatever
arrives, `receive_data` must not raise, an internal error must never be the
way out, and a connection that closes on bad input says why first.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import ConnectionClosed, SecurityEventRaised, UserMessageReceived
from p2pmsg.protocol.limits import ProtocolConfig
from p2pmsg.protocol.messages import FileOffer, Receipt, new_chat
from tests.protocol.pair import Clock, Pair, identity

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONFIG = ProtocolConfig(max_messages_per_key=3)


class DeterministicRng:
    def __init__(self, seed: bytes) -> None:
        self.seed, self.n = seed, 0

    def __call__(self, size: int) -> bytes:
        out = b""
        while len(out) < size:
            out += hashlib.sha256(self.seed + self.n.to_bytes(8, "big")).digest()
            self.n += 1
        return out[:size]


def _connection(role: str) -> PeerConnection:
    seed = b"initiator" if role == "initiator" else b"responder"
    return PeerConnection(
        role,
        identity(1 if role == "initiator" else 2),
        role,  # type: ignore[arg-type]
        DeterministicRng(seed),
        Clock(),
        CONFIG,
    )


@cache
def _recorded_session() -> tuple[bytes, bytes]:
    """(all bytes initiator -> responder, all bytes responder -> initiator)."""
    a, b = _connection("initiator"), _connection("responder")
    pair = Pair(a, b, Clock(), identity(1), identity(2))
    pair.deliver(a.start())
    rng = DeterministicRng(b"messages")
    for i in range(5):
        pair.deliver(a.send_message(new_chat(rng, pair.clock(), f"message {i}")))
    pair.deliver(a.send_message(Receipt((b"\x01" * 16,), "read")))
    pair.deliver(a.send_message(FileOffer(b"\x02" * 16, "notes.txt", 10, 4096)))
    pair.deliver(a.switch_suite("twofish-cbc-hmac-sha256"))
    pair.deliver(a.request_rekey())
    pair.deliver(a.send_message(new_chat(rng, pair.clock(), "after rekey")))
    pair.deliver(b"", b.close("done"))
    assert len(pair.of_type("b", UserMessageReceived)) == 8
    return b"".join(pair.wire_ab), b"".join(pair.wire_ba)


def _feed(conn: PeerConnection, chunks: list[bytes], eof: bool) -> list[object]:
    for chunk in chunks:
        conn.receive_data(chunk)
        conn.data_to_send()
    if eof:
        conn.receive_data(b"")
    events = []
    while (event := conn.next_event()) is not None:
        events.append(event)
    return events


def _check(events: list[object]) -> None:
    closes = [e for e in events if isinstance(e, ConnectionClosed)]
    assert len(closes) <= 1
    assert not any(c.reason == "internal_error" for c in closes), closes
    if closes and closes[0].reason == "protocol_error":
        assert any(isinstance(e, SecurityEventRaised) for e in events)


def _first_frames(data: bytes, count: int) -> bytes:
    pos = 0
    for _ in range(count):
        pos += 4 + int.from_bytes(data[pos : pos + 4], "big")
    return data[:pos]


def _chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return [c for c in out if c]


def test_recorded_session_replays_exactly() -> None:
    ab, _ = _recorded_session()
    events = _feed(_connection("responder"), [ab], eof=False)
    assert sum(isinstance(e, UserMessageReceived) for e in events) == 8
    assert not any(isinstance(e, SecurityEventRaised) for e in events)


_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 7)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 40)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=24)),
    st.tuples(st.just("duplicate"), st.integers(0, 10**6), st.integers(1, 120)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
)


def _mutate(data: bytes, mutations: list[tuple[str, int, object]]) -> bytes:
    buf = bytearray(data)
    for kind, where, arg in mutations:
        pos = where % (len(buf) + 1)
        if kind == "flip" and pos < len(buf):
            buf[pos] ^= 1 << int(arg)  # type: ignore[call-overload]
        elif kind == "delete":
            del buf[pos : pos + int(arg)]  # type: ignore[call-overload]
        elif kind == "insert":
            buf[pos:pos] = arg  # type: ignore[assignment]
        elif kind == "duplicate":
            buf[pos:pos] = buf[pos : pos + int(arg)]  # type: ignore[call-overload]
        elif kind == "truncate":
            del buf[pos:]
    return bytes(buf)


@FUZZ
@given(
    mutations=st.lists(_mutation, min_size=1, max_size=4),
    cuts=st.lists(st.integers(0, 10**6), max_size=6),
    eof=st.booleans(),
    toward=st.sampled_from(["responder", "initiator"]),
)
def test_mutated_sessions(
    mutations: list[tuple[str, int, object]], cuts: list[int], eof: bool, toward: str
) -> None:
    ab, ba = _recorded_session()
    conn = _connection(toward)
    if toward == "initiator":
        conn.start()
    stream = _mutate(ab if toward == "responder" else ba, mutations)
    _check(_feed(conn, _chunked(stream, cuts), eof))


@FUZZ
@given(
    data=st.binary(max_size=600),
    cuts=st.lists(st.integers(0, 600), max_size=5),
    established=st.booleans(),
)
def test_random_bytes(data: bytes, cuts: list[int], established: bool) -> None:
    conn = _connection("responder")
    if established:
        ab, _ = _recorded_session()
        conn.receive_data(_first_frames(ab, 4))  # handshake and two records
        assert conn.state == "established"
    _check(_feed(conn, _chunked(data, cuts), eof=True))


def test_receive_data_after_a_failure_is_inert() -> None:
    conn = _connection("responder")
    conn.receive_data(b"\xff\xff\xff\xff")
    for _ in range(3):
        conn.receive_data(os.urandom(32))
    events = _feed(conn, [], eof=True)
    assert [type(e).__name__ for e in events] == ["SecurityEventRaised", "ConnectionClosed"]
