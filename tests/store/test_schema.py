"""Opening, pragmas, migrations keyed by user_version, refusing a newer schema."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from p2pmsg.errors import StoreSchemaError
from p2pmsg.security_events import SecurityEvent
from p2pmsg.store import IncomingMessage, Store
from p2pmsg.store.schema import MIGRATIONS, SCHEMA_VERSION, migrate, schema_version


def test_migrates_an_empty_file_to_the_current_version(db_path: Path, data_key: bytes) -> None:
    db_path.write_bytes(b"")  # an empty file is a valid, empty SQLite database
    with Store.open(db_path, data_key) as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    conn = sqlite3.connect(db_path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert {
        "peers",
        "addresses",
        "messages",
        "events",
        "alerts",
        "transfers",
        "settings",
        "meta",
    } <= tables


def test_reopening_keeps_data_and_does_not_migrate_again(db_path: Path, data_key: bytes) -> None:
    with Store.open(db_path, data_key) as store:
        store.update_settings(max_messages_per_key=7)
    with Store.open(db_path, data_key) as store:
        assert store.load_settings().max_messages_per_key == 7
        assert store.schema_version == SCHEMA_VERSION


def test_connection_settings(store: Store) -> None:
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1


def test_durable_mode_syncs_every_commit(db_path: Path, data_key: bytes) -> None:
    with Store.open(db_path, data_key, durable=True) as store:
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_database_files_are_private(store: Store, db_path: Path) -> None:
    store.update_settings(preferred_suite="chacha20-poly1305")  # makes the WAL exist
    for path in (db_path, Path(f"{db_path}-wal")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_refuses_a_database_newer_than_the_code(db_path: Path, data_key: bytes) -> None:
    Store.open(db_path, data_key).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreSchemaError, match="newer than this p2pmsg"):
        Store.open(db_path, data_key)


def test_migrations_run_in_order_and_a_failing_one_changes_nothing(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    seen: list[int] = []

    def step(n: int):  # type: ignore[no-untyped-def]
        def run(c: sqlite3.Connection) -> None:
            seen.append(n)
            c.execute(f"CREATE TABLE t{n} (x)")

        return run

    def broken(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE half (x)")
        c.execute("THIS IS NOT SQL")

    assert migrate(conn, [step(1), step(2)]) == 0
    assert seen == [1, 2] and schema_version(conn) == 2
    with pytest.raises(StoreSchemaError, match="version 3"):
        migrate(conn, [step(1), step(2), broken])
    assert schema_version(conn) == 2
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "half" not in names  # rolled back with the failed step
    assert migrate(conn, [step(1), step(2), step(3)]) == 2
    assert seen == [1, 2, 3]
    conn.close()


def test_a_file_that_is_not_a_database_is_a_store_error(db_path: Path, data_key: bytes) -> None:
    from p2pmsg.errors import StoreError

    db_path.write_bytes(b"definitely not sqlite " * 100)
    with pytest.raises(StoreError):
        Store.open(db_path, data_key)


def test_a_database_locked_by_another_process_is_a_store_error(
    db_path: Path, data_key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes opening a new profile at once: the one that finds the file locked
    past the busy timeout gets a `StoreError` (the CLI's one-line message), not a raw
    `sqlite3.OperationalError` and its traceback. So does a closed store's version."""
    from p2pmsg.errors import StoreError
    from p2pmsg.store import base

    monkeypatch.setattr(base, "BUSY_TIMEOUT_MS", 100)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("PRAGMA journal_mode = WAL")
    other.execute("BEGIN IMMEDIATE")  # holds the write lock the first migration needs
    try:
        with pytest.raises(StoreError, match="cannot migrate the database to version 1"):
            Store.open(db_path, data_key)
    finally:
        other.execute("ROLLBACK")
        other.close()
    store = Store.open(db_path, data_key)
    store.close()
    with pytest.raises(StoreError, match="schema version"):
        store.schema_version  # noqa: B018 - the property is what is tested


