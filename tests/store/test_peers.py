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


def test_a_new_key_under_a_known_name_is_flagged_not_the_contact(
    store: Store, make_peer: PeerFactory
) -> None:
    alice = make_peer("Alice")
    impostor_key = os.urandom(32)
    outcome = store.record_handshake(impostor_key, "alice", 50.0)  # same name, other case
    assert outcome.verdict == "name_clash"
    assert outcome.clash_with is not None and outcome.clash_with.fingerprint == alice
    assert outcome.peer.state == "flagged" and not outcome.peer.sendable
    assert outcome.peer.clash_with == alice and outcome.peer.trust_since == 50.0
    contact = store.get_peer(alice)
    assert contact is not None and contact.state == "pinned" and contact.sendable
    # Flagged once: later handshakes recognise it (no new event), and it stays flagged.
    again = store.record_handshake(impostor_key, "alice", 60.0)
    assert again.verdict == "known" and again.peer.state == "flagged"
    assert again.peer.trust_since == 50.0


def test_a_new_key_at_a_known_address_is_just_another_key(
    store: Store, make_peer: PeerFactory
) -> None:
    bob = make_peer("bob", ("192.168.1.7", 5000))
    outcome = store.record_handshake(os.urandom(32), "carol", 5.0, ("192.168.1.7", 5000))
    assert outcome.verdict == "new" and outcome.peer.sendable  # addresses change hands
    assert store.get_peer(bob).state == "pinned"  # type: ignore[union-attr]
    # The address belongs to the key that proved itself there last.
    assert store.peer_at_address("192.168.1.7", 5000).fingerprint == outcome.peer.fingerprint  # type: ignore[union-attr]


def test_a_known_key_renaming_to_a_contacts_name_is_flagged(
    store: Store, make_peer: PeerFactory
) -> None:
    alice = make_peer("alice")
    key = os.urandom(32)
    mallory = store.record_handshake(key, "mallory", 1.0).peer.fingerprint
    outcome = store.record_handshake(key, "\u0430lice", 2.0)  # Cyrillic a
    assert outcome.verdict == "name_clash" and outcome.peer.fingerprint == mallory
    assert outcome.peer.clash_with == alice and outcome.peer.claimed_name == "\u0430lice"
    assert store.resolve_peer("alice").fingerprint == alice
    # A key the user has named is known by that name: its claims do not flag it.
    other = os.urandom(32)
    store.record_handshake(other, "dave", 3.0)
    store.set_local_name(hashlib.sha256(other).hexdigest(), "Dave (work)")
    assert store.record_handshake(other, "alice", 4.0).verdict == "known"


def test_the_users_key_change_keeps_the_conversation_and_retires_the_old_key(
    store: Store, make_peer: PeerFactory
) -> None:
    old = make_peer("alice")
    store.set_verified(old, True)
    store.set_local_name(old, "Alice L.")
    store.enqueue_outgoing(old, "before the change", 1.0)
    new_key = os.urandom(32)
    claim = store.record_handshake(new_key, "alice", 2.0)
    new_fp = claim.peer.fingerprint
    store.insert_incoming(new_fp, IncomingMessage(os.urandom(16), "it's me, new laptop", 2.5), 2.5)
    moved = store.change_key(old, new_fp, 3.0)
    assert moved.fingerprint == new_fp and moved.identity_key == new_key
    assert moved.state == "pinned" and not moved.verified  # verify the new key again
    assert moved.local_name == "Alice L." and moved.clash_with is None
    assert [m.text for m in store.conversation(new_fp)] == [
        "before the change",
        "it's me, new laptop",
    ]
    retired = store.get_peer(old)
    assert retired is not None and retired.state == "retired" and retired.successor == new_fp
    assert retired.claimed_name == "alice" and retired.trust_since == 3.0
    assert store.record_handshake(new_key, "alice", 4.0).verdict == "known"
    assert store.record_handshake(retired.identity_key, "alice", 5.0).verdict == "refused"  # type: ignore[arg-type]
    assert store.resolve_peer("Alice L.").fingerprint == new_fp
    with pytest.raises(ValueError, match="retired"):
        store.change_key(old, new_fp, 6.0)


def test_a_key_change_needs_a_key_we_have_met(store: Store, make_peer: PeerFactory) -> None:
    alice = make_peer("alice")
    unknown = hashlib.sha256(os.urandom(32)).hexdigest()
    store.upsert_discovered(unknown, "alice", "10.0.0.5", 7000, 1.0)
    with pytest.raises(ValueError, match="connect to it first"):
        store.change_key(alice, unknown, 2.0)
    with pytest.raises(UnknownPeerError):
        store.change_key(alice, "ab" * 32, 2.0)
    assert store.get_peer(alice).state == "pinned"  # type: ignore[union-attr]


