"""File transfers: enough state to resume after a restart, and a record afterwards.

File names and paths are user content and are sealed. When a transfer ends
(`finish_transfer`) the working state (the sender's source path, the
receiver's partial path) is erased and only the record stays: name, size,
hash, times, outcome and, for a received file, where it landed.
"""

from __future__ import annotations

from typing import Any, NotRequired, Required, TypedDict, Unpack

from p2pmsg.store.base import StoreBase, normalize_fingerprint
from p2pmsg.store.records import (
    INCOMPLETE_TRANSFER_STATES,
    TRANSFER_ID_LEN,
    TRANSFER_STATES,
    Direction,
    TransferRecord,
    TransferState,
)

_COLUMNS = (
    "t.id, p.fingerprint, t.direction, t.name, t.size, t.sha256, t.chunk_size, t.state, "
    "t.bytes_done, t.source_path, t.partial_path, t.final_path, t.error, t.created, "
    "t.updated, t.finished, t.bundle_id"
)
_FROM = "FROM transfers t JOIN peers p ON p.id = t.peer_id"
_FINAL_STATES = tuple(s for s in TRANSFER_STATES if s not in INCOMPLETE_TRANSFER_STATES)


class NewTransfer(TypedDict):
    """A transfer's first record. `bundle_id`: the folder offer it is one file of;
    `partial_path`, `bytes_done`: a file of a folder offer recorded once its partial
    file is open (one write, not two); `sha256` is known only at the end (version 2)."""

    transfer_id: Required[bytes]
    direction: Required[Direction]
    name: Required[str]
    size: Required[int]
    chunk_size: Required[int]
    now: Required[float]
    sha256: NotRequired[bytes | None]
    state: NotRequired[TransferState]  # "offered" when left out
    source_path: NotRequired[str | None]
    bundle_id: NotRequired[bytes | None]
    partial_path: NotRequired[str | None]
    bytes_done: NotRequired[int]


class _Unchanged:
    """Marks an optional argument that was not given (None is a real value: clear it)."""


UNCHANGED = _Unchanged()


