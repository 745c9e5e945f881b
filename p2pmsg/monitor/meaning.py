"""What a security event is evidence of, beyond its name: shared by rules and features.

The event names are coarse on purpose (DESIGN.md's schema), so two very
different things can share one: a `handshake_fail` is a key that failed to
authenticate (someone guessing or forging identities) or a handshake that
never finished (a dead link, or a flood holding connections open); an
`unlock_fail` is a wrong password or an attempt refused by the backoff
before any password was tried (a script of ours polling during the wait).
Telling them apart here, once, keeps the brute-force rule and features about
failed *authentication* and leaves timeouts to the flood side.

Reasons come from our node (free text such as "identity signature does not
match the peer's Noise static key", "handshake deadline passed") and from
datasets ("bad_signature", "timeout"), so they are matched by the words that
say what happened. An unknown reason counts as an authentication failure: a
monitor that an attacker blinds by choosing the wording is no monitor.
"""

from __future__ import annotations

from typing import Any

from p2pmsg.security_events import SecurityEvent

#: Words in a handshake failure's reason that say the handshake did not finish
#: (nothing was checked and found wrong): timeouts, resets, a closed link.
NETWORK_WORDS = (
    "timeout",
    "timed out",
    "deadline",
    "reset",
    "eof",
    "closed",
    "unreachable",
    "broken pipe",
    "connection refused",
)
#: unlock_fail reasons that are not a password tried and found wrong.
NOT_A_GUESS = frozenset({"throttled", "corrupt", "locked"})


def _reason(event: SecurityEvent) -> str:
    reason: Any = event.detail.get("reason", "")
    return reason.lower() if isinstance(reason, str) else ""


def handshake_timed_out(event: SecurityEvent) -> bool:
    """A `handshake_fail` that is a handshake that never finished, not a failed check."""
    reason = _reason(event)
    return any(word in reason for word in NETWORK_WORDS)


def failed_authentication(event: SecurityEvent) -> bool:
    """A failed handshake that checked a key and found it wrong (or an unknown reason)."""
    return event.event == "handshake_fail" and not handshake_timed_out(event)


def password_guess(event: SecurityEvent) -> bool:
    """An `unlock_fail` where a password was tried and was wrong.

    Successful unlocks are never guesses, whoever made them (our CLI polled by a
    script unlocks on every call), and neither are attempts the backoff refused
    before trying the password.
    """
    return event.event == "unlock_fail" and _reason(event) not in NOT_A_GUESS


def moved_bytes(event: SecurityEvent) -> int:
    """Bytes that crossed the wire for this event: a resumed transfer's event names the
    whole file, of which only the part after `resumed_from` was sent this time."""
    resumed = event.detail.get("resumed_from", 0)
    if isinstance(resumed, bool) or not isinstance(resumed, int) or resumed <= 0:
        return event.bytes
    return max(0, event.bytes - resumed)


def peer_verified(event: SecurityEvent) -> bool | None:
    """Whether the event's peer is a verified contact, when the event says (file_sent)."""
    value = event.detail.get("verified")
    return value if isinstance(value, bool) else None
