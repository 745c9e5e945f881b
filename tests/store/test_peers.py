"""Peers: trust on first use, key changes, discovery hints, addresses, lookup by name/prefix."""

from __future__ import annotations

import hashlib
import os

import pytest

from p2pmsg.errors import AmbiguousPeerError, UnknownPeerError
from p2pmsg.store import IncomingMessage, Store
from tests.store.conftest import PeerFactory


def test_first_handshake_pins_and_later_ones_recognise(store: Store) -> None:
    key = os.urandom(32)
    first = store.record_handshake(key, "alice", 10.0, ("10.0.0.2", 4000))
    assert first.verdict == "new" and first.peer.pinned and first.peer.identity_key == key
    assert not first.peer.verified
    again = store.record_handshake(key, "alice (laptop)", 20.0, ("10.0.0.3", 4000))
    assert again.verdict == "known"
    peer = again.peer
    assert peer.name == "alice (laptop)"  # an authenticated name may change
    assert (peer.first_seen, peer.last_seen) == (10.0, 20.0)
    assert {str(a) for a in peer.addresses} == {"10.0.0.2:4000", "10.0.0.3:4000"}
    with pytest.raises(ValueError):
        store.record_handshake(b"short", "x", 1.0)


def test_a_new_key_under_a_known_name_is_held_back(store: Store, make_peer: PeerFactory) -> None:
    alice = make_peer("Alice")
    impostor_key = os.urandom(32)
    outcome = store.record_handshake(impostor_key, "alice", 50.0)  # same name, other case
    assert outcome.verdict == "key_changed"
    assert outcome.previous is not None and outcome.previous.fingerprint == alice
    assert outcome.previous.key_change_pending
    assert outcome.previous.pending_fingerprint == hashlib.sha256(impostor_key).hexdigest()
    assert not outcome.peer.pinned  # nothing may be sent to the claimant
    # It stays held back on every later handshake until the user decides.
    again = store.record_handshake(impostor_key, "alice", 60.0)
    assert again.verdict == "key_changed"
    assert again.previous is not None and again.previous.pending_since == 50.0


def test_a_new_key_at_a_known_address_is_held_back(store: Store, make_peer: PeerFactory) -> None:
    bob = make_peer("bob", ("192.168.1.7", 5000))
    outcome = store.record_handshake(os.urandom(32), "totally-not-bob", 5.0,
                                     ("192.168.1.7", 5000))
    assert outcome.verdict == "key_changed" and outcome.previous is not None
    assert outcome.previous.fingerprint == bob
    # The address still belongs to the peer that proved itself there.
    assert store.peer_at_address("192.168.1.7", 5000).fingerprint == bob  # type: ignore[union-attr]


def test_accepting_a_key_change_keeps_the_conversation(
        store: Store, make_peer: PeerFactory) -> None:
    old = make_peer("alice")
    store.set_verified(old, True)
    store.enqueue_outgoing(old, "before the change", 1.0)
    new_key = os.urandom(32)
    claim = store.record_handshake(new_key, "alice", 2.0)
    new_fp = claim.peer.fingerprint
    accepted = store.accept_key_change(old, 3.0)
    assert accepted.fingerprint == new_fp and accepted.identity_key == new_key
    assert not accepted.verified and not accepted.key_change_pending  # verify again
    assert store.get_peer(old) is None
    assert [m.text for m in store.conversation(new_fp)] == ["before the change"]
    assert store.record_handshake(new_key, "alice", 4.0).verdict == "known"
    with pytest.raises(ValueError, match="no pending key change"):
        store.accept_key_change(new_fp, 5.0)


def test_accepting_as_a_new_contact_keeps_both(store: Store, make_peer: PeerFactory) -> None:
    first = make_peer("alex")
    second_key = os.urandom(32)
    store.record_handshake(second_key, "alex", 2.0)
    second = store.accept_key_change(first, 3.0, as_new_contact=True)
    assert second.identity_key == second_key and second.fingerprint != first
    assert store.get_peer(first).pinned  # type: ignore[union-attr]
    assert store.record_handshake(second_key, "alex", 4.0).verdict == "known"


