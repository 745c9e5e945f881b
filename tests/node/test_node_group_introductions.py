"""Introductions through the real stack on loopback: members who never met learn each
other's keys from the group's signed member list; their first session carries
"introduced by a in 'team'" and is first-seen, not verified; and a group never
changes a pinned key or clears a flagged name clash."""

from __future__ import annotations

from p2pmsg.commands._node import event_text, introduction_text
from p2pmsg.commands.peers import peer_line
from p2pmsg.node.api import IntroductionView, NodeEvent, PeerConnected, PeerView
from p2pmsg.node.node import Node
from p2pmsg.store import Introduction, Store
from p2pmsg.store.introductions import MAX_PER_PEER
from tests.node.conftest import NodeFactory, connect, eventually


async def _view(node: Node, fingerprint: str) -> PeerView | None:
    return next((v for v in await node.peers() if v.fingerprint == fingerprint), None)


async def _joined(node: Node) -> bool:
    return bool(await node.groups())


async def test_members_who_never_met_are_introduced_and_stay_unverified(
    make_node: NodeFactory,
) -> None:
    a = await make_node("a")
    b = await make_node("b")
    c = await make_node("c")
    await connect(a, b)
    await connect(a, c)
    assert await _view(b, c.fingerprint) is None  # b and c never met
    team = await a.create_group("team", ["b", "c"])
    await eventually(lambda: _joined(b))
    await eventually(lambda: _joined(c))

    seen: list[NodeEvent] = []
    b.bus.watch(seen.append)
    # On a LAN mDNS gives b c's address (b's node dials every member); here, by hand.
    await b.add_peer("127.0.0.1", c.listen_port)

    async def connected() -> PeerConnected | None:
        return next(
            (
                e
                for e in seen
                if isinstance(e, PeerConnected) and e.peer.fingerprint == c.fingerprint
            ),
            None,
        )

    first = await eventually(connected)
    (note,) = first.peer.introduced_by
    assert (note.introducer, note.introducer_name) == (a.fingerprint, "a")
    assert (note.group, note.group_name) == (team.id, "team")
    assert first.peer.state == "pinned" and not first.peer.verified
    line = event_text(first, {})
    assert line is not None and "not verified, introduced by a in 'team'" in line

    stored = await _view(b, c.fingerprint)
    assert stored is not None and stored.introduced_by == first.peer.introduced_by
    assert not stored.verified and stored.state == "pinned"
    shown = peer_line(stored)
    assert "first seen" in shown and "introduced by a in 'team'" in shown
    # And the other way round: c met b through the same group.
    c_sees_b = await eventually(lambda: _view(c, b.fingerprint))
    assert [n.introducer for n in c_sees_b.introduced_by] == [a.fingerprint]
    assert not c_sees_b.verified

    # A contact (met before) is not "introduced"; verifying keeps the note as history
    # and the text drops it from the connect line.
    a_seen_by_b = await _view(b, a.fingerprint)
    assert a_seen_by_b is not None and a_seen_by_b.introduced_by == ()
    await b.set_verified(c.fingerprint, True)
    verified = await _view(b, c.fingerprint)
    assert verified is not None and verified.verified and len(verified.introduced_by) == 1


async def test_a_group_never_clears_a_name_clash_nor_replaces_a_pinned_key(
    make_node: NodeFactory,
) -> None:
    a = await make_node("a")
    b = await make_node("b")
    carol = await make_node("carol")
    x = await make_node("x", display_name="carol")  # another key, the same name
    await connect(b, carol)  # b's contact "carol", pinned
    carol_key = (await b.resolve_peer("carol")).fingerprint
    await connect(a, b)
    await connect(a, x)  # a knows x as "carol" (its first-seen claim)
    await a.create_group("team", ["b", x.fingerprint])
    await eventually(lambda: _joined(b))
    members = {m.fingerprint for m in (await b.groups())[0].members}
    assert x.fingerprint in members

    # The group names x's key, not carol's: b's contact keeps its key and name.
    assert (await b.resolve_peer("carol")).fingerprint == carol_key == carol.fingerprint
    assert (await _view(b, x.fingerprint)) is None  # no row until x is met

    await b.add_peer("127.0.0.1", x.listen_port)

    async def flagged() -> PeerView | None:
        view = await _view(b, x.fingerprint)
        return view if view is not None and view.state == "flagged" else None

    met = await eventually(flagged)
    assert met.clash_with == carol.fingerprint and not met.sendable
    assert [n.introducer for n in met.introduced_by] == [a.fingerprint]  # a hint, no more
    # More group traffic (a post, summaries) does not clear the flag.
    await a.send_group("team", "hello")
    await eventually(lambda: b.group_messages("team"))
    still = await _view(b, x.fingerprint)
    assert still is not None and still.state == "flagged" and still.clash_with == carol.fingerprint
    contact = await _view(b, carol.fingerprint)
    assert contact is not None and contact.state == "pinned" and contact.introduced_by == ()
    assert (await b.resolve_peer("carol")).fingerprint == carol.fingerprint


async def test_notes_are_bounded_per_key_and_names_are_sanitised(make_node: NodeFactory) -> None:
    b = await make_node("b")
    fp, introducer = "ab" * 32, "cd" * 32
    notes = [
        Introduction(fp, introducer, f"bob\x1b[2J{i}", bytes([i]) * 16, f"team\n{i}", float(i))
        for i in range(MAX_PER_PEER + 3)
    ]
    assert await b._store.run(Store.add_introductions, notes) == MAX_PER_PEER
    assert await b._store.run(Store.add_introductions, notes[:1]) == 0  # noted already
    kept = await b._store.run(Store.introductions, fp)
    assert [n.group_id for n in kept] == [n.group_id for n in notes[:MAX_PER_PEER]]
    assert kept[0].introducer_name == "bob\x1b[2J0"  # stored raw, as the group said it
    view = PeerView(
        fingerprint=fp,
        name="x",
        short_fingerprint="abab",
        online=False,
        verified=False,
        unread=0,
        introduced_by=tuple(
            IntroductionView(n.introducer, n.introducer_name, n.group_id.hex(), n.group_name, n.at)
            for n in kept
        ),
    )
    text = introduction_text(view)
    assert "\x1b" not in text and "\n" not in text
    assert text.startswith("introduced by bob") and text.endswith(f"(+{MAX_PER_PEER - 1} more)")
