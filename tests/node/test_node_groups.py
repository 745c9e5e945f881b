"""Groups through the real stack on loopback: real TCP, Noise sessions, SQLite, Ed25519.

The issue's scenario: C is offline while A posts; A goes offline; C comes back while
B is online, and gets A's posts from B, verified and once. A removed member's later
posts are refused by the others; restarts keep the group.
"""

from __future__ import annotations

import asyncio

import pytest

from p2pmsg.errors import ConfigError
from p2pmsg.node.api import GroupChanged, GroupMessageReceived, NodeEvent
from p2pmsg.node.node import Node
from p2pmsg.protocol.messages import GroupPostMessage
from tests.node.conftest import NodeFactory, connect, eventually, loopback_config


def _collect(node: Node) -> list[NodeEvent]:
    seen: list[NodeEvent] = []
    node.bus.watch(seen.append)
    return seen


async def _texts(node: Node, group: str = "team") -> list[str]:
    try:
        return [m.text for m in await node.group_messages(group)]
    except Exception:
        return []


async def _offline(a: Node, b: Node) -> bool:
    return a.directory.session(b.fingerprint) is None


async def test_a_member_who_was_away_gets_the_posts_from_another_member(
    make_node: NodeFactory,
) -> None:
    a = await make_node("a")
    b = await make_node("b")
    c = await make_node("c")
    a_port, c_port = a.listen_port, c.listen_port
    await connect(a, b)
    await connect(a, c)
    await connect(c, b)  # c knows b's address: it dials b when it comes back

    team = await a.create_group("team", ["b", "c"])
    assert {m.name for m in team.members} == {"a", "b", "c"} and team.admin

    async def joined(node: Node) -> bool:
        return [g.name for g in await node.groups()] == ["team"]

    await eventually(lambda: joined(b))
    await eventually(lambda: joined(c))

    await c.stop()
    await eventually(lambda: _offline(a, c))
    sent = [await a.send_group("team", f"while you were away {i}") for i in range(3)]
    assert all(m.direction == "out" and m.recipients == 2 for m in sent)
    await eventually(lambda: _texts(b))
    done = await a.wait_group_delivered("team", sent[-1].id, 5.0)
    assert (done.delivered, done.recipients) == (1, 2)  # b has it, c is away

    await a.stop()
    c = await make_node("c", config=loopback_config(port=c_port), start=False)
    seen = _collect(c)
    await c.start()

    async def caught_up() -> list[str]:
        texts = await _texts(c)
        return texts if len(texts) == 3 else []

    assert await eventually(caught_up, timeout=10) == [f"while you were away {i}" for i in range(3)]
    await asyncio.sleep(0.3)  # more summaries cross: nothing may be shown twice
    shown = [e.message for e in seen if isinstance(e, GroupMessageReceived)]
    assert [m.text for m in shown] == [f"while you were away {i}" for i in range(3)]
    assert {m.author for m in shown} == {a.fingerprint} and {m.group for m in shown} == {team.id}
    assert all(m.author_name == "a" and m.direction == "in" for m in shown)

    # A comes back (its sent posts restored from its store); c's summary is its receipt.
    a = await make_node("a", config=loopback_config(port=a_port))
    done = await a.wait_group_delivered("team", sent[-1].id, 10.0)
    assert (done.delivered, done.recipients) == (2, 2)
    assert [m.text for m in await a.group_messages("team")] == [m.text for m in sent]


async def test_a_removed_members_later_posts_are_refused_and_restarts_keep_the_group(
    make_node: NodeFactory,
) -> None:
    a = await make_node("a")
    b = await make_node("b")
    c = await make_node("c")
    c_port = c.listen_port
    await connect(a, b)
    await connect(a, c)
    await connect(c, b)
    await a.create_group("team", ["b", "c"])
    for node in (b, c):
        await eventually(lambda node=node: node.groups())  # type: ignore[misc]
    await c.send_group("team", "before")
    await eventually(lambda: _texts(b))

    await c.stop()
    await eventually(lambda: _offline(b, c))
    after_removal = await a.remove_member("team", "c")
    assert {m.name for m in after_removal.members} == {"a", "b"}

    async def b_sees_two() -> bool:
        groups = await b.groups()
        return bool(groups) and len(groups[0].members) == 2

    await eventually(b_sees_two)
    await a.stop()  # only b is left to hear c

    # c comes back not knowing it was removed, and posts.
    c = await make_node("c", config=loopback_config(port=c_port))
    late = await c.send_group("team", "after my removal")
    session = await eventually(lambda: asyncio.sleep(0, c.directory.session(b.fingerprint)), 10)
    # Whether c's fan-out or b's answer crossed first, c's node now pushes its signed post
    # to b as a member's node would (b does not ask a non-member for posts).
    post = c.groups_service.find("team").held_posts()[-1]
    assert post.text == "after my removal"
    session.send_messages([GroupPostMessage(post.body, post.signature)])

    async def refused() -> bool:
        events = await b.security_events()
        return any(
            e["peer"] == c.fingerprint and str(e["detail"].get("reason", "")).startswith("group_")
            for e in events
        )

    await eventually(refused, timeout=10)
    reasons = {
        e["detail"].get("reason") for e in await b.security_events() if e["peer"] == c.fingerprint
    }
    assert reasons & {"group_not_member", "group_removed"}, reasons
    assert await _texts(b) == ["before"]  # the late post is nowhere on b

    # c learns of its removal from b (operations only), and its own post stops counting.
    async def c_knows() -> bool:
        groups = await c.groups()
        return bool(groups) and not groups[0].member

    await eventually(c_knows, timeout=10)
    assert late.id not in [m.id for m in await c.group_messages("team")]

    # Restarts keep the group: b comes back with the same members, posts and order.
    before = (await b.groups(), await b.group_messages("team"))
    await b.stop()
    b = await make_node("b")
    assert (await b.groups(), await b.group_messages("team")) == before
    changed = [e for e in _collect(b) if isinstance(e, GroupChanged)]
    assert changed == []  # a restart is not a change


async def test_only_an_admin_renames_and_every_member_sees_the_new_name(
    make_node: NodeFactory,
) -> None:
    a = await make_node("a")
    b = await make_node("b")
    c = await make_node("c")
    await connect(a, b)
    await connect(a, c)
    await a.create_group("team", ["b"])
    await eventually(lambda: b.groups())

    # b is a member a added, so an admin too; c, added by b, is not.
    await connect(b, c)
    await b.add_member("team", "c")
    await eventually(lambda: c.groups())
    changed = _collect(a)
    with pytest.raises(ConfigError, match="not allowed"):
        await c.rename_group("team", "mine now")
    assert [g.name for g in await c.groups()] == ["team"]

    renamed = await b.rename_group("team", "crew")
    assert renamed.name == "crew"

    async def named(node: Node) -> bool:
        return [g.name for g in await node.groups()] == ["crew"]

    for node in (a, b, c):
        await eventually(lambda node=node: named(node))  # type: ignore[misc]
    assert any(isinstance(e, GroupChanged) and e.group.name == "crew" for e in changed)
    assert [m.text for m in await a.group_messages("crew")] == []  # found by its new name
    with pytest.raises(ConfigError, match="no group named"):
        await a.group_messages("team")