class TransfersMixin(StoreBase):
    def _seal_path(self, transfer_id: bytes, column: str, value: str | None) -> bytes | None:
        if value is None:
            return None
        return self._sealer.seal_text(value, table="transfers", column=column, row=transfer_id)

    def _transfer_from_row(self, row: tuple[Any, ...]) -> TransferRecord:
        (
            tid,
            fp,
            direction,
            name,
            size,
            sha256,
            chunk_size,
            state,
            done,
            source,
            partial,
            final,
            error,
            created,
            updated,
            finished,
            bundle_id,
        ) = row

        def open_(column: str, value: bytes | None) -> str | None:
            return self._sealer.open_optional_text(value, table="transfers", column=column, row=tid)

        return TransferRecord(
            id=tid,
            peer=fp,
            direction=direction,
            name=open_("name", name) or "",
            size=size,
            sha256=sha256,
            chunk_size=chunk_size,
            state=state,
            bytes_done=done,
            source_path=open_("source_path", source),
            partial_path=open_("partial_path", partial),
            final_path=open_("final_path", final),
            error=error,
            created=created,
            updated=updated,
            finished=finished,
            bundle_id=bundle_id,
        )

    def _select_transfers(self, where: str, params: tuple[Any, ...]) -> list[TransferRecord]:
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} {_FROM} {where}", params).fetchall()
        return [self._transfer_from_row(row) for row in rows]

    def create_transfer(self, peer: str | bytes, **fields: Unpack[NewTransfer]) -> TransferRecord:
        """Record an offer we made (`out`, with the source path) or received (`in`), and
        read the record back; the fields are `NewTransfer`'s."""
        self.insert_transfer(peer, **fields)
        record = self.get_transfer(fields["transfer_id"])
        assert record is not None
        return record

    def insert_transfer(self, peer: str | bytes, **fields: Unpack[NewTransfer]) -> None:
        """`create_transfer` without reading the record back (a folder offer's files are
        recorded by the hundred: the read and its unsealing were a third of the call)."""
        transfer_id = fields["transfer_id"]
        if len(transfer_id) != TRANSFER_ID_LEN:
            raise ValueError(f"a transfer id is {TRANSFER_ID_LEN} bytes")
        fp = normalize_fingerprint(peer)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO transfers (id, peer_id, direction, name, size, sha256, chunk_size, "
                "state, source_path, created, updated, bundle_id, partial_path, bytes_done) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    transfer_id,
                    self._peer_id(conn, fp),
                    fields["direction"],
                    self._seal_path(transfer_id, "name", fields["name"]),
                    fields["size"],
                    fields.get("sha256"),
                    fields["chunk_size"],
                    fields.get("state", "offered"),
                    self._seal_path(transfer_id, "source_path", fields.get("source_path")),
                    fields["now"],
                    fields["now"],
                    fields.get("bundle_id"),
                    self._seal_path(transfer_id, "partial_path", fields.get("partial_path")),
                    fields.get("bytes_done", 0),
                ),
            )

    def update_transfer(
        self,
        transfer_id: bytes,
        now: float,
        *,
        state: TransferState | None = None,
        bytes_done: int | None = None,
        partial_path: str | _Unchanged | None = UNCHANGED,
        error: str | _Unchanged | None = UNCHANGED,
    ) -> None:
        """Progress and state changes (acknowledged/written bytes, the partial file)."""
        sets: list[str] = ["updated = ?"]
        params: list[Any] = [now]
        if state is not None:
            sets.append("state = ?")
            params.append(state)
        if bytes_done is not None:
            sets.append("bytes_done = ?")
            params.append(bytes_done)
        if not isinstance(partial_path, _Unchanged):
            sets.append("partial_path = ?")
            params.append(self._seal_path(transfer_id, "partial_path", partial_path))
        if not isinstance(error, _Unchanged):
            sets.append("error = ?")
            params.append(error)
        with self._write() as conn:
            cur = conn.execute(
                f"UPDATE transfers SET {', '.join(sets)} WHERE id = ?",  # noqa: S608
                (*params, transfer_id),
            )
            if cur.rowcount == 0:
                raise ValueError(f"unknown transfer {transfer_id.hex()}")

    def finish_transfer(
        self,
        transfer_id: bytes,
        state: TransferState,
        now: float,
        *,
        final_path: str | None = None,
        error: str | None = None,
        sha256: bytes | None = None,
    ) -> None:
        """End a transfer: keep its record, erase the working state (source and partial paths).

        `sha256`: the whole file's digest, known only now (protocol version 2 sends it at
        the end); None keeps what the record holds."""
        if state not in _FINAL_STATES:
            raise ValueError(f"{state!r} is not a final transfer state")
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE transfers SET state = ?, finished = ?, updated = ?, error = ?, "
                "final_path = ?, source_path = NULL, partial_path = NULL, "
                "bytes_done = CASE WHEN ? = 'completed' THEN size ELSE bytes_done END, "
                "sha256 = coalesce(?, sha256) "
                "WHERE id = ?",
                (
                    state,
                    now,
                    now,
                    error,
                    self._seal_path(transfer_id, "final_path", final_path),
                    state,
                    sha256,
                    transfer_id,
                ),
            )
            if cur.rowcount == 0:
                raise ValueError(f"unknown transfer {transfer_id.hex()}")

    def get_transfer(self, transfer_id: bytes) -> TransferRecord | None:
        found = self._select_transfers("WHERE t.id = ?", (transfer_id,))
        return found[0] if found else None

    def list_transfers(
        self, peer: str | bytes | None = None, limit: int = 100, *, entries: bool = True
    ) -> list[TransferRecord]:
        """Newest first, optionally for one peer; `entries=False` leaves out the files of
        folder offers (listed by `bundle_transfers`)."""
        where = [] if entries else ["t.bundle_id IS NULL"]
        params: list[Any] = []
        if peer is not None:
            where.append("p.fingerprint = ?")
            params.append(normalize_fingerprint(peer))
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        return self._select_transfers(f"{clause}ORDER BY t.created DESC LIMIT ?", (*params, limit))

    def bundle_transfers(self, bundle_id: bytes) -> list[TransferRecord]:
        """The files of one folder offer that have started, in the order they started."""
        return self._select_transfers("WHERE t.bundle_id = ? ORDER BY t.created", (bundle_id,))

    def incomplete_transfers(self) -> list[TransferRecord]:
        """Transfers that may still move bytes: what to resume after a restart."""
        marks = ", ".join("?" * len(INCOMPLETE_TRANSFER_STATES))
        return self._select_transfers(
            f"WHERE t.state IN ({marks}) ORDER BY t.created", INCOMPLETE_TRANSFER_STATES
        )

    def remove_transfer(self, transfer_id: bytes) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM transfers WHERE id = ?", (transfer_id,)).rowcount > 0
