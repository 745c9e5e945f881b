"""Groups without a server, sans-I/O (docs/PROTOCOL.md, "Groups").

One module per job:

* `limits`  every number the group protocol enforces
* `items`   the signed items (membership operations, posts): bodies, signing, strict parsing
* `state`   replay to one converged state; the permission and removal rules
* `buffer`  items waiting for an earlier one, bounded and timed out
* `sync`    anti-entropy summaries and what a member owes another
* `replica` `GroupReplica`: one member's copy of one group, the receive path, authoring
* `events`  what a replica reports
* `wire`    the group messages in a session's records (types 19-21)

Promises: every member holding the same items computes the same members, admins,
name and timeline, whatever order the items came in; each post is shown once; an
item is believed only when its author's signature verifies over the exact bytes
the author wrote; nothing waits or is held without a bound.
"""

from __future__ import annotations

from p2pmsg.protocol.groups.events import (
    GroupEvent,
    ItemRefused,
    MembershipChanged,
    PostFilled,
    PostHidden,
    PostShown,
)
from p2pmsg.protocol.groups.items import (
    Add,
    Create,
    GroupOp,
    GroupPost,
    Item,
    Leave,
    MemberInfo,
    Remove,
    Rename,
    parse_op,
    parse_post,
    text_hash,
    with_text,
)
from p2pmsg.protocol.groups.replica import GroupReplica
from p2pmsg.protocol.groups.state import GroupState, post_verdict, resolve
from p2pmsg.protocol.groups.sync import GroupSummary
from p2pmsg.protocol.groups.wire import decode_group_message, encode_group_message

__all__ = [
    "Add",
    "Create",
    "GroupEvent",
    "GroupOp",
    "GroupPost",
    "GroupReplica",
    "GroupState",
    "GroupSummary",
    "Item",
    "ItemRefused",
    "Leave",
    "MemberInfo",
    "MembershipChanged",
    "PostFilled",
    "PostHidden",
    "PostShown",
    "Remove",
    "Rename",
    "decode_group_message",
    "encode_group_message",
    "parse_op",
    "parse_post",
    "post_verdict",
    "resolve",
    "text_hash",
    "with_text",
]
