"""Store hot-path benchmark: what the chat path costs in the database alone.

Two real store files stand in for two nodes. For every message the sender
enqueues it and marks it sent, the receiver stores it (with de-duplication),
and the sender records the delivery receipt: exactly the writes a delivered
chat message causes, in batches as the node makes them. The figure is
end-to-end messages per second through both databases, encryption included.
`p2pmsg bench` can call `measure_hot_path` and print the result.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from p2pmsg.store.records import IncomingMessage
from p2pmsg.store.store import Store


@dataclass(frozen=True)
class HotPathFigures:
    messages: int
    batch: int
    body_bytes: int
    enqueue_per_s: float
    mark_sent_per_s: float
    insert_incoming_per_s: float
    mark_delivered_per_s: float
    end_to_end_per_s: float  # all four steps for every message

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_hot_path(
    directory: Path, *, messages: int = 50_000, batch: int = 500, body_bytes: int = 100
) -> HotPathFigures:
    """Run the four hot-path writes for `messages` messages in batches of `batch`."""
    if messages < 1 or batch < 1:
        raise ValueError("messages and batch must be positive")
    directory.mkdir(parents=True, exist_ok=True)
    sender = Store.open(directory / "sender.db", os.urandom(32))
    receiver = Store.open(directory / "receiver.db", os.urandom(32))
    spent = {"enqueue": 0.0, "sent": 0.0, "insert": 0.0, "delivered": 0.0}
    try:
        sender_key, receiver_key = os.urandom(32), os.urandom(32)
        to_receiver = sender.record_handshake(receiver_key, "receiver", 0.0).peer.fingerprint
        from_sender = receiver.record_handshake(sender_key, "sender", 0.0).peer.fingerprint
        assert to_receiver == hashlib.sha256(receiver_key).hexdigest()
        body = "x" * body_bytes
        done = 0
        while done < messages:
            n = min(batch, messages - done)
            now = time.time()
            t0 = time.perf_counter()
            records = sender.enqueue_outgoing_many(to_receiver, [body] * n, now)
            t1 = time.perf_counter()
            ids = [r.id for r in records]
            sender.mark_sent_many(to_receiver, ids, now)
            t2 = time.perf_counter()
            stored = receiver.insert_incoming_many(
                from_sender, [IncomingMessage(r.id, body, r.created) for r in records], now
            )
            t3 = time.perf_counter()
            acknowledged = sender.mark_delivered_many(to_receiver, ids, now)
            t4 = time.perf_counter()
            if len(stored) != n or len(acknowledged) != n:
                raise RuntimeError("the benchmark lost messages: the store is broken")
            spent["enqueue"] += t1 - t0
            spent["sent"] += t2 - t1
            spent["insert"] += t3 - t2
            spent["delivered"] += t4 - t3
            done += n
    finally:
        sender.close()
        receiver.close()
    total = sum(spent.values())
    return HotPathFigures(
        messages=messages,
        batch=batch,
        body_bytes=body_bytes,
        enqueue_per_s=messages / spent["enqueue"],
        mark_sent_per_s=messages / spent["sent"],
        insert_incoming_per_s=messages / spent["insert"],
        mark_delivered_per_s=messages / spent["delivered"],
        end_to_end_per_s=messages / total,
    )


if __name__ == "__main__":  # python -m p2pmsg.store.bench [DIR]
    import json
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(scratch)
        for size in (500, 64, 1):
            count = 50_000 if size > 1 else 5_000
            print(
                json.dumps(
                    measure_hot_path(target / f"b{size}", messages=count, batch=size).as_dict()
                )
            )
