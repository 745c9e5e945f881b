"""`Store`: the profile database, opened, migrated and checked against the data key.

The table modules are mixins so the node sees one flat, synchronous API
(`store.enqueue_outgoing_many(...)`) while each module stays small. A `Store`
owns one sqlite3 connection and must be used from the thread that opened it
(sqlite3 enforces this); on the event loop use `AsyncStore`, which keeps the
store on one dedicated worker thread.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import TracebackType

from p2pmsg.errors import StoreError, StoreKeyError
from p2pmsg.store.base import open_connection
from p2pmsg.store.bundles import BundlesMixin
from p2pmsg.store.group_receipts import GroupReceiptsMixin
from p2pmsg.store.groups import GroupsMixin
from p2pmsg.store.introductions import IntroductionsMixin
from p2pmsg.store.messages import MessagesMixin
from p2pmsg.store.monitoring import DEFAULT_MAX_ALERTS, DEFAULT_MAX_EVENTS, MonitoringMixin
from p2pmsg.store.schema import migrate, schema_version
from p2pmsg.store.sealing import FieldSealer
from p2pmsg.store.settings import SettingsMixin
from p2pmsg.store.strangers import StrangerQuota, StrangersMixin
from p2pmsg.store.transfers import TransfersMixin
from p2pmsg.store.trust import TrustMixin

DB_FILENAME = "p2pmsg.db"
#: SQLite's default `wal_autocheckpoint`, in pages.
DEFAULT_AUTOCHECKPOINT_PAGES = 1000
_KEY_CHECK_PLAINTEXT = b"p2pmsg store key check v1"


class Store(
    TrustMixin,
    MessagesMixin,
    StrangersMixin,
    MonitoringMixin,
    TransfersMixin,
    SettingsMixin,
    BundlesMixin,
    GroupsMixin,
    IntroductionsMixin,
    GroupReceiptsMixin,
):
    """The profile's encrypted SQLite store. Open with `Store.open(path, data_key)`."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        sealer: FieldSealer,
        path: Path,
        *,
        max_events: int,
        max_alerts: int,
        stranger_quota: StrangerQuota,
    ) -> None:
        self._conn = conn
        self._sealer = sealer
        self._max_events = max_events
        self._max_alerts = max_alerts
        self._stranger_quota = stranger_quota
        self.path = path

    @classmethod
    def open(
        cls,
        path: str | Path,
        data_key: bytes,
        *,
        durable: bool = False,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_alerts: int = DEFAULT_MAX_ALERTS,
        stranger_quota: StrangerQuota | None = None,
    ) -> Store:
        """Open or create the database at `path`, migrate it, and check the data key.

        Raises `StoreSchemaError` for a database from a newer p2pmsg and
        `StoreKeyError` when `data_key` is not the key this database was made with.
        `durable=True` fsyncs every commit (survives power loss; slower).
        """
        if max_events < 1 or max_alerts < 1:
            raise ValueError("max_events and max_alerts must be positive")
        db_path = Path(path)
        sealer = FieldSealer(data_key)
        conn = open_connection(db_path, durable=durable)
        try:
            migrate(conn)
            store = cls(
                conn,
                sealer,
                db_path,
                max_events=max_events,
                max_alerts=max_alerts,
                stranger_quota=stranger_quota or StrangerQuota(),
            )
            store._check_data_key()
            store.fill_name_tags()
        except BaseException:
            conn.close()
            raise
        return store

    def _check_data_key(self) -> None:
        """The first open stores a sealed constant; later opens must be able to open it.

        This turns a wrong key into one clear error at start-up instead of a
        failure on the first message read (or, worse, a mix of keys in one file).
        """
        with self._write() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
            if row is None:
                sealed = self._sealer.seal(
                    _KEY_CHECK_PLAINTEXT, table="meta", column="value", row="key_check"
                )
                conn.execute("INSERT INTO meta (key, value) VALUES ('key_check', ?)", (sealed,))
                return
        try:
            ok = (
                self._sealer.open(row[0], table="meta", column="value", row="key_check")
                == _KEY_CHECK_PLAINTEXT
            )
        except StoreError:
            ok = False
        if not ok:
            raise StoreKeyError(
                f"the data key does not open {self.path} "
                "(a different profile's database, or the key is wrong)"
            )

    @property
    def schema_version(self) -> int:
        return schema_version(self._conn)

    def checkpoint(self) -> None:
        """Fold the WAL into the main file (e.g. before a backup or at a clean exit)."""
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise StoreError(f"checkpoint failed: {exc}") from exc

    def set_automatic_checkpoints(self, enabled: bool) -> None:
        """Off when a `Checkpointer` folds the WAL from another thread (see checkpointer.py)."""
        pages = DEFAULT_AUTOCHECKPOINT_PAGES if enabled else 0
        try:
            self._conn.execute(f"PRAGMA wal_autocheckpoint = {pages}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot configure checkpoints: {exc}") from exc

    def close(self) -> None:
        """Close the connection (idempotent). Committed data is already safe."""
        try:
            self._conn.close()
        except sqlite3.Error as exc:
            raise StoreError(f"closing the database failed: {exc}") from exc

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
