"""`apply`: one batch of delivery work as one store transaction (runs on the store thread).

Under load the store sees one transaction per batch, never one statement per
message. Inside it each step (per peer) is a savepoint of its own, so a step
that fails (an unknown peer, a bad value) is undone alone, logged, and left out
of the result; the core then simply does not act on it (no receipt for chats
that were not stored: the sender resends them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ParamSpec

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.services.delivery.work import StoreResult, StoreWork
from p2pmsg.protocol.messages import Chat, ReceiptStatus
from p2pmsg.store import IncomingMessage, Store

log = logging.getLogger(__name__)

P = ParamSpec("P")


def apply(store: Store, work: StoreWork, now: float) -> StoreResult:
    """Run `work` in one transaction; `now` stamps every row it writes."""
    result = StoreResult()
    with store.transaction():
        for peer in work.backlogs:
            _guarded("reading the outbox", _read_backlog, store, result, peer)
        for peer in work.reads_due:
            _guarded("reading the read receipts owed", _read_reads_due, store, result, peer)
        for peer, ids in work.reads_told.items():
            _guarded("marking read receipts told", store.read_receipts_told, peer, ids)
        for peer, parts in work.incoming.items():
            _guarded(
                "storing incoming messages", _store_incoming, store, result, work, peer, parts, now
            )
        for (peer, status), ids in work.receipts.items():
            _guarded("applying receipts", _apply_receipt, store, result, peer, status, ids, now)
        for enqueue in work.enqueue:
            try:
                stored = store.enqueue_outgoing_batch(enqueue.peer, enqueue.texts, now, enqueue.ttl)
            except (P2PMsgError, ValueError) as exc:  # the caller hears why
                result.enqueued.append(exc)
            else:
                result.enqueued.append(stored)
        for peer, ids in work.sent.items():
            _guarded("marking messages sent", _mark_sent, store, result, peer, ids, now)
    return result


def _guarded(what: str, step: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
    try:
        step(*args, **kwargs)
    except (P2PMsgError, ValueError) as exc:
        log.warning("delivery: %s failed: %s", what, exc)


def _read_backlog(store: Store, result: StoreResult, peer: str) -> None:
    record = store.get_peer(peer)
    result.backlogs[peer] = (record, store.outbox(peer))
    if record is not None:
        result.reads_due[peer] = store.read_receipts_due(peer)


def _read_reads_due(store: Store, result: StoreResult, peer: str) -> None:
    result.reads_due[peer] = store.read_receipts_due(peer)


def _store_incoming(
    store: Store,
    result: StoreResult,
    work: StoreWork,
    peer: str,
    parts: list[list[Chat]],
    now: float,
) -> None:
    messages = [
        IncomingMessage(c.id, c.text, c.ts, None if c.ttl is None else float(c.ttl))
        for chats in parts
        for c in chats
    ]
    # A stranger's chats only within its quota: the rest get no receipt, and the
    # sender keeps them until the user answers.
    admission = store.admit_incoming(peer, messages, now)
    if admission.refused:
        result.refused_incoming[peer] = (admission.refused, admission.why)
    admitted = admission.admitted
    kept = [messages[i] for i in admitted]
    stored = result.stored_incoming[peer] = [
        (admitted[position], seq)
        for position, seq in store.insert_incoming_positions(peer, kept, now)
    ]
    if work.replay_up_to and len(stored) < len(kept):
        new = {position for position, _ in stored}
        again = [messages[i].id for i in admitted if i not in new]
        replays = store.unread_incoming_among(peer, again, work.replay_up_to)
        if replays:
            result.replays[peer] = replays


def _apply_receipt(
    store: Store,
    result: StoreResult,
    peer: str,
    status: ReceiptStatus,
    ids: list[bytes],
    now: float,
) -> None:
    method = store.mark_read_many if status == "read" else store.mark_delivered_many
    changed = result.receipt_changes[(peer, status)] = method(peer, ids, now)
    if len(changed) < len(ids):
        foreign = _foreign_ids(store, peer, ids, changed)
        if foreign:
            result.foreign_receipts[peer] = result.foreign_receipts.get(peer, 0) + foreign


def _foreign_ids(store: Store, peer: str, ids: list[bytes], changed: list[bytes]) -> int:
    """How many receipt ids name no message we sent to `peer`. An id acknowledged twice
    is fine (a resent message is acknowledged again); one we never sent it is not."""
    done = set(changed)
    count = 0
    for message_id in ids:
        if message_id in done:
            continue
        record = store.get_message(message_id)
        if record is None or record.peer != peer or record.direction != "out":
            count += 1
    return count


def _mark_sent(store: Store, result: StoreResult, peer: str, ids: list[bytes], now: float) -> None:
    result.sent_changes[peer] = store.mark_sent_many(peer, ids, now)
