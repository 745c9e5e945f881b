"""`Allowance`: what a peer may make this end do per session, as a token bucket.

Some things a peer may legally ask for cost us a logged event or a key
agreement each (a key rotation, a rekey). One at a time they are normal; by the
thousand they are an attack on the event log or the CPU. An allowance starts
full (a burst), refills with time and with the records the peer sends (so bulk
traffic, which legitimately rotates often, earns its rotations), and says no
once spent. The caller decides what "no" means (here: the session ends).
Sans-I/O: the caller hands in the time and the record count.
"""

from __future__ import annotations


class Allowance:
    __slots__ = ("_burst", "_checked_at", "_per_record", "_per_second", "_records", "_tokens")

    def __init__(self, burst: float, per_second: float, records_per_token: float) -> None:
        self._burst = float(burst)
        self._per_second = float(per_second)
        self._per_record = 1.0 / float(records_per_token)
        self._tokens = self._burst
        self._checked_at: float | None = None
        self._records = 0

    def spend(self, count: int, now: float, records_in: int) -> bool:
        """Charge `count`; `records_in` is how many records the peer has sent so far.
        False when the allowance is spent (it stays charged)."""
        earned = 0.0 if self._checked_at is None else (now - self._checked_at) * self._per_second
        earned += (records_in - self._records) * self._per_record
        self._checked_at, self._records = now, records_in
        self._tokens = min(self._burst, self._tokens + max(0.0, earned)) - count
        return self._tokens >= 0
