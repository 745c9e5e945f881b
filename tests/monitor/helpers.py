"""Small builders for hand-made event sequences."""

from __future__ import annotations

from typing import Any

from p2pmsg.security_events import SecurityEvent

PEER = "ab" * 32
OTHER = "cd" * 32
T0 = 1_763_337_600.0  # a window boundary (divisible by 60)


def ev(
    ts: float,
    event: str,
    *,
    peer: str | None = None,
    addr: str | None = None,
    size: int = 0,
    detail: dict[str, Any] | None = None,
    label: str | None = None,
) -> SecurityEvent:
    return SecurityEvent(T0 + ts, event, peer, addr, size, detail or {}, label)
