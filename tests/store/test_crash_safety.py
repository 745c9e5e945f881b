"""The outbox promise: an enqueue that returned survives the process being killed (-9).

A child process enqueues messages as fast as it can and prints each id only
after the call returned; the parent kills it with SIGKILL at an arbitrary
moment (usually mid-transaction) and reopens the database: every printed id
must be there with its text, in order, and no batch may be half-written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from p2pmsg.store import Store

CHILD = r"""
import os, sys, time
from p2pmsg.store import Store

store = Store.open(sys.argv[1], bytes.fromhex(os.environ["P2PMSG_TEST_DATA_KEY"]))
fp, round_no = sys.argv[2], sys.argv[3]
n = 0
deadline = time.monotonic() + 30  # bounded even if nobody kills us
while time.monotonic() < deadline:
    if n % 2:
        texts = [f"r{round_no}-b{n}-{k}" for k in range(4)]
        records = store.enqueue_outgoing_many(fp, texts, time.time())
    else:
        records = [store.enqueue_outgoing(fp, f"r{round_no}-s{n}-0", time.time())]
    for record in records:
        print(record.id.hex(), record.text, flush=True)
    n += 1
"""


def _run_and_kill(
    db_path: Path, key: bytes, fp: str, round_no: int, kill_after: int
) -> list[tuple[bytes, str]]:
    env = dict(os.environ, P2PMSG_TEST_DATA_KEY=key.hex())
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db_path), fp, str(round_no)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    confirmed: list[tuple[bytes, str]] = []
    try:
        started = time.monotonic()
        while len(confirmed) < kill_after:
            line = child.stdout.readline()
            assert line, f"child ended early: {child.stderr.read() if child.stderr else ''}"
            assert time.monotonic() - started < 60
            hex_id, text = line.split()
            confirmed.append((bytes.fromhex(hex_id), text))
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        remaining, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    # Lines printed before the kill landed are promises too.
    for line in remaining.splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 32:  # a torn last line was never a promise
            confirmed.append((bytes.fromhex(parts[0]), parts[1]))
    return confirmed


def test_every_returned_enqueue_survives_sigkill(db_path: Path, data_key: bytes) -> None:
    with Store.open(db_path, data_key) as store:
        fp = store.record_handshake(os.urandom(32), "bob", 1.0).peer.fingerprint
    promised: list[tuple[bytes, str]] = []
    for round_no, kill_after in enumerate((40, 250, 700)):
        promised += _run_and_kill(db_path, data_key, fp, round_no, kill_after)

    with Store.open(db_path, data_key) as store:
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        outbox = store.outbox(fp)
    stored = {m.id: m.text for m in outbox}
    for message_id, text in promised:
        assert stored.get(message_id) == text, f"lost or damaged after kill -9: {text}"
    # Outbox order is the order in which the enqueues returned.
    position = {m.id: i for i, m in enumerate(outbox)}
    order = [position[mid] for mid, _ in promised]
    assert order == sorted(order)
    # A batch is one transaction: all of it or none of it.
    batches: dict[str, int] = {}
    for stored_text in stored.values():
        assert stored_text is not None
        head, _, _ = stored_text.rpartition("-")
        batches[head] = batches.get(head, 0) + 1
    for head, count in batches.items():
        assert count == (4 if "-b" in head else 1), head
    assert len(promised) >= 40 + 250 + 700