def test_a_version_1_database_with_history_upgrades_to_owe_no_read_receipts(
    db_path: Path, data_key: bytes
) -> None:
    """A profile made before read receipts were kept across restarts opens with its
    history intact and no receipt owed for what was read back then."""
    with Store.open(db_path, data_key) as store:
        fp = store.record_handshake(os.urandom(32), "alice", 1.0, None).peer.fingerprint
        store.insert_incoming(fp, IncomingMessage(bytes(16), "read long ago", 1.0, None), 1.0)
        assert store.mark_conversation_read(fp, 2.0) == [bytes(16)]
    # Turn the file back into version 1: the column and its index did not exist.
    conn = sqlite3.connect(db_path, isolation_level=None)
    _undo_v3(conn)
    conn.execute("DROP INDEX messages_read_receipt_due")
    conn.execute("ALTER TABLE messages DROP COLUMN read_receipt_due")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with Store.open(db_path, data_key) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.read_receipts_due(fp) == []
        assert [m.text for m in store.conversation(fp)] == ["read long ago"]


def _undo_v5(conn: sqlite3.Connection) -> None:
    """The events table as version 4 had it (no value tiers)."""
    _undo_v6(conn)
    conn.execute("DROP INDEX events_by_tier")
    conn.execute("ALTER TABLE events DROP COLUMN tier")
    conn.execute("PRAGMA user_version = 4")


def _undo_v4(conn: sqlite3.Connection) -> None:
    """The peers table as version 3 had it (no name lookup tags)."""
    _undo_v5(conn)
    conn.execute("DROP INDEX peers_by_name_tag")
    conn.execute("DROP INDEX peers_by_local_tag")
    conn.execute("ALTER TABLE peers DROP COLUMN name_tag")
    conn.execute("ALTER TABLE peers DROP COLUMN local_tag")
    conn.execute("PRAGMA user_version = 3")


def _undo_v3(conn: sqlite3.Connection) -> None:
    """The peers table as versions 1 and 2 had it (no petnames, no key states)."""
    _undo_v4(conn)
    for column in ("trust_since", "successor", "clash_with", "trust", "local_name"):
        conn.execute(f"ALTER TABLE peers DROP COLUMN {column}")
    conn.execute("PRAGMA user_version = 2")


def test_a_version_2_pending_key_change_becomes_a_flagged_key(
    db_path: Path, data_key: bytes
) -> None:
    """Version 2 blocked a contact while a new key claimed its name ("pending key").
    Version 3 keeps them apart: the claimant is a flagged key of its own, the
    contact is untouched and sendable again, and nothing of either's history moves."""
    claimant_key = os.urandom(32)
    with Store.open(db_path, data_key) as store:
        alice = store.record_handshake(os.urandom(32), "alice", 1.0, None).peer.fingerprint
        store.enqueue_outgoing(alice, "held while blocked", 2.0)
        claimant = store.record_handshake(claimant_key, "alice", 3.0).peer.fingerprint
        store.set_local_name(claimant, None)
    conn = sqlite3.connect(db_path, isolation_level=None)
    _undo_v3(conn)
    # What version 2 wrote for that handshake: the claimant unpinned, the contact pending.
    conn.execute("UPDATE peers SET identity_key = NULL WHERE fingerprint = ?", (claimant,))
    conn.execute(
        "UPDATE peers SET pending_key = ?, pending_fingerprint = ?, pending_since = 3.0 "
        "WHERE fingerprint = ?",
        (claimant_key, claimant, alice),
    )
    conn.close()
    with Store.open(db_path, data_key) as store:
        assert store.schema_version == SCHEMA_VERSION
        contact = store.get_peer(alice)
        flagged = store.get_peer(claimant)
        assert contact is not None and contact.state == "pinned" and contact.sendable
        assert [m.text for m in store.conversation(alice)] == ["held while blocked"]
        assert flagged is not None and flagged.state == "flagged"
        assert flagged.identity_key == claimant_key and flagged.clash_with == alice
        assert flagged.trust_since == 3.0
        assert store.resolve_peer("alice").fingerprint == alice


