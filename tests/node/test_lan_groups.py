"""Groups through the whole stack on a virtual LAN: three member processes (A, B, C),
each a real profile and Node in its own harness namespace, finding each other by
real mDNS (p2pmsg/bench/group_member.py drives them over stdin).

The issue's scenario: C is offline while A posts; A goes offline; C comes back while
B is online and gets A's posts from B, verified, each once. A post altered or forged
by a relaying member is refused (security event). Restarts keep the group. A removed
member's later posts are refused by every member: C is cut off (its cable unplugged)
while A removes it, posts not knowing, and when the cable is back A and B refuse the
post that C's node fans out, and C learns of its removal. Every wait has a deadline;
the harness deletes the namespaces (and kills what runs in them) whether the test
passes or fails.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from p2pmsg.bench.netns import Host
from p2pmsg.bench.netutil import ChildProcess
from tests.harness.cli import ENV, make_profile
from tests.harness.fixtures import MakeLan

pytestmark = pytest.mark.timeout(240)

WAIT = 30.0


class Member:
    """One member process in a host; restartable with the same profile."""

    def __init__(self, host: Host, data_dir: Path, name: str) -> None:
        self.host, self.data_dir, self.name = host, data_dir, name
        self.proc: ChildProcess | None = None
        self.fingerprint = ""

    def start(self) -> Member:
        argv = ["ip", "netns", "exec", self.host.name, sys.executable, "-m"]
        argv += ["p2pmsg.bench.group_member", "--data-dir", str(self.data_dir)]
        argv += ["--profile", self.name, "--interface", self.host.ip]
        self.proc = ChildProcess(argv, ready_timeout=WAIT, env=ENV).__enter__()
        self.fingerprint = self.proc.ready["fingerprint"]
        return self

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.stop(grace=10.0)
        self.proc = None

    def ask(self, reply: str, cmd: str, **fields: Any) -> dict[str, Any]:
        assert self.proc is not None, f"{self.name} is not running"
        self.proc.send({"cmd": cmd, **fields})
        return self.proc.wait_for(reply, WAIT + 5)

    def texts(self) -> list[str]:
        return [m["text"] for m in self.ask("messages", "messages", group="team")["items"]]

    def reasons(self) -> list[str]:
        events = self.ask("security", "security")["events"]
        return [str(e["detail"].get("reason", "")) for e in events]

    def refusals(self, peer: str) -> set[tuple[str, str]]:
        """(event, reason) of the security events naming `peer`."""
        events = self.ask("security", "security")["events"]
        return {
            (e["event"], str(e["detail"].get("reason", ""))) for e in events if e["peer"] == peer
        }

    def group(self) -> dict[str, Any]:
        groups = self.ask("groups", "groups")["groups"]
        assert len(groups) == 1, groups
        return groups[0]  # type: ignore[no-any-return]

    def members(self) -> set[str]:
        return {m["fingerprint"] for m in self.group()["members"]}


def until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


def test_three_members_catch_up_refuse_bad_relays_and_keep_the_group(
    make_lan: MakeLan, tmp_path: Path
) -> None:
    lan = make_lan(3)
    for name in ("a", "b", "c"):
        make_profile(tmp_path, name)
    a, b, c = (Member(h, tmp_path, n) for h, n in zip(lan.hosts, ("a", "b", "c"), strict=True))
    members = [a.start(), b.start(), c.start()]
    try:
        until(
            lambda: {b.fingerprint, c.fingerprint} <= set(a.ask("sessions", "sessions")["peers"]),
            "a to meet b and c by mDNS",
        )
        a.ask("group", "create", name="team", members=[b.fingerprint, c.fingerprint])
        for m in (b, c):
            until(lambda m=m: m.ask("groups", "groups")["groups"], f"{m.name} to join")  # type: ignore[misc]

        # C is away while A posts; B has the posts; then A goes away too.
        c.stop()
        for i in range(3):
            a.ask("posted", "post", group="team", text=f"while you were away {i}")
        until(lambda: len(b.texts()) == 3, "b to have a's posts")
        a.stop()

        c.start()
        until(lambda: b.fingerprint in c.ask("sessions", "sessions")["peers"], "c to meet b")
        until(lambda: len(c.texts()) >= 3, "c to catch up from b")
        time.sleep(1.0)  # more summaries cross: nothing may be shown twice
        expected = [f"while you were away {i}" for i in range(3)]
        assert c.texts() == expected
        shown = c.ask("received", "received")["times"]
        assert len(shown) == 3 and all(k.startswith(a.fingerprint) for k in shown)

        # A hostile relay: b sends c one of a's posts altered, and one re-signed.
        assert b.ask("ok", "relay_bad", group="team", to=c.fingerprint)["sent"] == 2
        until(lambda: c.reasons().count("group_bad_signature") >= 2, "c to refuse both")
        assert c.texts() == expected

        # Restarts keep the group: b comes back with the same members and posts.
        before = (b.ask("groups", "groups")["groups"], b.texts())
        b.stop()
        b.start()
        assert (b.ask("groups", "groups")["groups"], b.texts()) == before
        assert len(before[0][0]["members"]) == 3 and before[1] == expected
    finally:
        for m in members:
            if m.proc is not None:
                m.stop()


#: How a removed member's post is refused (docs/PROTOCOL.md, "Order and state" and
#: "Receiving an item"): relayed by its author, who is no longer a member, it is
#: `group_not_member`; relayed by a member, `group_removed`.
REMOVED = {"group_not_member", "group_removed"}
REFUSED = {("frame_rejected", reason) for reason in REMOVED}


def test_a_removed_members_later_posts_are_refused_by_every_member(
    make_lan: MakeLan, tmp_path: Path
) -> None:
    lan = make_lan(3)
    for name in ("a", "b", "c"):
        make_profile(tmp_path, name)
    a, b, c = (Member(h, tmp_path, n) for h, n in zip(lan.hosts, ("a", "b", "c"), strict=True))
    members = [a.start(), b.start(), c.start()]
    everyone = {a.fingerprint, b.fingerprint, c.fingerprint}
    try:
        for m in members:
            others = everyone - {m.fingerprint}
            until(
                lambda m=m, o=others: o <= set(m.ask("sessions", "sessions")["peers"]),  # type: ignore[misc]
                f"{m.name} to meet the others by mDNS",
            )
        a.ask("group", "create", name="team", members=[b.fingerprint, c.fingerprint])
        for m in (b, c):
            until(lambda m=m: m.ask("groups", "groups")["groups"], f"{m.name} to join")  # type: ignore[misc]
        c.ask("posted", "post", group="team", text="before")
        for m in (a, b):
            until(lambda m=m: m.texts() == ["before"], f"{m.name} to have c's post")  # type: ignore[misc]

        # C's cable is unplugged: its sessions look alive to everyone (no timeout yet),
        # but nothing crosses. A removes C meanwhile; B, online, gets the remove.
        lan.hosts[2].link_down()
        assert a.ask("group", "remove", group="team", peer=c.fingerprint)["group"]["member"]
        until(lambda: b.members() == {a.fingerprint, b.fingerprint}, "b to get a's remove")
        assert a.members() == {a.fingerprint, b.fingerprint}

        # C does not know, and posts: its node fans the post out on the sessions it has.
        assert c.group()["member"] and c.members() == everyone
        c.ask("posted", "post", group="team", text="after my removal")
        assert "after my removal" in c.texts()
        lan.hosts[2].link_up()

        # The cable is back: what was in flight crosses. Both members refuse the post (a
        # security event naming c), and c learns of its removal from a's fan-out.
        for m in (a, b):
            until(
                lambda m=m: REFUSED & m.refusals(c.fingerprint),  # type: ignore[misc]
                f"{m.name} to refuse c's later post",
            )
        until(lambda: not c.group()["member"], "c to learn of its removal")
        assert c.members() == {a.fingerprint, b.fingerprint}
        assert "after my removal" not in c.texts()  # it no longer counts, here either
        for m in (a, b):
            assert m.texts() == ["before"]

        # Restarts keep it: b and c come back with the same view of the group.
        for m in (b, c):
            before = (m.group(), m.texts())
            m.stop()
            m.start()
            assert (m.group(), m.texts()) == before
    finally:
        for m in members:
            if m.proc is not None:
                m.stop()


def test_a_member_removed_while_away_learns_it_from_another_member(
    make_lan: MakeLan, tmp_path: Path
) -> None:
    lan = make_lan(3)
    for name in ("a", "b", "c"):
        make_profile(tmp_path, name)
    a, b, c = (Member(h, tmp_path, n) for h, n in zip(lan.hosts, ("a", "b", "c"), strict=True))
    members = [a.start(), b.start(), c.start()]
    try:
        until(
            lambda: {b.fingerprint, c.fingerprint} <= set(a.ask("sessions", "sessions")["peers"]),
            "a to meet b and c by mDNS",
        )
        a.ask("group", "create", name="team", members=[b.fingerprint, c.fingerprint])
        for m in (b, c):
            until(lambda m=m: m.ask("groups", "groups")["groups"], f"{m.name} to join")  # type: ignore[misc]

        # C is away while A removes it; B, online, gets the remove; then A goes away.
        c.stop()
        a.ask("group", "remove", group="team", peer=c.fingerprint)
        until(lambda: b.members() == {a.fingerprint, b.fingerprint}, "b to get a's remove")
        a.stop()

        # C comes back not knowing (its cable still out, so it posts before it meets
        # anyone), then meets B: B's answer tells it it was removed, and nothing of C's
        # reaches B's conversation.
        lan.hosts[2].link_down()
        c.start()
        assert c.group()["member"]
        c.ask("posted", "post", group="team", text="after my removal")
        lan.hosts[2].link_up()
        until(lambda: not c.group()["member"], "c to learn of its removal from b")
        assert c.members() == {a.fingerprint, b.fingerprint}
        assert c.texts() == [] and b.texts() == []
        assert not REMOVED & set(c.reasons())  # b's answer is nothing c refuses
    finally:
        for m in members:
            if m.proc is not None:
                m.stop()
