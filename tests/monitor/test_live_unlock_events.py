"""Unlock events reach the running node: store, stream, monitor
(p2pmsg.node.services.unlock_events).

Unlocking happens before the store can be opened, in whatever process opens
the profile, so the profile writes unlock events to its JSONL log; the node
that runs the profile imports and follows that file. These tests drive a real
`Profile` (cheap KDF) beside a real `Node` on loopback.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from p2pmsg.errors import UnlockThrottledError, WrongPasswordError
from p2pmsg.node.node import Node
from p2pmsg.profile import Profile, UnlockedProfile
from tests.node.conftest import eventually, loopback_config

StartNode = Callable[[], Awaitable[Node]]
PASSWORD = "Unlock-Test-Passw0rd!"  # noqa: S105 - a test profile's password


@pytest.fixture
def profile(tmp_path: Path) -> tuple[Profile, UnlockedProfile]:
    prof = Profile(tmp_path, "alice", kdf_iterations=1_000)
    return prof, prof.create("alice", PASSWORD)


@pytest.fixture
async def node_for(profile: tuple[Profile, UnlockedProfile]) -> AsyncIterator[StartNode]:
    prof, unlocked = profile
    nodes: list[Node] = []

    async def start() -> Node:
        config = replace(
            loopback_config(), monitor=True, monitor_interval=0.2, profile_events=prof.events_path
        )
        node = await Node.open(unlocked.identity, "alice", prof.db_path, unlocked.data_key, config)
        nodes.append(node)
        await node.start()
        return node

    yield start
    for node in nodes:
        await node.stop()


def guess(prof: Profile, attempts: int) -> list[str]:
    """What another process typing wrong passwords would get (throttled after five)."""
    outcomes = []
    for i in range(attempts):
        try:
            prof.unlock(f"wrong guess {i}")
        except WrongPasswordError:
            outcomes.append("wrong")
        except UnlockThrottledError:
            outcomes.append("throttled")
    return outcomes


async def unlock_events(node: Node) -> list[dict[str, Any]]:
    return [
        e for e in await node.security_events(2000) if e["event"] in ("unlock_ok", "unlock_fail")
    ]


async def test_guesses_while_the_node_runs_raise_a_brute_force_alert(
    profile: tuple[Profile, UnlockedProfile], node_for: StartNode
) -> None:
    prof, _ = profile
    node = await node_for()
    outcomes = await asyncio.to_thread(guess, prof, 6)
    assert outcomes == ["wrong"] * 5 + ["throttled"]

    async def brute_force() -> list[object]:
        return [a for a in await node.alerts() if a.source == "rule:unlock_failures"]

    (alert,) = await eventually(brute_force, timeout=5.0)
    assert (alert.kind, alert.severity, alert.peer, alert.addr) == (
        "brute_force",
        "high",
        None,
        None,
    )
    events = await unlock_events(node)
    # Six failures, in order (creating the profile logs no unlock).
    fails = [e for e in events if e["event"] == "unlock_fail"]
    reasons = [e["detail"]["reason"] for e in fails]
    assert reasons == ["wrong_password"] * 5 + ["throttled"]
    assert [e["ts"] for e in fails] == sorted(e["ts"] for e in fails)


async def test_attempts_made_while_no_node_ran_are_imported_once(
    profile: tuple[Profile, UnlockedProfile], node_for: StartNode
) -> None:
    prof, _ = profile
    await asyncio.to_thread(guess, prof, 2)
    await asyncio.to_thread(prof.unlock, PASSWORD)
    lines = prof.events_path.read_text().splitlines()
    assert len(lines) == 3

    first = await node_for()
    assert len(await unlock_events(first)) == 3
    await first.stop()

    await asyncio.to_thread(guess, prof, 1)  # between the two runs
    second = await node_for()
    events = await unlock_events(second)
    assert [e["event"] for e in events] == [
        "unlock_fail",
        "unlock_fail",
        "unlock_ok",
        "unlock_fail",
    ]
    assert [e["ts"] for e in events] == [
        json.loads(line)["ts"] for line in prof.events_path.read_text().splitlines()
    ]


async def test_lines_that_are_not_unlock_events_are_skipped_and_a_torn_line_waits(
    profile: tuple[Profile, UnlockedProfile], node_for: StartNode
) -> None:
    prof, _ = profile
    node = await node_for()
    follower = node.unlock_events
    assert follower is not None
    good = json.dumps(
        {
            "ts": 1763800000.5,
            "event": "unlock_fail",
            "peer": None,
            "addr": None,
            "bytes": 0,
            "detail": {"reason": "wrong_password"},
        }
    )
    with prof.events_path.open("a", encoding="utf-8") as fh:
        fh.write("not json at all\n")
        fh.write(json.dumps({"ts": 1763800000.0, "event": "conn_open"}) + "\n")  # not ours
        fh.write(
            json.dumps({"ts": float("inf"), "event": "unlock_ok"}).replace("Infinity", "1e999")
            + "\n"
        )
        fh.write("x" * 10_000 + "\n")
        fh.write(good[:40])  # a writer caught mid-line
    await eventually(lambda: _ready(follower.skipped >= 4), timeout=3.0)
    assert follower.imported == 0
    with prof.events_path.open("a", encoding="utf-8") as fh:
        fh.write(good[40:] + "\n")
    await eventually(lambda: _ready(follower.imported == 1), timeout=3.0)
    events = await unlock_events(node)
    assert [(e["event"], e["ts"]) for e in events] == [("unlock_fail", 1763800000.5)]


async def _ready(value: bool) -> bool:
    return value
