"""In-memory group members for the sans-I/O tests: real Ed25519 keys, real items, the
real wire encoding between them (every item crosses `encode_group_message` /
`decode_group_message`, as it will inside a session's records)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from p2pmsg.crypto.identity import Identity
from p2pmsg.errors import GroupDuplicateError, GroupError
from p2pmsg.protocol.groups import (
    GroupEvent,
    GroupReplica,
    Item,
    MemberInfo,
    PostHidden,
    PostShown,
    decode_group_message,
    encode_group_message,
)
from p2pmsg.protocol.groups.sync import GroupSummary


def identity(name: str) -> Identity:
    """A fixed identity per name, so failures reproduce."""
    return Identity.from_bytes(hashlib.sha512(name.encode()).digest())


def fixed_rng(seed: bytes):  # type: ignore[no-untyped-def]
    counter = [0]

    def rng(n: int) -> bytes:
        counter[0] += 1
        return hashlib.sha256(seed + counter[0].to_bytes(4, "big")).digest()[:n]

    return rng


#: The salts of the posts the tests write (each call a new one, as a post's salt must be).
SALTS = fixed_rng(b"post salts")


def wire(item: Item | GroupSummary) -> Item | GroupSummary:
    return decode_group_message(encode_group_message(item))


@dataclass
class Member:
    name: str
    me: Identity
    replica: GroupReplica
    events: list[GroupEvent] = field(default_factory=list)
    refused: list[GroupError] = field(default_factory=list)

    @property
    def fp(self) -> bytes:
        return self.me.fingerprint

    @property
    def info(self) -> MemberInfo:
        return MemberInfo(self.me.public_key, self.name)

    def take(self, item: Item | GroupSummary, now: float = 0.0) -> None:
        """Receive one item off the wire; refusals are kept, duplicates ignored."""
        decoded = wire(item)
        assert not isinstance(decoded, GroupSummary)
        try:
            self.replica.receive(decoded, now)
        except GroupDuplicateError:
            pass
        except GroupError as exc:
            self.refused.append(exc)
        self.pump()

    def pump(self) -> list[GroupEvent]:
        new = []
        while (event := self.replica.next_event()) is not None:
            new.append(event)
        self.events.extend(new)
        return new

    def shown(self) -> list[tuple[bytes, int]]:
        return [e.post.key for e in self.events if isinstance(e, PostShown)]

    def hidden(self) -> list[tuple[bytes, int]]:
        return [e.post.key for e in self.events if isinstance(e, PostHidden)]

    def check_events_match_timeline(self) -> None:
        """Shown, less hidden, is the timeline; nothing was shown twice in a row."""
        visible: set[tuple[bytes, int]] = set()
        for event in self.events:
            if isinstance(event, PostShown):
                assert event.post.key not in visible, "a post was shown twice"
                visible.add(event.post.key)
            elif isinstance(event, PostHidden):
                visible.remove(event.post.key)
        assert visible == {p.key for p in self.replica.timeline()}

    def texts(self) -> list[str | None]:
        """The timeline's texts; None for a stub (a post whose text disappeared)."""
        return [p.text for p in self.replica.timeline()]


def join(name: str, create_item: Item) -> Member:
    me = identity(name)
    decoded = wire(create_item)
    from p2pmsg.protocol.groups import GroupOp

    assert isinstance(decoded, GroupOp)
    member = Member(name, me, GroupReplica(decoded))
    member.pump()
    return member


def found(name: str, others: list[str], group: str = "team") -> Member:
    me = identity(name)
    infos = [MemberInfo(identity(o).public_key, o) for o in others]
    replica = GroupReplica.create(
        me, fixed_rng(f"{name}/{group}".encode()), 1.0, group, name, infos
    )
    member = Member(name, me, replica)
    member.pump()
    return member


def sync(a: Member, b: Member, now: float = 0.0) -> int:
    """Anti-entropy both ways until neither summary moves. Returns the items sent."""
    sent = 0
    for _ in range(100):  # bounded: each round moves a summary or stops
        progress = False
        for src, dst in ((a, b), (b, a)):
            summary = wire(dst.replica.summary())
            assert isinstance(summary, GroupSummary)
            for item in src.replica.missing_for(summary):
                dst.take(item, now)
                sent += 1
            progress = progress or dst.replica.summary() != summary
        if not progress:
            return sent
    raise AssertionError("anti-entropy did not settle")


def snapshot(m: Member) -> tuple[object, ...]:
    s = m.replica.state
    return (
        s.name,
        tuple(s.members.items()),
        tuple(sorted(s.admins)),
        tuple(op.key for op in s.valid),
        tuple(sorted(s.ignored.items())),
        tuple(p.key for p in m.replica.timeline()),
    )
