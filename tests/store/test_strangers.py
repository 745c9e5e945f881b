"""What strangers may store (a quota per key and for all of them), and forgetting
the strangers that never said anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from p2pmsg.store import IncomingMessage, Store, StrangerQuota
from tests.store.conftest import PeerFactory


def _chats(count: int, size: int = 10) -> list[IncomingMessage]:
    return [IncomingMessage(os.urandom(16), "x" * size, 1000.0) for _ in range(count)]


def _store_admitted(store: Store, peer: str, chats: list[IncomingMessage], now: float) -> list[int]:
    admission = store.admit_incoming(peer, chats, now)
    store.insert_incoming_many(peer, [chats[i] for i in admission.admitted], now)
    return admission.refused


@pytest.fixture
def small(db_path: Path, data_key: bytes) -> Store:
    quota = StrangerQuota(per_peer_messages=5, per_peer_bytes=400, all_messages=8, all_bytes=10**6)
    return Store.open(db_path, data_key, stranger_quota=quota)


def test_a_stranger_stores_up_to_its_quota_in_order(small: Store) -> None:
    peer = small.record_handshake(os.urandom(32), "mallory", 1000.0).peer.fingerprint
    chats = _chats(7)
    admission = small.admit_incoming(peer, chats, 1000.0)
    assert admission.admitted == [0, 1, 2, 3, 4] and admission.refused == [5, 6]
    assert admission.why.startswith("stranger_quota: this stranger's chats are at the bound")
    small.insert_incoming_many(peer, [chats[i] for i in admission.admitted], 1000.0)
    # A resend of a stored chat costs nothing (its receipt was lost); a new one is refused.
    again = small.admit_incoming(peer, [chats[0], *_chats(1)], 1001.0)
    assert again.admitted == [0] and again.refused == [1]


def test_bytes_count_as_well_as_chats(small: Store) -> None:
    peer = small.record_handshake(os.urandom(32), "mallory", 1000.0).peer.fingerprint
    refused = _store_admitted(small, peer, _chats(3, size=150), 1000.0)
    assert refused == [2]  # two of 150 bytes (sealed: 179) fit in 400, the third not


def test_all_strangers_together_are_bounded_and_contacts_never(small: Store) -> None:
    first = small.record_handshake(os.urandom(32), "one", 1000.0).peer.fingerprint
    second = small.record_handshake(os.urandom(32), "two", 1000.0).peer.fingerprint
    assert _store_admitted(small, first, _chats(5), 1000.0) == []
    refused = small.admit_incoming(second, _chats(5), 1000.5)
    assert refused.refused == [3, 4]  # 8 for all strangers: 3 left
    assert "all strangers' chats" in refused.why
    contact = small.record_handshake(os.urandom(32), "carol", 1000.0).peer.fingerprint
    small.set_local_name(contact, "Carol")  # the user named it: a contact
    assert small.admit_incoming(contact, _chats(50), 1001.0).refused == []


def test_answering_a_stranger_lifts_its_quota(small: Store) -> None:
    peer = small.record_handshake(os.urandom(32), "dave", 1000.0).peer.fingerprint
    assert _store_admitted(small, peer, _chats(7), 1000.0) == [5, 6]
    small.enqueue_outgoing(peer, "hi, who is this?", 1001.0)
    assert small.admit_incoming(peer, _chats(20), 1002.0).refused == []


def test_the_total_is_counted_again_once_a_second(small: Store) -> None:
    """Between counts the total only grows with what was admitted; a second later an
    answered stranger's chats no longer count against all strangers'."""
    first = small.record_handshake(os.urandom(32), "one", 1000.0).peer.fingerprint
    second = small.record_handshake(os.urandom(32), "two", 1000.0).peer.fingerprint
    assert _store_admitted(small, first, _chats(5), 1000.0) == []
    small.enqueue_outgoing(first, "answered", 1000.1)
    assert len(small.admit_incoming(second, _chats(5), 1000.2).refused) == 2  # cached total
    assert small.admit_incoming(second, _chats(5), 1001.5).refused == []  # counted again


def test_silent_strangers_are_forgotten_when_idle_or_too_many(
    store: Store, make_peer: PeerFactory
) -> None:
    old = make_peer("old", now=1000.0)
    talked = make_peer("talker", now=1000.0)
    store.insert_incoming(talked, _chats(1)[0], 1000.0)
    named = make_peer("named", now=1000.0)
    store.set_local_name(named, "Named")
    written = make_peer("written", now=1000.0)
    store.enqueue_outgoing(written, "hello", 1000.0)
    online = make_peer("online", now=1000.0)
    day = 24 * 3600.0
    assert store.forget_strangers(1000.0 + day - 1) == 0  # not idle for a day yet
    assert store.forget_strangers(1000.0 + day, connected=[online]) == 1
    assert store.get_peer(old) is None
    for kept in (talked, named, written, online):
        assert store.get_peer(kept) is not None
    # Beyond the count, the longest unseen go first, even when not idle.
    recent = [make_peer(f"s{i}", now=5000.0 + i) for i in range(5)]
    assert store.forget_strangers(6000.0, keep_at_most=2) == 4  # online and 3 recent
    assert [store.get_peer(fp) is not None for fp in recent] == [False] * 3 + [True] * 2
