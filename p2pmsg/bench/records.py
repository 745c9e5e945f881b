"""Scenario `records`: in-memory sans-I/O records per second, per suite, beside bare seal+open.

One record = a chat message of N bytes of text taken all the way through two
`PeerConnection`s joined in memory: validate and encode the message, seal it
(rotating keys every 1000 records, the default policy), frame it, then on the
other side cut the frame, decode and check it, open it with the counter,
epoch and suite checks, validate the plaintext into a `Chat` and queue the
`UserMessageReceived` event, which is drained. No sockets, so this is the
protocol's own ceiling on one core.

Measured interleaved with each, in the same run:
- `batch`: the same path, 64 messages per `send_messages` call and one
  `receive_data` for all of them (how the node drains an outbox);
- `bare`: only the suite's `seal` then `open` of the same N-byte plaintext
  with a 14-byte record header as associated data (keyed object reused):
  the crypto alone, so `record / bare` is what everything else costs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from p2pmsg.bench.report import fmt_mb, fmt_rate, fmt_ratio, fmt_size
from p2pmsg.bench.timing import Budget, measure_interleaved
from p2pmsg.crypto.identity import Identity
from p2pmsg.crypto.suites import SUITE_NAMES, get_suite
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import UserMessageReceived
from p2pmsg.protocol.keyschedule import record_ad, record_nonce
from p2pmsg.protocol.limits import ProtocolConfig
from p2pmsg.protocol.messages import Chat, new_chat

TITLE = "in-memory records (seal, frame, parse, open through two PeerConnections)"
SIZES = (100, 4096)
BATCH = 64


class BenchError(RuntimeError):
    """The measured path misbehaved; never report a figure for a broken path."""


def _pair(suite: str) -> tuple[PeerConnection, PeerConnection]:
    config = ProtocolConfig(suites=(suite,))
    a = PeerConnection(
        "initiator", Identity.generate(os.urandom), "bench-a", os.urandom, time.time, config
    )
    b = PeerConnection(
        "responder", Identity.generate(os.urandom), "bench-b", os.urandom, time.time, config
    )
    b.receive_data(a.start())
    a.receive_data(b.data_to_send())
    b.receive_data(a.data_to_send())
    for conn in (a, b):
        while conn.next_event() is not None:
            pass
    if a.state != "established" or b.state != "established":
        raise BenchError(f"in-memory handshake under {suite} did not complete")
    return a, b


def _record_path(suite: str, text: str) -> tuple[Callable[[], object], Callable[[], object]]:
    a, b = _pair(suite)
    send_message, send_messages = a.send_message, a.send_messages
    receive_data, next_event = b.receive_data, b.next_event

    def one() -> object:
        receive_data(send_message(new_chat(os.urandom, time.time(), text)))
        event = next_event()
        if type(event) is not UserMessageReceived:  # rotations are the only other event
            while type(event) is not UserMessageReceived:
                if event is None:
                    raise BenchError(f"record lost under {suite}")
                event = next_event()
        return event

    def batch() -> object:
        now = time.time()
        receive_data(send_messages([new_chat(os.urandom, now, text) for _ in range(BATCH)]))
        got = 0
        while (event := next_event()) is not None:
            got += type(event) is UserMessageReceived
        if got != BATCH:
            raise BenchError(f"batch under {suite} delivered {got} of {BATCH}")
        return got

    check = one()
    if (
        not isinstance(check, UserMessageReceived)
        or not isinstance(check.message, Chat)
        or (check.message.text != text)
    ):
        raise BenchError(f"record round trip under {suite} is wrong")
    return one, batch


def _bare(suite: str, size: int) -> Callable[[], bytes]:
    keyed = get_suite(suite).keyed(os.urandom(32))
    nonce, ad, plaintext = record_nonce(7), record_ad(1, 0, 7, 1), os.urandom(size)

    def round_trip() -> bytes:
        return keyed.open(nonce, keyed.seal(nonce, plaintext, ad), ad)

    if round_trip() != plaintext:
        raise BenchError(f"bare {suite} round trip is wrong")
    return round_trip


def _measure_one(suite: str, size: int, budget: Budget) -> dict[str, Any]:
    one, batch = _record_path(suite, "x" * size)
    measured = measure_interleaved(
        {"record": one, "batch": batch, "bare": _bare(suite, size)}, budget
    )
    record, batched, bare = measured["record"], measured["batch"], measured["bare"]
    batch_rate = batched.ops_per_s * BATCH
    return {
        "suite": suite,
        "size": size,
        "record": record.as_dict(size),
        "batch": {
            "records_per_s": round(batch_rate, 1),
            "mb_per_s": round(batch_rate * size / 1e6, 2),
            "batch_size": BATCH,
        },
        "bare": bare.as_dict(size),
        "record_vs_bare": round(record.ops_per_s / bare.ops_per_s, 3),
    }


def run(quick: bool) -> dict[str, Any]:
    budget = Budget.for_run(quick)
    return {
        "op": "chat of N text bytes: send_message -> receive_data -> UserMessageReceived",
        "batch": BATCH,
        "results": [_measure_one(s, n, budget) for s in SUITE_NAMES for n in SIZES],
    }


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    table: list[tuple[str, ...]] = [
        (
            "suite",
            "size",
            "records/s",
            "MB/s",
            f"batch({result['batch']})/s",
            "bare seal+open/s",
            "record/bare",
        )
    ]
    for e in result["results"]:
        table.append(
            (
                e["suite"],
                fmt_size(e["size"]),
                fmt_rate(e["record"]["ops_per_s"]),
                fmt_mb(e["record"]["mb_per_s"]),
                fmt_rate(e["batch"]["records_per_s"]),
                fmt_rate(e["bare"]["ops_per_s"]),
                fmt_ratio(e["record_vs_bare"]),
            )
        )
    return table


def notes(result: dict[str, Any]) -> list[str]:
    return [
        f"one record = {result['op']} (default rotation every 1000 records included)",
        "bare = the suite's seal+open alone, 14 B header as associated data, same run",
    ]
