"""Bad group input is refused with its own error, and the group goes on for the rest."""

from __future__ import annotations

import os

import msgpack
import pytest

from p2pmsg.errors import (
    GroupDuplicateError,
    GroupEquivocationError,
    GroupFloodError,
    GroupGapError,
    GroupLimitError,
    GroupMalformedError,
    GroupNotMemberError,
    GroupRemovedError,
    GroupSignatureError,
    GroupTextMismatchError,
    LocalProtocolError,
    UnknownGroupError,
)
from p2pmsg.protocol.groups import (
    GroupReplica,
    ItemRefused,
    MemberInfo,
    PostHidden,
    parse_op,
    parse_post,
)
from p2pmsg.protocol.groups.items import (
    POST_DOMAIN,
    Create,
    Remove,
    Rename,
    sign_op,
    sign_post,
)
from p2pmsg.protocol.groups.limits import MAX_GROUP_MEMBERS, MAX_OPS_PER_AUTHOR
from p2pmsg.protocol.groups.sync import GroupSummary
from p2pmsg.protocol.groups.wire import decode_group_message, encode_group_message
from tests.protocol.groups.members import SALTS, Member, found, identity, join, sync

SALT = b"s" * 16


def _trio() -> tuple[Member, Member, Member]:
    alice = found("alice", ["bob", "carol"])
    return alice, join("bob", alice.replica.create_op), join("carol", alice.replica.create_op)


# --- forged and altered items ---------------------------------------------------------


def test_an_altered_relayed_post_is_refused_and_the_original_still_arrives() -> None:
    alice, _bob, carol = _trio()
    post = alice.replica.post(alice.me, 1.0, "pay bob 10", rng=SALTS)
    assert post.salt is not None
    # The text beside the body is checked against the hash the signature covers.
    with pytest.raises(GroupTextMismatchError) as info:
        decode_group_message(
            msgpack.packb([20, post.body, post.signature, [post.salt, "pay bob 99"]])
        )
    assert info.value.event == "frame_rejected" and info.value.reason == "group_text_mismatch"
    # The hash in the body is covered by the signature.
    altered = post.body.replace(post.text_hash, bytes(32))
    with pytest.raises(GroupSignatureError):
        parse_post(altered, post.signature)
    flipped = bytes([post.signature[0] ^ 1]) + post.signature[1:]
    with pytest.raises(GroupSignatureError):
        decode_group_message(msgpack.packb([20, post.body, flipped, [post.salt, post.text]]))
    carol.take(post)  # bob relays the true one later: it still counts
    assert carol.texts() == ["pay bob 10"]


def test_a_relay_cannot_sign_in_the_authors_name() -> None:
    alice, bob, _carol = _trio()
    genuine = bob.replica.post(bob.me, 1.0, "from bob", rng=SALTS)
    # bob puts alice's key as author and signs with his own.
    body = genuine.body.replace(bob.me.public_key, alice.me.public_key)
    with pytest.raises(GroupSignatureError):
        parse_post(body, bob.me.sign(POST_DOMAIN + body))
    # A signature over the op domain is no post signature (domain separation).
    with pytest.raises(GroupSignatureError):
        parse_post(genuine.body, bob.me.sign(b"p2pmsg/v2/group-op\x00" + genuine.body))


def test_a_re_encoded_body_is_refused_even_with_the_same_meaning() -> None:
    alice, _bob, _carol = _trio()
    post = alice.replica.post(alice.me, 1.0, "hi", rng=SALTS)
    fields = msgpack.unpackb(post.body)
    # Same fields, ts as a float32 instead of float64: another byte string.
    body = msgpack.packb(fields, use_bin_type=True, use_single_float=True)
    assert body != post.body
    with pytest.raises(GroupMalformedError, match="canonical"):
        parse_post(body, alice.me.sign(POST_DOMAIN + body))


def test_equivocation_and_duplicates() -> None:
    alice, bob, _carol = _trio()
    first = alice.replica.post(alice.me, 1.0, "one", rng=SALTS)
    bob.take(first)
    twin = sign_post(
        alice.me, first.group_id, 1, first.lamport, 1.0, first.deps, "other", salt=SALT
    )
    with pytest.raises(GroupEquivocationError) as info:
        bob.replica.receive(twin, 2.0)
    assert info.value.event == "replay_rejected"
    with pytest.raises(GroupDuplicateError) as dup:
        bob.replica.receive(first, 2.0)
    assert dup.value.event is None  # two relays of one post are normal, not an attack
    assert bob.texts() == ["one"]


# --- membership -----------------------------------------------------------------------


