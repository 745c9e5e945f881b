"""The asyncio driver around the core: futures, back-pressure, store failures.

A real `AsyncStore` and fake sessions; the tests await futures and events, never
a timer (the lazy timers are exercised by tests/node/test_delivery_bookkeeping.py
over real nodes, and on the fake clock by test_timing.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from p2pmsg.errors import StoreError
from p2pmsg.node.bus import EventBus
from p2pmsg.node.services.delivery import core
from p2pmsg.node.services.delivery.driver import Delivery
from p2pmsg.node.services.security_log import SecurityLog
from p2pmsg.protocol.messages import Chat, Receipt
from p2pmsg.store import AsyncStore, Store
from tests.node.delivery.pair import FakeChannel


@dataclass
class Rig:
    delivery: Delivery
    store: AsyncStore
    peer: str  # a pinned, sendable peer


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = await AsyncStore.open(tmp_path / "node.db", os.urandom(32))
    key = os.urandom(32)
    await store.run(Store.record_handshake, key, "bob", time.time())
    bus = EventBus()
    delivery = Delivery(store, bus, SecurityLog(store, bus, time.time), time.time)
    yield Rig(delivery, store, hashlib.sha256(key).hexdigest())
    await delivery.stop()
    await store.close()


async def test_a_session_stops_reading_while_its_own_chats_wait_for_the_store(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound is per peer: a flooding peer's session waits, a contact's reads on."""
    monkeypatch.setattr(core, "INBOUND_PER_PEER", 3 * (1 + core.CHAT_OVERHEAD))
    channel = FakeChannel(rig.peer)
    rig.delivery.chats_received(channel, [Chat(os.urandom(16), time.time(), "c") for _ in range(3)])
    room = asyncio.ensure_future(rig.delivery.inbound_room(rig.peer))
    other = asyncio.ensure_future(rig.delivery.inbound_room("ab" * 32))
    await asyncio.sleep(0)  # one loop turn: the pipeline is not running yet
    assert not room.done()
    assert other.done()  # another peer's session is not held by this one's backlog
    rig.delivery.start()
    await asyncio.wait_for(room, 5)  # taken into a batch: room again
    await rig.delivery.flushed()
    assert [type(m) for m in channel.wire] == [Receipt]


async def test_past_the_bound_for_all_only_sessions_with_nothing_waiting_read(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core, "INBOUND_ALL", 2 * (1 + core.CHAT_OVERHEAD))
    rig.delivery.chats_received(
        FakeChannel(rig.peer), [Chat(os.urandom(16), time.time(), "c") for _ in range(2)]
    )
    quiet = asyncio.ensure_future(rig.delivery.inbound_room("ab" * 32))
    busy = asyncio.ensure_future(rig.delivery.inbound_room(rig.peer))
    await asyncio.sleep(0)
    assert quiet.done() and not busy.done()
    rig.delivery.start()
    await asyncio.wait_for(busy, 5)


async def test_a_receipt_for_an_id_on_the_wire_answers_its_waiter(rig: Rig) -> None:
    rig.delivery.start()
    channel = FakeChannel(rig.peer)
    rig.delivery.session_ready(channel)
    view = await rig.delivery.submit(rig.peer, "hello", None)
    await rig.delivery.flushed()
    [chat] = channel.wire
    assert isinstance(chat, Chat) and chat.id.hex() == view.id
    waiter = asyncio.ensure_future(rig.delivery.wait_status(chat.id, 5))
    await asyncio.sleep(0)
    assert not waiter.done()
    rig.delivery.receipt_received(rig.peer, Receipt((chat.id,), "delivered"))
    assert await waiter == "delivered"
    assert rig.delivery.recent_status(chat.id) == "delivered"
    await rig.delivery.flushed()  # the lazy write, hurried
    record = await rig.store.run(Store.get_message, chat.id)
    assert record is not None and record.status == "delivered"


async def test_a_store_that_fails_refuses_the_submits_of_its_batch(rig: Rig) -> None:
    rig.delivery.start()
    await rig.delivery.flushed()  # the pipeline has read the store once
    await rig.store.close()
    single = rig.delivery.submit(rig.peer, "lost", None)
    with pytest.raises(StoreError):
        await single
    with pytest.raises(StoreError):
        await rig.delivery.submit_many(rig.peer, ["also", "lost"], None)
