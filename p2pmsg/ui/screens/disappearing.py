"""Disappearing-message timers as the main screen knows them: each conversation's own
setting (as the node stores it) and the profile's default from Settings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class DisappearingTimers:
    own: dict[str, float | None] = field(default_factory=dict)  # each one's own, as stored
    default: float | None = None

    def effective(self, fingerprint: str) -> tuple[float | None, bool]:
        """The timer new messages get, and whether it is the Settings default.

        The conversation's own setting (stored by the node) wins: a timer, or
        `math.inf` for `/ttl off` (never, whatever the default); without one
        (`/ttl default`, or never set) the profile's default applies.
        """
        own = self.own.get(fingerprint)
        if own is not None:
            return (None if math.isinf(own) else own), False
        return self.default, self.default is not None