def test_a_removed_members_later_posts_are_refused_by_all() -> None:
    alice, bob, carol = _trio()
    before = carol.replica.post(carol.me, 1.0, "before", rng=SALTS)
    for m in (alice, bob):
        m.take(before)
    alice.replica.remove(alice.me, 2.0, carol.fp)
    for m in (bob, carol):
        sync(alice, m)
    assert not carol.replica.state.is_member(carol.fp)
    with pytest.raises(LocalProtocolError):
        carol.replica.post(carol.me, 3.0, "after", rng=SALTS)
    # carol (hostile) writes anyway: backdated (deps without her removal, a Lamport
    # time before it) ...
    backdated = sign_post(
        carol.me,
        carol.replica.group_id,
        2,
        before.lamport + 1,
        3.0,
        before.deps,
        "backdated",
        salt=SALT,
    )
    # ... and openly, knowing of her removal.
    after = sign_post(
        carol.me,
        carol.replica.group_id,
        3,
        50,
        3.0,
        carol.replica.summary().ops,
        "after",
        salt=SALT,
    )
    for m in (alice, bob):
        with pytest.raises(GroupRemovedError):
            m.replica.receive(backdated, 4.0)
        with pytest.raises(GroupRemovedError):
            m.replica.receive(after, 4.0)
        assert m.texts() == ["before"]
    # The group goes on.
    bob.take(alice.replica.post(alice.me, 5.0, "still here", rng=SALTS))
    assert bob.texts() == ["before", "still here"]


def test_a_post_concurrent_with_its_authors_removal_is_hidden_where_it_was_shown() -> None:
    alice, bob, carol = _trio()
    concurrent = carol.replica.post(carol.me, 1.0, "unaware", rng=SALTS)
    removal = alice.replica.remove(alice.me, 1.0, carol.fp)
    bob.take(concurrent)
    assert bob.texts() == ["unaware"]
    bob.take(removal)
    assert bob.texts() == []
    hidden = [e for e in bob.events if isinstance(e, PostHidden)]
    assert [e.post.key for e in hidden] == [concurrent.key]
    assert isinstance(hidden[0].error, GroupRemovedError)
    alice.take(concurrent)
    assert alice.texts() == [] and isinstance(alice.refused[-1], GroupRemovedError)


def test_a_stranger_is_no_member_and_non_admins_cannot_remove() -> None:
    alice, bob, carol = _trio()
    mallory = identity("mallory")
    group_id = alice.replica.group_id
    create = alice.replica.create_op
    deps = ((create.author, 1),)
    post = sign_post(mallory, group_id, 1, 2, 1.0, deps, "let me in", salt=SALT)
    with pytest.raises(GroupNotMemberError):
        bob.replica.receive(post, 1.0)
    op = sign_op(mallory, group_id, 1, 2, 1.0, deps, Rename("mallory's"))
    with pytest.raises(GroupNotMemberError):
        bob.replica.receive(op, 1.0)
    # dave, added by bob, is a member but not an admin: his removal of carol is ignored.
    bob.replica.add(bob.me, 2.0, MemberInfo(identity("dave").public_key, "dave"))
    dave = join("dave", create)
    sync(bob, dave)
    with pytest.raises(LocalProtocolError, match="only an admin"):
        dave.replica.remove(dave.me, 3.0, carol.fp)
    forged = sign_op(
        dave.me,
        group_id,
        1,
        10,
        3.0,
        dave.replica.summary().ops,
        Remove(carol.fp, 0, 0),
    )
    alice.take(bob.replica.held_ops()[1])
    alice.take(forged)
    assert alice.replica.state.is_member(carol.fp)
    assert alice.replica.state.ignored[forged.key] == "only an admin may remove"
    with pytest.raises(LocalProtocolError, match="creator"):
        bob.replica.remove(bob.me, 4.0, alice.fp)


def test_anyone_may_leave_and_then_posts_no_more() -> None:
    alice, bob, _carol = _trio()
    bob.replica.leave(bob.me, 1.0)
    sync(alice, bob)
    assert sorted(m.name for m in alice.replica.state.members.values()) == ["alice", "carol"]
    with pytest.raises(LocalProtocolError):
        bob.replica.post(bob.me, 2.0, "gone", rng=SALTS)
    late = sign_post(
        bob.me, bob.replica.group_id, 1, 9, 2.0, bob.replica.summary().ops, "x", salt=SALT
    )
    with pytest.raises(GroupRemovedError):
        alice.replica.receive(late, 3.0)


def test_unknown_group() -> None:
    alice, bob, _carol = _trio()
    other = found("alice", ["bob"], group="other")  # same founder, another group
    assert other.replica.group_id != alice.replica.group_id
    with pytest.raises(UnknownGroupError) as info:
        bob.replica.receive(other.replica.post(other.me, 1.0, "elsewhere", rng=SALTS), 1.0)
    assert info.value.event == "frame_rejected"
    with pytest.raises(UnknownGroupError):
        alice.replica.missing_for(GroupSummary.empty(other.replica.group_id))


# --- limits ---------------------------------------------------------------------------


def _people(n: int) -> list[MemberInfo]:
    return [MemberInfo(identity(f"m{i}").public_key, f"m{i}") for i in range(n)]


