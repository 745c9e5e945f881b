"""How the command line says why an alert was raised (`alerts` and `listen` share it)."""

from __future__ import annotations

from collections.abc import Iterable

from p2pmsg.sanitize import printable
from p2pmsg.security_events import Evidence


def observed_text(value: float) -> str:
    """A count reads as a count (7, not 7.0); a measure keeps two decimals at most."""
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0")


def evidence_text(evidence: Iterable[Evidence]) -> str:
    """'failed unlocks in 5 min 7 (alert at 5); ...', or '' when the alert has no evidence
    (one raised before alerts explained themselves)."""
    return "; ".join(
        f"{printable(item.name)} {observed_text(item.observed)} ({printable(item.expected)})"
        for item in evidence
    )
