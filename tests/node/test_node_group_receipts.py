"""Group receipts through the real stack on loopback (real TCP, Noise, SQLite, Ed25519):
A posts, B and C receive; B reads, so A sees "read 1/2" with B listed; A's receipts
survive its restart while B and C are away (they are in A's store)."""

from __future__ import annotations

import pytest

from p2pmsg.errors import ConfigError
from p2pmsg.node.api import GroupReceiptsChanged
from p2pmsg.node.node import Node
from tests.node.conftest import NodeFactory, connect, eventually, loopback_config
from tests.node.test_node_groups import _collect, _offline, _texts


async def test_read_receipts_reach_the_author_and_survive_its_restart(
    make_node: NodeFactory,
) -> None:
    a = await make_node("a")
    b = await make_node("b")
    c = await make_node("c")
    a_port = a.listen_port
    await connect(a, b)
    await connect(a, c)
    await a.create_group("team", ["b", "c"])
    for node in (b, c):
        await eventually(lambda node=node: node.groups())  # type: ignore[misc]
    with pytest.raises(ConfigError, match="no post of yours"):
        await a.group_receipts("team")
    seen = _collect(a)

    sent = await a.send_group("team", "lunch?")
    assert (sent.delivered, sent.read, sent.recipients) == (0, 0, 2)
    for node in (b, c):
        await eventually(lambda node=node: _texts(node))  # type: ignore[misc]
    done = await a.wait_group_delivered("team", sent.id, 10.0)
    assert (done.delivered, done.read) == (2, 0)

    await b.mark_group_read("team")

    async def read_by_b() -> bool:
        post, _ = await a.group_receipts("team")
        return post.read == 1

    await eventually(read_by_b)
    post, receipts = await a.group_receipts("team", sent.id)
    assert (post.id, post.delivered, post.read, post.recipients) == (sent.id, 2, 1, 2)
    by_name = {r.name: (r.delivered, r.read) for r in receipts}
    assert by_name == {"b": (True, True), "c": (True, False)}
    assert {r.fingerprint for r in receipts} == {b.fingerprint, c.fingerprint}
    # The UI was told (no polling): the last event has the post as it now stands.
    changed = [e for e in seen if isinstance(e, GroupReceiptsChanged)]
    assert changed and changed[-1].messages[-1].id == sent.id
    assert (changed[-1].messages[-1].delivered, changed[-1].messages[-1].read) == (2, 1)
    await b.mark_group_read("team")  # again, nothing new: nothing moves
    assert (await a.group_receipts("team"))[0].read == 1

    # A restarts with B and C away: the receipts come from its store.
    await b.stop()
    await c.stop()
    await eventually(lambda: _offline(a, b))
    await eventually(lambda: _offline(a, c))
    await a.stop()
    a = await make_node("a", config=loopback_config(port=a_port))
    post, receipts = await a.group_receipts("team")
    assert (post.delivered, post.read, post.recipients) == (2, 1, 2)
    assert {r.name: r.read for r in receipts} == {"b": True, "c": False}
    assert [m.read for m in await a.group_messages("team")] == [1]


async def test_a_member_s_own_read_marks_go_out_in_its_summaries(make_node: NodeFactory) -> None:
    """B's read marks never claim more than B holds, and a post B read before a restart
    stays read (B's marks are in its store too)."""
    a = await make_node("a")
    b = await make_node("b")
    b_port = b.listen_port
    await connect(a, b)
    await a.create_group("team", ["b"])
    await eventually(lambda: b.groups())
    sent = [await a.send_group("team", f"post {i}") for i in range(2)]

    async def both(node: Node = b) -> bool:
        return len(await _texts(node)) == 2

    await eventually(both)
    await b.mark_group_read("team")
    replica = b.groups_service.find("team")
    assert b.groups_service._summary(replica).read == ((bytes.fromhex(a.fingerprint), 2),)
    await eventually(lambda: _read(a, sent[-1].id))
    await b.stop()
    b = await make_node("b", config=loopback_config(port=b_port))
    replica = b.groups_service.find("team")
    assert b.groups_service._summary(replica).read == ((bytes.fromhex(a.fingerprint), 2),)


async def _read(node: Node, message_id: str) -> bool:
    post, _ = await node.group_receipts("team", message_id)
    return post.read == post.recipients


async def test_a_receipt_event_carries_only_the_posts_whose_marks_moved(
    make_node: NodeFactory,
) -> None:
    """Each new delivery tells the UI about that post, not again about every older post
    still unread (which cost an author of 1,000 posts 68 ms per post in bench groups)."""
    a = await make_node("a")
    b = await make_node("b")
    await connect(a, b)
    await a.create_group("team", ["b"])
    await eventually(lambda: b.groups())
    seen = _collect(a)
    sent = []
    for i in range(4):
        sent.append(await a.send_group("team", f"post {i}"))
        await a.wait_group_delivered("team", sent[-1].id, 10.0)
    changed = [e for e in seen if isinstance(e, GroupReceiptsChanged)]
    carried = [m.id for e in changed for m in e.messages]
    assert sorted(set(carried)) == sorted(m.id for m in sent)
    assert len(carried) == len(sent)  # each post once: when B came to hold it
    await b.mark_group_read("team")

    async def all_read() -> bool:
        return (await a.group_receipts("team"))[0].read == 1

    await eventually(all_read)
    last = [e for e in seen if isinstance(e, GroupReceiptsChanged)][-1]
    assert [m.id for m in last.messages] == [m.id for m in sent]  # all four now read
