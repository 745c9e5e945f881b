"""The groups tables (schema v10): items kept as their authors signed them, bodies sealed,
a group rebuilt from them by the group core, and the caps written down in store/groups.py."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from p2pmsg.crypto.identity import Identity
from p2pmsg.errors import StoreCorruptError
from p2pmsg.protocol.groups import GroupReplica, MemberInfo
from p2pmsg.store import GroupStoreFullError, Store, StoredGroupItem
from p2pmsg.store import groups as store_groups


def _identity(name: str) -> Identity:
    return Identity.from_bytes(hashlib.sha512(name.encode()).digest())


def _rng(n: int) -> bytes:
    return hashlib.sha256(b"nonce").digest()[:n]


def _rows(replica: GroupReplica) -> list[StoredGroupItem]:
    out = [StoredGroupItem("op", o.author, o.seq, o.body, o.signature) for o in replica.held_ops()]
    out += [
        StoredGroupItem("post", p.author, p.seq, p.body, p.signature) for p in replica.held_posts()
    ]
    return out


def _team() -> tuple[Identity, GroupReplica]:
    alice, bob = _identity("alice"), _identity("bob")
    replica = GroupReplica.create(
        alice, _rng, 10.0, "team", "alice", [MemberInfo(bob.public_key, "bob")]
    )
    for i in range(3):
        replica.post(alice, 11.0 + i, f"secret plan {i}")
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
        [(i.kind, i.body, i.signature) for i in stored.items],
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
