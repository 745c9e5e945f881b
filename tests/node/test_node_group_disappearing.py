"""Disappearing group posts through the real stack on loopback (real TCP, Noise sessions,
SQLite, Ed25519): each member's copy disappears `ttl` after that member is shown it (the
author's after sending it); the signed body stays and is relayed as a stub, so a member
who was away is not stalled by a post whose text is gone elsewhere.

Which copy the member who was away gets: the copy of the member it meets. Here C meets
only B, whose copy disappeared: C gets the post *as a stub* (shown as disappeared, never
its text) and A's later posts behind it, in order. A's own copy had disappeared too by
the time A came back, so A's later post does not bring the text either.
"""

from __future__ import annotations

import asyncio
import sqlite3

from p2pmsg.node.api import GroupMessageReceived, GroupMessagesExpired
from p2pmsg.node.node import Node
from tests.node.conftest import NodeFactory, connect, eventually, loopback_config
from tests.node.test_node_groups import _collect, _offline

TTL = 1.0


async def _texts(node: Node) -> list[str | None]:
    try:
        return [m.text for m in await node.group_messages("team")]
    except Exception:
        return []


async def test_a_post_disappears_per_member_and_the_member_who_was_away_gets_a_stub(
    make_node: NodeFactory,
) -> None:
    a = await make_node("a")
    b = await make_node("b")
    c = await make_node("c")
    a_port, c_port = a.listen_port, c.listen_port
    await connect(a, b)
    await connect(a, c)
    await connect(c, b)  # c knows b's address: it dials b when it comes back
    await a.create_group("team", ["b", "c"])
    for node in (b, c):
        await eventually(lambda node=node: node.groups())  # type: ignore[misc]

    await c.stop()
    await eventually(lambda: _offline(a, c))
    b_events = _collect(b)
    secret = await a.send_group("team", "burn after reading", ttl=TTL)
    assert secret.ttl == 1 and secret.deadline is not None  # the author's runs from sending
    later = await a.send_group("team", "this one stays")

    async def b_has_both() -> list[str | None]:
        texts = await _texts(b)
        return texts if len(texts) == 2 else []

    # b is shown the posts (the history handed to its user): its timer starts now.
    assert await eventually(b_has_both) == ["burn after reading", "this one stays"]
    shown = {m.id: m for m in await b.group_messages("team")}
    assert shown[secret.id].ttl == 1 and shown[secret.id].deadline is not None
    assert shown[later.id].deadline is None

    # The ttl passes: b's copy of the text is gone, the post keeps its place.
    async def b_forgot() -> bool:
        return await _texts(b) == [None, "this one stays"]

    await eventually(b_forgot, timeout=5)
    expired = [e for e in b_events if isinstance(e, GroupMessagesExpired)]
    assert [e.ids for e in expired] == [(secret.id,)]
    assert b.groups_service.find("team").held_posts()[0].text is None

    # c comes back while a is away and meets only b: it gets the post as a stub, and
    # a's later post is not stalled behind it.
    await a.stop()
    c = await make_node("c", config=loopback_config(port=c_port), start=False)
    c_events = _collect(c)
    await c.start()

    async def c_caught_up() -> list[str | None]:
        texts = await _texts(c)
        return texts if len(texts) == 2 else []

    assert await eventually(c_caught_up, timeout=10) == [None, "this one stays"]
    views = await c.group_messages("team")
    assert (views[0].id, views[0].author, views[0].ttl) == (secret.id, a.fingerprint, 1)
    received = [e.message.text for e in c_events if isinstance(e, GroupMessageReceived)]
    assert received == ["this one stays"]  # a stub has nothing to announce

    # a comes back: its own copy's deadline passed while it was away, so its store drops
    # the text at start; its next post reaches c in order, nothing stalled.
    a = await make_node("a", config=loopback_config(port=a_port))
    await eventually(lambda: asyncio.sleep(0, a.directory.session(c.fingerprint)), 10)
    await eventually(lambda: _texts_are(a, [None, "this one stays"]), timeout=5)
    await a.send_group("team", "back again")
    await eventually(lambda: _texts_are(c, [None, "this one stays", "back again"]), timeout=10)

    # Nowhere is the disappeared text left in a store (texts are sealed at rest; the
    # rows of the disappeared post hold no text at all).
    for name in ("a", "b", "c"):
        conn = sqlite3.connect(make_node.root / f"{name}.db")
        rows = conn.execute(
            "SELECT text IS NULL, body IS NOT NULL FROM group_items WHERE kind = 'post' AND seq = 1"
        ).fetchall()
        conn.close()
        assert rows == [(1, 1)], name


async def _texts_are(node: Node, expected: list[str | None]) -> bool:
    return await _texts(node) == expected


async def test_the_groups_own_timer_goes_with_new_posts(make_node: NodeFactory) -> None:
    """`set_group_ttl` (the app's /ttl in a group): new posts without a timer of their own
    get the group's; math.inf turns it off there."""
    import math

    a = await make_node("a")
    b = await make_node("b")
    await connect(a, b)
    await a.create_group("team", ["b"])
    await eventually(lambda: b.groups())
    assert await a.group_ttl("team") is None
    await a.set_group_ttl("team", 90.5)
    timed = await a.send_group("team", "timed")
    assert timed.ttl == 91 and timed.deadline is not None  # whole seconds, rounded up
    assert (await a.send_group("team", "own timer", ttl=5)).ttl == 5
    await a.set_group_ttl("team", math.inf)
    assert (await a.send_group("team", "untimed")).ttl is None

    async def b_got_them() -> list[int | None]:
        views = await b.group_messages("team")
        return [v.ttl for v in views] if len(views) == 3 else []

    assert await eventually(b_got_them) == [91, 5, None]
