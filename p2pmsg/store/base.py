"""The connection, its settings, and the transaction helpers every table module shares.

Durability (the outbox promise: a message accepted for sending is never lost):
the database runs in WAL mode with `synchronous=NORMAL`. A commit then
appends the transaction to the `-wal` file with write(2) but does not fsync
it; the WAL is fsynced at checkpoints. Once `COMMIT` returns, the data is in
the kernel's page cache, so it survives the process being killed at any
moment (SIGKILL, a crash, OOM). It can be lost, though never corrupted, if
the machine itself loses power or the kernel crashes before the next
checkpoint. `synchronous=FULL` would close that gap with one fsync per commit
(milliseconds each on real disks), which the chat hot path cannot afford;
callers that want it pass `durable=True` to `Store.open`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from p2pmsg.errors import StoreError, UnknownPeerError
from p2pmsg.store.records import FINGERPRINT_HEX_LEN
from p2pmsg.store.sealing import FieldSealer

BUSY_TIMEOUT_MS = 5000
_HEX = frozenset("0123456789abcdef")


def open_connection(path: Path, *, durable: bool) -> sqlite3.Connection:
    """Open (creating if needed, mode 0600) and configure one connection."""
    try:
        # Create the file ourselves so it is private from the first byte: SQLite
        # gives the -wal and -shm files the same permissions as the database.
        # Only when it does not exist yet: closing *any* descriptor of the file drops
        # every POSIX lock this process holds on it, including the shared lock of a
        # connection already open here (the node's, when the checkpoint thread opens
        # its own). Without that lock another process closing its connection thinks
        # it is the last one, folds and deletes the WAL, and this process goes on
        # reading (and writing) a deleted WAL: it never sees that process's commits.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        # isolation_level=None: no implicit transactions; we BEGIN/COMMIT explicitly.
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the database {path}: {exc}") from exc
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"the database {path} cannot use WAL mode (got {mode!r})")
        conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Deleted content (expired disappearing messages) is overwritten, not left
        # in free pages; temporary tables and sorts never touch the disk.
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("PRAGMA temp_store = MEMORY")
        # Triggers/views in a tampered file must not call functions with side effects.
        conn.execute("PRAGMA trusted_schema = OFF")
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot configure the database {path}: {exc}") from exc
    except StoreError:
        conn.close()
        raise
    return conn


def normalize_fingerprint(value: str | bytes) -> str:
    """Accept raw 32 bytes or hex (any case, spaces or colons allowed); return lowercase hex."""
    if isinstance(value, bytes):
        text = value.hex()
    else:
        text = value.replace(" ", "").replace(":", "").lower()
    if len(text) != FINGERPRINT_HEX_LEN or not set(text) <= _HEX:
        raise ValueError(f"not a fingerprint: {value!r}")
    return text


class StoreBase:
    """State and helpers shared by the table mixins that make up `Store`."""

    _conn: sqlite3.Connection
    _sealer: FieldSealer
    _in_transaction: bool = False  # inside `transaction()`

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction around several operations: one commit (one WAL write) for all.

        Each operation inside keeps its own all-or-nothing behaviour as a savepoint,
        so one that fails (an unknown peer, a bad value) is undone alone and the
        others still commit. Nothing inside is durable before this block ends.
        """
        if self._in_transaction:
            raise StoreError("store transactions do not nest")
        with self._transaction():
            self._in_transaction = True
            try:
                yield
            finally:
                self._in_transaction = False

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction per logical operation (a savepoint inside `transaction()`).

        `BEGIN IMMEDIATE` takes the write lock up front, so a transaction never
        fails half-way with SQLITE_BUSY on lock upgrade. Database failures (a
        full disk, a locked file) become `StoreError`.
        """
        if self._in_transaction:
            with self._savepoint() as conn:
                yield conn
            return
        with self._transaction() as conn:
            yield conn

    @contextmanager
    def _savepoint(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        try:
            conn.execute("SAVEPOINT step")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot start a database savepoint: {exc}") from exc
        try:
            yield conn
            conn.execute("RELEASE step")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK TO step")
                conn.execute("RELEASE step")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"database write failed: {exc}") from exc
            raise

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._bracket("BEGIN IMMEDIATE", "transaction", "write") as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for reads made of several statements."""
        conn = self._conn
        if self._in_transaction:  # already consistent, and sees this transaction's writes
            yield conn
            return
        with self._bracket("BEGIN", "read", "read") as conn:
            yield conn

    @contextmanager
    def _bracket(self, begin: str, kind: str, verb: str) -> Iterator[sqlite3.Connection]:
        """BEGIN ... COMMIT, rolled back on any error; SQLite errors become StoreError."""
        conn = self._conn
        try:
            conn.execute(begin)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot start a database {kind}: {exc}") from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback_quietly()
            raise StoreError(f"database {verb} failed: {exc}") from exc
        except BaseException:
            self._rollback_quietly()
            raise

    def _rollback_quietly(self) -> None:
        if self._conn.in_transaction:
            # The original error is the one worth reporting.
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    def _peer_id(self, conn: sqlite3.Connection, fingerprint: str | bytes) -> int:
        """The row id of a known peer, or `UnknownPeerError`."""
        fp = normalize_fingerprint(fingerprint)
        row = conn.execute("SELECT id FROM peers WHERE fingerprint = ?", (fp,)).fetchone()
        if row is None:
            raise UnknownPeerError(f"no known peer has the fingerprint {fp}")
        return int(row[0])
