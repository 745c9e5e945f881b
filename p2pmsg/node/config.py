"""How a node runs: network, limits, protocol policy. Defaults are the product's."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from p2pmsg.node.net.admission import LimitSettings
from p2pmsg.node.net.dialer import BackoffPolicy
from p2pmsg.node.transfers.settings import TransferSettings
from p2pmsg.protocol.limits import ProtocolConfig


@dataclass(frozen=True)
class NodeConfig:
    #: addresses to listen on and to run discovery on (`--interface`); empty: all
    interfaces: tuple[str, ...] = ()
    #: TCP port to listen on (`--port`); 0: any free port
    port: int = 0
    #: run mDNS discovery (off for loopback tests and for host:port-only setups)
    discovery: bool = True
    #: connect to every peer we discover (the TUI, `listen`); `send` only dials its target
    auto_connect: bool = True
    #: session policy; None: built from the profile's settings at start
    protocol: ProtocolConfig | None = None
    limits: LimitSettings = field(default_factory=LimitSettings)
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    #: the peer with the higher fingerprint waits this long before dialling a peer it
    #: just discovered, so the two rarely dial each other at the same moment
    dial_grace: float = 1.0
    connect_timeout: float = 5.0
    #: source address for outbound connections (tests give each node its own loopback
    #: address, so per-address limits can tell an abuser from an honest peer)
    outbound_address: str | None = None
    #: run the live security monitor (rules, and models when they load)
    monitor: bool = True
    monitor_interval: float = 2.0
    #: load the monitor's models (slow to import; off in most tests)
    monitor_models: bool = True
    #: file transfers: downloads folder, auto-accept, limits (p2pmsg.node.transfers)
    files: TransferSettings = field(default_factory=TransferSettings)
    #: the profile's unlock event log (security_events.jsonl): imported on start and
    #: followed while running, so unlock attempts by any process reach the store and the
    #: monitor (p2pmsg.node.services.unlock_events); None: unlock events stay in the file
    profile_events: Path | None = None
