"""Encryption at rest: content never reaches the disk in the clear, keys and rows are bound."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from p2pmsg.errors import StoreCorruptError, StoreKeyError
from p2pmsg.store import IncomingMessage, Store
from p2pmsg.store.sealing import FieldSealer
from tests.store.conftest import PeerFactory, raw_bytes

PLAIN_BODY = "the vault code is 4711-SWORDFISH"
PLAIN_NAME = "Zebediah-Quartermain"
PLAIN_FILE = "merger-plans-QX77.pdf"


def test_content_is_unreadable_in_the_raw_files(store: Store, db_path: Path) -> None:
    key = os.urandom(32)
    fp = store.record_handshake(key, PLAIN_NAME, 1.0).peer.fingerprint
    store.enqueue_outgoing(fp, PLAIN_BODY + " (out)", 2.0)
    store.insert_incoming(fp, IncomingMessage(os.urandom(16), PLAIN_BODY + " (in)", 3.0), 3.0)
    store.create_transfer(
        fp,
        transfer_id=os.urandom(16),
        direction="in",
        name=PLAIN_FILE,
        size=10,
        sha256=hashlib.sha256(b"x").digest(),
        chunk_size=4,
        now=4.0,
        source_path=f"/home/me/{PLAIN_FILE}",
    )
    on_disk = raw_bytes(db_path)
    assert len(on_disk) > 4096  # we really are looking at the database
    for plain in (PLAIN_BODY, PLAIN_NAME, PLAIN_FILE, "SWORDFISH", "Quartermain"):
        assert plain.encode() not in on_disk
        assert plain.encode("utf-16-le") not in on_disk
    # ...while the same store reads them back.
    assert store.get_peer(fp).name == PLAIN_NAME  # type: ignore[union-attr]
    assert [m.text for m in store.conversation(fp)] == [PLAIN_BODY + " (out)", PLAIN_BODY + " (in)"]


def test_a_wrong_data_key_is_refused_clearly(db_path: Path, data_key: bytes) -> None:
    Store.open(db_path, data_key).close()
    with pytest.raises(StoreKeyError, match="data key does not open"):
        Store.open(db_path, os.urandom(32))
    Store.open(db_path, data_key).close()  # the right key still works afterwards


def test_a_body_moved_to_another_row_fails_authentication(
    store: Store, make_peer: PeerFactory, db_path: Path
) -> None:
    fp = make_peer()
    first, second = store.enqueue_outgoing_many(fp, ["first", "second"], 5.0)
    tamper = sqlite3.connect(db_path)
    tamper.execute(
        "UPDATE messages SET body = (SELECT body FROM messages WHERE id = ?) WHERE id = ?",
        (first.id, second.id),
    )
    tamper.commit()
    tamper.close()
    assert store.get_message(first.id).text == "first"  # type: ignore[union-attr]
    with pytest.raises(StoreCorruptError, match="moved between rows"):
        store.get_message(second.id)


def test_sealer_binds_table_column_and_row() -> None:
    sealer = FieldSealer(os.urandom(32))
    sealed = sealer.seal(b"hello", table="messages", column="body", row=b"A" * 16)
    assert sealer.open(sealed, table="messages", column="body", row=b"A" * 16) == b"hello"
    for table, column, row in (
        ("messages", "body", b"B" * 16),
        ("transfers", "body", b"A" * 16),
        ("messages", "name", b"A" * 16),
    ):
        with pytest.raises(StoreCorruptError):
            sealer.open(sealed, table=table, column=column, row=row)
    flipped = bytearray(sealed)
    flipped[-1] ^= 1
    with pytest.raises(StoreCorruptError):
        sealer.open(bytes(flipped), table="messages", column="body", row=b"A" * 16)
    with pytest.raises(StoreCorruptError, match="malformed"):
        sealer.open(b"\x01short", table="messages", column="body", row=b"A" * 16)
    # Fresh nonce per value: sealing the same thing twice never gives the same bytes.
    assert sealed != sealer.seal(b"hello", table="messages", column="body", row=b"A" * 16)


def test_sealer_rejects_a_short_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        FieldSealer(b"short")