def test_a_version_3_database_gets_name_tags_and_still_finds_clashes(
    db_path: Path, data_key: bytes
) -> None:
    """Names written before lookup tags existed are tagged at the first open with the
    key, so a look-alike of an old contact's name is still caught."""
    with Store.open(db_path, data_key) as store:
        alice = store.record_handshake(os.urandom(32), "alice", 1.0, None).peer.fingerprint
        bob = store.record_handshake(os.urandom(32), "bob", 1.0, None).peer.fingerprint
        store.set_local_name(bob, "Robert")
    conn = sqlite3.connect(db_path, isolation_level=None)
    _undo_v4(conn)
    conn.close()
    with Store.open(db_path, data_key) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.fill_name_tags() == 0  # done at open
        impostor = store.record_handshake(os.urandom(32), "\u0430lice", 2.0)  # Cyrillic a
        assert impostor.verdict == "name_clash" and impostor.clash_with is not None
        assert impostor.clash_with.fingerprint == alice
        by_petname = store.record_handshake(os.urandom(32), "ROBERT", 3.0)
        assert by_petname.verdict == "name_clash"
        assert by_petname.clash_with is not None and by_petname.clash_with.fingerprint == bob


def test_version_4_events_get_their_value_tiers(db_path: Path, data_key: bytes) -> None:
    """The events a version 4 file holds are tiered on upgrade, so the first prune
    after it already keeps the evidence."""
    with Store.open(db_path, data_key) as store:
        store.append_events(
            [
                SecurityEvent(1.0, "key_rotated"),
                SecurityEvent(2.0, "identity_changed"),
                SecurityEvent(3.0, "handshake_fail"),
            ]
        )
    conn = sqlite3.connect(db_path, isolation_level=None)
    _undo_v5(conn)
    conn.close()
    with Store.open(db_path, data_key) as store:
        assert store.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(db_path)
    tiers = dict(conn.execute("SELECT event, tier FROM events").fetchall())
    conn.close()
    assert tiers == {"key_rotated": 0, "handshake_fail": 1, "identity_changed": 2}


def _undo_v13(conn: sqlite3.Connection) -> None:
    """Group posts with their text inside the signed body, as version 12 had them."""
    conn.execute("DROP INDEX group_items_deadline")
    for column in ("deadline", "ttl", "text"):
        conn.execute(f"ALTER TABLE group_items DROP COLUMN {column}")
    conn.execute("ALTER TABLE groups DROP COLUMN disappearing_ttl")
    conn.execute("PRAGMA user_version = 12")


def _undo_v12(conn: sqlite3.Connection) -> None:
    """No group receipts, as version 11 had it."""
    _undo_v13(conn)
    conn.execute("DROP TABLE group_receipts")
    conn.execute("PRAGMA user_version = 11")


def _undo_v11(conn: sqlite3.Connection) -> None:
    """No introductions, as version 10 had it."""
    _undo_v12(conn)
    conn.execute("DROP TABLE introductions")
    conn.execute("PRAGMA user_version = 10")


def test_a_version_10_file_keeps_its_peers_and_gets_introductions(
    db_path: Path, data_key: bytes
) -> None:
    """Peers stored before introductions have none; new notes are sealed at rest."""
    from p2pmsg.store import Introduction

    with Store.open(db_path, data_key) as store:
        fp = store.record_handshake(os.urandom(32), "alice", 1.0, None).peer.fingerprint
    conn = sqlite3.connect(db_path, isolation_level=None)
    _undo_v11(conn)
    assert schema_version(conn) == 10
    conn.close()
    with Store.open(db_path, data_key) as store:
        assert store.schema_version == SCHEMA_VERSION
        peer = store.get_peer(fp)
        assert peer is not None and peer.introductions == ()
        note = Introduction(fp, "cd" * 32, "bob", b"\x05" * 16, "team", 2.0)
        assert store.add_introductions([note]) == 1
        assert store.get_peer(fp).introductions == (note,)  # type: ignore[union-attr]
    raw = sqlite3.connect(db_path).execute("SELECT names FROM introductions").fetchone()
    assert b"team" not in raw[0] and b"bob" not in raw[0]  # sealed at rest


