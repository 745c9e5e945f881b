"""Items that arrived before something they need: bounded, and timed out.

An item waits here when its author's previous item (same kind) or an
operation in its `deps` is not handled yet. Each author may have
`per_author` items waiting and the group `total`; past either, or for a seq
too far ahead to ever fill, the item is refused (`GroupFloodError`). An item
that waits longer than `timeout` is dropped (`GroupGapError`): the gap before
it is not filling, and anti-entropy will offer it again when it can.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from p2pmsg.errors import GroupEquivocationError, GroupFloodError
from p2pmsg.protocol.groups.items import GroupOp, GroupPost, Item

Slot = tuple[str, bytes, int]  # ("op" | "post", author, seq)


def slot_of(item: Item) -> Slot:
    return ("op" if type(item) is GroupOp else "post", item.author, item.seq)


@dataclass(slots=True)
class _Waiting:
    item: Item
    since: float


class PendingItems:
    def __init__(self, *, per_author: int, total: int, timeout: float) -> None:
        self._per_author = per_author
        self._total = total
        self._timeout = timeout
        self._items: dict[Slot, _Waiting] = {}
        self._count: dict[bytes, int] = {}
        self._ops = 0  # operations among the waiting items (they count towards the op cap)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def ops(self) -> int:
        return self._ops

    def get(self, slot: Slot) -> Item | None:
        waiting = self._items.get(slot)
        return None if waiting is None else waiting.item

    def add(self, item: Item, handled: int, now: float) -> bool:
        """Hold `item` (whose author has `handled` items of its kind so far). False when
        it is the very item already waiting (a duplicate; a copy with the text replaces
        a waiting stub)."""
        slot = slot_of(item)
        held = self._items.get(slot)
        if held is not None:
            if held.item.body != item.body:
                raise GroupEquivocationError(f"group_{slot[0]}: a second body for a waiting seq")
            waiting = held.item
            if type(item) is GroupPost and type(waiting) is GroupPost and waiting.text is None:
                held.item = item  # a waiting stub gets the text (if this copy has it)
            return False
        if item.seq - handled > self._per_author:
            raise GroupFloodError(
                f"group_{slot[0]}: seq {item.seq} is more than {self._per_author} ahead "
                f"of the {handled} handled"
            )
        if self._count.get(item.author, 0) >= self._per_author or len(self._items) >= self._total:
            raise GroupFloodError(f"group_{slot[0]}: too many items waiting for earlier ones")
        self._items[slot] = _Waiting(item, now)
        self._count[item.author] = self._count.get(item.author, 0) + 1
        self._ops += slot[0] == "op"
        return True

    def pop(self, slot: Slot) -> Item | None:
        waiting = self._items.pop(slot, None)
        if waiting is None:
            return None
        self._ops -= slot[0] == "op"
        left = self._count[slot[1]] - 1
        if left:
            self._count[slot[1]] = left
        else:
            del self._count[slot[1]]
        return waiting.item

    def heads(self, handled: dict[tuple[str, bytes], int]) -> Iterator[Item]:
        """The waiting items that are next in line for their author (seq = handled + 1)."""
        for (kind, author), upto in list(handled.items()):
            waiting = self._items.get((kind, author, upto + 1))
            if waiting is not None:
                yield waiting.item
        for slot, waiting in list(self._items.items()):
            if slot[2] == 1 and (slot[0], slot[1]) not in handled:
                yield waiting.item

    @property
    def deadline(self) -> float | None:
        if not self._items:
            return None
        return min(w.since for w in self._items.values()) + self._timeout

    def expired(self, now: float) -> list[Item]:
        """Remove and return the items that have waited `timeout` or longer."""
        old = [s for s, w in self._items.items() if now - w.since >= self._timeout]
        return [item for s in old if (item := self.pop(s)) is not None]
