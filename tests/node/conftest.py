"""In-process nodes on loopback: real TCP on 127.0.0.x, real SQLite, real crypto.

Each node listens on 127.0.0.1 and dials from its own loopback address
(127.0.0.N), so per-address limits can tell nodes apart. No discovery runs
here: adverts are injected with `node.router.on_discovery_event` where a test needs
one (the LAN tests in test_lan_*.py run real mDNS in network namespaces).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from p2pmsg.crypto.identity import Identity
from p2pmsg.node.config import NodeConfig
from p2pmsg.node.node import Node
from p2pmsg.protocol.limits import ProtocolConfig

_addresses = itertools.count(2)

FAST_PROTOCOL = ProtocolConfig(handshake_timeout=2.0, keepalive_interval=5.0, idle_timeout=15.0)


def loopback_config(**changes: Any) -> NodeConfig:
    base = NodeConfig(
        interfaces=("127.0.0.1",),
        discovery=False,
        monitor=False,
        monitor_models=False,
        protocol=FAST_PROTOCOL,
        outbound_address=f"127.0.0.{next(_addresses) % 250 + 2}",
    )
    return replace(base, **changes)


class NodeFactory:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes: list[Node] = []
        self.keys: dict[str, tuple[Identity, bytes]] = {}

    async def __call__(
        self,
        name: str,
        *,
        config: NodeConfig | None = None,
        start: bool = True,
        display_name: str | None = None,
        **kwargs: Any,
    ) -> Node:
        """A node for `name`; the same name reuses its identity and database (a restart)."""
        identity, data_key = self.keys.setdefault(
            name, (Identity.generate(os.urandom), os.urandom(32))
        )
        node = await Node.open(
            identity,
            display_name or name,
            self.root / f"{name}.db",
            data_key,
            config or loopback_config(),
            **kwargs,
        )
        self.nodes.append(node)
        if start:
            await node.start()
        return node

    async def close(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):  # already stopped, or broken on purpose
                await node.stop()


@pytest.fixture
async def make_node(tmp_path: Path) -> AsyncIterator[NodeFactory]:
    factory = NodeFactory(tmp_path)
    yield factory
    await factory.close()


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 5.0, interval: float = 0.02
) -> Any:
    """Poll `check` until it returns something truthy; fail with its last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")


async def connect(a: Node, b: Node, timeout: float = 5.0) -> None:
    """`a` adds `b` by host:port and both see an authenticated session."""
    await a.add_peer("127.0.0.1", b.listen_port)

    async def both_connected() -> bool:
        return (
            a.directory.session(b.fingerprint) is not None
            and b.directory.session(a.fingerprint) is not None
        )

    await eventually(both_connected, timeout=timeout)
