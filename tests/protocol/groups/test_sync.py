"""Anti-entropy between in-memory members: identical state, every post exactly once,
and a member who was away catches up from a third member while the author is away."""

from __future__ import annotations

import itertools
import random

from p2pmsg.protocol.groups import GroupPost
from p2pmsg.protocol.groups.sync import GroupSummary
from tests.protocol.groups.members import SALTS, Member, found, join, snapshot, sync, wire


def _group(names: list[str]) -> list[Member]:
    founder = found(names[0], names[1:])
    return [founder, *(join(n, founder.replica.create_op) for n in names[1:])]


def test_members_posting_apart_reach_one_state_and_each_post_once() -> None:
    members = _group(["alice", "bob", "carol", "dave"])
    rnd = random.Random(7)  # noqa: S311 - a reproducible schedule, not a secret
    written: list[GroupPost] = []
    for step in range(60):
        author = rnd.choice(members)
        written.append(
            author.replica.post(author.me, 10.0 + step, f"{author.name} #{step}", rng=SALTS)
        )
        if rnd.random() < 0.4:  # now and then two random members meet
            a, b = rnd.sample(members, 2)
            sync(a, b)
    for a, b in itertools.combinations(members, 2):
        sync(a, b)
    for a, b in itertools.combinations(members, 2):
        sync(a, b)
    expected = sorted(p.order for p in written)
    for m in members:
        assert [p.order for p in m.replica.timeline()] == expected
        # Exactly once: every post shown once (its author's own included), none hidden.
        assert sorted(m.shown()) == sorted(p.key for p in written)
        assert not m.hidden() and not m.refused
        m.check_events_match_timeline()
    assert len({snapshot(m) for m in members}) == 1
    # Once in step, a summary asks for nothing.
    for a, b in itertools.permutations(members, 2):
        assert a.replica.missing_for(b.replica.summary()) == []


def test_offline_member_catches_up_from_a_third_while_the_author_is_away() -> None:
    alice, bob, carol = _group(["alice", "bob", "carol"])
    # carol is offline: alice fans out to bob only.
    posts = [
        alice.replica.post(alice.me, 5.0 + i, f"while carol was away {i}", rng=SALTS)
        for i in range(5)
    ]
    for post in posts:
        bob.take(post)
    # alice goes away; carol comes back and meets bob only.
    sent = sync(bob, carol)
    assert sent == 5
    assert carol.texts() == [f"while carol was away {i}" for i in range(5)]
    assert [k for k in carol.shown()] == [p.key for p in posts]
    assert not carol.refused
    # A second exchange sends nothing again, and delivers nothing twice.
    assert sync(bob, carol) == 0
    assert len(carol.shown()) == 5


def test_items_out_of_order_wait_and_are_delivered_once_in_display_order() -> None:
    alice, bob = _group(["alice", "bob"])
    posts = [alice.replica.post(alice.me, 1.0 + i, f"m{i}", rng=SALTS) for i in range(6)]
    for post in reversed(posts):
        bob.take(post)
    assert bob.texts() == [f"m{i}" for i in range(6)]
    assert bob.shown() == [p.key for p in posts]  # delivered in the author's order
    assert bob.replica.deadline is None


def test_a_reply_displays_after_what_it_answers_everywhere() -> None:
    alice, bob, carol = _group(["alice", "bob", "carol"])
    question = alice.replica.post(alice.me, 1.0, "lunch?", rng=SALTS)
    bob.take(question)
    answer = bob.replica.post(bob.me, 2.0, "yes", rng=SALTS)
    earlier = carol.replica.post(carol.me, 0.5, "carol, unaware", rng=SALTS)
    for m in (alice, carol):
        m.take(answer)  # the answer first: it does not depend on the question's arrival
        m.take(question)
    alice.take(earlier)
    bob.take(earlier)
    for m in (alice, bob, carol):
        texts = m.texts()
        assert texts.index("lunch?") < texts.index("yes")
    assert alice.texts() == bob.texts() == carol.texts()


def test_missing_for_sends_operations_first_and_respects_the_limit() -> None:
    alice, bob = _group(["alice", "bob"])
    for i in range(10):
        alice.replica.post(alice.me, 1.0 + i, f"p{i}", rng=SALTS)
    alice.replica.rename(alice.me, 20.0, "renamed")
    empty = wire(GroupSummary.empty(alice.replica.group_id))
    assert isinstance(empty, GroupSummary)
    items = alice.replica.missing_for(empty, limit=4)
    assert len(items) == 4
    assert [type(i).__name__ for i in items] == ["GroupOp", "GroupOp", "GroupPost", "GroupPost"]
    assert sync(alice, bob) == 11  # bob holds the create: the rename and the ten posts
    assert bob.replica.state.name == "renamed"


def test_restore_rebuilds_the_same_state_from_stored_rows() -> None:
    from p2pmsg.protocol.groups import GroupReplica

    alice, bob, carol = _group(["alice", "bob", "carol"])
    bob.replica.post(bob.me, 1.0, "one", rng=SALTS)
    sync(alice, bob)
    alice.replica.remove(alice.me, 2.0, carol.fp)
    alice.replica.post(alice.me, 3.0, "two", rng=SALTS)
    rows = [("op", o.body, o.signature, None) for o in alice.replica.held_ops()[1:]]
    rows += [("post", p.body, p.signature, p.content) for p in alice.replica.held_posts()]
    create = alice.replica.create_op
    restored = GroupReplica.restore((create.body, create.signature), reversed(rows))
    assert restored.state == alice.replica.state
    assert [p.key for p in restored.timeline()] == [p.key for p in alice.replica.timeline()]
    assert restored.timeline() == alice.replica.timeline()  # texts included
