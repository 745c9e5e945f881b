"""The conversation log under load: heights measured without rendering, bounded memory."""

from __future__ import annotations

import gc
import random

from p2pmsg.node.api import MessageView
from p2pmsg.ui.app import P2PMsgApp
from p2pmsg.ui.timefmt import Clock
from p2pmsg.ui.widgets.message_log import MAX_ENTRIES, MAX_RENDERED, MessageLog
from tests.ui.conftest import FIXED_CLOCK, settle
from tests.ui.fake_node import T0, FakeNode, fp_for

BOB = fp_for("bob")


def _message(
    n: int,
    text: str | None,
    *,
    direction: str = "in",
    ttl: float | None = None,
    status: str = "delivered",
) -> MessageView:
    return MessageView(
        id=f"{n:032x}",
        peer=BOB,
        direction=direction,  # type: ignore[arg-type]
        text=text,
        created=T0 + n,
        status=status,
        ttl=ttl,
    )  # type: ignore[arg-type]


def _texts(rng: random.Random) -> list[str | None]:
    words = [
        "a",
        "word",
        "longerword",
        "密码学",
        "🔐",
        "x" * 70,
        "[red]markup[/red]",
        "tab\there",
        "\x1b[2J",
        "line\nbreak",
        "  spaced  ",
        "",
    ]
    fixed: list[str | None] = [None, "", "short", "exactly", "\n", "ends with newline\n"]
    return fixed + [
        " ".join(rng.choice(words) for _ in range(rng.randint(1, 30))) for _ in range(120)
    ]


async def test_measured_heights_match_the_rendered_lines() -> None:
    app = P2PMsgApp(node=FakeNode("alice"), clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, 0.2)
        log = app.screen.query_one(MessageLog)
        log.peer_name = "bob"
        rows = log.message_rows
        rng = random.Random(5)  # noqa: S311 - test data, not crypto
        checked = 0
        for n, text in enumerate(_texts(rng)):
            message = _message(
                n,
                text,
                direction=rng.choice(["in", "out"]),
                ttl=rng.choice([None, 300.0]),
                status=rng.choice(["queued", "read", "failed"]),
            )
            for width in (10, 23, 40, 61, 117):
                rendered = rows.rows(app.console, message, width, log.get_component_rich_style)
                assert rows.height(app.console, message, width) == len(rendered), (text, width)
                checked += 1
        assert checked > 600


async def test_a_flood_keeps_every_message_laid_out_and_memory_bounded() -> None:
    node = FakeNode("alice")
    node.make_peer("bob")
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, 0.2)
        assert gc.get_freeze_count() > 0  # long-lived start-up objects left out of GC walks
        log = app.screen.query_one(MessageLog)
        total = 0
        for batch in range(110):  # 3,300 messages in batches, as the event pump sends them
            size = 30
            log.add_messages(
                [_message(total + i, f"flood {total + i} " + "w " * (i % 40)) for i in range(size)]
            )
            total += size
            if batch % 10 == 0:
                await pilot.pause()  # let it paint now and then, as frames would
        await settle(pilot)
        assert MAX_ENTRIES <= log.entry_count <= MAX_ENTRIES + MAX_ENTRIES // 4
        # Every kept entry owns exactly its lines in the layout, in order: nothing
        # appended after a trim goes missing.
        owners = [entry for entry, _ in log._line_map]
        assert sorted(set(owners)) == list(range(log.entry_count))
        assert owners == sorted(owners)
        assert len(owners) == sum(log._entry_height(e) for e in log._entries)
        # The newest message is on screen (the view follows the end).
        assert any(f"flood {total - 1} " in line for line in _screen(app)), "\n".join(_screen(app))
        # Only recently painted entries hold rendered strips.
        holding = sum(1 for e in log._entries if e.strips)
        assert 0 < holding <= MAX_RENDERED


def _screen(app: P2PMsgApp) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def test_the_view_follows_new_messages_unless_scrolled_away() -> None:
    node = FakeNode("alice")
    node.make_peer("bob")
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, 0.2)
        log = app.screen.query_one(MessageLog)
        for n in range(40):  # one at a time: the log outgrows the view on the way
            log.add_messages([_message(n, f"one by one {n}")])
        await settle(pilot)
        assert log.scroll_y == log.max_scroll_y > 0
        assert any("one by one 39" in line for line in _screen(app))
        log.scroll_to(y=5, animate=False, immediate=True)  # the user reads older lines
        log.add_messages([_message(100, "while you were reading")])
        await settle(pilot)
        assert log.scroll_y == 5
        log.scroll_end(animate=False, immediate=True)
        log.add_messages([_message(101, "back at the end")])
        await settle(pilot)
        assert any("back at the end" in line for line in _screen(app))


async def test_a_read_disappearing_message_counts_down_and_its_mark_goes_with_it() -> None:
    now = [T0 + 100.0]
    clock = Clock(now=lambda: now[0], utc=True)
    app = P2PMsgApp(node=FakeNode("alice"), clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, 0.2)
        log = app.screen.query_one(MessageLog)
        read = MessageView(
            id=f"{1:032x}",
            peer=BOB,
            direction="in",
            text="burn after reading",
            created=T0,
            status="read",
            ttl=300.0,
            deadline=T0 + 190.0,
        )
        log.add_messages([read])
        await settle(pilot, 0.1)
        assert any("burn after reading ⏱1m 30s" in line for line in log.plain_lines())
        now[0] += 31.0
        await pilot.pause(1.3)  # one tick of the countdown
        assert any("burn after reading ⏱59s" in line for line in log.plain_lines())
        log.expire((read.id,))
        await settle(pilot, 0.1)
        lines = [line for line in log.plain_lines() if "message disappeared" in line]
        assert lines and "⏱" not in lines[0]


async def test_a_log_at_its_end_stays_there_when_the_terminal_shrinks() -> None:
    from p2pmsg.ui.app import P2PMsgApp
    from p2pmsg.ui.widgets.message_log import MessageLog
    from tests.ui.conftest import FIXED_CLOCK, populated_node, settle
    from tests.ui.fake_node import fp_for

    node = populated_node()
    for i in range(40):
        node.receive(fp_for("bob"), f"line {i}")
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot, 0.3)
        log = app.screen.query_one(MessageLog)
        assert log.is_vertical_scroll_end
        for size in ((80, 24), (80, 18), (140, 45), (60, 18)):
            await pilot.resize_terminal(*size)
            await settle(pilot, 0.2)
            assert log.is_vertical_scroll_end, f"not following the chat at {size}"
