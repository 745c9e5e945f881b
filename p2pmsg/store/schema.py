"""The database schema, as an ordered list of migrations keyed by `PRAGMA user_version`.

Migration N (1-based) moves a database from version N-1 to N. Each runs in
its own transaction together with the `user_version` bump, so a crash during
a migration leaves the previous version intact. A database whose version is
newer than `SCHEMA_VERSION` was written by a newer p2pmsg; we refuse to touch
it rather than guess, because an older schema could silently drop data.

Append new migrations; never edit a released one.

What is encrypted and what is not (see also `sealing.py`): message bodies,
display names, file names and file paths are sealed with the data key.
Structure stays in the clear so it can be indexed: fingerprints, addresses,
timestamps, sizes, statuses, security events and alerts (which must not carry
user content). Someone holding the file learns who talked to whom and when,
not what was said; full-file encryption (SQLCipher) would hide that too, at
the cost of a native dependency.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Sequence

from p2pmsg.errors import StoreError, StoreSchemaError

Migration = Callable[[sqlite3.Connection], None]


def _v1_initial(conn: sqlite3.Connection) -> None:
    conn.execute("""
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value BLOB NOT NULL
        ) WITHOUT ROWID""")
    # A surrogate id, not the fingerprint, is the key others refer to: accepting a
    # changed identity key changes the fingerprint but keeps the conversation.
    conn.execute("""
        CREATE TABLE peers (
            id                  INTEGER PRIMARY KEY,
            fingerprint         TEXT NOT NULL UNIQUE CHECK (length(fingerprint) = 64),
            name                BLOB,              -- sealed display name
            identity_key        BLOB CHECK (identity_key IS NULL OR length(identity_key) = 32),
            verified            INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
            pending_key         BLOB CHECK (pending_key IS NULL OR length(pending_key) = 32),
            pending_fingerprint TEXT CHECK (pending_fingerprint IS NULL
                                            OR length(pending_fingerprint) = 64),
            pending_since       REAL,
            disappearing_ttl    REAL CHECK (disappearing_ttl IS NULL OR disappearing_ttl > 0),
            first_seen          REAL NOT NULL,
            last_seen           REAL NOT NULL
        )""")
    # One address belongs to at most one peer: the last one that proved itself there.
    # peer_id is NULL for an address added by hand whose owner we have not met yet.
    conn.execute("""
        CREATE TABLE addresses (
            id        INTEGER PRIMARY KEY,
            host      TEXT NOT NULL,
            port      INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
            peer_id   INTEGER REFERENCES peers(id) ON DELETE CASCADE,
            manual    INTEGER NOT NULL DEFAULT 0 CHECK (manual IN (0, 1)),
            last_seen REAL,
            UNIQUE (host, port)
        )""")
    conn.execute("CREATE INDEX addresses_by_peer ON addresses(peer_id)")
    # seq (the rowid) is the local order: the outbox goes out in seq order, history
    # pages by seq, so neither depends on the peers' clocks.
    conn.execute("""
        CREATE TABLE messages (
            seq          INTEGER PRIMARY KEY,
            id           BLOB NOT NULL UNIQUE CHECK (length(id) = 16),
            peer_id      INTEGER NOT NULL REFERENCES peers(id) ON DELETE CASCADE,
            direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            created      REAL NOT NULL,
            status       TEXT NOT NULL
                         CHECK (status IN ('queued', 'sent', 'delivered', 'read', 'failed')),
            sent_at      REAL,
            delivered_at REAL,
            read_at      REAL,
            ttl          REAL CHECK (ttl IS NULL OR ttl > 0),
            deadline     REAL,
            body         BLOB            -- sealed text; NULL once a disappearing body is gone
        )""")
    conn.execute("CREATE INDEX messages_history ON messages(peer_id, seq)")
    conn.execute("""CREATE INDEX messages_outbox ON messages(peer_id, seq)
                    WHERE direction = 'out' AND status IN ('queued', 'sent')""")
    conn.execute("""CREATE INDEX messages_unread ON messages(peer_id)
                    WHERE direction = 'in' AND read_at IS NULL""")
    conn.execute("""CREATE INDEX messages_deadline ON messages(deadline)
                    WHERE deadline IS NOT NULL AND body IS NOT NULL""")
    # Security events: the monitor's input, bounded by pruning the oldest rows.
    conn.execute("""
        CREATE TABLE events (
            id     INTEGER PRIMARY KEY AUTOINCREMENT,
            ts     REAL NOT NULL,
            event  TEXT NOT NULL,
            peer   TEXT,
            addr   TEXT,
            bytes  INTEGER NOT NULL DEFAULT 0,
            detail TEXT NOT NULL DEFAULT '{}'   -- JSON object
        )""")
    conn.execute("CREATE INDEX events_by_ts ON events(ts)")
    conn.execute("""
        CREATE TABLE alerts (
            id              INTEGER PRIMARY KEY,
            ts              REAL NOT NULL,
            kind            TEXT NOT NULL,
            severity        TEXT NOT NULL
                            CHECK (severity IN ('low', 'medium', 'high', 'critical')),
            peer            TEXT,
            addr            TEXT,
            source          TEXT NOT NULL,
            score           REAL NOT NULL,
            message         TEXT NOT NULL,
            acknowledged_at REAL
        )""")
    conn.execute("CREATE INDEX alerts_by_ts ON alerts(ts)")
    conn.execute("""
        CREATE TABLE transfers (
            id           BLOB PRIMARY KEY CHECK (length(id) = 16),
            peer_id      INTEGER NOT NULL REFERENCES peers(id) ON DELETE CASCADE,
            direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            name         BLOB NOT NULL,     -- sealed
            size         INTEGER NOT NULL CHECK (size >= 0),
            sha256       BLOB NOT NULL CHECK (length(sha256) = 32),
            chunk_size   INTEGER NOT NULL CHECK (chunk_size > 0),
            state        TEXT NOT NULL CHECK (state IN (
                             'offered', 'accepted', 'declined', 'expired', 'transferring',
                             'paused', 'verifying', 'completed', 'failed', 'cancelled')),
            bytes_done   INTEGER NOT NULL DEFAULT 0 CHECK (bytes_done BETWEEN 0 AND size),
            source_path  BLOB,              -- sealed
            partial_path BLOB,              -- sealed
            final_path   BLOB,              -- sealed
            error        TEXT,
            created      REAL NOT NULL,
            updated      REAL NOT NULL,
            finished     REAL
        )""")
    conn.execute("CREATE INDEX transfers_by_peer ON transfers(peer_id, created)")
    conn.execute("""
        CREATE TABLE settings (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL             -- JSON
        ) WITHOUT ROWID""")


def _v2_read_receipts_due(conn: sqlite3.Connection) -> None:
    """Read receipts owed to a peer survive a restart: the user read the messages while
    the peer was away, and the receipts go out when it is back (they were held in
    memory before, and lost with it)."""
    conn.execute(
        "ALTER TABLE messages ADD COLUMN read_receipt_due INTEGER NOT NULL DEFAULT 0 "
        "CHECK (read_receipt_due IN (0, 1))"
    )
    conn.execute("""CREATE INDEX messages_read_receipt_due ON messages(peer_id, seq)
                    WHERE read_receipt_due = 1""")


def _v3_names_and_key_states(conn: sqlite3.Connection) -> None:
    """A peer is its key; names are labels; a key change is the user's act.

    `local_name` is the user's own name for a contact (a petname, sealed).
    `trust` is the state of the key: 'ok' (pinned on first use, or verified),
    'flagged' (it claims a name that reads like another contact's:
    `clash_with`), 'retired' (replaced by the user's explicit key change:
    `successor` is the contact that moved to the new key) or 'blocked'.
    The v1 "pending key" columns are no longer written: a pending key change
    becomes what it always was, a separate key flagged for claiming a known
    peer's name or address, and the contact it claimed keeps working.
    """
    conn.execute("ALTER TABLE peers ADD COLUMN local_name BLOB")
    conn.execute(
        "ALTER TABLE peers ADD COLUMN trust TEXT NOT NULL DEFAULT 'ok' "
        "CHECK (trust IN ('ok', 'flagged', 'retired', 'blocked'))"
    )
    conn.execute(
        "ALTER TABLE peers ADD COLUMN clash_with INTEGER REFERENCES peers(id) ON DELETE SET NULL"
    )
    conn.execute(
        "ALTER TABLE peers ADD COLUMN successor INTEGER REFERENCES peers(id) ON DELETE SET NULL"
    )
    conn.execute("ALTER TABLE peers ADD COLUMN trust_since REAL")
    pending = conn.execute(
        "SELECT id, pending_key, pending_fingerprint, pending_since, "
        "last_seen FROM peers WHERE pending_key IS NOT NULL"
    ).fetchall()
    for contact_id, key, fp, since, seen in pending:
        conn.execute(
            "INSERT INTO peers (fingerprint, first_seen, last_seen) VALUES (?, ?, ?) "
            "ON CONFLICT(fingerprint) DO NOTHING",
            (fp, since or seen, since or seen),
        )
        conn.execute(
            "UPDATE peers SET identity_key = coalesce(identity_key, ?), "
            "trust = 'flagged', clash_with = ?, trust_since = ? "
            "WHERE fingerprint = ? AND trust = 'ok'",
            (key, contact_id, since, fp),
        )
    conn.execute(
        "UPDATE peers SET pending_key = NULL, pending_fingerprint = NULL, pending_since = NULL"
    )


def _v4_name_lookup_tags(conn: sqlite3.Connection) -> None:
    """Indexed lookup tags for names (keyed digests of their confusable forms, see
    `FieldSealer.lookup_tag`): a new key's name is checked against every contact's
    by an index, not by opening every name. Filled for existing rows by
    `Store.open`, which holds the key this migration does not."""
    conn.execute("ALTER TABLE peers ADD COLUMN name_tag BLOB")
    conn.execute("ALTER TABLE peers ADD COLUMN local_tag BLOB")
    conn.execute("CREATE INDEX peers_by_name_tag ON peers(name_tag)")
    conn.execute("CREATE INDEX peers_by_local_tag ON peers(local_tag)")


def _v5_event_value_tiers(conn: sqlite3.Connection) -> None:
    """Events are pruned by value, not only by age: `tier` 0 is routine (connections,
    messages, rotations: what a peer can make us log by the thousand), 1 is refusal
    noise (failed handshakes, rate limits, rejected frames), 2 is evidence that must
    outlive both (identity changes, downgrades, integrity failures, failed unlocks).
    The backfill spells the tiers of this release out: a migration never changes."""
    conn.execute(
        "ALTER TABLE events ADD COLUMN tier INTEGER NOT NULL DEFAULT 1 CHECK (tier IN (0, 1, 2))"
    )
    conn.execute(
        "UPDATE events SET tier = 0 WHERE event IN ('conn_open', 'conn_close', 'handshake_ok', "
        "'msg_sent', 'msg_recv', 'file_sent', 'file_recv', 'key_rotated', 'cipher_changed', "
        "'peer_discovered', 'peer_lost', 'unlock_ok')"
    )
    conn.execute(
        "UPDATE events SET tier = 2 WHERE event IN ('identity_changed', 'downgrade_rejected', "
        "'file_integrity_fail', 'unlock_fail')"
    )
    conn.execute("CREATE INDEX events_by_tier ON events(tier, id)")


def _v6_alert_states(conn: sqlite3.Connection) -> None:
    """Alerts get a lifecycle: `state` is 'unread', 'acknowledged', 'dismissed' or
    'false_alarm' (a dismissal that says the alert was wrong, which quiets later alerts
    of its kind for its peer for a while: p2pmsg.monitor.quieting); `state_at` is when
    it took that state. `state_gen` is the alert generation (meta 'alert_generation')
    of its last change, so a running node finds what another process changed. Alerts
    acknowledged before this version are 'acknowledged' since then."""
    conn.execute(
        "ALTER TABLE alerts ADD COLUMN state TEXT NOT NULL DEFAULT 'unread' "
        "CHECK (state IN ('unread', 'acknowledged', 'dismissed', 'false_alarm'))"
    )
    conn.execute("ALTER TABLE alerts ADD COLUMN state_at REAL")
    conn.execute("ALTER TABLE alerts ADD COLUMN state_gen INTEGER NOT NULL DEFAULT 0")
    conn.execute(
        "UPDATE alerts SET state = 'acknowledged', state_at = acknowledged_at "
        "WHERE acknowledged_at IS NOT NULL"
    )
    conn.execute("CREATE INDEX alerts_by_state ON alerts(state, id)")
    conn.execute("CREATE INDEX alerts_by_state_gen ON alerts(state_gen) WHERE state_gen > 0")


def _v7_alert_evidence(conn: sqlite3.Connection) -> None:
    """Every alert explains itself: `evidence` is a JSON list of {name, observed,
    expected} (p2pmsg.security_events.Evidence). Alerts raised before this version
    have none."""
    conn.execute("ALTER TABLE alerts ADD COLUMN evidence TEXT NOT NULL DEFAULT '[]'")


def _v8_transfer_hash_at_the_end(conn: sqlite3.Connection) -> None:
    """A transfer's SHA-256 is known at its end, not at its offer (protocol version 2
    moved it from file_offer to file_done): `sha256` is NULL until the sender has read,
    or the receiver has verified, the whole file. SQLite cannot relax a CHECK in place,
    so the table is rebuilt (same columns, same order; nothing refers to it)."""
    conn.execute("""
        CREATE TABLE transfers_v8 (
            id           BLOB PRIMARY KEY CHECK (length(id) = 16),
            peer_id      INTEGER NOT NULL REFERENCES peers(id) ON DELETE CASCADE,
            direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            name         BLOB NOT NULL,     -- sealed
            size         INTEGER NOT NULL CHECK (size >= 0),
            sha256       BLOB CHECK (sha256 IS NULL OR length(sha256) = 32),
            chunk_size   INTEGER NOT NULL CHECK (chunk_size > 0),
            state        TEXT NOT NULL CHECK (state IN (
                             'offered', 'accepted', 'declined', 'expired', 'transferring',
                             'paused', 'verifying', 'completed', 'failed', 'cancelled')),
            bytes_done   INTEGER NOT NULL DEFAULT 0 CHECK (bytes_done BETWEEN 0 AND size),
            source_path  BLOB,              -- sealed
            partial_path BLOB,              -- sealed
            final_path   BLOB,              -- sealed
            error        TEXT,
            created      REAL NOT NULL,
            updated      REAL NOT NULL,
            finished     REAL
        )""")
    conn.execute(
        "INSERT INTO transfers_v8 SELECT id, peer_id, direction, name, size, sha256, "
        "chunk_size, state, bytes_done, source_path, partial_path, final_path, error, "
        "created, updated, finished FROM transfers"
    )
    conn.execute("DROP TABLE transfers")
    conn.execute("ALTER TABLE transfers_v8 RENAME TO transfers")
    conn.execute("CREATE INDEX transfers_by_peer ON transfers(peer_id, created)")


def _v9_bundles(conn: sqlite3.Connection) -> None:
    """Folder and multi-file offers (protocol section 7.2): one row per offer, with its
    manifest sealed as one value (msgpack: [[relpath, size(, source)]...]; the receiver's
    paths are already made safe), the receiver's fresh folder, and how many files
    arrived. Each file moves as an ordinary transfer that names its offer in
    `transfers.bundle_id` (NULL for a single-file offer, as every row before this)."""
    conn.execute("""
        CREATE TABLE bundles (
            id          BLOB PRIMARY KEY CHECK (length(id) = 16),
            peer_id     INTEGER NOT NULL REFERENCES peers(id) ON DELETE CASCADE,
            direction   TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            name        BLOB NOT NULL,      -- sealed
            count       INTEGER NOT NULL CHECK (count > 0),
            total_size  INTEGER NOT NULL CHECK (total_size >= 0),
            manifest    BLOB NOT NULL,      -- sealed
            folder      BLOB,               -- sealed: the receiver's new folder
            state       TEXT NOT NULL CHECK (state IN (
                            'offered', 'accepted', 'declined', 'expired', 'transferring',
                            'paused', 'verifying', 'completed', 'failed', 'cancelled')),
            files_done  INTEGER NOT NULL DEFAULT 0,
            error       TEXT,
            created     REAL NOT NULL,
            updated     REAL NOT NULL,
            finished    REAL
        )""")
    conn.execute("CREATE INDEX bundles_by_peer ON bundles(peer_id, created)")
    conn.execute("ALTER TABLE transfers ADD COLUMN bundle_id BLOB")
    conn.execute("CREATE INDEX transfers_by_bundle ON transfers(bundle_id)")


def _v10_groups(conn: sqlite3.Connection) -> None:
    """Groups (docs/PROTOCOL.md, "Groups"; store/groups.py): one row per group this
    profile is in, and every signed item it holds, exactly as its author signed it
    (body sealed: it holds names and text; the signature and the (kind, author, seq)
    key stay in the clear, as structure). The group's state (name, members, order)
    is never stored: it is replayed from the items on load, each verified again.
    `posts` counts the posts held, so the per-group cap costs no scan."""
    conn.execute("""
        CREATE TABLE groups (
            id       BLOB PRIMARY KEY CHECK (length(id) = 16),
            creator  BLOB NOT NULL CHECK (length(creator) = 32),
            joined   REAL NOT NULL,
            posts    INTEGER NOT NULL DEFAULT 0 CHECK (posts >= 0)
        ) WITHOUT ROWID""")
    conn.execute("""
        CREATE TABLE group_items (
            group_id  BLOB NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
            kind      TEXT NOT NULL CHECK (kind IN ('op', 'post')),
            author    BLOB NOT NULL CHECK (length(author) = 32),
            seq       INTEGER NOT NULL CHECK (seq >= 1),
            body      BLOB NOT NULL,      -- sealed
            signature BLOB NOT NULL CHECK (length(signature) = 64),
            received  REAL NOT NULL,
            PRIMARY KEY (group_id, kind, author, seq)
        ) WITHOUT ROWID""")


def _v11_introductions(conn: sqlite3.Connection) -> None:
    """ "Introduced by Bob in 'team'" (store/introductions.py): a group member we had not
    met, as the signed member list named it. Keyed by fingerprint, not `peers.id`: the
    note comes before any row for the key (which a handshake makes later) and must not
    make one (rows that only hints made are forgotten). At most a few per key; the
    names (introducer's, group's) are sealed."""
    conn.execute("""
        CREATE TABLE introductions (
            fingerprint TEXT NOT NULL CHECK (length(fingerprint) = 64),
            group_id    BLOB NOT NULL CHECK (length(group_id) = 16),
            introducer  TEXT NOT NULL CHECK (length(introducer) = 64),
            names       BLOB NOT NULL,      -- sealed msgpack [introducer name, group name]
            at          REAL NOT NULL,
            PRIMARY KEY (fingerprint, group_id)
        ) WITHOUT ROWID""")


def _v12_group_receipts(conn: sqlite3.Connection) -> None:
    """Group receipts (store/group_receipts.py): how far a member holds (`delivered`) and
    has read (`read`) an author's posts, as post seqs; marks only grow. The node keeps
    the other members' marks for its own posts and its own read marks for the others'
    posts, so at most two rows per key a group ever had. No content: structure only."""
    conn.execute("""
        CREATE TABLE group_receipts (
            group_id  BLOB NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
            member    BLOB NOT NULL CHECK (length(member) = 32),
            author    BLOB NOT NULL CHECK (length(author) = 32),
            delivered INTEGER NOT NULL DEFAULT 0 CHECK (delivered >= 0),
            read      INTEGER NOT NULL DEFAULT 0 CHECK (read >= 0),
            PRIMARY KEY (group_id, member, author)
        ) WITHOUT ROWID""")


def _v13_group_post_texts(conn: sqlite3.Connection) -> None:
    """Disappearing group posts (docs/PROTOCOL.md "Groups"; store/groups.py): a post's
    signed body commits to a salted hash of its text, and the text is kept beside it,
    so it can be deleted while the signed body (which other members' gap rule and a
    later member's history need) stays. `text`: sealed msgpack [salt, text], NULL for a
    stub (the text never came, or disappeared here). `ttl` (seconds, in the clear like
    messages.ttl) and `deadline`: set when this member first shows the post (or sends
    it); the expiry sweep then sets `text` NULL, keeping `deadline`, which marks the
    text as gone here for good (a later copy does not bring it back).
    `groups.disappearing_ttl`: the group's own timer for new posts, as
    `peers.disappearing_ttl` is a chat's (math.inf: off, whatever the default).

    Posts stored before this version carry their text inside the signed body, a
    pre-release form of protocol 2 that no longer verifies: they are dropped (their
    rows could only be refused on every load). Operations are unchanged and stay; the
    receipt marks of the dropped posts go with them (a new post must not inherit them)."""
    conn.execute("DELETE FROM group_items WHERE kind = 'post'")
    conn.execute("DELETE FROM group_receipts")
    conn.execute("UPDATE groups SET posts = 0")
    conn.execute("ALTER TABLE group_items ADD COLUMN text BLOB")  # sealed
    conn.execute("ALTER TABLE group_items ADD COLUMN ttl REAL CHECK (ttl IS NULL OR ttl > 0)")
    conn.execute("ALTER TABLE group_items ADD COLUMN deadline REAL")
    conn.execute("""CREATE INDEX group_items_deadline ON group_items(deadline)
                    WHERE deadline IS NOT NULL AND text IS NOT NULL""")
    conn.execute("""ALTER TABLE groups ADD COLUMN disappearing_ttl REAL
                    CHECK (disappearing_ttl IS NULL OR disappearing_ttl > 0)""")


MIGRATIONS: Sequence[Migration] = (
    _v1_initial,
    _v2_read_receipts_due,
    _v3_names_and_key_states,
    _v4_name_lookup_tags,
    _v5_event_value_tiers,
    _v6_alert_states,
    _v7_alert_evidence,
    _v8_transfer_hash_at_the_end,
    _v9_bundles,
    _v10_groups,
    _v11_introductions,
    _v12_group_receipts,
    _v13_group_post_texts,
)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the database's schema version: {exc}") from exc


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the database up to `len(migrations)`; returns the version it started at.

    The connection must be in autocommit mode (`isolation_level=None`): each
    step is wrapped in an explicit `BEGIN IMMEDIATE` so that nobody else can
    migrate the same file at the same time. A database another process keeps
    locked past the busy timeout is a `StoreError`, like every other failure of
    the file: callers of the store never see a `sqlite3` exception.
    """
    target = len(migrations)
    start = schema_version(conn)
    if start > target:
        raise StoreSchemaError(
            f"the database has schema version {start}, newer than this p2pmsg "
            f"understands ({target}); upgrade p2pmsg to open this profile"
        )
    for version in range(start + 1, target + 1):
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot migrate the database to version {version}: {exc}") from exc
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            if schema_version(conn) >= version:
                conn.execute("ROLLBACK")
                continue
            migrations[version - 1](conn)
            conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback_quietly(conn)
            raise StoreSchemaError(f"migration to schema version {version} failed: {exc}") from exc
        except BaseException:
            _rollback_quietly(conn)
            raise
    return start


def _rollback_quietly(conn: sqlite3.Connection) -> None:
    """Undo a failed step; the step's own error is the one worth reporting."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
