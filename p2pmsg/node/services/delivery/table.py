"""`MessageTable`: what this run knows about its outgoing messages beyond the store's rows.

The store holds each message's durable status. Three facts live only in memory,
for the messages that have them, as one record per message:

* `ON_WIRE`: sent on the peer's live session, its receipt not in yet. A delivery
  receipt for such an id is announced at once: the peer stored it, and writing
  that down is bookkeeping (a crash before the write means a resend the peer
  de-duplicates). A receipt for any other id waits for the store, which checks
  that the id is a message we sent to that peer.
* `MARK_OWED`: it went out, and is neither marked "sent" nor acknowledged. The
  mark is written only for ids still owed one to two ticks after they went out
  (`tick`): most are acknowledged before and never need the write.
* `UNWRITTEN`: a delivery receipt was announced before the store wrote it; when
  the write comes back, it must not be announced a second time.

A record is an int of these flags, filed under the message's peer (receipts,
sessions and marks all come per peer), and it is dropped when no flag is left.
An int rather than an object: there is one per message in flight, and building
an object per message was a measurable part of the chat hot path.

Final statuses announced lately are kept apart, in a bounded cache (`recent`),
so that a reader of the store just before an announcement does not miss it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Literal

FinalStatus = Literal["delivered", "read"]

ON_WIRE = 1
MARK_OWED = 2
UNWRITTEN = 4
_SENT = ON_WIRE | MARK_OWED  # what going out sets

#: Final statuses remembered (oldest forgotten first).
RECENT_STATUSES = 100_000

_Records = dict[bytes, int]  # message id -> flags, one peer's


class MessageTable:
    def __init__(self, recent_limit: int = RECENT_STATUSES) -> None:
        self._peers: dict[str, _Records] = {}
        self._recent: OrderedDict[bytes, FinalStatus] = OrderedDict()
        self._recent_limit = recent_limit
        # Ids that went out this tick and the tick before, by peer (a record says whether
        # a mark is still owed: an acknowledgement in between cancels it).
        self._this_tick: dict[str, list[bytes]] = {}
        self._last_tick: dict[str, list[bytes]] = {}

    def flags(self, message_id: bytes) -> int:
        """The record's flags (0: nothing open). By id alone, so it asks every peer."""
        for records in self._peers.values():
            flags = records.get(message_id)
            if flags is not None:
                return flags
        return 0

    def recent(self, message_id: bytes) -> FinalStatus | None:
        return self._recent.get(message_id)

    def __len__(self) -> int:
        """Records open now (memory held for messages in flight)."""
        return sum(map(len, self._peers.values()))

    # --- changes -----------------------------------------------------------------------

    def went_out(self, peer: str, ids: list[bytes]) -> None:
        """Sent on `peer`'s live session: on the wire, and a "sent" mark owed."""
        records = self._peers.setdefault(peer, {})
        if records.keys().isdisjoint(ids):  # new messages (the usual case)
            records.update(dict.fromkeys(ids, _SENT))
        else:  # a new session's backlog, resent
            for message_id in ids:
                records[message_id] = records.get(message_id, 0) | _SENT
        self._this_tick.setdefault(peer, []).extend(ids)

    def acknowledged_early(self, peer: str, ids: Iterable[bytes]) -> list[bytes]:
        """A delivery receipt from `peer`: the ids that were on the wire to it, which
        may be announced now (their write is marked pending)."""
        records = self._peers.get(peer)
        if not records:
            return []
        early: list[bytes] = []
        for message_id in ids:
            flags = records.get(message_id)
            if flags is not None and flags & ON_WIRE:
                records[message_id] = UNWRITTEN  # off the wire, no mark owed any more
                early.append(message_id)
        return early

    def acknowledged(self, peer: str, ids: Iterable[bytes]) -> None:
        """The store recorded a receipt from `peer` for these ids: no mark is owed."""
        self._clear(peer, ids, MARK_OWED)

    def written(self, peer: str, ids: Iterable[bytes]) -> list[bytes]:
        """The store took a delivery receipt from `peer` for `ids` (changed or not):
        those announced before are returned, and need no announcement now."""
        return self._clear(peer, ids, UNWRITTEN)

    def session_closed(self, peer: str) -> None:
        """Nothing is on the wire to `peer` any more: unacknowledged ids go out again
        with the next session's backlog, and their receipts wait for the store."""
        records = self._peers.pop(peer, None)
        if records:
            left = {i: f & ~ON_WIRE for i, f in records.items() if f & ~ON_WIRE}
            if left:
                self._peers[peer] = left

    def tick(self) -> dict[str, list[bytes]]:
        """A tick passed: the ids sent the tick before that are still owed a "sent"
        mark, by peer (no longer owed once returned)."""
        due = self._take_marks(self._last_tick)
        self._last_tick = {}
        for peer, ids in self._this_tick.items():
            records = self._peers.get(peer, {})
            owed = [i for i in ids if records.get(i, 0) & MARK_OWED]
            if owed:
                self._last_tick[peer] = owed
        self._this_tick = {}
        return due

    @property
    def marks_coming(self) -> bool:
        """Whether ids of the last tick are owed a mark at the next one."""
        return bool(self._last_tick)

    def all_marks(self) -> dict[str, list[bytes]]:
        """Every mark owed now, by peer (a flush: nothing waits for its tick)."""
        due = self._take_marks(self._last_tick)
        for peer, ids in self._take_marks(self._this_tick).items():
            due.setdefault(peer, []).extend(ids)
        self._last_tick, self._this_tick = {}, {}
        return due

    def settle(self, ids: Iterable[bytes], status: FinalStatus) -> None:
        """A final status was announced for these ids."""
        recent = self._recent
        for message_id in ids:
            recent[message_id] = status  # a later status ("read") keeps the id's age
        while len(recent) > self._recent_limit:
            recent.popitem(last=False)

    def _take_marks(self, sent: dict[str, list[bytes]]) -> dict[str, list[bytes]]:
        due: dict[str, list[bytes]] = {}
        for peer, ids in sent.items():
            owed = self._clear(peer, ids, MARK_OWED)
            if owed:
                due[peer] = owed
        return due

    def _clear(self, peer: str, ids: Iterable[bytes], flag: int) -> list[bytes]:
        """Clear `flag` on these records of `peer`; returns the ids that had it (once
        each), and drops the records left with nothing open."""
        records = self._peers.get(peer)
        if not records:
            return []
        had: list[bytes] = []
        for message_id in ids:
            flags = records.get(message_id)
            if flags is not None and flags & flag:
                had.append(message_id)
                if flags == flag:
                    del records[message_id]
                else:
                    records[message_id] = flags & ~flag
        if not records:
            del self._peers[peer]
        return had
