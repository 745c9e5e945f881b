"""Scenario `groups`: a group of 20 members, each a real Node in its own process.

Members are p2pmsg/bench/group_member.py processes, each with its own profile. Inside
the LAN harness (root and `ip`: network namespaces on a private bridge, real mDNS;
p2pmsg/bench/netns.py) each member is a host of its own; without it they all run on
127.0.0.1 with mDNS off and every member given every other's port, and the result
says `"network": "loopback"` and why.

- fan-out: member 0 (the creator, in session with every member) posts 200 messages
  (`--quick`: 20), one every 50 ms; for each, the time from `send_group` until the
  last of the 19 others shows it (their wall clocks: one machine). p50/p99, target
  p99 < 1 s.
- catch-up: one member stops; member 0 posts 1,000 more (`--quick`: 100); the member
  starts again and we time from the moment its `Node.start` begins (profile unlocked,
  store opened) until it shows all of them (target < 5 s), and from its launch.
- one-to-one, same run, same network: member 1 sends 200 chat messages to member 0,
  one at a time, each timed to its delivery receipt (a round trip; the group figure
  is one way to the slowest of 19).

Every wait is bounded (count and deadline); a member that fails ends the run with
the error. On any exit the members are stopped and the namespaces deleted.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from p2pmsg.bench import netns
from p2pmsg.bench.netutil import BenchError, ChildProcess, percentile
from p2pmsg.node.net.netguard import FORBID_MDNS_NETNS_ENV, current_netns
from p2pmsg.profile import Profile

TITLE = "group of N members, each its own process: fan-out and catch-up"
TARGET_P99_S = 1.0
TARGET_CATCH_UP_S = 5.0
#: (members, fan-out messages, catch-up messages, one-to-one messages)
FULL = (20, 200, 1000, 200)
QUICK = (5, 20, 100, 50)
PACE_S = 0.05
PASSWORD = "Bench-Group-Passw0rd!"  # noqa: S105 - throwaway profiles in a temp dir
KDF_ITERATIONS = 20_000
READY_TIMEOUT = 120.0
MESH_TIMEOUT = 120.0
JOIN_TIMEOUT = 60.0
DELIVERY_TIMEOUT = 120.0
COMMAND_TIMEOUT = 180.0
GROUP = "bench"


class _Member:
    def __init__(self, index: int, data_dir: Path, host: netns.Host | None) -> None:
        self.index, self.data_dir, self.host = index, data_dir, host
        self.name = f"m{index:02d}"
        self.port = 0
        self.proc: ChildProcess | None = None
        self.fingerprint = ""
        self.launched = 0.0

    def start(self) -> None:
        argv = [sys.executable, "-m", "p2pmsg.bench.group_member"]
        argv += ["--data-dir", str(self.data_dir), "--profile", self.name]
        if self.host is None:
            argv += ["--no-discovery", "--port", str(self.port)]
        else:
            argv = ["ip", "netns", "exec", self.host.name, *argv, "--interface", self.host.ip]
        env = {"P2PMSG_PASSWORD": PASSWORD, FORBID_MDNS_NETNS_ENV: current_netns() or "unknown"}
        self.launched = time.time()
        self.proc = ChildProcess(argv, ready_timeout=READY_TIMEOUT, env=env).__enter__()
        self.fingerprint = self.proc.ready["fingerprint"]
        self.port = int(self.proc.ready["port"])

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(grace=10.0)
            self.proc = None

    def ask(self, reply: str, cmd: str, **fields: Any) -> dict[str, Any]:
        if self.proc is None:
            raise BenchError(f"member {self.name} is not running")
        self.proc.send({"cmd": cmd, **fields})
        return self.proc.wait_for(reply, COMMAND_TIMEOUT)


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


@contextlib.contextmanager
def _members(n: int, root: Path) -> Iterator[tuple[list[_Member], str, str | None]]:
    reason = netns.netns_unavailable_reason()
    lan = netns.Lan() if reason is None else None
    members: list[_Member] = []
    try:
        for i in range(n):
            host = lan.add_host() if lan is not None else None
            members.append(_Member(i, root, host))
            Profile(root, members[-1].name, kdf_iterations=KDF_ITERATIONS).create(
                members[-1].name, PASSWORD
            ).close()
        for m in members:
            m.start()
        yield members, ("netns" if lan is not None else "loopback"), reason
    finally:
        for m in members:
            with contextlib.suppress(Exception):
                m.stop()
        if lan is not None:
            lan.teardown()


def _connect(members: list[_Member], network: str) -> None:
    if network == "loopback":  # no mDNS: every member is told every other's address
        for m in members:
            for other in members:
                if other is not m:
                    m.ask("ok", "add_peer", host="127.0.0.1", port=other.port)
    creator = members[0]
    others = {m.fingerprint for m in members[1:]}
    _until(
        lambda: others <= set(creator.ask("sessions", "sessions")["peers"]),
        MESH_TIMEOUT,
        "the creator to be in session with every member",
    )


def _fan_out(members: list[_Member], count: int) -> dict[str, Any]:
    author, others = members[0], members[1:]
    sent: dict[str, float] = {}
    for i in range(count):
        reply = author.ask("posted", "post", group=GROUP, text=f"fan-out {i}")
        sent[reply["id"]] = reply["t"]
        time.sleep(PACE_S)
    for m in others:
        got = m.ask("count", "wait_count", group=GROUP, n=count, timeout=DELIVERY_TIMEOUT)["n"]
        if got < count:
            raise BenchError(f"{m.name} shows {got} of {count} posts")
    last: dict[str, float] = dict.fromkeys(sent, 0.0)
    for m in others:
        times = m.ask("received", "received")["times"]
        for key in sent:
            last[key] = max(last[key], times[key])
    samples = [last[k] - sent[k] for k in sent]
    return {
        "count": count,
        "p50_ms": round(percentile(samples, 50) * 1e3, 1),
        "p99_ms": round(percentile(samples, 99) * 1e3, 1),
        "max_ms": round(max(samples) * 1e3, 1),
    }


def _catch_up(members: list[_Member], before: int, count: int) -> dict[str, Any]:
    author, away = members[0], members[-1]
    away.stop()
    posted = author.ask("posted_many", "post_many", group=GROUP, count=count, prefix="missed")
    if len(posted["ids"]) != count:
        raise BenchError("the author could not post every message")
    away.start()
    assert away.proc is not None
    starting = float(away.proc.ready["starting"])
    total = before + count
    reached = away.ask("count", "wait_count", group=GROUP, n=total, timeout=DELIVERY_TIMEOUT)
    if reached["n"] < total:
        raise BenchError(f"the returning member shows {reached['n']} of {total} posts")
    return {
        "missed": count,
        "seconds": round(reached["t"] - starting, 3),
        "from_launch_s": round(reached["t"] - away.launched, 3),
        "author_post_s": round(posted["t1"] - posted["t0"], 3),
    }


def _one_to_one(members: list[_Member], count: int) -> dict[str, Any]:
    samples = members[1].ask("chat", "chat", peer=members[0].fingerprint, count=count)["seconds"]
    return {
        "count": len(samples),
        "p50_ms": round(percentile(samples, 50) * 1e3, 2),
        "p99_ms": round(percentile(samples, 99) * 1e3, 2),
    }


def run(quick: bool) -> dict[str, Any]:
    n, fan_count, missed, chats = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="p2pmsg-bench-groups-") as tmp:
        started = time.monotonic()
        with _members(n, Path(tmp)) as (members, network, reason):
            _connect(members, network)
            members[0].ask(
                "group", "create", name=GROUP, members=[m.fingerprint for m in members[1:]]
            )
            for m in members[1:]:
                _until(
                    lambda m=m: bool(m.ask("groups", "groups")["groups"]),  # type: ignore[misc]
                    JOIN_TIMEOUT,
                    f"{m.name} to join",
                )
            one_to_one = _one_to_one(members, chats)
            fan_out = _fan_out(members, fan_count)
            catch_up = _catch_up(members, fan_count, missed)
        result: dict[str, Any] = {
            "members": n,
            "network": network,
            "fan_out": fan_out,
            "catch_up": catch_up,
            "one_to_one": one_to_one,
            "p99_target_met": fan_out["p99_ms"] < TARGET_P99_S * 1e3,
            "catch_up_target_met": catch_up["seconds"] < TARGET_CATCH_UP_S,
            "seconds": round(time.monotonic() - started, 1),
            "cores": os.cpu_count(),
        }
        if reason is not None:
            result["loopback_reason"] = reason
        return result


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    fan, catch, chat = result["fan_out"], result["catch_up"], result["one_to_one"]
    met = {True: "met", False: "MISSED"}
    return [
        ("measure", "p50", "p99", "target"),
        (
            f"post -> all {result['members'] - 1} others show it ({fan['count']} posts)",
            f"{fan['p50_ms']:.1f} ms",
            f"{fan['p99_ms']:.1f} ms",
            f"p99 < {TARGET_P99_S:g} s: {met[result['p99_target_met']]}",
        ),
        (
            f"one-to-one message -> receipt, same run ({chat['count']})",
            f"{chat['p50_ms']:.2f} ms",
            f"{chat['p99_ms']:.2f} ms",
            "",
        ),
        (
            f"catch-up of {catch['missed']} missed posts (from node start)",
            f"{catch['seconds']:.2f} s",
            "",
            f"< {TARGET_CATCH_UP_S:g} s: {met[result['catch_up_target_met']]}",
        ),
    ]


def notes(result: dict[str, Any]) -> list[str]:
    lines = [
        f"network: {result['network']}"
        + (f" ({result['loopback_reason']})" if "loopback_reason" in result else ""),
        f"catch-up from the member's launch (Python start, unlock): "
        f"{result['catch_up']['from_launch_s']:.2f} s; the author posted the "
        f"{result['catch_up']['missed']} in {result['catch_up']['author_post_s']:.2f} s",
        "fan-out is one way to the slowest of the other members (wall clocks of one "
        "machine); one-to-one is a round trip to the delivery receipt",
    ]
    return lines
