"""The soak's oracle must be able to fail: each kind of damage in a dump is reported."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from tests.chaos.verify import Ledger, chat_text, verify

A, B = "a" * 64, "b" * 64


def _message(
    i: str, peer: str, direction: str, text: str, status: str = "delivered"
) -> dict[str, Any]:
    return {"id": i, "peer": peer, "dir": direction, "text": text, "status": status}


def _healthy() -> tuple[Ledger, dict[int, dict[str, Any]]]:
    """Node 0 sent #1..#3 to node 1, all delivered once, in order."""
    ledger = Ledger(fingerprints={0: A, 1: B})
    out, inbox = [], []
    for seq in (1, 2, 3):
        text = chat_text(0, 1, seq, "pad")
        ledger.accepted[f"id{seq}"] = (0, 1, seq)
        ledger.shown.append((1, f"id{seq}", text))
        out.append(_message(f"id{seq}", B, "out", text))
        inbox.append(_message(f"id{seq}", A, "in", text))
    empty: dict[str, list[Any]] = {"transfers": [], "partial": []}
    return ledger, {0: {"messages": out, **empty}, 1: {"messages": inbox, **empty}}


def test_a_healthy_run_passes() -> None:
    ledger, dumps = _healthy()
    v = verify(ledger, dumps, {})
    assert (v.sent, v.delivered, v.lost, v.duplicates, v.out_of_order) == (3, 3, 0, 0, 0)
    assert not v.problems


def test_a_lost_message_is_reported() -> None:
    ledger, dumps = _healthy()
    del dumps[1]["messages"][1]
    v = verify(ledger, dumps, {})
    assert v.lost == 1 and any("lost" in p for p in v.problems)


def test_an_accepted_message_missing_from_the_senders_store_is_lost() -> None:
    ledger, dumps = _healthy()
    ledger.accepted["ghost"] = (0, 1, 4)
    v = verify(ledger, dumps, {})
    assert v.lost == 1 and any("no such message" in p for p in v.problems)


def test_duplicates_by_seq_and_by_display_are_reported() -> None:
    ledger, dumps = _healthy()
    dumps[1]["messages"].append(_message("other", A, "in", chat_text(0, 1, 2, "again")))
    ledger.shown.append((1, "id3", chat_text(0, 1, 3, "pad")))
    v = verify(ledger, dumps, {})
    assert v.duplicates == 2


def test_reordering_and_a_stuck_outbox_are_reported() -> None:
    ledger, dumps = _healthy()
    inbox = dumps[1]["messages"]
    inbox[0], inbox[1] = inbox[1], inbox[0]
    dumps[0]["messages"][2]["status"] = "sent"
    v = verify(ledger, dumps, {})
    assert v.out_of_order >= 1 and v.stuck_outbox == 1


def test_file_damage_partials_and_stray_files_are_reported(tmp_path: Path) -> None:
    ledger, dumps = _healthy()
    good = b"the real content"
    sha = hashlib.sha256(good).hexdigest()
    downloads = tmp_path / "dl"
    downloads.mkdir()
    saved = downloads / "f.bin"
    saved.write_bytes(b"the fake content")
    (downloads / "stray.bin").write_bytes(b"never verified")
    ledger.files["t1"] = (0, 1, sha)
    view = {"id": "t1", "peer": B, "sha256": sha, "path": None}
    dumps[0]["transfers"] = [{**view, "direction": "out", "state": "completed"}]
    dumps[1]["transfers"] = [
        {**view, "peer": A, "direction": "in", "state": "completed", "path": str(saved)},
        {**view, "id": "t2", "direction": "in", "state": "transferring"},
    ]
    dumps[1]["partial"] = ["t2.part"]
    v = verify(ledger, dumps, {1: downloads})
    assert v.file_hash_mismatch == 1
    assert v.partial_files == 1 and v.stuck_transfers == 1 and v.unverified_files == 1
