"""Disappearing posts, sans-I/O: a post's body commits to a salted hash of its text, so
a member whose copy disappeared still holds and relays the signed body as a *stub*,
which counts for seq, gaps, order and membership exactly like the post."""

from __future__ import annotations

import hashlib

import msgpack
import pytest

from p2pmsg.errors import GroupDuplicateError, GroupTextMismatchError
from p2pmsg.protocol.groups import (
    GroupPost,
    GroupReplica,
    PostFilled,
    PostShown,
    decode_group_message,
    encode_group_message,
    text_hash,
    with_text,
)
from tests.protocol.groups.members import SALTS, Member, found, join, sync


def _trio() -> tuple[Member, Member, Member]:
    alice = found("alice", ["bob", "carol"])
    return alice, join("bob", alice.replica.create_op), join("carol", alice.replica.create_op)


def _stub(post: GroupPost) -> GroupPost:
    """What a member whose copy disappeared relays: the body and signature alone."""
    data = encode_group_message(post.stub())
    assert msgpack.unpackb(data)[3] is None
    decoded = decode_group_message(data)
    assert isinstance(decoded, GroupPost) and decoded.text is None
    return decoded


def test_the_body_commits_to_a_salted_hash_not_the_text() -> None:
    alice, _bob, _carol = _trio()
    post = alice.replica.post(alice.me, 1.0, "ok", ttl=30, rng=SALTS)
    assert post.salt is not None and len(post.salt) == 16
    assert b"ok" not in post.body
    fields = msgpack.unpackb(post.body)
    assert fields[7] == post.text_hash == text_hash(post.salt, "ok")
    assert (
        post.text_hash == hashlib.sha256(b"p2pmsg/v2/group-text\x00" + post.salt + b"ok").digest()
    )
    assert fields[8] == 30


def test_the_salt_differs_per_post_so_equal_texts_hash_differently() -> None:
    alice, _bob, _carol = _trio()
    posts = [alice.replica.post(alice.me, 1.0 + i, "yes", rng=SALTS) for i in range(3)]
    assert len({p.salt for p in posts}) == 3
    assert len({p.text_hash for p in posts}) == 3
    # A member holding only the stub cannot confirm a guess without the salt.
    assert all(
        hashlib.sha256(b"p2pmsg/v2/group-text\x00" + b"yes").digest() != p.text_hash for p in posts
    )


def test_a_text_that_does_not_match_the_hash_is_refused() -> None:
    alice, bob, _carol = _trio()
    post = alice.replica.post(alice.me, 1.0, "pay bob 10", rng=SALTS)
    assert post.salt is not None
    with pytest.raises(GroupTextMismatchError):
        with_text(post.stub(), post.salt, "pay bob 99")
    with pytest.raises(GroupTextMismatchError):
        with_text(post.stub(), bytes(16), "pay bob 10")  # the salt is part of the hash
    forged = msgpack.packb([20, post.body, post.signature, [post.salt, "pay bob 99"]])
    with pytest.raises(GroupTextMismatchError):
        decode_group_message(forged)
    bob.take(post)
    assert bob.texts() == ["pay bob 10"]


def test_a_stub_fills_the_gap_and_the_later_posts_are_not_stalled() -> None:
    alice, _bob, carol = _trio()
    first = alice.replica.post(alice.me, 1.0, "gone soon", ttl=5, rng=SALTS)
    second = alice.replica.post(alice.me, 2.0, "later", rng=SALTS)
    carol.take(second)  # waits for seq 1
    assert carol.replica.timeline() == []
    carol.take(_stub(first))
    assert [p.key for p in carol.replica.timeline()] == [first.key, second.key]
    assert carol.texts() == [None, "later"]
    assert carol.shown() == [first.key, second.key]
    assert not carol.refused
    assert carol.replica.summary() == alice.replica.summary()


def test_a_stub_then_the_full_text_fills_it() -> None:
    alice, _bob, carol = _trio()
    post = alice.replica.post(alice.me, 1.0, "hello", ttl=60, rng=SALTS)
    carol.take(_stub(post))
    assert carol.texts() == [None]
    carol.take(post)
    assert carol.texts() == ["hello"]
    filled = [e for e in carol.events if isinstance(e, PostFilled)]
    assert [e.post.text for e in filled] == ["hello"]
    assert not carol.refused
    # Once filled, another stub or copy is a harmless duplicate.
    carol.take(_stub(post))
    carol.take(post)
    assert (
        carol.texts() == ["hello"]
        and len([e for e in carol.events if isinstance(e, PostFilled)]) == 1
    )


def test_a_waiting_stub_takes_the_text_of_a_later_copy() -> None:
    alice, _bob, carol = _trio()
    first = alice.replica.post(alice.me, 1.0, "one", rng=SALTS)
    second = alice.replica.post(alice.me, 2.0, "two", ttl=60, rng=SALTS)
    carol.take(_stub(second))  # waits for seq 1
    carol.take(second)  # the full copy replaces the waiting stub
    carol.take(first)
    assert carol.texts() == ["one", "two"]
    shown = [e.post for e in carol.events if isinstance(e, PostShown)]
    assert [p.text for p in shown] == ["one", "two"]


def test_a_copy_that_disappeared_here_stays_gone_and_is_relayed_as_a_stub() -> None:
    alice, bob, carol = _trio()
    post = alice.replica.post(alice.me, 1.0, "secret", ttl=10, rng=SALTS)
    after = alice.replica.post(alice.me, 2.0, "after", rng=SALTS)
    sync(alice, bob)
    assert bob.replica.forget_text(post.author, post.seq)
    assert not bob.replica.forget_text(post.author, post.seq)  # nothing left to forget
    assert bob.texts() == [None, "after"]
    bob.take(post)  # alice's copy still has the text: it does not come back here
    assert bob.texts() == [None, "after"]
    # carol, away until now, meets only bob: she gets the stub, and alice's later post
    # is not stalled behind it.
    sync(bob, carol)
    assert carol.texts() == [None, "after"]
    assert carol.replica.summary() == alice.replica.summary()
    # Anti-entropy names seqs, not texts: meeting alice later sends nothing more ...
    assert sync(alice, carol) == 0
    assert carol.texts() == [None, "after"]
    # ... but a copy with the text that does reach her (a relay, the author's fan-out)
    # fills her stub: hers did not disappear, she never had it.
    carol.take(post)
    assert carol.texts() == ["secret", "after"]
    assert after.text == "after"


def test_restore_keeps_stubs_texts_and_what_disappeared() -> None:
    alice, bob, _carol = _trio()
    posts = [alice.replica.post(alice.me, 1.0 + i, f"p{i}", ttl=10, rng=SALTS) for i in range(3)]
    sync(alice, bob)
    bob.replica.forget_text(posts[1].author, posts[1].seq)
    rows = [("post", p.body, p.signature, p.content) for p in bob.replica.held_posts()]
    create = bob.replica.create_op
    gone = [posts[1].key]
    restored = GroupReplica.restore((create.body, create.signature), rows, gone)
    assert [p.text for p in restored.timeline()] == ["p0", None, "p2"]
    with pytest.raises(GroupDuplicateError):  # a copy with the text: it stays gone
        restored.receive(posts[1], 5.0)
    assert [p.text for p in restored.timeline()] == ["p0", None, "p2"]