def test_someone_else_keeps_both_under_names_that_tell_them_apart(
    store: Store, make_peer: PeerFactory
) -> None:
    first = make_peer("alex")
    second_key = os.urandom(32)
    second = store.record_handshake(second_key, "alex", 2.0).peer.fingerprint
    with pytest.raises(ValueError, match="name of its own"):
        store.keep_apart(second, "  ")
    with pytest.raises(ValueError, match="reads like"):
        store.keep_apart(second, "ALEX")
    kept = store.keep_apart(second, "alex from the lab")
    assert kept.state == "pinned" and kept.sendable and kept.name == "alex from the lab"
    assert store.get_peer(first).state == "pinned"  # type: ignore[union-attr]
    assert store.record_handshake(second_key, "alex", 4.0).verdict == "known"
    assert store.resolve_peer("alex").fingerprint == first
    with pytest.raises(ValueError, match="not flagged"):
        store.keep_apart(first, "x")


def test_block_refuses_a_key_and_unblock_restores_its_state(
    store: Store, make_peer: PeerFactory
) -> None:
    alice = make_peer("alice", ("10.0.0.2", 4000))
    key = store.get_peer(alice).identity_key  # type: ignore[union-attr]
    impostor = store.record_handshake(os.urandom(32), "alice", 2.0).peer.fingerprint
    assert store.block(alice, 3.0).state == "blocked"
    assert store.record_handshake(key, "alice", 4.0).verdict == "refused"  # type: ignore[arg-type]
    assert store.dial_candidates() == []  # nobody dials a blocked key
    assert store.resolve_peer("alice").fingerprint == alice  # still found, to unblock it
    assert store.unblock(alice).state == "pinned"
    store.block(impostor, 5.0)
    assert store.unblock(impostor).state == "flagged"  # blocking forgot nothing
    with pytest.raises(ValueError, match="not blocked"):
        store.unblock(alice)


def test_petnames_are_checked_and_come_first(store: Store, make_peer: PeerFactory) -> None:
    alice = make_peer("alice")
    bob = make_peer("bob")
    with pytest.raises(ValueError, match="reads like"):
        store.set_local_name(bob, "\u0410lice")  # Cyrillic capital A
    with pytest.raises(ValueError, match="U\\+202E"):
        store.set_local_name(bob, "b\u202eob")
    assert store.set_local_name(bob, "  Robert  ").name == "Robert"
    assert store.resolve_peer("robert").fingerprint == bob
    with pytest.raises(UnknownPeerError):
        store.resolve_peer("bob")  # the petname replaces the claim in lookups
    assert store.set_local_name(bob, None).name == "bob"
    assert store.resolve_peer("bob").fingerprint == bob
    assert store.resolve_peer("alice").fingerprint == alice


def test_unproven_adverts_never_make_a_name_ambiguous(store: Store, make_peer: PeerFactory) -> None:
    alice = make_peer("alice")
    for i in range(3):
        fake = hashlib.sha256(os.urandom(32)).hexdigest()
        store.upsert_discovered(fake, "alice", f"10.0.0.{i + 10}", 7000, 1.0)
    assert store.resolve_peer("alice").fingerprint == alice
    # A name only adverts carry still works for a first contact, while it is unique.
    newcomer = hashlib.sha256(os.urandom(32)).hexdigest()
    store.upsert_discovered(newcomer, "zoe", "10.0.0.20", 7000, 1.0)
    assert store.resolve_peer("Zoe").fingerprint == newcomer


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
        (None, "[fd00::5]:9000", True)
    ]
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


def test_ambiguous_lookup_lists_the_candidates(store: Store, make_peer: PeerFactory) -> None:
    # Two people called kim: the second was kept apart under a petname, which the
    # user then removed again, so two proven keys claim "kim" and neither is flagged.
    first = make_peer("kim")
    second = store.record_handshake(os.urandom(32), "kim", 2.0).peer.fingerprint
    store.keep_apart(second, "kim park")
    store.set_local_name(second, None)
    with pytest.raises(AmbiguousPeerError) as caught:
        store.resolve_peer("KIM")
    assert sorted(caught.value.candidates) == sorted(
        [f"kim ({first[:16]})", f"kim ({second[:16]})"]
    )


def test_a_new_keys_name_check_opens_no_contact_names(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look-alike check of a new key's name goes by an index: it opened every
    contact's sealed names once (120 ms per new key at 20,000 contacts)."""
    for i in range(300):
        store.record_handshake(os.urandom(32), f"contact {i}", 1.0)
    opened: list[str] = []
    real = store._sealer.open_optional_text

    def counting(sealed: bytes | None, **where: object) -> str | None:
        opened.append(str(where["column"]))
        return real(sealed, **where)  # type: ignore[arg-type]

    monkeypatch.setattr(store._sealer, "open_optional_text", counting)
    assert store.record_handshake(os.urandom(32), "newcomer", 2.0).verdict == "new"
    assert opened.count("name") + opened.count("local_name") <= 4  # its own row, not 600
    opened.clear()
    clash = store.record_handshake(os.urandom(32), "C0NTACT 7", 3.0)  # zero for O
    assert clash.verdict == "name_clash" and clash.clash_with is not None
    assert clash.clash_with.claimed_name == "contact 7"
    assert len(opened) <= 8
