"""p2pmsg: a serverless, end-to-end encrypted messenger for one local network."""

from __future__ import annotations

__version__ = "0.1.0"
PROTOCOL_VERSION = 2  # p2pmsg.protocol.limits.PROTOCOL_VERSION (the wire's)
