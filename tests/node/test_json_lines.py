"""The JSON lines `p2pmsg listen --json` prints for a security event, an alert and a
message, byte for byte: scripts parse them, so a refactoring of the records behind
them must not move a key, a separator or a number format."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from p2pmsg.commands._node import event_json
from p2pmsg.node import api
from p2pmsg.node.bus import EventBus
from p2pmsg.node.services.security_log import SecurityLog
from p2pmsg.store import AsyncStore

MALLORY = "66" * 32


async def test_a_logged_security_event_prints_as_one_pinned_line() -> None:
    bus = EventBus()
    seen: list[api.NodeEvent] = []
    bus.watch(seen.append)
    # record() never touches the store: the flusher writes later, and is not started here.
    log = SecurityLog(cast(AsyncStore, None), bus, clock=lambda: 1763800000.25)
    log.record("handshake_fail", addr="10.0.0.9", detail={"reason": "timeout", "n": 2})
    log.record("msg_recv", peer=MALLORY, addr="10.0.0.2", nbytes=120, ts=1763800001.5)
    assert [event_json(event) for event in seen] == [
        '{"event":"security_event","record":{"ts":1763800000.25,"event":"handshake_fail",'
        '"peer":null,"addr":"10.0.0.9","bytes":0,"detail":{"reason":"timeout","n":2}}}',
        '{"event":"security_event","record":{"ts":1763800001.5,"event":"msg_recv",'
        f'"peer":"{MALLORY}","addr":"10.0.0.2","bytes":120,"detail":{{}}}}}}',
    ]


def test_an_alert_prints_as_one_pinned_line() -> None:
    """The record, its id, (since the alert lifecycle) its state, and (since alerts
    explain themselves) its evidence: each added at the end."""
    view = api.AlertView(
        1763800002.5, "flood", "high", None, "10.0.0.9", "rule:connection_rate", 1.5, "m", 7
    )
    assert event_json(api.AlertRaised(view)) == (
        '{"event":"alert_raised","alert":{"ts":1763800002.5,"kind":"flood","severity":"high",'
        '"peer":null,"addr":"10.0.0.9","source":"rule:connection_rate","score":1.5,'
        '"message":"m","id":7,"state":"unread","state_at":null,"evidence":[]}}'
    )
    explained = dataclasses.replace(
        view, evidence=(api.Evidence("connections refused in 60 s", 40.0, "alert at 20"),)
    )
    assert event_json(api.AlertRaised(explained)).endswith(
        '"evidence":[{"name":"connections refused in 60 s","observed":40.0,'
        '"expected":"alert at 20"}]}}'
    )


def test_a_received_message_prints_as_one_pinned_line() -> None:
    message: dict[str, Any] = {
        "id": "00" * 16,
        "peer": MALLORY,
        "direction": "in",
        "text": "lunch?",
        "created": 1763800003.0,
        "status": "delivered",
    }
    assert event_json(api.MessageReceived(api.MessageView(**message))) == (
        '{"event":"message_received","message":{"id":"00000000000000000000000000000000",'
        f'"peer":"{MALLORY}","direction":"in","text":"lunch?","created":1763800003.0,'
        '"status":"delivered","ttl":null,"deadline":null},"replayed":false}'
    )