def _undo_v10(conn: sqlite3.Connection) -> None:
    """No groups, as version 9 had it."""
    _undo_v11(conn)
    conn.execute("DROP TABLE group_items")
    conn.execute("DROP TABLE groups")
    conn.execute("PRAGMA user_version = 9")


def _undo_v9(conn: sqlite3.Connection) -> None:
    """No folder offers, as version 8 had it."""
    _undo_v10(conn)
    conn.execute("DROP INDEX transfers_by_bundle")
    conn.execute("ALTER TABLE transfers DROP COLUMN bundle_id")
    conn.execute("DROP TABLE bundles")
    conn.execute("PRAGMA user_version = 8")


def test_a_version_8_file_keeps_its_transfers_and_gets_folder_offers(
    db_path: Path, data_key: bytes
) -> None:
    """Transfers stored before folder offers belong to none; new offers are stored with
    their manifest sealed, and their files name them."""
    with Store.open(db_path, data_key) as store:
        fp = store.record_handshake(os.urandom(32), "alice", 1.0, None).peer.fingerprint
        store.create_transfer(
            fp, transfer_id=b"\x01" * 16, direction="in", name="old", size=1, chunk_size=1, now=1.0
        )
    conn = sqlite3.connect(db_path, isolation_level=None)
    _undo_v9(conn)
    conn.close()
    with Store.open(db_path, data_key) as store:
        assert store.schema_version == SCHEMA_VERSION
        old = store.get_transfer(b"\x01" * 16)
        assert old is not None and old.bundle_id is None
        entries = [("a/b.txt", 3, "/src/a/b.txt"), ("c", 0, "/src/c")]
        bundle = store.create_bundle(
            fp, bundle_id=b"\x07" * 16, direction="out", name="photos", entries=entries, now=2.0
        )
        assert (bundle.name, bundle.count, bundle.total_size) == ("photos", 2, 3)
        assert list(bundle.entries) == entries
        store.create_transfer(
            fp,
            transfer_id=b"\x02" * 16,
            direction="out",
            name="b.txt",
            size=3,
            chunk_size=1,
            now=3.0,
            bundle_id=bundle.id,
        )
        assert [t.id for t in store.bundle_transfers(bundle.id)] == [b"\x02" * 16]
        assert [t.id for t in store.list_transfers(fp, entries=False)] == [b"\x01" * 16]
        store.update_bundle(bundle.id, 4.0, state="completed", files_done=2)
        done = store.get_bundle(bundle.id)
        assert done is not None and (done.state, done.files_done, done.finished) == (
            "completed",
            2,
            4.0,
        )
        assert store.incomplete_bundles() == []
    raw = sqlite3.connect(db_path).execute("SELECT manifest, name FROM bundles").fetchone()
    assert b"b.txt" not in raw[0] and b"photos" not in raw[1]  # sealed at rest


def _undo_v7(conn: sqlite3.Connection) -> None:
    """The alerts table as version 6 had it (no evidence)."""
    _undo_v9(conn)
    conn.execute("ALTER TABLE alerts DROP COLUMN evidence")
    conn.execute("PRAGMA user_version = 6")


def test_a_version_6_file_keeps_its_alerts_without_evidence(db_path: Path, data_key: bytes) -> None:
    """Alerts raised before they explained themselves open with no evidence, their
    state kept; new ones store theirs."""
    from p2pmsg.security_events import Alert, Evidence

    why = (Evidence("failed unlocks in 5 min", 7.0, "alert at 5"),)
    with Store.open(db_path, data_key) as store:
        old = store.add_alert(Alert(1.0, "brute_force", "high", None, None, "model", 0.9, "old"))
        store.set_alert_state([old.id or 0], "dismissed", 2.0)
    conn = sqlite3.connect(db_path, isolation_level=None)
    _undo_v7(conn)
    assert schema_version(conn) == 6
    conn.close()
    with Store.open(db_path, data_key) as store:
        assert store.schema_version == SCHEMA_VERSION
        [kept] = store.get_alerts([old.id or 0])
        assert (kept.message, kept.state, kept.evidence) == ("old", "dismissed", ())
        new = store.add_alert(
            Alert(3.0, "brute_force", "high", None, None, "rule:unlock", 1.0, "new", evidence=why)
        )
        assert store.get_alerts([new.id or 0])[0].evidence == why


