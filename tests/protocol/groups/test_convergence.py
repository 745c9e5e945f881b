"""Membership converges: concurrent operations (and posts) from different members,
applied in every order, give every member the same members, admins, name, valid
operations and timeline."""

from __future__ import annotations

import itertools

from p2pmsg.errors import GroupRemovedError
from p2pmsg.protocol.groups import Item, MemberInfo, Remove
from tests.protocol.groups.members import SALTS, Member, found, identity, join, snapshot, sync


def _base() -> tuple[Member, Member, Member, Member]:
    """alice founds "team" with bob and carol (admins: alice added them); bob adds dave
    (not an admin: bob is not the creator). Everyone synced."""
    alice = found("alice", ["bob", "carol"])
    bob = join("bob", alice.replica.create_op)
    carol = join("carol", alice.replica.create_op)
    bob.replica.add(bob.me, 2.0, MemberInfo(identity("dave").public_key, "dave"))
    dave = join("dave", alice.replica.create_op)
    for m in (alice, carol, dave):
        sync(bob, m)
    assert alice.replica.state.admins == {alice.fp, bob.fp, carol.fp}
    return alice, bob, carol, dave


def _replay_all_orders(create: Item, items: list[Item], name: str = "observer") -> set[object]:
    results = set()
    for order in itertools.permutations(items):
        observer = join(name, create)
        for item in order:
            observer.take(item)
        assert len(observer.replica.held_ops()) + len(observer.replica.timeline()) > 0
        assert observer.replica.deadline is None, "something still waits for a gap"
        results.add(snapshot(observer))
        # What the events showed (less what they hid) is the timeline, whatever the order.
        observer.check_events_match_timeline()
    return results


def test_concurrent_add_remove_and_posts_converge_in_every_order() -> None:
    alice, bob, carol, dave = _base()
    # Concurrently, each on the synced base state and before hearing of the others:
    add_erin = bob.replica.add(bob.me, 3.0, MemberInfo(identity("erin").public_key, "erin"))
    erin = join("erin", alice.replica.create_op)
    sync(bob, erin)  # erin learns she is in, and adds frank: depends on bob's add
    add_frank = erin.replica.add(erin.me, 4.0, MemberInfo(identity("frank").public_key, "frank"))
    carol_removes_bob = carol.replica.remove(carol.me, 3.0, bob.fp)
    alice_removes_carol = alice.replica.remove(alice.me, 3.0, carol.fp)
    bob_post = bob.replica.post(bob.me, 3.0, "bob, concurrently", rng=SALTS)
    carol_post = carol.replica.post(carol.me, 3.0, "carol, concurrently", rng=SALTS)
    items: list[Item] = [
        *alice.replica.held_ops()[1:2],  # bob's add of dave (the base), then the rest
        add_erin,
        add_frank,
        carol_removes_bob,
        alice_removes_carol,
        bob_post,
        carol_post,
    ]
    results = _replay_all_orders(alice.replica.create_op, items)
    assert len(results) == 1, "members disagreed depending on arrival order"

    # And the one outcome is the rules': alice (creator, admin) removed carol, so carol's
    # concurrent removal of bob and her concurrent post do not count (removal wins:
    # neither has alice's removal in its past, both are beyond its cut-offs).
    everyone = [alice, bob, carol, dave, erin]
    for a, b in itertools.combinations(everyone, 2):
        sync(a, b)
    for a, b in itertools.combinations(everyone, 2):
        sync(a, b)
    state = alice.replica.state
    names = sorted(m.name for m in state.members.values())
    assert names == ["alice", "bob", "dave", "erin", "frank"]
    assert state.ignored[carol_removes_bob.key] == "written after its author's removal"
    assert {snapshot(m) for m in everyone} == results
    assert alice.texts() == ["bob, concurrently"]
    refusals = [e for m in everyone for e in m.refused if isinstance(e, GroupRemovedError)]
    hidden = [m for m in everyone if "carol, concurrently" in m.texts()]
    assert refusals and not hidden
    assert isinstance(carol_removes_bob.payload, Remove)


def test_two_admins_removing_each_other_converge_on_one_outcome() -> None:
    alice, bob, carol, _dave = _base()
    bob_removes_carol = bob.replica.remove(bob.me, 3.0, carol.fp)
    carol_removes_bob = carol.replica.remove(carol.me, 3.0, bob.fp)
    rename = alice.replica.rename(alice.me, 3.0, "team two")
    bob_renames = bob.replica.rename(bob.me, 4.0, "bob's team")
    items: list[Item] = [
        alice.replica.held_ops()[1],
        bob_removes_carol,
        carol_removes_bob,
        rename,
        bob_renames,
    ]
    results = _replay_all_orders(alice.replica.create_op, items)
    assert len(results) == 1
    (result,) = results
    members = dict(result[1])  # type: ignore[call-overload]
    # Exactly one of the two survives: the removal first in (lamport, author) order wins,
    # and the loser's removal is cut off as written after its own removal.
    assert (bob.fp in members) != (carol.fp in members)


def test_a_removed_member_rejoins_when_added_again() -> None:
    alice, bob, carol, dave = _base()
    alice.replica.remove(alice.me, 3.0, carol.fp)
    assert carol.fp not in alice.replica.state.members
    alice.replica.add(alice.me, 4.0, carol.info)
    sync(alice, carol)
    post = carol.replica.post(carol.me, 5.0, "back again", rng=SALTS)
    for m in (bob, dave):
        sync(alice, m)
        m.take(post)
        assert m.texts() == ["back again"]
    assert carol.fp in bob.replica.state.admins  # re-added by the creator


def test_a_removed_members_backdated_add_is_cut_off_in_every_order() -> None:
    alice, bob, carol, _dave = _base()
    # alice's clock runs ahead (her posts), so her removal of carol has a late Lamport time.
    chatter = [alice.replica.post(alice.me, 3.0 + i, f"a{i}", rng=SALTS) for i in range(5)]
    removal = alice.replica.remove(alice.me, 9.0, carol.fp)
    # carol, unaware (or pretending to be), adds a friend with an early Lamport time:
    # the order puts it before the removal, and only the cut-off rule can refuse it.
    friend = carol.replica.add(carol.me, 9.0, MemberInfo(identity("friend").public_key, "f"))
    assert friend.lamport < removal.lamport
    items: list[Item] = [alice.replica.held_ops()[1], *chatter, removal, friend]
    results = _replay_all_orders(alice.replica.create_op, items[:1] + items[-2:] + items[1:3])
    assert len(results) == 1
    (result,) = results
    members = dict(result[1])  # type: ignore[call-overload]
    assert identity("friend").fingerprint not in members and carol.fp not in members
    assert dict(result[4])[friend.key] == "written after its author's removal"  # type: ignore[call-overload]
    assert bob.fp in members
