"""Groups in the app, one layer at a time (the fake node plays the other members):
the Groups section of the list with unread counts, the group conversation with author
labels and delivery counts, /group and its dialogs, the member pane, and errors shown
as messages. Real nodes: test_group_end_to_end.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import Input, SelectionList

from p2pmsg.node.api import GroupMessageView, GroupReceiptsChanged, IntroductionView, PeerView
from p2pmsg.ui import slash
from p2pmsg.ui.app import P2PMsgApp
from p2pmsg.ui.screens.groups import (
    ConfirmScreen,
    CreateGroupScreen,
    GroupMembersScreen,
    member_label,
    trust_text,
)
from p2pmsg.ui.screens.main import MainScreen
from p2pmsg.ui.widgets.composer import Composer
from p2pmsg.ui.widgets.message_log import MessageLog
from p2pmsg.ui.widgets.message_row import group_delivery
from p2pmsg.ui.widgets.peer_list import PeerList, group_key
from tests.ui.conftest import FIXED_CLOCK, populated_node, screen_text, settle
from tests.ui.fake_node import T0, FakeNode, fp_for


def group_node() -> tuple[FakeNode, str]:
    """alice with bob, carol and dave, in a group "team" with bob, dave and erin (erin
    never met: not a contact)."""
    node = populated_node()
    team = node.make_group("team", ["bob", "dave", "erin"])
    node.group_history(team.id, "bob", "standup in 5", created=T0 - 200)
    node.group_history(team.id, "erin", "on my way", created=T0 - 150)
    node.group_history(team.id, "alice", "starting now", created=T0 - 100, delivered=2)
    return node, team.id


def _main(app: P2PMsgApp) -> MainScreen:
    assert isinstance(app.screen, MainScreen)
    return app.screen


async def _open_group(app: P2PMsgApp, pilot, gid: str) -> MainScreen:  # type: ignore[no-untyped-def]
    await settle(pilot, 0.3)
    main = _main(app)
    main.open_conversation(group_key(gid))
    await settle(pilot, 0.2)
    return main


# --- units -----------------------------------------------------------------------------


def test_group_slash_commands_parse() -> None:
    assert slash.parse("/group create team") == slash.Slash("group", arg="team", action="create")
    assert slash.parse("/group create").action == "create"
    assert slash.parse("/group add bob") == slash.Slash("group", arg="bob", action="add")
    assert slash.parse("/group remove 3f2a91bc").arg == "3f2a91bc"
    assert slash.parse("/group leave").action == "leave"
    assert slash.parse("/group members").action == "members"
    assert slash.parse("/group rename the crew") == slash.Slash(
        "group", arg="the crew", action="rename"
    )
    for bad, says in (
        ("/group", "Usage: /group create"),
        ("/group retitle x", "Usage: /group create"),
        ("/group rename", "Usage: /group rename NAME"),
        ("/group add", "Usage: /group add PEER"),
        ("/group remove", "Usage: /group remove PEER"),
        ("/group leave now", "takes no arguments"),
    ):
        with pytest.raises(slash.SlashError, match=says):
            slash.parse(bad)


def test_member_labels_put_petnames_first_and_mark_claims() -> None:
    node = FakeNode()
    bob = node.make_peer("bob")
    assert member_label(bob.fingerprint, "bob", bob) == "~bob"  # a claim, even of a contact
    named = replace(bob, local_name="Robert", name="Robert")
    assert member_label(bob.fingerprint, "bob", named) == "Robert"
    assert member_label(fp_for("erin"), "erin", None) == "~erin"
    assert member_label(fp_for("erin"), "", None) == "~" + fp_for("erin")[:8]


def test_group_delivery_counts() -> None:
    post = GroupMessageView("a:1", "g", "team", "a", "me", "out", "hi", T0, recipients=3)
    assert group_delivery(post) == "◷ 0/3"
    assert group_delivery(replace(post, delivered=2)) == "✓✓ 2/3"
    assert group_delivery(replace(post, delivered=3, read=2)) == "✓✓ 3/3 read 2/3"
    assert group_delivery(replace(post, recipients=0)) == ""


# --- the app ---------------------------------------------------------------------------


async def test_groups_are_listed_with_unread_counts_and_open_with_author_labels() -> None:
    node, gid = group_node()
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, 0.3)
        main = _main(app)
        plist = main.query_one(PeerList)
        assert plist.conversation_ids()[-1] == group_key(gid)  # below the peers
        assert main.selected == fp_for("bob")  # a peer still opens first
        text = screen_text(app)
        assert "── Groups ──" in text and "# team" in text and "4 members" in text
        node.group_receive(gid, "dave", "first")
        node.group_receive(gid, "erin", "second")
        await settle(pilot, 0.2)
        assert plist.group_unread[gid] == 2
        assert "# team (2)" in screen_text(app)
        assert any("New in # team" in n.title for n in app._notifications)
        # Peers arriving later stay above the groups.
        node.make_peer("frank", emit=True)
        await settle(pilot)
        ids = plist.conversation_ids()
        assert ids.index(fp_for("frank")) < ids.index(group_key(gid))

        main.open_conversation(group_key(gid))
        await settle(pilot, 0.2)
        assert main.selected is None and main.selected_group == gid
        assert gid not in plist.group_unread
        lines = main.query_one(MessageLog).plain_lines()
        assert any("~bob │ standup in 5" in line for line in lines)
        assert any("~erin │ on my way" in line for line in lines)
        assert any(line.endswith("starting now ✓✓ 2/3") for line in lines)
        header = str(main.query_one("#conv-header").render())
        assert "# team" in header and "4 members" in header and "F7 members" in header

        # A petname given since wins over the claim (on the next load).
        node.peer_views[fp_for("bob")] = replace(
            node.peer_views[fp_for("bob")], local_name="Robert", name="Robert"
        )
        main.reload_peers()
        await settle(pilot)
        main.open_conversation(group_key(gid))
        await settle(pilot, 0.2)
        assert any(
            "Robert │ standup in 5" in line for line in main.query_one(MessageLog).plain_lines()
        )


async def test_composer_posts_to_the_open_group_and_delivery_counts_update() -> None:
    node, gid = group_node()
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        main = await _open_group(app, pilot, gid)
        composer = main.query_one(Composer)
        composer.focus()
        for word in ("one", "two", "three"):
            await pilot.press(*word, "enter")
        await settle(pilot, 0.2)
        sent = [c for c in node.calls if c[0] == "send_group"]
        assert [c[2] for c in sent] == ["one", "two", "three"]  # in order, none merged
        assert not [c for c in node.calls if c[0] == "send_text"]
        log = main.query_one(MessageLog)
        assert any(line.endswith("three ◷ 0/3") for line in log.plain_lines())
        node.group_deliver(gid, 3)  # every member's summary covers them now
        await settle(pilot, 0.2)  # an event, not polled
        assert any(line.endswith("three ✓✓ 3/3") for line in log.plain_lines())
        # A live post from a member lands in the open conversation, not as unread.
        node.group_receive(gid, "dave", "seen it")
        await settle(pilot)
        assert any("~dave │ seen it" in line for line in log.plain_lines())
        assert gid not in main.query_one(PeerList).group_unread


async def test_group_create_dialog_picks_members_from_contacts() -> None:
    node = populated_node()
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, 0.3)
        main = _main(app)
        main.composer.text = "/group create"
        main.composer.focus()
        await pilot.press("enter")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, CreateGroupScreen)
        await pilot.click("#create")  # no name, no members: said, not crashed
        await settle(pilot)
        assert "Give the group a name" in screen_text(app)
        dialog.query_one("#group-name", Input).value = "ops [b]team[/b]"
        picker = dialog.query_one(SelectionList)
        assert set(picker._values) == {fp_for("bob"), fp_for("carol"), fp_for("dave")}
        await pilot.click("#create")
        await settle(pilot)
        assert "Pick at least one member" in screen_text(app)
        picker.select(fp_for("bob"))
        picker.select(fp_for("dave"))
        await pilot.click("#create")
        await settle(pilot, 0.2)
        assert isinstance(app.screen, MainScreen)
        (call,) = [c for c in node.calls if c[0] == "create_group"]
        assert call[1] == "ops [b]team[/b]" and set(call[2]) == {fp_for("bob"), fp_for("dave")}
        assert main.selected_group is not None
        assert main.group(main.selected_group).name == "ops [b]team[/b]"  # type: ignore[union-attr]
        assert "# ops [b]team[/b]" in screen_text(app)  # literal, never markup
        assert any("created ops [b]team[/b]" in n.message for n in app._notifications)


async def test_member_pane_shows_trust_and_removes_after_confirming() -> None:
    node, gid = group_node()
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_group(app, pilot, gid)
        await pilot.press("f7")
        await settle(pilot)
        pane = app.screen
        assert isinstance(pane, GroupMembersScreen)
        text = screen_text(app)
        assert "alice (you)" in text
        assert "~bob" in text and "✔ verified" in text  # bob was verified
        assert "~dave" in text and "first seen, not verified" in text
        assert "~erin" in text and "not a contact (never met)" in text
        assert "4 in, 2 online" in text  # bob and dave are online, erin unknown
        listing = pane.query_one("#members-list")
        listing.highlighted = [m.name for m in pane.group.members].index("dave")  # type: ignore[attr-defined]
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")  # changed my mind
        await settle(pilot)
        assert not [c for c in node.calls if c[0] == "remove_member"]
        await pilot.press("r")
        await settle(pilot)
        await pilot.click("#confirm")
        await settle(pilot, 0.2)
        assert ("remove_member", gid, fp_for("dave")) in node.calls
        assert isinstance(app.screen, GroupMembersScreen)
        assert [m.name for m in pane.group.members] == ["alice", "bob", "erin"]
        assert pane.query_one("#members-list").option_count == 3  # type: ignore[attr-defined]
        assert "removed" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        assert any("is no longer a member" in n for n in _main(app).message_log.notes())


async def test_not_allowed_is_said_not_crashed() -> None:
    node = populated_node()
    gid = node.make_group("their team", ["bob", "dave"], admin=False).id
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        main = await _open_group(app, pilot, gid)
        main.composer.text = "/group remove dave"
        main.composer.focus()
        await pilot.press("enter")
        await settle(pilot)
        await pilot.click("#confirm")
        await settle(pilot, 0.2)
        assert isinstance(app.screen, MainScreen)
        assert any("only an admin may remove" in n for n in main.message_log.notes())
        main.composer.text = "/group add nobody"
        await pilot.press("enter")
        await settle(pilot)
        assert any("Not done:" in n and "nobody" in n for n in main.message_log.notes())
        main.open_conversation(fp_for("bob"))
        await settle(pilot)
        main.composer.text = "/group leave"
        await pilot.press("enter")
        await settle(pilot)
        assert any("pick a group first" in n for n in main.message_log.notes())


async def test_leaving_asks_first_then_locks_the_composer() -> None:
    node, gid = group_node()
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        main = await _open_group(app, pilot, gid)
        main.composer.text = "/group leave"
        main.composer.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.click("#confirm")
        await settle(pilot, 0.2)
        assert ("leave_group", gid) in node.calls
        assert "no longer a member" in str(main.query_one("#conv-header").render())
        main.composer.text = "still there?"
        main.composer.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert not [c for c in node.calls if c[0] == "send_group"]
        assert main.composer.text == "still there?"  # given back, not lost
        prompt = main.query_one(PeerList).get_option(group_key(gid)).prompt
        assert "you left or were removed" in str(prompt)


async def test_hostile_group_and_author_names_are_inert() -> None:
    node = populated_node()
    evil = "\x1b[31mred\x1b]0;x\x07[b]x[/b]"
    gid = node.make_group(evil, ["bob"]).id
    node.group_history(gid, "bob", "text \x1b[2J[i]y[/i]", created=T0 - 10)
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        main = await _open_group(app, pilot, gid)
        text = screen_text(app)
        assert "\x1b" not in text and "\x07" not in text
        assert "[b]x[/b]" in text and "[i]y[/i]" in text
        await pilot.press("f7")
        await settle(pilot)
        assert "\x1b" not in screen_text(app)
        assert isinstance(main, MainScreen)


def test_the_member_pane_says_who_introduced_a_first_seen_key_inertly() -> None:
    note = IntroductionView("cd" * 32, "bob\x1b[2J\n", "ab" * 16, "team", T0)
    peer = PeerView("ef" * 32, "carol", "efef", False, False, 0, introduced_by=(note,))
    text, _ = trust_text(peer)
    assert text.startswith("first seen, not verified, introduced by bob")
    assert "\x1b" not in text and "\n" not in text
    assert trust_text(replace(peer, verified=True))[0] == "✔ verified"
    assert trust_text(replace(peer, introduced_by=()))[0] == "first seen, not verified"


async def test_read_receipts_show_on_own_posts_and_list_on_demand() -> None:
    """Opening the group marks it read (the chats' rule); members' read marks show as
    "✓✓ 3/3 read 1/3" without polling; /group receipts lists who, petnames first and
    hostile claimed names sanitised."""
    node, gid = group_node()
    team = node.group_views[gid]
    erin = next(m for m in team.members if m.name == "erin")
    hostile = replace(erin, name="erin\x1b[2J\u202e")
    node.group_views[gid] = replace(
        team, members=tuple(hostile if m is erin else m for m in team.members)
    )
    node.peer_views[fp_for("bob")] = replace(node.peer_views[fp_for("bob")], local_name="Robert")
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        main = await _open_group(app, pilot, gid)
        assert ("mark_group_read", gid) in node.calls
        node.calls.clear()
        node.group_receive(gid, "dave", "new one")  # shown in the open group: read too
        await settle(pilot, 0.8)
        assert ("mark_group_read", gid) in node.calls
        log = main.query_one(MessageLog)
        node.group_deliver(gid, 3, read=1)
        await settle(pilot, 0.2)
        assert any(line.endswith("starting now ✓✓ 3/3 read 1/3") for line in log.plain_lines())
        node.group_deliver(gid, 3, read=2)
        await settle(pilot, 0.2)
        assert any(line.endswith("starting now ✓✓ 3/3 read 2/3") for line in log.plain_lines())
        # A receipt for a post older than the history shown does not add it at the end.
        shown = log.plain_lines()
        old = replace(node.group_posts[gid][-2], id=f"{fp_for('alice')}:99", text="ancient")
        node.emit(GroupReceiptsChanged(gid, (replace(old, direction="out", read=3),)))
        await settle(pilot, 0.2)
        assert log.plain_lines() == shown

        composer = main.query_one(Composer)
        composer.focus()
        await pilot.press(*"/group receipts", "enter")
        await settle(pilot, 0.3)
        text = "\n".join(log.plain_lines())
        assert 'your last post "starting now": ✓✓ 3/3 read 2/3' in text
        others = [m for m in node.group_views[gid].members if not m.me]
        labels = ["Robert" if m.name == "bob" else f"~{m.name}" for m in others]
        assert "read: " in text and "holds it, not read: " in text
        assert "\x1b" not in text and "\u202e" not in text
        read_line = next(line for line in log.plain_lines() if line.startswith("· read: "))
        assert labels[0] in read_line and labels[1] in read_line


async def test_ttl_in_a_group_times_new_posts_and_a_disappeared_post_shows_as_gone() -> None:
    """/ttl works in a group as in a chat: the group's own timer (stored by the node)
    goes with every new post, the header shows it, and a post whose text the node
    deleted turns into the chat's "message disappeared"."""
    from p2pmsg.node.api import GroupMessagesExpired

    node, gid = group_node()
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        main = await _open_group(app, pilot, gid)
        composer = main.query_one(Composer)
        composer.focus()
        await pilot.press(*"/ttl 5m", "enter")
        await settle(pilot, 0.2)
        assert ("set_group_ttl", gid, 300.0) in node.calls
        assert "⏱ 5m" in str(main.query_one("#conv-header").render())
        await pilot.press(*"bye soon", "enter")
        await settle(pilot, 0.2)
        (sent,) = [c for c in node.calls if c[0] == "send_group"]
        assert sent[2:] == ("bye soon", 300.0)
        log = main.query_one(MessageLog)
        assert any("bye soon ⏱5m" in line for line in log.plain_lines())
        first = node.group_posts[gid][0]
        node.emit(GroupMessagesExpired(gid, (first.id,)))
        await settle(pilot)
        lines = log.plain_lines()
        assert any("message disappeared" in line for line in lines)
        assert not any("standup in 5" in line for line in lines)
        # /ttl off: new posts get no timer here, whatever the Settings default.
        await pilot.press(*"/ttl off", "enter")
        await settle(pilot, 0.2)
        assert "⏱" not in str(main.query_one("#conv-header").render())
        await pilot.press(*"plain", "enter")
        await settle(pilot, 0.2)
        assert [c for c in node.calls if c[0] == "send_group"][-1][2:] == ("plain", None)


async def test_a_disappearing_post_arriving_in_the_open_group_starts_its_timer() -> None:
    """As a chat's incoming message is marked read when its conversation is open, a live
    disappearing post in the open group is shown: the app asks the node for the posts,
    which starts the timer, and the row counts down from the deadline."""
    node, gid = group_node()
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        main = await _open_group(app, pilot, gid)
        node.group_receive(gid, "bob", "read me quickly", ttl=600)
        await settle(pilot, 0.3)
        post = node.group_posts[gid][-1]
        assert post.deadline is not None  # shown: the timer runs
        log = main.query_one(MessageLog)
        assert any("read me quickly ⏱" in line for line in log.plain_lines())


async def test_group_receipts_do_not_quote_a_disappearing_post() -> None:
    """The note stays in the log after the post's text is gone: it names the post
    without its text."""
    node, gid = group_node()
    posts = node.group_posts[gid]
    own = max(i for i, p in enumerate(posts) if p.direction == "out")
    posts[own] = replace(posts[own], ttl=60)
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        main = await _open_group(app, pilot, gid)
        composer = main.query_one(Composer)
        composer.focus()
        await pilot.press(*"/group receipts", "enter")
        await settle(pilot, 0.3)
        notes = [
            line for line in main.query_one(MessageLog).plain_lines() if "your last post" in line
        ]
        assert notes and "(disappearing)" in notes[-1]
        assert posts[own].text is not None and posts[own].text[:12] not in notes[-1]


async def test_group_rename_from_the_composer() -> None:
    """/group rename NAME renames the open group (the node judges who may); the new
    name is shown literally, and a bare /group rename says how to use it."""
    node, gid = group_node()
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        main = await _open_group(app, pilot, gid)
        composer = main.query_one(Composer)
        composer.focus()
        await pilot.press(*"/group rename", "enter")
        await settle(pilot, 0.2)
        assert "Usage: /group rename NAME" in screen_text(app)
        assert not [c for c in node.calls if c[0] == "rename_group"]
        assert composer.text == "/group rename"  # kept for mending, never dropped
        composer.text = ""
        await pilot.press(*"/group rename crew [b]x[/b]", "enter")
        await settle(pilot, 0.3)
        assert ("rename_group", gid, "crew [b]x[/b]") in node.calls
        assert "# crew [b]x[/b]" in screen_text(app)
        assert any("to crew [b]x[/b]" in line for line in main.query_one(MessageLog).plain_lines())
