"""The event bus: bounded subscriptions, and watchers called inside `publish`."""

from __future__ import annotations

import logging

import pytest

from p2pmsg.node.api import MessageReceived, MessageView, NodeEvent, PeerLost
from p2pmsg.node.bus import EventBus


def _message(n: int) -> MessageReceived:
    return MessageReceived(
        MessageView(
            id=f"{n:032x}",
            peer="ab" * 32,
            direction="in",
            text=str(n),
            created=0.0,
            status="delivered",
        )
    )


async def test_a_watcher_sees_each_event_before_publish_returns_and_a_failing_one_is_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    assert not bus.has_subscribers
    seen: list[NodeEvent] = []

    def broken(event: NodeEvent) -> None:
        raise RuntimeError("a consumer bug")

    bus.watch(broken)
    bus.watch(seen.append)
    assert bus.has_subscribers  # the node skips building events nobody reads
    sub = bus.subscribe()
    with caplog.at_level(logging.ERROR, logger="p2pmsg.node.bus"):
        bus.publish(_message(1))
        assert seen == [_message(1)]  # synchronously, not a loop turn later
        bus.publish(PeerLost("cd" * 32))
    assert seen == [_message(1), PeerLost("cd" * 32)]
    assert sub.drain() == seen  # the broken watcher did not stop the others
    assert "an event watcher failed on MessageReceived" in caplog.text


async def test_a_full_subscription_drops_progress_before_messages() -> None:
    bus = EventBus()
    sub = bus.subscribe(buffer=3)
    for event in (_message(1), PeerLost("cd" * 32), _message(2), _message(3)):
        bus.publish(event)
    assert sub.drain() == [_message(1), _message(2), _message(3)]
    assert sub.dropped == 1