def test_rejecting_a_key_change(store: Store, make_peer: PeerFactory) -> None:
    alice = make_peer("alice")
    store.record_handshake(os.urandom(32), "alice", 2.0)
    store.reject_key_change(alice)
    peer = store.get_peer(alice)
    assert peer is not None and not peer.key_change_pending and peer.pinned


def test_discovery_is_only_a_hint(store: Store, make_peer: PeerFactory) -> None:
    bob = make_peer("bob", ("10.0.0.9", 7000))
    unknown = hashlib.sha256(os.urandom(32)).hexdigest()
    seen = store.upsert_discovered(unknown, "carol", "10.0.0.5", 7000, 1.0)
    assert seen.name == "carol" and not seen.pinned
    # An advert cannot rename a peer we know, nor take over its address.
    store.upsert_discovered(bob, "evil bob", "10.0.0.8", 7000, 2.0)
    store.upsert_discovered(unknown, "carol", "10.0.0.9", 7000, 2.0)
    peer = store.get_peer(bob)
    assert peer is not None and peer.name == "bob"
    assert {str(a) for a in peer.addresses} == {"10.0.0.9:7000", "10.0.0.8:7000"}
    assert store.peer_at_address("10.0.0.9", 7000).fingerprint == bob  # type: ignore[union-attr]


def test_manual_addresses_are_dialled_before_we_know_who_is_there(store: Store) -> None:
    store.add_manual_address("fd00::5", 9000, 1.0)
    assert [(fp, str(a), a.manual) for fp, a in store.dial_candidates()] == [
        (None, "[fd00::5]:9000", True)]
    key = os.urandom(32)
    peer = store.record_handshake(key, "vpn-friend", 2.0, ("fd00::5", 9000)).peer
    assert peer.manual
    assert store.dial_candidates()[0][0] == peer.fingerprint
    with pytest.raises(ValueError, match="port"):
        store.add_manual_address("10.0.0.1", 70000, 1.0)
    assert store.remove_address("fd00::5", 9000)
    assert store.dial_candidates() == []


def test_resolve_by_name_or_fingerprint_prefix(store: Store, make_peer: PeerFactory) -> None:
    alice = make_peer("Alice")
    bob = make_peer("bob")
    assert store.resolve_peer("alice").fingerprint == alice
    assert store.resolve_peer(alice[:8].upper()).fingerprint == alice
    assert store.resolve_peer(" ".join([alice[:4], alice[4:8]])).fingerprint == alice
    with pytest.raises(UnknownPeerError):
        store.resolve_peer("carol")
    with pytest.raises(UnknownPeerError):
        store.resolve_peer(alice[:3])  # too short to be a prefix
    assert store.resolve_peer("bob").fingerprint == bob


def test_ambiguous_lookup_lists_the_candidates(store: Store) -> None:
    # Two different identities with one display name: met as separate contacts.
    first = store.record_handshake(os.urandom(32), "sam", 1.0).peer.fingerprint
    store.record_handshake(os.urandom(32), "sam", 2.0)
    second = store.accept_key_change(first, 3.0, as_new_contact=True).fingerprint
    with pytest.raises(AmbiguousPeerError) as caught:
        store.resolve_peer("Sam")
    assert sorted(caught.value.candidates) == sorted([f"sam ({first[:16]})",
                                                      f"sam ({second[:16]})"])
    assert "ambiguous" in str(caught.value)
    assert store.resolve_peer(second[:10]).fingerprint == second


def test_verification_and_listing(store: Store, make_peer: PeerFactory) -> None:
    alice = make_peer("alice")
    unpinned = store.upsert_discovered(os.urandom(32), "dave", "10.0.0.4", 1, 1.0)
    with pytest.raises(ValueError, match="no pinned key"):
        store.set_verified(unpinned.fingerprint, True)
    store.set_verified(alice, True)
    store.insert_incoming(alice, IncomingMessage(os.urandom(16), "hi", 1.0), 1.0)
    listed = {p.fingerprint: p for p in store.list_peers()}
    assert listed[alice].verified and listed[alice].unread == 1
    assert not listed[unpinned.fingerprint].pinned
