"""The Node's public surface, shared by the TUI and the headless commands.

The TUI and the commands never touch sockets, zeroconf or SQLite: they call
the async methods of `NodeAPI` and consume its event stream. Everything here
is a plain frozen dataclass so it can cross thread and task boundaries and be
rendered or printed as JSON (`dataclasses.asdict`).

Peers are named by their identity fingerprint as lowercase hex (64 chars);
messages and transfers by a 16-byte id as lowercase hex (32 chars).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from p2pmsg.security_events import Evidence as Evidence  # re-exported: the UI sees only this API

MessageStatus = Literal["queued", "sent", "delivered", "read", "failed"]
Direction = Literal["in", "out"]
TransferState = Literal[
    "offered",
    "accepted",
    "declined",
    "expired",
    "transferring",
    "paused",
    "verifying",
    "completed",
    "failed",
    "cancelled",
]


# --- views: snapshots of state ------------------------------------------------------------


PeerState = Literal["discovered", "pinned", "flagged", "retired", "blocked"]


@dataclass(frozen=True)
class IntroductionView:
    """ "Introduced by `introducer_name` in `group_name`": a group's signed member list
    named this key before we met it (`introducer` put it in the group `group`). A hint,
    never trust: the key is first-seen until the user verifies it. Names are raw
    (peer text): sanitise before printing."""

    introducer: str
    introducer_name: str
    group: str
    group_name: str
    at: float


@dataclass(frozen=True)
class PeerView:
    """One identity key, as lists and conversations show it.

    `name` is what to call it: the user's `local_name` (petname) if set, else
    the `claimed_name` the peer gave itself. `state`: "discovered" (seen in an
    advert, never met), "pinned" (met; trust on first use, `verified` once the
    user compared safety numbers or paired by code), "flagged" (it claims a
    name that reads like `clash_with`'s, a different key: kept apart, nothing
    is sent to it until the user decides), "retired" (replaced by `successor`
    in the user's key change) or "blocked".
    """

    fingerprint: str
    name: str
    short_fingerprint: str
    online: bool
    verified: bool
    unread: int
    state: PeerState = "pinned"
    local_name: str = ""
    claimed_name: str = ""
    clash_with: str | None = None  # fingerprint of the contact whose name it claims
    clash_with_name: str = ""  # that contact's name, for "claims to be Carol"
    successor: str | None = None  # retired: the contact now on the new key
    addresses: tuple[str, ...] = ()  # "host:port"
    manual: bool = False  # added by host:port rather than discovered
    first_seen: float | None = None
    last_seen: float | None = None
    introduced_by: tuple[IntroductionView, ...] = ()  # group introductions, oldest first

    @property
    def sendable(self) -> bool:
        """Messages may be sent: a pinned key with nothing held against it (a key only
        seen in an advert is sendable too: the first handshake pins it)."""
        return self.state in ("pinned", "discovered")


@dataclass(frozen=True)
class MessageView:
    id: str
    peer: str
    direction: Direction
    text: str | None  # None once a disappearing message has been deleted
    created: float
    status: MessageStatus
    ttl: float | None = None  # disappearing timer in seconds, if any
    deadline: float | None = None  # when the body will be deleted, once read


@dataclass(frozen=True)
class GroupMemberView:
    """A member as the group's signed history names it. `name` is the user's petname
    for that key when there is one, else the name the group gave it (a claim)."""

    fingerprint: str
    name: str
    admin: bool
    me: bool


@dataclass(frozen=True)
class GroupView:
    """One group, as every member converges on it (docs/PROTOCOL.md, "Groups").
    `member` is False once this profile left or was removed (the history stays)."""

    id: str
    name: str
    members: tuple[GroupMemberView, ...]
    member: bool
    admin: bool


@dataclass(frozen=True)
class GroupMessageView:
    """A group post. `id` is "<author fingerprint>:<seq>" (unique per group); `group`
    the group id. For our own posts `delivered` counts the other current members whose
    anti-entropy summary shows they hold it, out of `recipients`, and `read` those whose
    summary says they read it (`Node.group_receipts` lists them)."""

    id: str
    group: str
    group_name: str
    author: str
    author_name: str
    direction: Direction
    text: str | None  # None: the post disappeared (here, or where this copy came from)
    created: float
    ttl: int | None = None
    delivered: int = 0
    recipients: int = 0
    read: int = 0
    deadline: float | None = None  # when the text will be deleted here, once shown


@dataclass(frozen=True)
class GroupReceiptView:
    """One other current member's receipt for our post: `name` as in `GroupMemberView`
    (petname first, else the group's claim; raw: sanitise before printing)."""

    fingerprint: str
    name: str
    delivered: bool
    read: bool


@dataclass(frozen=True)
class DirectionStatus:
    suite: str
    epoch: int
    messages_under_key: int
    max_messages_per_key: int
    last_rotation: float
    next_rotation: float  # time-driven deadline


@dataclass(frozen=True)
class SessionStatusView:
    """What the rotation status pane shows for one peer's live session."""

    peer: str
    send: DirectionStatus
    recv: DirectionStatus
    negotiated_suites: tuple[str, ...]
    session_started: float
    last_key_agreement: float
    handshake_hash: str  # hex
    verified: bool


@dataclass(frozen=True)
class TransferView:
    id: str
    peer: str
    direction: Direction
    name: str  # already made safe for display and for the filesystem
    size: int
    sha256: str  # hex; "" until the whole file was read (sender) or verified (receiver)
    state: TransferState
    bytes_done: int
    rate_bps: float = 0.0
    path: str | None = None  # final path once completed (receiver) or source (sender)
    error: str | None = None
    created: float = 0.0  # when it was offered (wall clock): orders cards among messages
    #: A folder or multi-file offer (protocol section 7.2) is one view too: `files` is its
    #: number of files (0 for a single-file transfer), `files_done` how many arrived
    #: verified; size and bytes_done are the whole offer's. `path`: the receiver's folder.
    files: int = 0
    files_done: int = 0
    #: For one file of such an offer: the offer's id (its per-file progress)
    bundle_id: str | None = None


@dataclass(frozen=True)
class MonitorStatus:
    mode: str  # "models" or "rules-only: <reason>"
    recent_scores: tuple[float, ...] = ()


#: What the user made of an alert: new; seen; put away; put away as wrong (a false alarm
#: also makes later alerts of that kind for that peer quieter: p2pmsg.monitor.quieting).
AlertState = Literal["unread", "acknowledged", "dismissed", "false_alarm"]


@dataclass(frozen=True)
class AlertView:
    """A stored `Alert` (p2pmsg.security_events) as the API shows it: its record, its id,
    its state in the lifecycle (`state_at`: since when), and why it was raised
    (`evidence`: what was observed beside its threshold or normal range)."""

    ts: float
    kind: str
    severity: Literal["low", "medium", "high", "critical"]
    peer: str | None
    addr: str | None
    source: str
    score: float
    message: str
    id: int | None = None
    state: AlertState = "unread"
    state_at: float | None = None
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class AlertCounts:
    """How many stored alerts are in each state (the header's unread count, the
    dashboard's false alarms)."""

    unread: int = 0
    acknowledged: int = 0
    dismissed: int = 0
    false_alarm: int = 0


# --- events: what happened (past tense) ----------------------------------------------------


@dataclass(frozen=True)
class PeerDiscovered:
    peer: PeerView


@dataclass(frozen=True)
class PeerLost:
    fingerprint: str


@dataclass(frozen=True)
class PeerConnected:
    peer: PeerView
    session: SessionStatusView


@dataclass(frozen=True)
class PeerDisconnected:
    fingerprint: str
    reason: str


@dataclass(frozen=True)
class AddressDialed:
    """The outcome of one attempt to reach an address the user added (`add_peer`):
    `peer` on success, else `problem` says why (the node keeps trying, backing off)."""

    host: str
    port: int
    peer: PeerView | None
    problem: str | None


@dataclass(frozen=True)
class PeerUpdated:
    """Name, verification, trust or unread count changed."""

    peer: PeerView


@dataclass(frozen=True)
class NameClashed:
    """A key claims a name that reads like a contact's (at first contact or by renaming
    itself). It is kept apart and flagged; the contact is untouched and keeps working."""

    fingerprint: str  # the flagged key
    claimed_name: str
    contact: str  # the fingerprint of the contact whose name it claims
    contact_name: str
    detail: str


@dataclass(frozen=True)
class MessageReceived:
    """A message from a peer, stored. `replayed`: stored before a crash of this node and
    resent by the peer since (its receipt never left), so it may not have been shown;
    shown again rather than risk losing it. The id is the same as the first time."""

    message: MessageView
    replayed: bool = False


@dataclass(frozen=True)
class GroupMessageReceived:
    """A member's post now counts (verified, in its place, shown once)."""

    group: str
    message: GroupMessageView


@dataclass(frozen=True)
class GroupReceiptsChanged:
    """Members' summaries moved the receipts of our own posts: `messages` as they now
    stand (at most the last 200 of them changed)."""

    group: str
    messages: tuple[GroupMessageView, ...]


@dataclass(frozen=True)
class GroupMessagesExpired:
    """Disappearing group posts whose text was deleted here (`ids` as in
    `GroupMessageView.id`); the posts stay in the timeline without text."""

    group: str
    ids: tuple[str, ...]


@dataclass(frozen=True)
class GroupChanged:
    """A group was joined, or its members, admins or name changed."""

    group: GroupView


@dataclass(frozen=True)
class MessageStatusChanged:
    peer: str
    ids: tuple[str, ...]
    status: MessageStatus


@dataclass(frozen=True)
class MessagesExpired:
    """Disappearing messages whose bodies were deleted."""

    peer: str
    ids: tuple[str, ...]


@dataclass(frozen=True)
class SessionChanged:
    """Keys rotated, the cipher changed or a fresh key agreement happened."""

    session: SessionStatusView
    what: Literal["rotated", "cipher_changed", "rekeyed"]


@dataclass(frozen=True)
class TransferUpdated:
    transfer: TransferView


@dataclass(frozen=True)
class SecurityEventLogged:
    """A security event the node logged, in the API's shape: its DESIGN.md JSON record
    (`SecurityEvent.to_dict()`, p2pmsg.security_events), the object `listen --json`
    prints under "record" and `security_events()` lists."""

    record: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class AlertRaised:
    alert: AlertView


@dataclass(frozen=True)
class AlertStateChanged:
    """The user acknowledged, dismissed or marked false alarms: here through the API,
    or with `p2pmsg alerts` in another process (picked up within a second). `alerts`
    are the changed ones as they are now; `counts` are the new totals."""

    alerts: tuple[AlertView, ...]
    counts: AlertCounts


@dataclass(frozen=True)
class MonitorChanged:
    status: MonitorStatus


# --- pairing by a short code (node/services/pairing.py, docs/PROTOCOL.md 7.1) -------------


@dataclass(frozen=True)
class PairingCode:
    """A one-time code this node shows for `peer`; the other person types it."""

    peer: str
    code: str  # "123-456"
    expires_at: float  # wall clock


@dataclass(frozen=True)
class PairingOutcome:
    """How one pairing attempt ended. `ok`: both sides matched and `peer` is now
    marked verified here. `reason`: verified | wrong_code (a mistyped code, or a man
    in the middle) | expired | no_code (the other side had no live code) | busy |
    unexpected (a message out of order) | cancelled | disconnected | timeout (the wait
    ended first) | not_recorded (matched, but the store refused the mark)."""

    peer: str
    ok: bool
    reason: str


#: What each outcome means to the person at the keyboard.
OUTCOME_TEXT: dict[str, str] = {
    "wrong_code": "the code did not match (a typo, or someone in the middle); nothing was "
    "marked and the code is used up: show a new one to try again",
    "expired": "the code expired before it was used; show a new one",
    "no_code": "the other side has no live code (expired, already used, or never shown); "
    "ask for a new one",
    "busy": "the other side is itself entering a code for you; only one of you types",
    "unexpected": "the other side sent something out of order; try again with a new code",
    "cancelled": "the other side cancelled",
    "disconnected": "the connection dropped during pairing; try again with a new code",
    "timeout": "no answer in time",
    "not_recorded": "the codes matched but the profile could not record it",
}


@dataclass(frozen=True)
class PairingFinished:
    """A pairing attempt with `peer` ended (either role); see `PairingOutcome`."""

    peer: str
    ok: bool
    reason: str


NodeEvent = (
    PeerDiscovered
    | PeerLost
    | PeerConnected
    | PeerDisconnected
    | AddressDialed
    | PeerUpdated
    | NameClashed
    | MessageReceived
    | MessageStatusChanged
    | MessagesExpired
    | SessionChanged
    | TransferUpdated
    | SecurityEventLogged
    | AlertRaised
    | AlertStateChanged
    | MonitorChanged
    | PairingFinished
    | GroupMessageReceived
    | GroupMessagesExpired
    | GroupChanged
    | GroupReceiptsChanged
)


class NodeAPI(Protocol):
    """What the TUI and the commands may call. Every method is safe to call from the
    event loop: blocking work happens off it. Errors are `p2pmsg.errors` subclasses with
    messages fit to show a user (e.g. "peer 'bob' is ambiguous: bob (3f2a 91bc ...), ...").
    """

    @property
    def fingerprint(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def listen_port(self) -> int: ...

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    def subscribe(self) -> AsyncIterator[NodeEvent]:
        """A new, independent stream of events from now on (bounded; a slow
        consumer drops the oldest *progress* events first, never messages)."""
        ...

    async def peers(self) -> list[PeerView]: ...
    async def resolve_peer(self, query: str) -> PeerView:
        """A display name or fingerprint prefix; ambiguity is an error listing candidates."""
        ...

    async def conversation(self, peer: str, limit: int = 200) -> list[MessageView]: ...
    async def send_text(self, peer: str, text: str, ttl: float | None = None) -> MessageView: ...
    async def wait_delivered(self, message_id: str, timeout: float) -> MessageStatus: ...
    async def mark_read(self, peer: str) -> None: ...
    async def set_conversation_ttl(self, peer: str, ttl: float | None) -> None:
        """Seconds; `math.inf`: off in this conversation even where a default exists;
        None: no timer of its own."""
        ...

    async def conversation_ttl(self, peer: str) -> float | None:
        """The conversation's own disappearing timer as stored: seconds, `math.inf`
        (explicitly off) or None (none of its own: a profile default, if any, applies)."""
        ...

    async def session_status(self, peer: str) -> SessionStatusView | None: ...
    async def set_suite(self, peer: str, suite: str) -> None: ...
    async def rotate(self, peer: str) -> None: ...
    async def rekey(self, peer: str) -> None: ...
    async def safety_number(self, peer: str) -> str: ...
    async def set_verified(self, peer: str, verified: bool) -> None: ...
    # Trust decisions: each is the user's explicit act, takes effect at once on live
    # sessions, and raises `ConfigError` with a message fit to show when it cannot apply.
    async def rename_peer(self, peer: str, local_name: str | None) -> PeerView:
        """The user's own name for a peer (None or "" removes it)."""
        ...

    async def change_key(self, contact: str, new_key: str) -> PeerView:
        """ "This new key is the contact's": the contact, with its history, moves to the
        key `new_key` (a fingerprint or prefix of a key we have met); the old key is
        retired and refused from then on."""
        ...

    async def keep_apart(self, peer: str, local_name: str) -> PeerView:
        """ "Someone else": a flagged key becomes a contact of its own, named `local_name`."""
        ...

    async def block_peer(self, peer: str) -> PeerView: ...
    async def unblock_peer(self, peer: str) -> PeerView: ...
    async def add_peer(self, host: str, port: int) -> None: ...

    async def send_file(self, peer: str, path: str) -> TransferView: ...
    async def send_files(self, peer: str, paths: Sequence[str]) -> TransferView:
        """Files and folders as one folder offer (protocol section 7.2): one view with
        `files` > 0; accept_file / decline_file / cancel_file take its id as a whole.
        Symlinks inside a folder are skipped, never followed (listed in `error`)."""
        ...

    async def bundle_files(self, bundle_id: str) -> list[TransferView]:
        """A folder offer's per-file progress (the files started so far)."""
        ...

    async def accept_file(self, transfer_id: str) -> None: ...
    async def decline_file(self, transfer_id: str) -> None: ...
    async def transfers(self, peer: str | None = None) -> list[TransferView]: ...

    async def alerts(
        self, limit: int = 100, states: Collection[AlertState] | None = None
    ) -> list[AlertView]:
        """The newest alerts, newest first; `states` keeps those in these states (the
        threat panel asks for ("unread", "acknowledged"))."""
        ...

    async def alert_counts(self) -> AlertCounts: ...
    # The alert lifecycle: unread -> acknowledged -> dismissed, and false_alarm from any
    # of them; forward only. Each returns the alerts it changed (one already there or past
    # it stays as it is), publishes `AlertStateChanged`, and raises `UnknownAlertError`,
    # changing nothing, when an id names no stored alert.
    async def acknowledge_alerts(self, ids: Sequence[int] | None = None) -> list[AlertView]:
        """These alerts (None: every unread one) are seen."""
        ...

    async def dismiss_alerts(self, ids: Sequence[int]) -> list[AlertView]: ...
    async def mark_false_alarms(self, ids: Sequence[int]) -> list[AlertView]:
        """These alerts were wrong: dismissed, and later alerts of the same kind about
        the same peer are raised one severity lower for 7 days, within the limits of
        p2pmsg.monitor.quieting (never critical ones, never below low)."""
        ...

    async def security_events(self, limit: int = 500) -> list[dict[str, Any]]: ...
    async def monitor_status(self) -> MonitorStatus: ...
    async def get_settings(self) -> dict[str, Any]: ...
    async def update_settings(self, **values: Any) -> None: ...

    # --- pairing by a short code (node/services/pairing.py) ------------------------------
    async def pairing_code(self, peer: str) -> PairingCode:
        """A fresh one-time code to show (valid 120 s, one attempt). Replaces a code
        still shown for that peer; refused while an attempt with it is under way. The
        peer need not be connected yet: its node connects when its user types the code."""
        ...

    async def wait_pairing(self, peer: str, timeout: float) -> PairingOutcome:
        """For the shower: how the attempt on the code last shown for `peer` ended
        (reason `timeout` if it has not within `timeout` s; the code stays valid)."""
        ...

    # --- groups (node/services/groups.py; docs/PROTOCOL.md "Groups") --------------------
    async def groups(self) -> list[GroupView]: ...
    async def create_group(self, name: str, members: Sequence[str]) -> GroupView:
        """A new group with these peers (each must have a pinned key: met at least once)."""
        ...

    async def add_member(self, group: str, peer: str) -> GroupView: ...
    async def remove_member(self, group: str, peer: str) -> GroupView: ...
    async def leave_group(self, group: str) -> GroupView: ...
    async def rename_group(self, group: str, name: str) -> GroupView:
        """A new name for the group, signed; admins only (others get `ConfigError`)."""
        ...

    async def send_group(self, group: str, text: str, ttl: float | None = None) -> GroupMessageView:
        """Sign, store and fan out a post; members offline now get it by anti-entropy.
        `ttl`: a disappearing post (seconds; each member deletes its copy `ttl` after
        first showing it, the author `ttl` after sending it); None: the group's own
        timer (`set_group_ttl`), if any."""
        ...

    async def set_group_ttl(self, group: str, ttl: float | None) -> None:
        """The group's disappearing timer for new posts, as `set_conversation_ttl` (math.inf:
        off in this group, None: no timer of its own). Local: other members choose theirs."""
        ...

    async def group_ttl(self, group: str) -> float | None: ...

    async def group_messages(self, group: str, limit: int = 200) -> list[GroupMessageView]:
        """The latest posts, oldest first. Handing them to the user is what shows them:
        a disappearing post's deadline starts here (the chat's "read")."""
        ...

    async def wait_group_delivered(
        self, group: str, message_id: str, timeout: float
    ) -> GroupMessageView:
        """The post once every current member holds it, or as it stands at `timeout`."""
        ...

    async def mark_group_read(self, group: str) -> None:
        """The user saw the group's posts (its conversation is open): raise our read
        marks and tell the connected members (their receipts)."""
        ...

    async def group_receipts(
        self, group: str, message_id: str | None = None
    ) -> tuple[GroupMessageView, tuple[GroupReceiptView, ...]]:
        """Our post (the last one without `message_id`) and, per other current member,
        whether it holds and has read it (`ConfigError` if we posted none)."""
        ...

    async def enter_pairing_code(self, peer: str, code: str, timeout: float) -> PairingOutcome:
        """For the typer: run the exchange with the code `peer` shows. Connects first
        (`NotConnectedError` if the peer cannot be reached within `timeout`)."""
        ...
