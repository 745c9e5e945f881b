"""Folder and multi-file offers (schema v9): the offer, its manifest and its outcome.

The manifest (every relative path and size, and for the sender each source
path) and the receiver's folder are user content, sealed like transfer names
and paths. The files themselves are ordinary rows of `transfers` whose
`bundle_id` names the offer.
"""

from __future__ import annotations

from typing import Any

import msgpack

from p2pmsg.errors import StoreCorruptError
from p2pmsg.store.base import StoreBase, normalize_fingerprint
from p2pmsg.store.records import (
    INCOMPLETE_TRANSFER_STATES,
    TRANSFER_ID_LEN,
    BundleRecord,
    Direction,
    TransferState,
)

_COLUMNS = (
    "b.id, p.fingerprint, b.direction, b.name, b.count, b.total_size, b.manifest, b.folder, "
    "b.state, b.files_done, b.error, b.created, b.updated, b.finished"
)
#: The same without the manifest (up to 10,000 paths, sealed): what a list shows.
_SUMMARY_COLUMNS = _COLUMNS.replace("b.manifest", "NULL")
_FROM = "FROM bundles b JOIN peers p ON p.id = b.peer_id"
_FINAL = ("declined", "expired", "completed", "failed", "cancelled")


class BundlesMixin(StoreBase):
    def _seal_bundle(self, bundle_id: bytes, column: str, data: bytes) -> bytes:
        return self._sealer.seal(data, table="bundles", column=column, row=bundle_id)

    def _open_bundle(self, bundle_id: bytes, column: str, data: bytes) -> bytes:
        return self._sealer.open(data, table="bundles", column=column, row=bundle_id)

    def _bundle_from_row(self, row: tuple[Any, ...]) -> BundleRecord:
        (bid, fp, direction, name, count, total, manifest, folder, state, done, error, *times) = row
        try:
            raw = (
                []
                if manifest is None
                else msgpack.unpackb(self._open_bundle(bid, "manifest", manifest), use_list=True)
            )
            entries = tuple(
                (str(e[0]), int(e[1]), str(e[2]) if len(e) > 2 and e[2] is not None else None)
                for e in raw
            )
        except (ValueError, TypeError, IndexError, msgpack.ExtraData) as exc:
            raise StoreCorruptError(f"stored bundle manifest is malformed: {exc}") from None
        return BundleRecord(
            id=bid,
            peer=fp,
            direction=direction,
            name=self._open_bundle(bid, "name", name).decode("utf-8"),
            count=count,
            total_size=total,
            entries=entries,
            folder=self._open_bundle(bid, "folder", folder).decode("utf-8") if folder else None,
            state=state,
            files_done=done,
            error=error,
            created=times[0],
            updated=times[1],
            finished=times[2],
        )

    def _select_bundles(
        self, where: str, params: tuple[Any, ...], *, manifests: bool = True
    ) -> list[BundleRecord]:
        columns = _COLUMNS if manifests else _SUMMARY_COLUMNS
        with self._read() as conn:
            rows = conn.execute(f"SELECT {columns} {_FROM} {where}", params).fetchall()
        return [self._bundle_from_row(row) for row in rows]

    def create_bundle(
        self,
        peer: str | bytes,
        *,
        bundle_id: bytes,
        direction: Direction,
        name: str,
        entries: list[tuple[str, int, str | None]],
        now: float,
        state: TransferState = "offered",
        error: str | None = None,
    ) -> BundleRecord:
        """Record a folder offer we made (`out`, entries with source paths) or received."""
        if len(bundle_id) != TRANSFER_ID_LEN:
            raise ValueError(f"a bundle id is {TRANSFER_ID_LEN} bytes")
        manifest = msgpack.packb([list(e) for e in entries], use_bin_type=True)
        fp = normalize_fingerprint(peer)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO bundles (id, peer_id, direction, name, count, total_size, "
                "manifest, state, error, created, updated, finished) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    bundle_id,
                    self._peer_id(conn, fp),
                    direction,
                    self._seal_bundle(bundle_id, "name", name.encode("utf-8")),
                    len(entries),
                    sum(e[1] for e in entries),
                    self._seal_bundle(bundle_id, "manifest", manifest),
                    state,
                    error,
                    now,
                    now,
                    now if state in _FINAL else None,
                ),
            )
        record = self.get_bundle(bundle_id)
        assert record is not None
        return record

    def update_bundle(
        self,
        bundle_id: bytes,
        now: float,
        *,
        state: TransferState | None = None,
        folder: str | None = None,
        files_done: int | None = None,
        error: str | None = None,
    ) -> None:
        sets: list[str] = ["updated = ?"]
        params: list[Any] = [now]
        if state is not None:
            sets.append("state = ?")
            params.append(state)
            if state in _FINAL:
                sets.append("finished = ?")
                params.append(now)
        if folder is not None:
            sets.append("folder = ?")
            params.append(self._seal_bundle(bundle_id, "folder", folder.encode("utf-8")))
        if files_done is not None:
            sets.append("files_done = ?")
            params.append(files_done)
        if error is not None:
            sets.append("error = ?")
            params.append(error)
        with self._write() as conn:
            cur = conn.execute(
                f"UPDATE bundles SET {', '.join(sets)} WHERE id = ?",  # noqa: S608
                (*params, bundle_id),
            )
            if cur.rowcount == 0:
                raise ValueError(f"unknown bundle {bundle_id.hex()}")

    def get_bundle(self, bundle_id: bytes) -> BundleRecord | None:
        found = self._select_bundles("WHERE b.id = ?", (bundle_id,))
        return found[0] if found else None

    def list_bundles(
        self, peer: str | bytes | None = None, limit: int = 100, *, manifests: bool = True
    ) -> list[BundleRecord]:
        """Newest first, optionally for one peer. `manifests=False`: every record's
        `entries` is empty (not read nor opened), for lists that show counts and sizes."""
        if peer is None:
            return self._select_bundles(
                "ORDER BY b.created DESC LIMIT ?", (limit,), manifests=manifests
            )
        return self._select_bundles(
            "WHERE p.fingerprint = ? ORDER BY b.created DESC LIMIT ?",
            (normalize_fingerprint(peer), limit),
            manifests=manifests,
        )

    def ended_bundles(self, limit: int) -> list[BundleRecord]:
        """The latest offers that ended (any final state), newest first, without their
        manifests: a node recognises their files' ids again after a restart."""
        marks = ", ".join("?" * len(_FINAL))
        return self._select_bundles(
            f"WHERE b.state IN ({marks}) ORDER BY b.updated DESC LIMIT ?",
            (*_FINAL, limit),
            manifests=False,
        )

    def incomplete_bundles(self) -> list[BundleRecord]:
        marks = ", ".join("?" * len(INCOMPLETE_TRANSFER_STATES))
        return self._select_bundles(
            f"WHERE b.state IN ({marks}) ORDER BY b.created", INCOMPLETE_TRANSFER_STATES
        )
