"""The end-of-run checks: nothing lost, nothing twice, in order, files verified, nothing left over.

Inputs are the orchestrator's ledger (what each node accepted for sending,
what each node showed as received, which files were offered with which
SHA-256) and one final dump per node of its own store, taken after the
LAN has settled. The store is the ground truth for "accepted": a node may
be killed between committing a message and telling the orchestrator, and
such a message must still arrive. Every check adds a line to `problems`;
an empty list is the pass.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p2pmsg.node.transfers.receiver import PARTIAL_DIR

TEXT = re.compile(r"^chaos (\d+)>(\d+) #(\d+)\b")
FINAL = frozenset({"completed", "failed", "declined", "expired", "cancelled"})


def chat_text(sender: int, receiver: int, seq: int, pad: str) -> str:
    return f"chaos {sender}>{receiver} #{seq} {pad}"


def parse_text(text: str | None) -> tuple[int, int, int] | None:
    match = TEXT.match(text or "")
    return None if match is None else (int(match[1]), int(match[2]), int(match[3]))


@dataclass
class Ledger:
    """What the orchestrator saw while the run went on."""

    fingerprints: dict[int, str] = field(default_factory=dict)  # node index -> fingerprint
    accepted: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # id -> s, r, seq
    shown: list[tuple[int, str, str]] = field(default_factory=list)  # (node, id, text)
    #: shown again after that node restarted: a resend of an unread message stored
    #: before the crash is published once more with `replayed` (the delivery promise
    #: "nothing stored goes unshown"), not a duplicate
    replays: list[tuple[int, str, str]] = field(default_factory=list)
    files: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # id -> s, r, sha256
    pool: dict[str, str] = field(default_factory=dict)  # source path -> its sha256


@dataclass
class Verdict:
    sent: int = 0  # in the senders' stores (what the nodes accepted)
    confirmed: int = 0  # accepted and reported to the orchestrator before any crash
    delivered: int = 0
    duplicates: int = 0
    replayed: int = 0  # shown again after the receiver restarted (by design, see Ledger)
    lost: int = 0
    out_of_order: int = 0
    stuck_outbox: int = 0
    files_offered: int = 0
    files_by_state: Counter[str] = field(default_factory=Counter)
    file_hash_mismatch: int = 0
    partial_files: int = 0
    unverified_files: int = 0
    stuck_transfers: int = 0
    problems: list[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        if len(self.problems) < 200:
            self.problems.append(text)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify(
    ledger: Ledger,
    dumps: dict[int, dict[str, Any]],
    downloads: dict[int, Path],
    verified_early: dict[str, bool] | None = None,
) -> Verdict:
    """`verified_early`: transfers hashed (and removed) as they completed, to keep a
    small disk from filling up with good files."""
    v = Verdict()
    index_of = {fp: i for i, fp in ledger.fingerprints.items()}
    _check_messages(v, ledger, dumps, index_of)
    _check_files(v, ledger, dumps, downloads, index_of, verified_early or {})
    return v


def _check_messages(
    v: Verdict, ledger: Ledger, dumps: dict[int, dict[str, Any]], index_of: dict[str, int]
) -> None:
    outgoing: dict[str, tuple[int, int, dict[str, Any]]] = {}
    incoming: dict[str, list[tuple[int, int]]] = defaultdict(list)  # id -> [(receiver, sender)]
    for node, dump in dumps.items():
        arrivals: dict[int, list[int]] = defaultdict(list)  # sender -> seqs in store order
        seen_seq: Counter[tuple[int, int]] = Counter()
        for m in dump["messages"]:
            peer = index_of.get(m["peer"], -1)
            if m["dir"] == "out":
                outgoing[m["id"]] = (node, peer, m)
                continue
            incoming[m["id"]].append((node, peer))
            parsed = parse_text(m["text"])
            if parsed is None or parsed[0] != peer or parsed[1] != node:
                v.fail(
                    f"node{node} holds a message from node{peer} it never sent: {m['text']!r:.60}"
                )
                continue
            arrivals[peer].append(parsed[2])
            seen_seq[(peer, parsed[2])] += 1
        for (peer, seq), count in seen_seq.items():
            if count > 1:
                v.duplicates += count - 1
                v.fail(f"node{node} stored #{seq} from node{peer} {count} times")
        for peer, seqs in arrivals.items():
            bad = sum(1 for a, b in itertools.pairwise(seqs) if b <= a)
            if bad:
                v.out_of_order += bad
                v.fail(
                    f"node{node}: messages from node{peer} stored out of order ({bad} inversions)"
                )
    v.sent = len(outgoing)
    for message_id, (sender, receiver, m) in outgoing.items():
        if m["status"] not in ("delivered", "read"):
            v.stuck_outbox += 1
            v.fail(f"node{sender} -> node{receiver}: {m['text']!r:.40} still {m['status']}")
        holders = incoming.get(message_id, [])
        if len(holders) == 1 and holders[0] == (receiver, sender):
            v.delivered += 1
        elif not holders:
            v.lost += 1
            v.fail(f"lost: node{sender} -> node{receiver} {m['text']!r:.40} ({message_id})")
        else:
            v.fail(f"{message_id} is held by {holders}, expected node{receiver} once")
    for message_id in incoming:
        if message_id not in outgoing:
            v.fail(f"{message_id} was received but is in no sender's store")
    for message_id, (sender, receiver, seq) in ledger.accepted.items():
        v.confirmed += 1
        if message_id not in outgoing:
            v.lost += 1
            v.fail(
                f"node{sender} accepted #{seq} for node{receiver} ({message_id}) "
                "but its store has no such message"
            )
    v.replayed = len(ledger.replays)
    shown = Counter(message_id for _, message_id, _ in ledger.shown)
    for message_id, count in shown.items():
        if count > 1:
            v.duplicates += count - 1
            v.fail(f"{message_id} was shown {count} times")
    last: dict[tuple[int, int], int] = {}
    for node, _, text in ledger.shown:
        parsed = parse_text(text)
        if parsed is None:
            continue
        key = (parsed[0], node)
        if key in last and parsed[2] <= last[key]:
            v.out_of_order += 1
            v.fail(f"node{node} showed #{parsed[2]} from node{parsed[0]} after #{last[key]}")
        last[key] = parsed[2]


def _check_files(
    v: Verdict,
    ledger: Ledger,
    dumps: dict[int, dict[str, Any]],
    downloads: dict[int, Path],
    index_of: dict[str, int],
    verified_early: dict[str, bool],
) -> None:
    views: dict[tuple[int, str], dict[str, Any]] = {}
    for node, dump in dumps.items():
        for t in dump["transfers"]:
            views[(node, t["id"])] = t
            if t["state"] not in FINAL:
                v.stuck_transfers += 1
                v.fail(f"node{node}: transfer {t['id']} ({t['direction']}) still {t['state']}")
        if dump["partial"]:
            v.partial_files += len(dump["partial"])
            v.fail(f"node{node} left partial files: {dump['partial']}")
    files = dict(ledger.files)
    for (node, transfer_id), t in views.items():
        # Offered, then killed before it could tell us: the store still knows.
        if t["direction"] == "out" and transfer_id not in files:
            files[transfer_id] = (
                node,
                index_of.get(t["peer"], -1),
                ledger.pool.get(t["path"] or "", "unknown source"),
            )
    v.files_offered = len(files)
    saved: dict[int, set[Path]] = defaultdict(set)
    for transfer_id, (sender, receiver, sha) in files.items():
        out = views.get((sender, transfer_id))
        got = views.get((receiver, transfer_id))
        state = out["state"] if out else "missing"
        v.files_by_state[state] += 1
        if got is None:
            if state == "completed":
                v.fail(f"{transfer_id}: node{sender} says completed, node{receiver} never saw it")
            continue
        if got["state"] == "completed":
            path = Path(got["path"] or "")
            saved[receiver].add(path)
            if transfer_id in verified_early:
                matches = verified_early[transfer_id] and got["sha256"] == sha
            else:
                matches = got["sha256"] == sha and path.is_file() and sha256_file(path) == sha
            if not matches:
                v.file_hash_mismatch += 1
                v.fail(f"{transfer_id}: node{receiver} saved {path} but it does not match")
        if (got["state"] == "completed") != (state == "completed"):
            v.fail(f"{transfer_id}: node{sender} says {state}, node{receiver} {got['state']}")
    for node, folder in downloads.items():
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.name != PARTIAL_DIR and path not in saved[node]:
                v.unverified_files += 1
                v.fail(f"node{node}: {path.name} in downloads is no completed transfer")
