"""Admission control for inbound connections: what a hostile host on the LAN may cost us.

Independent limits, each cheap to check before any cryptography runs:

* a cap on open connections for the whole node (memory and file descriptors),
  of which `contact_reserve` slots only contacts may take: connections from an
  address a contact uses, and sessions that proved a contact's key. Strangers
  (every connection before its handshake, and keys that are not contacts) share
  the rest, so no number of strangers can lock a contact out;
* a cap on open connections per source address (one host cannot take the
  strangers' share alone: 32 addresses would be needed, each still rate-limited);
* a cap on handshakes in flight per source address (each one holds a Noise state and
  a deadline timer; without this one host can park thousands of half-open handshakes);
* a token bucket per source address for the connection *rate* (reconnect storms and
  connect floods are refused before they reach the handshake).

Every refusal is returned as a reason so the caller logs one `rate_limited` security
event with it. The clock is passed in, so the limits are tested without sleeping.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

RefusalReason = Literal[
    "connection_cap", "stranger_cap", "address_cap", "handshakes_in_flight", "connection_rate"
]


@dataclass
class TokenBucket:
    """`capacity` tokens, refilled at `rate` per second; one token per connection."""

    capacity: float
    rate: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, capacity: float, rate: float, now: float) -> TokenBucket:
        return cls(capacity=capacity, rate=rate, tokens=capacity, updated=now)

    def _refill(self, now: float) -> None:
        if now <= self.updated:  # a clock going backwards refills nothing, now or later
            return
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def is_full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.capacity


@dataclass(frozen=True)
class LimitSettings:
    max_connections: int = 128
    contact_reserve: int = 32  # of max_connections: slots strangers never take
    max_connections_per_address: int = 8
    max_handshakes_per_address: int = 4
    connect_burst: float = 16.0  # connections an address may open at once
    connect_rate: float = 4.0  # and per second after that
    tracked_addresses: int = 4096  # bound on per-address state (oldest idle entries go first)

    def __post_init__(self) -> None:
        if not 0 <= self.contact_reserve < self.max_connections:
            raise ValueError("contact_reserve must leave strangers at least one connection")


class Admission:
    """One admitted connection. Release exactly once, whatever happens to the connection.

    It counts as a stranger's until `promote` (its handshake proved a contact's key)."""

    __slots__ = ("_control", "_handshaking", "_released", "address", "stranger")

    def __init__(self, control: AdmissionControl, address: str) -> None:
        self._control = control
        self.address = address
        self._handshaking = True
        self._released = False
        self.stranger = True

    def handshake_finished(self) -> None:
        """The handshake ended (either way); the slot for in-flight handshakes is freed."""
        if self._handshaking:
            self._handshaking = False
            self._control._end_handshake(self.address)

    def promote(self) -> None:
        """The connection proved a contact's key: it no longer takes a stranger's slot."""
        if self.stranger and not self._released:
            self.stranger = False
            self._control._strangers -= 1

    def release(self) -> None:
        if self._released:
            return
        self.handshake_finished()
        self._released = True
        self._control._close(self.address, self.stranger)


class AdmissionControl:
    def __init__(self, settings: LimitSettings | None = None) -> None:
        self.settings = settings or LimitSettings()
        self._open = 0
        self._strangers = 0
        self._per_address: dict[str, int] = {}
        self._handshakes: dict[str, int] = {}
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def stranger_connections(self) -> int:
        return self._strangers

    @property
    def stranger_slots(self) -> int:
        return max(0, self.settings.max_connections - self.settings.contact_reserve)

    def strangers_over_cap(self) -> bool:
        """More stranger connections than their share: one came in on a contact's
        address (which may use the reserve) and proved a key that is no contact."""
        return self._strangers > self.stranger_slots

    def connections_from(self, address: str) -> int:
        return self._per_address.get(address, 0)

    def handshakes_in_flight(self, address: str) -> int:
        return self._handshakes.get(address, 0)

    def admit(
        self, address: str, now: float, *, contact_address: bool = False
    ) -> Admission | RefusalReason:
        """Admit a new connection from `address`, or say which limit refuses it.

        `contact_address`: a contact was seen at this address, so the connection may
        take one of the slots kept for contacts (until its handshake says otherwise).
        The rate bucket is charged even when another limit refuses, so a host that
        keeps hammering stays refused instead of slipping in whenever a slot frees.
        """
        s = self.settings
        within_rate = self._bucket(address, now).take(now)
        if self._open >= s.max_connections:
            return "connection_cap"
        if not contact_address and self._strangers >= self.stranger_slots:
            return "stranger_cap"
        if not within_rate:
            return "connection_rate"
        if self._per_address.get(address, 0) >= s.max_connections_per_address:
            return "address_cap"
        if self._handshakes.get(address, 0) >= s.max_handshakes_per_address:
            return "handshakes_in_flight"
        self._open += 1
        self._strangers += 1
        self._per_address[address] = self._per_address.get(address, 0) + 1
        self._handshakes[address] = self._handshakes.get(address, 0) + 1
        return Admission(self, address)

    def _bucket(self, address: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = TokenBucket.full(self.settings.connect_burst, self.settings.connect_rate, now)
            self._buckets[address] = bucket
            self._evict(now)
        else:
            self._buckets.move_to_end(address)
        return bucket

    def _evict(self, now: float) -> None:
        """Keep per-address state bounded. A full bucket carries no information, so
        dropping it is free; otherwise the least recently seen address goes."""
        excess = len(self._buckets) - self.settings.tracked_addresses
        if excess <= 0:
            return
        for address in [a for a, b in self._buckets.items() if b.is_full(now)][:excess]:
            del self._buckets[address]
            excess -= 1
        while excess > 0:
            self._buckets.popitem(last=False)
            excess -= 1

    def _end_handshake(self, address: str) -> None:
        count = self._handshakes.get(address, 0) - 1
        if count > 0:
            self._handshakes[address] = count
        else:
            self._handshakes.pop(address, None)

    def _close(self, address: str, stranger: bool) -> None:
        self._open = max(0, self._open - 1)
        if stranger:
            self._strangers = max(0, self._strangers - 1)
        count = self._per_address.get(address, 0) - 1
        if count > 0:
            self._per_address[address] = count
        else:
            self._per_address.pop(address, None)
