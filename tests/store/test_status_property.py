"""Property: whatever order receipts and marks arrive in, a status never moves backwards."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pmsg.store import Store

RANK = {"queued": 0, "sent": 1, "delivered": 2, "read": 3}
OPERATIONS = st.lists(st.sampled_from(["sent", "delivered", "read", "failed"]), max_size=8)


@settings(max_examples=40, deadline=None)
@given(ops=OPERATIONS)
def test_status_never_regresses(ops: list[str]) -> None:
    with (
        tempfile.TemporaryDirectory() as scratch,
        Store.open(Path(scratch) / "p.db", os.urandom(32)) as store,
    ):
        fp = store.record_handshake(os.urandom(32), "p", 0.0).peer.fingerprint
        message = store.enqueue_outgoing(fp, "x", 0.0)
        mark = {
            "sent": store.mark_sent_many,
            "delivered": store.mark_delivered_many,
            "read": store.mark_read_many,
        }
        status = "queued"
        for step, op in enumerate(ops, start=1):
            if op == "failed":
                store.mark_failed_many(fp, [message.id])
            else:
                mark[op](fp, [message.id], float(step))
            record = store.get_message(message.id)
            assert record is not None
            if status == "failed":
                assert record.status == "failed"  # terminal
            elif record.status != "failed":
                assert RANK[record.status] >= RANK[status]
            else:
                assert status in ("queued", "sent")  # only unacknowledged messages can fail
            status = record.status
        assert record_is_consistent(store, message.id)


def record_is_consistent(store: Store, message_id: bytes) -> bool:
    """Timestamps agree with the status: a read message was also sent and delivered."""
    record = store.get_message(message_id)
    assert record is not None
    if record.status == "read" and record.read_at is None:
        return False
    if record.status in ("delivered", "read"):
        return record.delivered_at is not None and record.sent_at is not None
    return True
