"""The groups tables (schema v10): items kept as their authors signed them, bodies sealed,
a group rebuilt from them by the group core, and the caps written down in store/groups.py."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from p2pmsg.crypto.identity import Identity
from p2pmsg.errors import StoreCorruptError
from p2pmsg.protocol.groups import GroupReplica, MemberInfo
from p2pmsg.store import GroupStoreFullError, Store, StoredGroupItem
from p2pmsg.store import groups as store_groups

SALTS = os.urandom


def _identity(name: str) -> Identity:
    return Identity.from_bytes(hashlib.sha512(name.encode()).digest())


def _rng(n: int) -> bytes:
    return hashlib.sha256(b"nonce").digest()[:n]


def _rows(replica: GroupReplica) -> list[StoredGroupItem]:
    out = [StoredGroupItem("op", o.author, o.seq, o.body, o.signature) for o in replica.held_ops()]
    out += [
        StoredGroupItem("post", p.author, p.seq, p.body, p.signature, p.content, p.ttl)
        for p in replica.held_posts()
    ]
    return out


def _team() -> tuple[Identity, GroupReplica]:
    alice, bob = _identity("alice"), _identity("bob")
    replica = GroupReplica.create(
        alice, _rng, 10.0, "team", "alice", [MemberInfo(bob.public_key, "bob")]
    )
    for i in range(3):
        replica.post(alice, 11.0 + i, f"secret plan {i}", rng=SALTS)
    replica.remove(alice, 20.0, bob.fingerprint)
    return alice, replica


def test_items_survive_a_reopen_and_rebuild_the_same_group(db_path: Path, data_key: bytes) -> None:
    alice, replica = _team()
    gid = replica.group_id
    with Store.open(db_path, data_key) as store:
        assert store.save_group_items(gid, alice.fingerprint, _rows(replica), 30.0) == 5
        assert store.save_group_items(gid, alice.fingerprint, _rows(replica), 31.0) == 0
    with Store.open(db_path, data_key) as store:
        assert store.group_ids() == [gid]
        stored = store.load_group(gid)
    assert stored is not None
    rebuilt = GroupReplica.restore(
        (stored.create.body, stored.create.signature),
        [(i.kind, i.body, i.signature, i.text) for i in stored.items],
    )
    assert rebuilt.state.members == replica.state.members
    assert [p.text for p in rebuilt.timeline()] == [p.text for p in replica.timeline()]
    assert rebuilt.summary() == replica.summary()


def test_bodies_are_sealed_and_bound_to_their_row(db_path: Path, data_key: bytes) -> None:
    alice, replica = _team()
    gid = replica.group_id
    with Store.open(db_path, data_key) as store:
        store.save_group_items(gid, alice.fingerprint, _rows(replica), 30.0)
    raw = db_path.read_bytes()
    assert b"secret plan" not in raw and b"team" not in raw
    conn = sqlite3.connect(db_path, isolation_level=None)
    bodies = conn.execute(
        "SELECT body FROM group_items WHERE kind = 'post' ORDER BY seq"
    ).fetchall()
    conn.execute("UPDATE group_items SET body = ? WHERE kind = 'post' AND seq = 1", (bodies[2][0],))
    conn.close()
    with Store.open(db_path, data_key) as store, pytest.raises(StoreCorruptError):
        store.load_group(gid)


def test_the_caps_refuse_the_whole_batch(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, replica = _team()
    rows = _rows(replica)
    monkeypatch.setattr(store_groups, "MAX_POSTS_PER_GROUP", 2)
    with pytest.raises(GroupStoreFullError):
        store.save_group_items(replica.group_id, alice.fingerprint, rows, 1.0)
    assert store.group_ids() == []  # nothing of the refused batch stayed
    monkeypatch.setattr(store_groups, "MAX_GROUPS", 1)
    store.save_group_items(replica.group_id, alice.fingerprint, rows[:1], 1.0)
    with pytest.raises(GroupStoreFullError):
        store.save_group_items(b"\x01" * 16, alice.fingerprint, rows[:1], 1.0)
    assert store.delete_group(replica.group_id)
    assert store.load_group(replica.group_id) is None


def test_receipt_marks_persist_and_only_grow(db_path: Path, data_key: bytes) -> None:
    from p2pmsg.store import GroupMark

    alice, replica = _team()
    gid, me, bob, carol = replica.group_id, alice.fingerprint, b"b" * 32, b"c" * 32
    with Store.open(db_path, data_key) as store:
        store.save_group_items(gid, me, _rows(replica), 30.0)
        assert store.group_marks(gid) == []
        grown = store.raise_group_marks(gid, [GroupMark(bob, me, 2, 1), GroupMark(carol, me, 1, 0)])
        assert grown == [GroupMark(bob, me, 2, 1), GroupMark(carol, me, 1, 0)]
        # Lower or equal claims change nothing; a higher one raises only what grew.
        assert store.raise_group_marks(gid, [GroupMark(bob, me, 1, 1)]) == []
        assert store.raise_group_marks(gid, [GroupMark(bob, me, 1, 2)]) == [
            GroupMark(bob, me, 2, 2)
        ]
        with pytest.raises(ValueError):
            store.raise_group_marks(gid, [GroupMark(bob[:31], me, 1, 1)])
    with Store.open(db_path, data_key) as store:
        assert store.group_marks(gid) == [GroupMark(bob, me, 2, 2), GroupMark(carol, me, 1, 0)]
        assert store.delete_group(gid)
        assert store.group_marks(gid) == []


def test_a_version_11_file_keeps_its_groups_and_gets_receipts(
    db_path: Path, data_key: bytes
) -> None:
    from p2pmsg.store import GroupMark
    from p2pmsg.store.schema import SCHEMA_VERSION
    from tests.store.test_schema import _undo_v12

    alice, replica = _team()
    gid = replica.group_id
    with Store.open(db_path, data_key) as store:
        store.save_group_items(gid, alice.fingerprint, _rows(replica), 30.0)
    conn = sqlite3.connect(db_path, isolation_level=None)
    _undo_v12(conn)
    conn.close()
    with Store.open(db_path, data_key) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.group_ids() == [gid] and store.group_marks(gid) == []
        mark = GroupMark(b"b" * 32, alice.fingerprint, 3, 3)
        assert store.raise_group_marks(gid, [mark]) == [mark]


# --- disappearing posts (schema v13) ----------------------------------------------------


def _disappearing() -> tuple[Identity, GroupReplica]:
    alice, bob = _identity("alice"), _identity("bob")
    replica = GroupReplica.create(
        alice, _rng, 10.0, "team", "alice", [MemberInfo(bob.public_key, "bob")]
    )
    replica.post(alice, 11.0, "burn after reading", ttl=30, rng=SALTS)
    replica.post(alice, 12.0, "stays", rng=SALTS)
    return alice, replica


def _post_rows(conn: sqlite3.Connection) -> list[tuple[int, bytes, bytes | None]]:
    return [
        (int(r[0]), bytes(r[1]), None if r[2] is None else bytes(r[2]))
        for r in conn.execute(
            "SELECT seq, body, text FROM group_items WHERE kind = 'post' ORDER BY seq"
        )
    ]


def test_texts_are_sealed_apart_from_the_bodies(db_path: Path, data_key: bytes) -> None:
    alice, replica = _disappearing()
    gid = replica.group_id
    with Store.open(db_path, data_key) as store:
        store.save_group_items(gid, alice.fingerprint, _rows(replica), 30.0)
        stored = store.load_group(gid)
    assert stored is not None
    posts = [i for i in stored.items if i.kind == "post"]
    assert [i.text for i in posts] == [p.content for p in replica.held_posts()]
    assert [i.ttl for i in posts] == [30.0, None]
    raw = db_path.read_bytes()
    assert b"burn after reading" not in raw and b"stays" not in raw
    # A sealed text is bound to its row: moved to another post, it fails to open.
    conn = sqlite3.connect(db_path, isolation_level=None)
    texts = [t for _, _, t in _post_rows(conn)]
    conn.execute("UPDATE group_items SET text = ? WHERE kind = 'post' AND seq = 1", (texts[1],))
    conn.close()
    with Store.open(db_path, data_key) as store, pytest.raises(StoreCorruptError):
        store.load_group(gid)


def test_expiry_deletes_the_text_and_keeps_the_signed_body(db_path: Path, data_key: bytes) -> None:
    alice, replica = _disappearing()
    gid = replica.group_id
    first, second = replica.held_posts()
    with Store.open(db_path, data_key) as store:
        store.save_group_items(gid, alice.fingerprint, _rows(replica), 30.0)
        assert store.next_group_expiry() is None  # not shown yet: no timer runs
        started = store.start_group_deadlines(gid, [first.key, second.key], 100.0)
        assert started == {first.key: 130.0}  # only the post with a timer
        assert store.start_group_deadlines(gid, [first.key], 120.0) == {}  # starts once
        assert store.next_group_expiry() == 130.0
        assert store.purge_group_texts(129.0) == {}
        assert store.purge_group_texts(130.0) == {gid: [first.key]}
        assert store.next_group_expiry() is None
        stored = store.load_group(gid)
        assert stored is not None
        posts = [i for i in stored.items if i.kind == "post"]
        assert [(i.text is None, i.gone) for i in posts] == [(True, True), (False, False)]
        assert [i.body for i in posts] == [first.body, second.body]  # the bodies stay
        # A copy with the text (another member's) does not bring it back here.
        store.save_group_items(gid, alice.fingerprint, _rows(replica), 140.0)
        again = store.load_group(gid)
        assert again is not None
        assert next(i.text for i in again.items if i.kind == "post") is None
    conn = sqlite3.connect(db_path)
    rows = _post_rows(conn)
    conn.close()
    assert rows[0][2] is None and rows[1][2] is not None
    # The group rebuilds with the stub in its place: later posts are not stalled.
    rebuilt = GroupReplica.restore(
        (stored.create.body, stored.create.signature),
        [(i.kind, i.body, i.signature, i.text) for i in stored.items],
        [(i.author, i.seq) for i in stored.items if i.gone],
    )
    assert [p.text for p in rebuilt.timeline()] == [None, "stays"]
    assert rebuilt.summary() == replica.summary()


def test_a_stored_stub_is_filled_by_a_later_copy(db_path: Path, data_key: bytes) -> None:
    alice, replica = _disappearing()
    gid = replica.group_id
    stubs = [
        StoredGroupItem(r.kind, r.author, r.seq, r.body, r.signature, None, r.ttl)
        for r in _rows(replica)
    ]
    with Store.open(db_path, data_key) as store:
        store.save_group_items(gid, alice.fingerprint, stubs, 30.0)
        stored = store.load_group(gid)
        assert stored is not None
        assert [i.text for i in stored.items if i.kind == "post"] == [None, None]
        assert not any(i.gone for i in stored.items)
        assert store.save_group_items(gid, alice.fingerprint, _rows(replica), 31.0) == 0
        filled = store.load_group(gid)
        assert filled is not None
        texts = [i.text for i in filled.items if i.kind == "post"]
    assert texts == [p.content for p in replica.held_posts()]


def test_the_author_s_own_deadline_is_stored_with_the_post(store: Store) -> None:
    alice, replica = _disappearing()
    rows = _rows(replica)
    own = rows[-2]
    mine = StoredGroupItem(
        "post", own.author, own.seq, own.body, own.signature, own.text, 30.0, deadline=41.0
    )
    store.save_group_items(replica.group_id, alice.fingerprint, [*rows[:-2], mine], 11.0)
    assert store.next_group_expiry() == 41.0
    assert store.purge_group_texts(41.0) == {replica.group_id: [(rows[-2].author, rows[-2].seq)]}


def test_a_version_12_file_keeps_its_operations_and_drops_old_form_posts(
    db_path: Path, data_key: bytes
) -> None:
    """Posts stored before v13 held their text inside the signed body (a pre-release form
    of protocol 2 that no longer verifies): the migration drops them, and their receipt
    marks; operations stay."""
    from p2pmsg.store import GroupMark
    from tests.store.test_schema import _undo_v13

    alice, replica = _disappearing()
    gid = replica.group_id
    with Store.open(db_path, data_key) as store:
        store.save_group_items(gid, alice.fingerprint, _rows(replica), 30.0)
        store.raise_group_marks(gid, [GroupMark(b"b" * 32, alice.fingerprint, 2, 1)])
    conn = sqlite3.connect(db_path, isolation_level=None)
    _undo_v13(conn)
    columns = {r[1] for r in conn.execute("PRAGMA table_info(group_items)")}
    assert "text" not in columns
    conn.close()
    with Store.open(db_path, data_key) as store:
        stored = store.load_group(gid)
        assert stored is not None
        assert [i.kind for i in stored.items] == []  # only the create op was held
        assert stored.create.body == replica.create_op.body
        assert store.group_marks(gid) == []  # the marks counted posts that are gone
        # The posts counter restarted with them: new posts are stored and counted.
        assert store.save_group_items(gid, alice.fingerprint, _rows(replica), 40.0) == 2
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT posts FROM groups").fetchone()[0] == 2
    conn.close()


def test_a_group_keeps_its_own_disappearing_timer(store: Store) -> None:
    import math

    from p2pmsg.errors import StoreError

    alice, replica = _disappearing()
    store.save_group_items(replica.group_id, alice.fingerprint, _rows(replica)[:1], 1.0)
    assert store.group_ttl(replica.group_id) is None
    store.set_group_ttl(replica.group_id, 300.0)
    assert store.group_ttl(replica.group_id) == 300.0
    store.set_group_ttl(replica.group_id, math.inf)  # off here, whatever the default
    assert store.group_ttl(replica.group_id) == math.inf
    with pytest.raises(ValueError, match="positive"):
        store.set_group_ttl(replica.group_id, 0.0)
    with pytest.raises(StoreError):
        store.set_group_ttl(b"\x09" * 16, 60.0)
