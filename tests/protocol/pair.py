"""Two PeerConnections joined in memory, with one injected clock."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from p2pmsg.crypto.identity import Identity
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import Event
from p2pmsg.protocol.limits import ProtocolConfig


class Clock:
    """A settable wall clock: tests move time, nothing sleeps."""

    def __init__(self, start: float = 1_763_800_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t


@dataclass
class Pair:
    a: PeerConnection  # initiator
    b: PeerConnection  # responder
    clock: Clock
    a_identity: Identity
    b_identity: Identity
    events_a: list[Event] = field(default_factory=list)
    events_b: list[Event] = field(default_factory=list)
    #: every chunk of bytes that went a -> b and b -> a, as written
    wire_ab: list[bytes] = field(default_factory=list)
    wire_ba: list[bytes] = field(default_factory=list)

    def drain(self) -> None:
        for conn, sink in ((self.a, self.events_a), (self.b, self.events_b)):
            while (event := conn.next_event()) is not None:
                sink.append(event)

    def deliver(self, data_ab: bytes = b"", data_ba: bytes = b"") -> None:
        """Hand over the given bytes, then keep pumping replies until both are quiet."""
        for _ in range(100):
            if data_ab:
                self.wire_ab.append(data_ab)
                self.b.receive_data(data_ab)
            if data_ba:
                self.wire_ba.append(data_ba)
                self.a.receive_data(data_ba)
            self.drain()
            data_ab, data_ba = self.a.data_to_send(), self.b.data_to_send()
            if not data_ab and not data_ba:
                return
        raise AssertionError("the two connections never went quiet")

    def timers(self) -> None:
        self.a.handle_timer()
        self.b.handle_timer()
        self.deliver()

    def of_type(self, side: str, kind: type) -> list[Event]:
        events = self.events_a if side == "a" else self.events_b
        return [e for e in events if isinstance(e, kind)]


def identity(seed: int) -> Identity:
    return Identity.from_bytes(bytes([seed]) * 64)


def make_pair(
    config_a: ProtocolConfig | None = None,
    config_b: ProtocolConfig | None = None,
    *,
    name_a: str = "alice",
    name_b: str = "bob",
    handshake: bool = True,
    clock: Clock | None = None,
) -> Pair:
    clock = clock or Clock()
    ia, ib = identity(1), identity(2)
    a = PeerConnection("initiator", ia, name_a, os.urandom, clock, config_a)
    b = PeerConnection("responder", ib, name_b, os.urandom, clock, config_b)
    pair = Pair(a, b, clock, ia, ib)
    if handshake:
        pair.deliver(a.start())
    return pair
