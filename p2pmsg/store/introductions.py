"""Introductions (schema v11): "introduced by Bob in 'team'".

When a group's signed member list names a key we have not met, the node notes
who put it in the group, and in which group. The first session with that key
shows the note; the key is still pinned first-seen like any other (a group
vouches for nothing: this is a hint for the user, who verifies as always).

Bounded, because a peer decides what gets noted: one note per (key, group), at
most `MAX_PER_PEER` per key (the first ones stay: the first introduction is the
one the user meets the key with). Keys in groups are capped by the group core
(256 over a group's life) and groups by `MAX_GROUPS`, so the table is too.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence

import msgpack

from p2pmsg.store.base import StoreBase
from p2pmsg.store.records import Introduction
from p2pmsg.store.sealing import FieldSealer

#: Notes kept per key.
MAX_PER_PEER = 4


def _row(fingerprint: str, group_id: bytes) -> str:
    return f"{fingerprint}:{group_id.hex()}"


def load_introductions(
    conn: sqlite3.Connection, sealer: FieldSealer, fingerprint: str | None = None
) -> dict[str, tuple[Introduction, ...]]:
    """Every note (or one key's), by key, oldest first (peers.py reads them with the
    peers)."""
    where, params = ("WHERE fingerprint = ?", (fingerprint,)) if fingerprint else ("", ())
    found: dict[str, list[Introduction]] = defaultdict(list)
    for fp, group_id, introducer, sealed, at in conn.execute(
        "SELECT fingerprint, group_id, introducer, names, at FROM introductions "  # noqa: S608
        f"{where} ORDER BY at, group_id",
        params,
    ):
        group_id = bytes(group_id)
        plain = sealer.open(sealed, table="introductions", column="names", row=_row(fp, group_id))
        introducer_name, group_name = msgpack.unpackb(plain)
        found[fp].append(
            Introduction(fp, introducer, str(introducer_name), group_id, str(group_name), at)
        )
    return {fp: tuple(notes) for fp, notes in found.items()}


class IntroductionsMixin(StoreBase):
    def add_introductions(self, notes: Sequence[Introduction]) -> int:
        """Keep these notes (a (key, group) already noted keeps its first note; a key
        with `MAX_PER_PEER` notes takes no more). Returns how many were new."""
        for note in notes:
            if len(note.fingerprint) != 64 or len(note.introducer) != 64:
                raise ValueError("an introduction names two full fingerprints")
            if len(note.group_id) != 16:
                raise ValueError("a group id is 16 bytes")
        new = 0
        with self._write() as conn:
            for note in notes:
                (count,) = conn.execute(
                    "SELECT count(*) FROM introductions WHERE fingerprint = ?",
                    (note.fingerprint,),
                ).fetchone()
                if count >= MAX_PER_PEER:
                    continue
                names = msgpack.packb([note.introducer_name, note.group_name], use_bin_type=True)
                sealed = self._sealer.seal(
                    names,
                    table="introductions",
                    column="names",
                    row=_row(note.fingerprint, note.group_id),
                )
                new += conn.execute(
                    "INSERT OR IGNORE INTO introductions "
                    "(fingerprint, group_id, introducer, names, at) VALUES (?, ?, ?, ?, ?)",
                    (note.fingerprint, note.group_id, note.introducer, sealed, note.at),
                ).rowcount
        return new

    def introductions(self, fingerprint: str) -> tuple[Introduction, ...]:
        with self._read() as conn:
            return load_introductions(conn, self._sealer, fingerprint).get(fingerprint, ())
