"""p2pmsg: a serverless, end-to-end encrypted messenger for one local network."""

from __future__ import annotations

__version__ = "0.1.0"
PROTOCOL_VERSION = 1
