"""Textual messages that carry node events into the widget tree.

The event pump batches whatever the node emitted since the last frame into one
`NodeEvents` message, so a flood of events costs one layout pass per batch
rather than one per event.
"""

from __future__ import annotations

from textual.message import Message

from p2pmsg.node.api import NodeAPI, NodeEvent


class NodeEvents(Message):
    def __init__(self, events: tuple[NodeEvent, ...]) -> None:
        super().__init__()
        self.events = events


class NodeReady(Message):
    """The profile is open and the node has started."""

    def __init__(self, node: NodeAPI) -> None:
        super().__init__()
        self.node = node