def test_member_list_is_capped() -> None:
    rng = os.urandom
    full = GroupReplica.create(identity("boss"), rng, 1.0, "big", "boss", _people(63))
    assert len(full.state.members) == MAX_GROUP_MEMBERS
    with pytest.raises(LocalProtocolError):
        GroupReplica.create(identity("boss"), rng, 1.0, "big", "boss", _people(64))
    # An oversized create from a peer: refused while decoding.
    boss = identity("boss")
    ok = full.create_op
    payload = Create(b"\x00" * 16, "big", "boss", tuple(_people(64)))
    body = msgpack.unpackb(ok.body)
    body[8] = [payload.nonce, "big", "boss", [[m.public_key, m.name] for m in payload.members]]
    raw = msgpack.packb(body, use_bin_type=True)
    with pytest.raises(GroupLimitError):
        parse_op(raw, boss.sign(b"p2pmsg/v2/group-op\x00" + raw))
    # The 65th member through an add: refused by the rules, on every member.
    with pytest.raises(LocalProtocolError, match="64 members"):
        full.add(boss, 2.0, MemberInfo(identity("one too many").public_key, "x"))


def test_an_operation_flood_is_refused_and_the_group_goes_on() -> None:
    alice, bob, _carol = _trio()
    ops = []
    for i in range(MAX_OPS_PER_AUTHOR - 1):  # with the create: the author's whole allowance
        ops.append(alice.replica.rename(alice.me, 1.0 + i, f"name {i}"))
    with pytest.raises(LocalProtocolError):
        alice.replica.rename(alice.me, 999.0, "one more")
    flood = sign_op(
        alice.me,
        alice.replica.group_id,
        MAX_OPS_PER_AUTHOR + 1,
        10_000,
        1.0,
        alice.replica.summary().ops,
        Rename("flood"),
    )
    for op in ops:
        bob.take(op)
    with pytest.raises(GroupFloodError) as info:
        bob.replica.receive(flood, 2.0)
    assert info.value.event == "rate_limited"
    bob.take(alice.replica.post(alice.me, 3.0, "still fine", rng=SALTS))
    assert bob.texts() == ["still fine"]
    assert bob.replica.state.name == f"name {MAX_OPS_PER_AUTHOR - 2}"


def test_a_gap_that_never_fills_is_dropped_after_the_timeout() -> None:
    alice = found("alice", ["bob"])
    bob = Member("bob", identity("bob"), GroupReplica(alice.replica.create_op, gap_timeout=30.0))
    first = alice.replica.post(alice.me, 1.0, "lost on the way", rng=SALTS)
    second = alice.replica.post(alice.me, 2.0, "arrived", rng=SALTS)
    bob.take(second, now=100.0)
    assert bob.texts() == [] and bob.replica.deadline == 130.0
    bob.replica.handle_timer(129.0)
    assert not [e for e in bob.pump() if isinstance(e, ItemRefused)]
    bob.replica.handle_timer(130.0)
    refused = [e for e in bob.pump() if isinstance(e, ItemRefused)]
    assert [(e.kind, e.seq) for e in refused] == [("post", 2)]
    assert isinstance(refused[0].error, GroupGapError)
    assert bob.replica.deadline is None
    # Anti-entropy brings both later; each shown once.
    sync(alice, bob)
    assert bob.texts() == ["lost on the way", "arrived"]
    assert bob.shown() == [first.key, second.key]


def test_waiting_items_are_bounded() -> None:
    alice = found("alice", ["bob"])
    bob = Member("bob", identity("bob"), GroupReplica(alice.replica.create_op, max_pending=4))
    posts = [alice.replica.post(alice.me, 1.0 + i, f"p{i}", rng=SALTS) for i in range(7)]
    for post in posts[1:5]:
        bob.replica.receive(post, 1.0)
    with pytest.raises(GroupFloodError):
        bob.replica.receive(posts[5], 1.0)
    bob.take(posts[0])
    assert bob.texts() == [f"p{i}" for i in range(5)]


def test_group_messages_round_trip_on_the_wire() -> None:
    alice, _bob, _carol = _trio()
    post = alice.replica.post(alice.me, 1.0, "x", ttl=60, rng=SALTS)
    assert post.ttl == 60 and post.text == "x"
    assert decode_group_message(encode_group_message(post)) == post
    op = alice.replica.held_ops()[0]
    assert decode_group_message(encode_group_message(op)) == op
    summary = alice.replica.summary()
    assert decode_group_message(encode_group_message(summary)) == summary


def test_the_group_wide_operation_cap_counts_operations_only() -> None:
    alice, bob, carol = _trio()
    dave = Member("dave", identity("dave"), GroupReplica(alice.replica.create_op, max_group_ops=6))
    ops = [alice.replica.rename(alice.me, 2.0 + i, f"name {i}") for i in range(3)]
    ops += [bob.replica.leave(bob.me, 3.0), carol.replica.leave(carol.me, 3.0)]
    posts = [alice.replica.post(alice.me, 4.0 + i, f"p{i}", rng=SALTS) for i in range(8)]
    for post in posts[1:]:  # waiting posts do not use up room for operations
        dave.replica.receive(post, 5.0)
    for op in ops[:5]:
        dave.take(op)
    assert not dave.refused and len(dave.replica.held_ops()) == 6
    extra = alice.replica.rename(alice.me, 9.0, "one too many")
    with pytest.raises(GroupFloodError):
        dave.replica.receive(extra, 9.0)
    dave.take(posts[0])
    assert len(dave.texts()) == 8