def _undo_v6(conn: sqlite3.Connection) -> None:
    """The alerts table as version 5 had it (acknowledged or not, no lifecycle)."""
    _undo_v7(conn)
    conn.execute("DROP INDEX alerts_by_state")
    conn.execute("DROP INDEX alerts_by_state_gen")
    for column in ("state_gen", "state_at", "state"):
        conn.execute(f"ALTER TABLE alerts DROP COLUMN {column}")
    conn.execute("PRAGMA user_version = 5")


def test_a_version_5_file_keeps_its_alerts_and_gets_their_states(
    db_path: Path, data_key: bytes
) -> None:
    """Alerts stored before the lifecycle open unread, or acknowledged (since the time
    they were) when version 5 had acknowledged them; the rest of the file is untouched."""
    from p2pmsg.security_events import Alert

    with Store.open(db_path, data_key) as store:
        store.update_settings(max_messages_per_key=7)
        for ts in (1.0, 2.0):
            store.add_alert(Alert(ts, "flood", "high", None, "10.0.0.9", "model", 0.9, f"a{ts}"))
    conn = sqlite3.connect(db_path, isolation_level=None)
    _undo_v6(conn)
    conn.execute("UPDATE alerts SET acknowledged_at = 5.0 WHERE id = 1")  # v5's only state
    assert schema_version(conn) == 5
    conn.close()
    with Store.open(db_path, data_key) as store:
        assert store.schema_version == SCHEMA_VERSION
        first, second = store.get_alerts([1, 2])
        assert (first.state, first.state_at, first.acknowledged_at) == ("acknowledged", 5.0, 5.0)
        assert (second.state, second.state_at, second.message) == ("unread", None, "a2.0")
        assert store.load_settings().max_messages_per_key == 7
        assert store.alert_generation() == 0
        # and the lifecycle works on the old rows
        assert [a.id for a in store.set_alert_state([2], "false_alarm", 9.0).changed] == [2]


def test_a_version_7_transfer_keeps_its_digest_and_new_ones_may_have_none(
    db_path: Path, data_key: bytes
) -> None:
    """Version 8 rebuilds `transfers` so `sha256` may be NULL until a transfer ends; the
    rows (and the index) of an older database come through unchanged."""
    digest = bytes(range(32))
    with Store.open(db_path, data_key) as store:
        fp = store.record_handshake(os.urandom(32), "alice", 1.0, None).peer.fingerprint
        store.create_transfer(
            fp,
            transfer_id=b"\x01" * 16,
            direction="in",
            name="old.pdf",
            size=9,
            sha256=digest,
            chunk_size=4,
            now=1.0,
        )
    conn = sqlite3.connect(db_path, isolation_level=None)
    _undo_v9(conn)
    conn.execute("PRAGMA user_version = 7")  # the rebuild runs again on a v7 table shape
    conn.close()
    with Store.open(db_path, data_key) as store:
        assert store.schema_version == SCHEMA_VERSION
        old = store.get_transfer(b"\x01" * 16)
        assert old is not None and (old.name, old.sha256, old.size) == ("old.pdf", digest, 9)
        new = store.create_transfer(
            fp,
            transfer_id=b"\x02" * 16,
            direction="out",
            name="n",
            size=1,
            chunk_size=1,
            now=2.0,
        )
        assert new.sha256 is None
        assert [t.id for t in store.list_transfers(fp)] == [b"\x02" * 16, b"\x01" * 16]
