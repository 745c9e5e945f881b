"""Every number the group protocol enforces (docs/PROTOCOL.md, "Groups", lists them).

Wire limits: both ends must agree, changing one is a protocol change. The chat
limits (text, timer) are the chat's own, imported from `protocol/limits.py`, so a
group post is held to exactly what a one-to-one chat is.
"""

from __future__ import annotations

from p2pmsg.protocol.limits import MAX_NAME_BYTES, MAX_TEXT_BYTES, MAX_TTL_SECONDS

__all__ = [
    "FINGERPRINT_SIZE",
    "GAP_TIMEOUT",
    "GROUP_ID_SIZE",
    "MAX_AUTHORS",
    "MAX_BODY_BYTES",
    "MAX_GROUP_MEMBERS",
    "MAX_GROUP_NAME_BYTES",
    "MAX_GROUP_OPS",
    "MAX_MEMBER_NAME_BYTES",
    "MAX_OPS_PER_AUTHOR",
    "MAX_PENDING",
    "MAX_PENDING_PER_AUTHOR",
    "MAX_SEQ",
    "MAX_SYNC_ITEMS",
    "MAX_TEXT_BYTES",
    "MAX_TTL_SECONDS",
    "MAX_UNSEEN_PER_AUTHOR",
    "NONCE_SIZE",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
]

GROUP_ID_SIZE = 16
NONCE_SIZE = 16
PUBLIC_KEY_SIZE = 32
FINGERPRINT_SIZE = 32
SIGNATURE_SIZE = 64
#: Sequence numbers and Lamport times are u32: room for 4 billion items per author,
#: and a peer cannot push a counter to where arithmetic on it gets expensive.
MAX_SEQ = (1 << 32) - 1

#: Current members of one group (the creator included).
MAX_GROUP_MEMBERS = 64
#: Distinct keys that were ever members of one group: every item's `deps`, and every
#: summary, lists at most this many authors, so one array limit covers them all.
MAX_AUTHORS = 256
#: Membership operations held per group, and per author: a member who signs operations
#: by the thousand is refused (`GroupFloodError`) and cannot use up the group's room.
MAX_GROUP_OPS = 1024
MAX_OPS_PER_AUTHOR = 128
#: The group's name and a member's claimed name: the display-name byte limit.
MAX_GROUP_NAME_BYTES = MAX_NAME_BYTES
MAX_MEMBER_NAME_BYTES = MAX_NAME_BYTES
#: Largest signed body (a create with 64 members and full deps is ~15 KiB; a post is
#: its text plus ~3 KiB of deps at most). Fits one application message.
MAX_BODY_BYTES = 48 * 1024

# --- local policy of the receive path (a peer with other values interoperates) ---------

#: Items held back until an earlier one arrives, per author and in total.
MAX_PENDING_PER_AUTHOR = 256
MAX_PENDING = 2048
#: Posts held but not shown (their author removed, as far as we know), per author.
MAX_UNSEEN_PER_AUTHOR = 64
#: Seconds an item may wait for the gap before it to fill; then it is dropped
#: (`GroupGapError`). Anti-entropy will offer it again once the gap can fill.
GAP_TIMEOUT = 600.0
#: Items one anti-entropy answer carries at most; the rest follow the next summary.
MAX_SYNC_ITEMS = 512
