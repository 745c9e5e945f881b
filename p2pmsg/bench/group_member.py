"""One group member in its own process: a real profile, a real Node, driven by JSON lines.

    python -m p2pmsg.bench.group_member --data-dir DIR --profile NAME
        [--interface IP] [--port N] [--no-discovery]

Used by `p2pmsg bench groups` (20 of them) and by the harness test of groups
(tests/node/test_lan_groups.py). Why a process per member: one Python process is
one core, and members on a LAN are separate machines; why a profile: a member
that stops and comes back must be the same identity with the same store, as a
user's restarted app is. The password comes from P2PMSG_PASSWORD.

The node runs with the product's defaults (mDNS on, dialling what it discovers)
except: no monitor, and only the given interface. Receipt times are this
process's wall clock (`time.time()`), comparable across processes on one machine.

Out: `ready` {fingerprint, port, pid, starting: the time `Node.start` began}, then
one reply per command. In (stdin):

- {"cmd": "add_peer", "host": H, "port": P} -> `ok`
- {"cmd": "contact", "peer": FP, "name": N} -> `ok` (the user names FP: a contact)
- {"cmd": "sessions"} -> `sessions` {peers: [FP...]} (live sessions now)
- {"cmd": "create", "name": N, "members": [FP...]} -> `group` {group: GroupView}
- {"cmd": "add" | "remove", "group": G, "peer": FP} -> `group`
- {"cmd": "groups"} -> `groups` {groups: [GroupView...]}
- {"cmd": "post", "group": G, "text": T} -> `posted` {id, t}
- {"cmd": "post_many", "group": G, "count": N, "prefix": P} -> `posted_many` {ids, t0, t1}
- {"cmd": "messages", "group": G} -> `messages` {items: [{id, author, text}...]}
- {"cmd": "received"} -> `received` {times: {id: t}} (first time each post was shown)
- {"cmd": "wait_count", "group": G, "n": N, "timeout": S} -> `count` {n, t}
- {"cmd": "chat", "peer": FP, "count": N} -> `chat` {seconds: [...]}: N one-to-one
  messages, one at a time, each timed from `send_text` to its delivery receipt
- {"cmd": "peers"} -> `peers` {peers: [PeerView...]}
- {"cmd": "security"} -> `security` {events: [...]}
- {"cmd": "relay_bad", "group": G, "to": FP} -> `ok` {sent}: a hostile relay, for
  tests: the newest post of another author sent to FP twice, once with its text
  altered (the author's signature kept) and once re-signed with our key (a forgery);
  a receiver must refuse both (`group_bad_signature`)

EOF on stdin stops the node and exits. Errors in a command are `error` lines; the
process keeps serving.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from p2pmsg.bench.netutil import emit, run_child
from p2pmsg.node.api import GroupMessageReceived, NodeEvent
from p2pmsg.node.config import NodeConfig
from p2pmsg.node.node import Node
from p2pmsg.profile import Profile
from p2pmsg.protocol.groups.items import POST_DOMAIN
from p2pmsg.protocol.messages import GroupPostMessage

#: Longest a member lives, whatever happens to its parent.
MAX_LIFETIME = 1800.0
#: Bounds of one command: posts in one `post_many`, seconds of one `wait_count`.
MAX_POSTS = 5_000
MAX_WAIT = 300.0
PASSWORD_ENV = "P2PMSG_PASSWORD"  # noqa: S105 - the name of the variable
CHAT_TEXT = ("p2pmsg bench: one typical chat line, " * 3)[:100]
CHAT_TIMEOUT = 10.0


class _Member:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.times: dict[str, float] = {}
        self.arrived = asyncio.Event()

    def watch(self, event: NodeEvent) -> None:
        if isinstance(event, GroupMessageReceived):
            self.times.setdefault(event.message.id, time.time())
            self.arrived.set()

    async def count(self, group: str, n: int, timeout: float) -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(timeout, MAX_WAIT)
        while True:
            self.arrived.clear()
            have = len(await self.node.group_messages(group, limit=1_000_000))
            left = deadline - loop.time()
            if have >= n or left <= 0:
                return have, time.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), min(left, 0.5))

    async def run(self, command: dict[str, Any]) -> None:
        node, cmd = self.node, command.get("cmd")
        if cmd == "add_peer":
            await node.add_peer(command["host"], int(command["port"]))
            emit("ok")
        elif cmd == "contact":
            await node.rename_peer(command["peer"], command["name"])
            emit("ok")
        elif cmd == "sessions":
            emit("sessions", peers=node.directory.connected())
        elif cmd == "create":
            view = await node.create_group(command["name"], command["members"])
            emit("group", group=dataclasses.asdict(view))
        elif cmd in ("add", "remove"):
            act = node.add_member if cmd == "add" else node.remove_member
            emit("group", group=dataclasses.asdict(await act(command["group"], command["peer"])))
        elif cmd == "groups":
            emit("groups", groups=[dataclasses.asdict(g) for g in await node.groups()])
        elif cmd == "post":
            t = time.time()
            post = await node.send_group(command["group"], command["text"])
            emit("posted", id=post.id, t=t)
        elif cmd == "post_many":
            ids: list[str] = []
            t0 = time.time()
            for i in range(min(int(command["count"]), MAX_POSTS)):
                post = await node.send_group(command["group"], f"{command['prefix']} {i}")
                ids.append(post.id)
            emit("posted_many", ids=ids, t0=t0, t1=time.time())
        elif cmd == "messages":
            views = await node.group_messages(command["group"], limit=1_000_000)
            items = [{"id": m.id, "author": m.author, "text": m.text} for m in views]
            emit("messages", items=items)
        elif cmd == "received":
            emit("received", times=self.times)
        elif cmd == "wait_count":
            n, t = await self.count(command["group"], int(command["n"]), float(command["timeout"]))
            emit("count", n=n, t=t)
        elif cmd == "chat":
            emit("chat", seconds=await self._chat(command["peer"], int(command["count"])))
        elif cmd == "peers":
            emit("peers", peers=[dataclasses.asdict(p) for p in await node.peers()])
        elif cmd == "relay_bad":
            emit("ok", sent=self._relay_bad(command["group"], command["to"]))
        elif cmd == "security":
            emit("security", events=await node.security_events(5_000))
        else:
            emit("error", message=f"unknown command {command!r}")

    async def _chat(self, peer: str, count: int) -> list[float]:
        samples: list[float] = []
        for _ in range(min(count, MAX_POSTS)):
            start = time.perf_counter()
            view = await self.node.send_text(peer, CHAT_TEXT)
            status = await self.node.wait_delivered(view.id, CHAT_TIMEOUT)
            if status not in ("delivered", "read"):
                raise TimeoutError(f"no receipt within {CHAT_TIMEOUT:g} s ({status})")
            samples.append(time.perf_counter() - start)
        return samples

    def _relay_bad(self, group: str, to: str) -> int:
        node = self.node
        me = bytes.fromhex(node.fingerprint)
        replica = node.groups_service.find(group)
        post = next(p for p in reversed(replica.held_posts()) if p.author != me)
        session = node.directory.session(to)
        if session is None:
            raise ValueError("no session with that peer")
        # The body commits to the text's hash: change that, and the signature fails.
        altered = post.body.replace(post.text_hash, bytes(b ^ 1 for b in post.text_hash))
        forged = node.identity.sign(POST_DOMAIN + post.body)
        session.send_messages(
            [
                GroupPostMessage(altered, post.signature, post.content),
                GroupPostMessage(post.body, forged, post.content),
            ]
        )
        return 2


async def _commands(member: _Member) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        try:
            await member.run(json.loads(line))
        except Exception as exc:  # report to the parent, keep serving
            emit("error", message=f"{type(exc).__name__}: {exc}")


async def _main(args: argparse.Namespace) -> None:
    password = os.environ.get(PASSWORD_ENV, "")
    unlocked = await asyncio.to_thread(Profile(Path(args.data_dir), args.profile).unlock, password)
    try:
        config = NodeConfig(
            interfaces=(args.interface,),
            port=args.port,
            discovery=not args.no_discovery,
            auto_connect=True,
            monitor=False,
            monitor_models=False,
            profile_events=unlocked.profile.events_path,
        )
        node = await Node.open(
            unlocked.identity,
            unlocked.display_name,
            unlocked.profile.db_path,
            unlocked.data_key,
            config,
        )
        member = _Member(node)
        node.bus.watch(member.watch)
        starting = time.time()
        await node.start()
        try:
            emit(
                "ready",
                fingerprint=node.fingerprint,
                port=node.listen_port,
                pid=os.getpid(),
                starting=starting,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_commands(member), MAX_LIFETIME)
        finally:
            await node.stop()
    finally:
        unlocked.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="p2pmsg bench: one group member")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-discovery", action="store_true")
    args = parser.parse_args(argv)
    return run_child(lambda: _main(args))


if __name__ == "__main__":
    sys.exit(main())
