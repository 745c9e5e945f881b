"""The `abuse` benchmark: the attacker's bounds.

Figures are reported, never asserted: whether the honest peer met its target
under attack is the benchmark's verdict, not a test's. What is asserted: the
report's shape, that the honest peer got samples under every condition, and
that each attack really happened and stopped by itself.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from p2pmsg.bench.attacker import MODES, run_attack, source_address
from p2pmsg.bench.peer import bench_config
from p2pmsg.crypto.identity import Identity
from p2pmsg.node.node import Node


@pytest.mark.parametrize("mode", MODES)
async def test_each_attack_stops_by_itself(mode: str) -> None:
    """No stop from a parent: the deadline alone ends the attack and closes its sockets."""
    with tempfile.TemporaryDirectory(prefix="p2pmsg-test-abuse-") as tmp:
        config = bench_config(models=False)
        node = await Node.open(
            Identity.generate(os.urandom), "victim", Path(tmp, "v.db"), os.urandom(32), config
        )
        await node.start()
        try:
            start = time.monotonic()
            stats = await run_attack(mode, node.listen_port, source_address(), 0.5, 50, stdin=False)
            assert time.monotonic() - start < 5.0
        finally:
            await node.stop()
    assert stats.errors == [] and stats.attempts >= 1 and stats.accepted >= 1
    assert stats.attempts <= 50 and stats.messages_sent <= 50
    assert stats.seconds >= 0.5
