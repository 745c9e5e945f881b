"""Folder offers in lists: a row needs the count and the size, never the manifest."""

from __future__ import annotations

import os

import pytest

from p2pmsg.errors import StoreCorruptError
from p2pmsg.store import Store
from tests.store.conftest import PeerFactory


def _unreadable_manifest(store: Store, bundle_id: bytes) -> None:
    """A manifest that cannot be opened: any read of it fails loudly."""
    with store._write() as conn:
        conn.execute("UPDATE bundles SET manifest = ? WHERE id = ?", (b"not sealed", bundle_id))
    with pytest.raises(StoreCorruptError):
        store.get_bundle(bundle_id)


def test_a_list_without_manifests_reads_none(store: Store, make_peer: PeerFactory) -> None:
    fp = make_peer()
    bundle_id = os.urandom(16)
    entries: list[tuple[str, int, str | None]] = [("a.txt", 3, None), ("b/c.txt", 4, None)]
    store.create_bundle(
        fp, bundle_id=bundle_id, direction="in", name="album", entries=entries, now=1000.0
    )
    assert store.list_bundles()[0].entries == (("a.txt", 3, None), ("b/c.txt", 4, None))
    _unreadable_manifest(store, bundle_id)
    for listed in (store.list_bundles(manifests=False), store.list_bundles(fp, manifests=False)):
        [record] = listed
        assert (record.id, record.name, record.count, record.total_size) == (
            bundle_id,
            "album",
            2,
            7,
        )
        assert record.entries == ()
    with pytest.raises(StoreCorruptError):
        store.list_bundles()  # the full list still opens (and checks) every manifest


def test_ended_bundles_are_the_latest_final_ones(store: Store, make_peer: PeerFactory) -> None:
    fp = make_peer()
    ids = [os.urandom(16) for _ in range(4)]
    for i, bundle_id in enumerate(ids):
        store.create_bundle(
            fp,
            bundle_id=bundle_id,
            direction="in",
            name=f"o{i}",
            entries=[("x", 1, None)],
            now=1000.0 + i,
        )
    store.update_bundle(ids[0], 2000.0, state="declined", error="declined by the receiver")
    store.update_bundle(ids[1], 2001.0, state="transferring")
    store.update_bundle(ids[2], 2002.0, state="expired")
    store.update_bundle(ids[3], 2003.0, state="cancelled")
    _unreadable_manifest(store, ids[0])
    assert [r.id for r in store.ended_bundles(16)] == [ids[3], ids[2], ids[0]]
    assert [r.id for r in store.ended_bundles(2)] == [ids[3], ids[2]]
    assert store.ended_bundles(16)[-1].error == "declined by the receiver"
