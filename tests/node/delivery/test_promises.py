"""The delivery promises under any interleaving of sends, sessions, batches, time and crashes.

Hypothesis draws a schedule; the pair runs it on the fake clock, then reconnects
and lets everything settle. Whatever happened on the way: every message is
stored once by the receiver, in the order it was sent; every one ends delivered;
every one was shown, and shown a second time only as a replay after a crash; a
"sent" mark never follows a final status; and no bookkeeping is left in memory.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.node.delivery.pair import CorePair, Side, make_pair

Step = tuple[str, int]

STEPS = st.one_of(
    st.tuples(st.just("send_a"), st.integers(1, 3)),
    st.tuples(st.just("send_b"), st.just(1)),
    st.tuples(
        st.sampled_from(
            [
                "connect",
                "disconnect",
                "carry_a",
                "carry_b",
                "batch_a",
                "batch_b",
                "read_b",
                "crash_b",
            ]
        ),
        st.just(0),
    ),
    st.tuples(st.just("advance"), st.sampled_from([10, 60, 300])),  # milliseconds
)


def run(pair: CorePair, steps: list[Step]) -> tuple[list[str], list[str], bool]:
    """Run the schedule, then settle; returns the texts each side had stored for sending
    (a submit lost with a crash before it was stored is not a message) and whether bob
    crashed."""
    a, b = pair.a, pair.b
    sent_a: list[tuple[str, str]] = []  # (reply, text)
    sent_b: list[tuple[str, str]] = []
    crashed = False
    for kind, n in steps:
        if kind == "send_a":
            texts = [f"a{len(sent_a) + i}" for i in range(n)]
            sent_a += zip(a.send(b, *texts), texts, strict=True)
        elif kind == "send_b":
            text = f"b{len(sent_b)}"
            sent_b += zip(b.send(a, text), [text], strict=True)
        elif kind == "connect" and not pair.connected:
            pair.connect()
        elif kind == "disconnect":
            pair.disconnect()
        elif kind in ("carry_a", "carry_b"):
            pair.carry(a if kind == "carry_a" else b)
        elif kind in ("batch_a", "batch_b"):
            (a if kind == "batch_a" else b).run_batch()
        elif kind == "read_b":
            b.read(a)
        elif kind == "crash_b":
            pair.disconnect()
            b.restart()
            crashed = True
        elif kind == "advance":
            pair.advance(n / 1000)
    if not pair.connected:
        pair.connect()
    pair.settle()
    pair.advance(2.0)  # lazy receipts and "sent" ticks run out
    stored_a = [text for reply, text in sent_a if reply in a.answers]
    stored_b = [text for reply, text in sent_b if reply in b.answers]
    return stored_a, stored_b, crashed


def check_direction(sender: Side, receiver: Side, texts: list[str], crashed: bool) -> None:
    assert [t for t, _ in receiver.history(sender, "in")] == texts  # once each, in order
    assert {s for _, s in sender.history(receiver, "out")} <= {"delivered", "read"}
    ids = {
        m.id.hex()
        for m in sender.store.conversation(receiver.fingerprint, 10_000)
        if m.direction == "out"
    }
    shown = [e for e in receiver.shown if e.message.peer == sender.fingerprint]
    first = [e.message.id for e in shown if not e.replayed]
    assert sorted(first) == sorted(ids)  # each shown, and as new only once
    assert crashed or not [e for e in shown if e.replayed]
    for message_id in ids:
        events = sender.status_events(message_id)
        sents = [i for i, s in enumerate(events) if s == "sent"]
        finals = [i for i, s in enumerate(events) if s in ("delivered", "read")]
        assert finals  # announced, whatever the store wrote when
        assert not sents or max(sents) < min(finals)
    assert sender.core.tracked == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEPS, max_size=30))
def test_every_schedule_keeps_the_promises(steps: list[Step]) -> None:
    with tempfile.TemporaryDirectory() as root:
        pair = make_pair(Path(root), connect=False)
        try:
            sent_a, sent_b, crashed = run(pair, steps)
            check_direction(pair.a, pair.b, sent_a, crashed)
            check_direction(pair.b, pair.a, sent_b, crashed=False)
        finally:
            pair.a.store.close()
            pair.b.store.close()
