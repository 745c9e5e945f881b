"""mDNS must never start in the host network namespace during tests.

These tests run in the host namespace on purpose: they prove the refusal.
The subprocess test arms an audit hook that *blocks* socket creation, so
even a broken guard could not put a packet on the real interface; it would
only make the test fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from p2pmsg.errors import DiscoveryError, P2PMsgError
from p2pmsg.node.net import netguard
from p2pmsg.node.net.discovery import Discovery

FP = "cd" * 32

# Runs in a fresh interpreter (which never imported tests/conftest.py, so only
# p2pmsg's own guard stands between it and the network).
CHILD = r"""
import asyncio, json, sys
from p2pmsg.node.net.discovery import Discovery

attempts = []

def hook(event, args):
    if event.startswith("socket."):
        attempts.append(event)
        raise PermissionError("test: sockets are blocked in this child")

async def main():
    # Armed only now: the event loop's own self-pipe socketpair is not ours to count.
    sys.addaudithook(hook)
    d = Discovery(fingerprint_hex=sys.argv[1], name="host-ns", port=4000)
    try:
        await d.start()
    except Exception as exc:
        return {"error": type(exc).__name__, "message": str(exc), "sockets": attempts}
    await d.stop()
    return {"error": None, "sockets": attempts}

print(json.dumps(asyncio.run(main())))
"""


def test_a_child_in_the_host_netns_refuses_to_start_discovery_and_opens_no_socket() -> None:
    env = dict(os.environ)
    assert env[netguard.FORBID_MDNS_NETNS_ENV] == netguard.current_netns()  # set by conftest
    result = subprocess.run(
        [sys.executable, "-c", CHILD, FP],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["error"] == "DiscoveryError"
    assert "forbidden in this network namespace" in outcome["message"]
    assert outcome["sockets"] == []


async def test_discovery_start_refuses_in_this_process_too() -> None:
    discovery = Discovery(fingerprint_hex=FP, name="x", port=4000)
    with pytest.raises(DiscoveryError, match="forbidden"):
        await discovery.start()
    await discovery.stop()  # stopping a discovery that never started is harmless


def test_the_guard_is_a_p2pmsg_error_for_clean_cli_reporting() -> None:
    assert issubclass(DiscoveryError, P2PMsgError)


def test_no_guard_means_no_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(netguard.FORBID_MDNS_NETNS_ENV)
    netguard.assert_mdns_allowed()


def test_another_namespace_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(netguard.FORBID_MDNS_NETNS_ENV, "net:[1]")
    netguard.assert_mdns_allowed()


def test_the_guard_fails_closed_when_the_namespace_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(netguard, "_NETNS_LINK", "/nonexistent/ns/net")
    with pytest.raises(DiscoveryError, match="cannot be read"):
        netguard.assert_mdns_allowed()
