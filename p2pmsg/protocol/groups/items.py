"""The two signed group items, membership operations and posts, and their bodies.

An item is a canonical msgpack *body* and the author's Ed25519 signature over a
domain-separated copy of it (docs/PROTOCOL.md, "Groups"). Relays pass the body
bytes on untouched, so what a member verifies is exactly what the author
signed; the decoder re-encodes every body and refuses one whose bytes differ,
so an item has one encoding and (author, seq) one body.

    op   [1, group_id, author_key, seq, lamport, ts, deps, kind, payload]
    post [2, group_id, author_key, seq, lamport, ts, deps, text_hash, ttl]

A post's body holds a salted hash of its text, not the text: the text travels
beside the signed body (`GroupPost.text`, `salt`), so a member whose copy
disappeared (`ttl`) still holds, and relays, the signed body as a *stub* that
stands in for the post in every rule (seq, gaps, order, membership). The salt
is fresh per post, so a member that only ever got the stub cannot confirm a
guess of a short text.

`deps` is the author's operation vector when it wrote the item: for each
author of operations, the highest operation seq it held contiguously, sorted
by fingerprint. It is the item's causal past, which the permission and
removal rules read (state.py).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NoReturn, TypeVar

import msgpack

from p2pmsg.crypto.identity import Identity, fingerprint, verify_signature
from p2pmsg.errors import (
    GroupLimitError,
    GroupMalformedError,
    GroupSignatureError,
    GroupTextMismatchError,
    LocalProtocolError,
    RemoteProtocolError,
)
from p2pmsg.protocol.groups.limits import (
    FINGERPRINT_SIZE,
    GROUP_ID_SIZE,
    MAX_AUTHORS,
    MAX_BODY_BYTES,
    MAX_GROUP_MEMBERS,
    MAX_GROUP_NAME_BYTES,
    MAX_MEMBER_NAME_BYTES,
    MAX_SEQ,
    MAX_TEXT_BYTES,
    MAX_TTL_SECONDS,
    NONCE_SIZE,
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
)
from p2pmsg.protocol.wire import describe, has_controls, unpack_limited

OP_DOMAIN = b"p2pmsg/v2/group-op\x00"
POST_DOMAIN = b"p2pmsg/v2/group-post\x00"
GROUP_ID_DOMAIN = b"p2pmsg/v2/group-id\x00"
TEXT_DOMAIN = b"p2pmsg/v2/group-text\x00"
TEXT_HASH_SIZE = 32
SALT_SIZE = 16

ITEM_OP = 1
ITEM_POST = 2
KIND_CREATE = 1
KIND_ADD = 2
KIND_REMOVE = 3
KIND_LEAVE = 4
KIND_RENAME = 5

Deps = tuple[tuple[bytes, int], ...]
Rng = Callable[[int], bytes]
T = TypeVar("T")


def group_id_for(creator_key: bytes, nonce: bytes) -> bytes:
    """The group id: random (the creator's fresh nonce) and bound to the creator's key,
    so nobody else can sign a create operation for a group id that exists."""
    return hashlib.sha256(GROUP_ID_DOMAIN + creator_key + nonce).digest()[:GROUP_ID_SIZE]


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A member as an operation names it: its identity key and the name it is given."""

    public_key: bytes
    name: str

    @property
    def fingerprint(self) -> bytes:
        return fingerprint(self.public_key)


@dataclass(frozen=True, slots=True)
class Create:
    nonce: bytes
    group_name: str
    creator_name: str
    members: tuple[MemberInfo, ...]


@dataclass(frozen=True, slots=True)
class Add:
    member: MemberInfo


@dataclass(frozen=True, slots=True)
class Remove:
    """`op_cutoff`/`post_cutoff`: the removed member's highest contiguous op and post
    seq the remover held. Its later items do not count, whatever Lamport time they
    claim (state.py, the removal rule)."""

    member: bytes  # fingerprint
    op_cutoff: int
    post_cutoff: int


@dataclass(frozen=True, slots=True)
class Leave:
    post_cutoff: int


@dataclass(frozen=True, slots=True)
class Rename:
    name: str


Payload = Create | Add | Remove | Leave | Rename


@dataclass(frozen=True, slots=True)
class GroupOp:
    """A signed membership operation. `author` is the fingerprint of `author_key`."""

    group_id: bytes
    author_key: bytes
    author: bytes
    seq: int
    lamport: int
    ts: float
    deps: Deps
    payload: Payload
    body: bytes
    signature: bytes

    @property
    def key(self) -> tuple[bytes, int]:
        return (self.author, self.seq)

    @property
    def order(self) -> tuple[int, bytes, int]:
        """The one total order every member replays operations in."""
        return (self.lamport, self.author, self.seq)


def text_hash(salt: bytes, text: str) -> bytes:
    """What a post's body commits to: SHA-256 over the domain, the post's salt and
    the text's UTF-8 bytes."""
    return hashlib.sha256(TEXT_DOMAIN + salt + text.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True, slots=True)
class GroupPost:
    """A signed group message. `ttl` is the chat's disappearing timer.

    The signed body commits to `text_hash`; `text` and `salt` travel beside it and
    are None in a *stub*: a post whose text this member never got or deleted (it
    disappeared). A stub is the same item (same body, signature, key, order)."""

    group_id: bytes
    author_key: bytes
    author: bytes
    seq: int
    lamport: int
    ts: float
    deps: Deps
    text_hash: bytes
    ttl: int | None
    body: bytes
    signature: bytes
    text: str | None = None
    salt: bytes | None = None

    @property
    def key(self) -> tuple[bytes, int]:
        return (self.author, self.seq)

    @property
    def order(self) -> tuple[int, bytes, int]:
        """Display order: causal (Lamport), and stable (author, seq break ties)."""
        return (self.lamport, self.author, self.seq)

    @property
    def is_stub(self) -> bool:
        return self.text is None

    @property
    def content(self) -> tuple[bytes, str] | None:
        """(salt, text) as the wire carries them, or None for a stub."""
        if self.text is None or self.salt is None:
            return None
        return (self.salt, self.text)

    def stub(self) -> GroupPost:
        """The same post without its text."""
        return replace(self, text=None, salt=None)


Item = GroupOp | GroupPost


# --- making items ---------------------------------------------------------------------


def _payload_fields(payload: Payload) -> tuple[int, list[object]]:
    if type(payload) is Create:
        members = [[m.public_key, m.name] for m in payload.members]
        return KIND_CREATE, [payload.nonce, payload.group_name, payload.creator_name, members]
    if type(payload) is Add:
        return KIND_ADD, [payload.member.public_key, payload.member.name]
    if type(payload) is Remove:
        return KIND_REMOVE, [payload.member, payload.op_cutoff, payload.post_cutoff]
    if type(payload) is Leave:
        return KIND_LEAVE, [payload.post_cutoff]
    if type(payload) is Rename:
        return KIND_RENAME, [payload.name]
    raise TypeError(f"not a group operation payload: {type(payload).__name__}")


def _pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def sign_op(
    identity: Identity,
    group_id: bytes,
    seq: int,
    lamport: int,
    ts: float,
    deps: Deps,
    payload: Payload,
) -> GroupOp:
    """A signed operation, held to the rules every receiver applies (`parse_op`)."""
    kind, fields = _payload_fields(payload)
    body = _pack(
        [ITEM_OP, group_id, identity.public_key, seq, lamport, float(ts), _deps(deps), kind, fields]
    )
    return _local(parse_op, body, identity.sign(OP_DOMAIN + body))


def sign_post(
    identity: Identity,
    group_id: bytes,
    seq: int,
    lamport: int,
    ts: float,
    deps: Deps,
    text: str,
    ttl: int | None = None,
    *,
    salt: bytes,
) -> GroupPost:
    """A signed post, held to the rules every receiver applies (`parse_post`). `salt`:
    16 fresh random bytes, never reused (see `text_hash`)."""
    if type(salt) is not bytes or len(salt) != SALT_SIZE:
        raise LocalProtocolError(f"a post's salt is {SALT_SIZE} random bytes")
    try:
        digest = text_hash(salt, _text(text))
    except GroupMalformedError as exc:
        raise LocalProtocolError(f"refusing to sign an invalid group item: {exc}") from None
    body = _pack(
        [
            ITEM_POST,
            group_id,
            identity.public_key,
            seq,
            lamport,
            float(ts),
            _deps(deps),
            digest,
            ttl,
        ]
    )
    signature = identity.sign(POST_DOMAIN + body)
    return _local(lambda b, s: parse_post(b, s, (salt, text)), body, signature)


def _deps(deps: Deps) -> list[list[object]]:
    return [[fp, seq] for fp, seq in sorted(deps)]


def _local(parse: Callable[[bytes, bytes], T], body: bytes, signature: bytes) -> T:
    try:
        return parse(body, signature)
    except (GroupMalformedError, GroupLimitError) as exc:
        raise LocalProtocolError(f"refusing to sign an invalid group item: {exc}") from None


# --- reading items --------------------------------------------------------------------


def parse_op(body: bytes, signature: bytes) -> GroupOp:
    """Validate and verify a signed operation, or raise `GroupMalformedError` /
    `GroupSignatureError`. Permission is not judged here (state.py does, in order)."""
    fields = _header(body, ITEM_OP, 9, "group_op")
    kind, payload = fields.rest
    op = GroupOp(
        fields.group_id,
        fields.author_key,
        fingerprint(fields.author_key),
        fields.seq,
        fields.lamport,
        fields.ts,
        fields.deps,
        _payload("group_op", kind, payload),
        body,
        signature,
    )
    _check_op_shape(op)
    _verify(OP_DOMAIN, fields.author_key, signature, body, "group_op")
    return op


def parse_post(
    body: bytes, signature: bytes, content: tuple[object, object] | None = None
) -> GroupPost:
    """Validate and verify a signed post, or raise `GroupMalformedError` /
    `GroupSignatureError`; with `content` (salt, text), also that the text is the
    one the body commits to (`GroupTextMismatchError`). Without it the post is a
    stub. Membership is judged by the replica (state.py)."""
    fields = _header(body, ITEM_POST, 9, "group_post")
    digest, ttl = fields.rest
    _bin("group_post", "text_hash", digest, TEXT_HASH_SIZE)
    if ttl is not None and (type(ttl) is not int or not 1 <= ttl <= MAX_TTL_SECONDS):
        _fail("group_post", "ttl", ttl, f"nil or an integer 1..{MAX_TTL_SECONDS}")
    post = GroupPost(
        fields.group_id,
        fields.author_key,
        fingerprint(fields.author_key),
        fields.seq,
        fields.lamport,
        fields.ts,
        fields.deps,
        digest,  # type: ignore[arg-type]
        ttl,
        body,
        signature,
    )
    _verify(POST_DOMAIN, fields.author_key, signature, body, "group_post")
    return post if content is None else with_text(post, *content)


def with_text(post: GroupPost, salt: object, text: object) -> GroupPost:
    """`post` with its text, once the text is shown to be the one its body commits
    to; else `GroupTextMismatchError` (the signed body itself is sound)."""
    salt = _bin("group_post", "salt", salt, SALT_SIZE)
    checked = _text(text)
    if text_hash(salt, checked) != post.text_hash:
        raise GroupTextMismatchError("group_post: the text is not the one its author signed")
    return replace(post, text=checked, salt=salt)


@dataclass(frozen=True, slots=True)
class _Header:
    group_id: bytes
    author_key: bytes
    seq: int
    lamport: int
    ts: float
    deps: Deps
    rest: list[object]


def _fail(where: str, field: str, value: object, expected: str) -> NoReturn:
    raise GroupMalformedError(f"{where}: field {field!r} must be {expected}, got {describe(value)}")


def _bin(where: str, field: str, value: object, size: int) -> bytes:
    if type(value) is not bytes or len(value) != size:
        _fail(where, field, value, f"bin of {size} bytes")
    return value


def _u32(where: str, field: str, value: object, minimum: int = 1) -> int:
    if type(value) is not int or not minimum <= value <= MAX_SEQ:
        _fail(where, field, value, f"an integer {minimum}..{MAX_SEQ}")
    return value


def _header(body: bytes, item: int, arity: int, where: str) -> _Header:
    if type(body) is not bytes or not 0 < len(body) <= MAX_BODY_BYTES:
        _fail(where, "body", body, f"bin of 1..{MAX_BODY_BYTES} bytes")
    try:
        obj = unpack_limited(
            body,
            what=where,
            max_array=MAX_AUTHORS,
            max_map=0,
            max_str=MAX_TEXT_BYTES,
            max_bin=PUBLIC_KEY_SIZE,
        )
    except RemoteProtocolError as exc:
        raise GroupMalformedError(str(exc)) from None
    if type(obj) is not list or len(obj) != arity or obj[0] != item or type(obj[0]) is not int:
        raise GroupMalformedError(f"{where}: expected an array of {arity} starting with {item}")
    try:
        canonical = _pack(obj)
    except (ValueError, OverflowError):  # pragma: no cover - decoded values always pack
        canonical = b""
    if canonical != body:
        # One item, one encoding: (author, seq) names exactly one body, and a relay
        # cannot make a second valid-looking copy by re-encoding.
        raise GroupMalformedError(f"{where}: body is not in canonical msgpack form")
    _, group_id, author_key, seq, lamport, ts, deps, *rest = obj
    if type(ts) is not float or not math.isfinite(ts):
        _fail(where, "ts", ts, "a finite float64")
    return _Header(
        _bin(where, "group_id", group_id, GROUP_ID_SIZE),
        _bin(where, "author_key", author_key, PUBLIC_KEY_SIZE),
        _u32(where, "seq", seq),
        _u32(where, "lamport", lamport),
        ts,
        _parse_deps(where, deps),
        rest,
    )


def _parse_deps(where: str, deps: object) -> Deps:
    if type(deps) is not list:
        _fail(where, "deps", deps, f"an array of at most {MAX_AUTHORS} [fingerprint, seq]")
    out: list[tuple[bytes, int]] = []
    for entry in deps:
        if type(entry) is not list or len(entry) != 2:
            _fail(where, "deps", entry, "[fingerprint, seq] pairs")
        fp = _bin(where, "deps[].fingerprint", entry[0], FINGERPRINT_SIZE)
        if out and fp <= out[-1][0]:
            raise GroupMalformedError(f"{where}: deps must be sorted by fingerprint, no repeats")
        out.append((fp, _u32(where, "deps[].seq", entry[1])))
    return tuple(out)


def _name(where: str, field: str, value: object, max_bytes: int) -> str:
    """A claimed name: stored raw (the sanitiser runs at display), held here only to
    the wire rule of every one-line text: 1..max bytes, no control characters."""
    if type(value) is str and value:
        data = value.encode("utf-8", "surrogatepass")
        if len(data) <= max_bytes and not has_controls(data, value, allow_tab_lf=False):
            return value
    _fail(where, field, value, f"one line of 1..{max_bytes} UTF-8 bytes, no controls")


def _text(text: object) -> str:
    if type(text) is not str or not text:
        _fail("group_post", "text", text, "non-empty str")
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > MAX_TEXT_BYTES:
        _fail("group_post", "text", text, f"at most {MAX_TEXT_BYTES} UTF-8 bytes")
    if has_controls(data, text, allow_tab_lf=True):
        raise GroupMalformedError("group_post: field 'text' contains terminal control characters")
    return text


def _member(where: str, value: object) -> MemberInfo:
    if type(value) is not list or len(value) != 2:
        _fail(where, "member", value, "[public_key, name]")
    return MemberInfo(
        _bin(where, "public_key", value[0], PUBLIC_KEY_SIZE),
        _name(where, "name", value[1], MAX_MEMBER_NAME_BYTES),
    )


def _payload(where: str, kind: object, payload: object) -> Payload:
    if type(payload) is not list:
        _fail(where, "payload", payload, "an array")
    if kind == KIND_CREATE and type(kind) is int and len(payload) == 4:
        nonce, group_name, creator_name, members = payload
        if type(members) is not list or len(members) > MAX_GROUP_MEMBERS - 1:
            raise GroupLimitError(
                f"{where}: a group starts with at most {MAX_GROUP_MEMBERS} members "
                f"(the creator and {MAX_GROUP_MEMBERS - 1} more)"
            )
        return Create(
            _bin(where, "nonce", nonce, NONCE_SIZE),
            _name(where, "group_name", group_name, MAX_GROUP_NAME_BYTES),
            _name(where, "creator_name", creator_name, MAX_MEMBER_NAME_BYTES),
            tuple(_member(where, m) for m in members),
        )
    if kind == KIND_ADD and type(kind) is int:
        return Add(_member(where, payload))
    if kind == KIND_REMOVE and type(kind) is int and len(payload) == 3:
        member, op_cutoff, post_cutoff = payload
        return Remove(
            _bin(where, "member", member, FINGERPRINT_SIZE),
            _u32(where, "op_cutoff", op_cutoff, 0),
            _u32(where, "post_cutoff", post_cutoff, 0),
        )
    if kind == KIND_LEAVE and type(kind) is int and len(payload) == 1:
        return Leave(_u32(where, "post_cutoff", payload[0], 0))
    if kind == KIND_RENAME and type(kind) is int and len(payload) == 1:
        return Rename(_name(where, "name", payload[0], MAX_GROUP_NAME_BYTES))
    _fail(where, "kind", kind, "1 create, 2 add, 3 remove, 4 leave or 5 rename, with its payload")


def _check_op_shape(op: GroupOp) -> None:
    """Rules that need no group state: a create is its author's first operation, names
    the id it derives, depends on nothing and lists distinct members; every other
    operation depends on its author's previous one (the author's own chain)."""
    deps = dict(op.deps)
    if type(op.payload) is Create:
        keys = [m.public_key for m in op.payload.members]
        if op.seq != 1 or op.deps:
            raise GroupMalformedError("group_op: a create is seq 1 with no deps")
        if op.group_id != group_id_for(op.author_key, op.payload.nonce):
            raise GroupMalformedError("group_op: group id does not derive from creator and nonce")
        if len(set(keys)) != len(keys) or op.author_key in keys:
            raise GroupMalformedError("group_op: a create lists a member twice")
        return
    if deps.get(op.author, 0) != op.seq - 1:
        raise GroupMalformedError("group_op: deps must name the author's previous operation")


def _verify(domain: bytes, key: bytes, signature: object, body: bytes, where: str) -> None:
    if type(signature) is not bytes or len(signature) != SIGNATURE_SIZE:
        _fail(where, "signature", signature, f"bin of {SIGNATURE_SIZE} bytes")
    if not verify_signature(key, signature, domain + body):
        raise GroupSignatureError(f"{where}: the author's signature does not verify")


def new_nonce(rng: Rng) -> bytes:
    nonce = rng(NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise LocalProtocolError("rng returned the wrong number of bytes")
    return nonce
