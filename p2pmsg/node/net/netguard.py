"""Refuse multicast DNS in a network namespace that tests declared off limits.

mDNS is multicast: started in the wrong place it talks to every machine on
the real LAN. The test suite records the host's network namespace in
`P2PMSG_FORBID_MDNS_NETNS` (every child process inherits it), and discovery
calls `assert_mdns_allowed()` before it creates any zeroconf socket. So no
p2pmsg process that a test starts can announce itself on this machine's real
interfaces by accident; it must run inside a namespace the LAN harness made.

Outside the test suite the variable is unset and this check does nothing.
"""

from __future__ import annotations

import os

from p2pmsg.errors import DiscoveryError

FORBID_MDNS_NETNS_ENV = "P2PMSG_FORBID_MDNS_NETNS"
_NETNS_LINK = "/proc/self/ns/net"


def current_netns() -> str | None:
    """Identity of this process's network namespace (`net:[4026531840]`), or None."""
    try:
        return os.readlink(_NETNS_LINK)
    except OSError:
        return None


def assert_mdns_allowed() -> None:
    """Raise `DiscoveryError` when mDNS is forbidden in the current namespace.

    Fails closed: when the guard is set but the namespace cannot be read, we
    cannot prove we are elsewhere, so zeroconf does not start.
    """
    forbidden = os.environ.get(FORBID_MDNS_NETNS_ENV)
    if not forbidden:
        return
    current = current_netns()
    if current is None:
        raise DiscoveryError(
            f"{FORBID_MDNS_NETNS_ENV} is set but this process's network namespace "
            "cannot be read; refusing to start mDNS"
        )
    if current == forbidden:
        raise DiscoveryError(
            f"mDNS is forbidden in this network namespace ({current}): the test suite "
            f"set {FORBID_MDNS_NETNS_ENV} so that nothing announces itself on the host's "
            "real interfaces; run this process inside a LAN-harness namespace"
        )
