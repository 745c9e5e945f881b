"""Groups through the whole stack on a virtual LAN: three member processes (A, B, C),
each a real profile and Node in its own harness namespace, finding each other by
real mDNS (p2pmsg/bench/group_member.py drives them over stdin).

The issue's scenario: C is offline while A posts; A goes offline; C comes back while
B is online and gets A's posts from B, verified, each once. A post altered or forged
by a relaying member is refused (security event). Restarts keep the group. (Removal
is tested through the real stack on loopback, tests/node/test_node_groups.py.) Every
wait has a deadline; the harness deletes the namespaces (and kills what runs in them)
whether the test passes or fails.
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
