"""Fuzz target 3: `PeerConnection.receive_data` for both roles, before and after a
real handshake.

The input is a program for the interpreter in session.py: its first byte picks
the victim (a fresh responder, an initiator after `start()`, or either role
after a completed handshake with a deterministic honest partner); its ops mix
raw bytes, the partner's real records delivered whole, cut, mutated or
replayed, plaintexts the partner seals under its real keys, actions of both
sides (chat, receipts, rotations, suite switches, rekeys, file messages) and
the passage of time. The oracle there checks the documented contract after
every call (no exception, documented event types and names, one final
ConnectionClosed with a documented reason and nothing after it, no swallowed
internal error, no connection alive past the idle timeout).

Run: python -m tests.fuzz.fuzz_connection -max_total_time=1800   (README, "Fuzzing")
"""

from __future__ import annotations

from tests.fuzz.launcher import fuzz_main, instrumented

with instrumented(__name__ == "__main__"):
    from tests.fuzz.session import run_program


def test_one_input(data: bytes) -> None:
    run_program(data)


if __name__ == "__main__":
    fuzz_main("connection", test_one_input)
