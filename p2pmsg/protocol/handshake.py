"""The p2pmsg handshake: Noise XX plus identity binding and cipher-suite negotiation.

    initiator                                     responder
    -> e               payload {"v", "suites": offer}          (clear, but hashed)
    <- e, ee, s, es    payload {"v", "name", "id", "sig", "suites": accepted}
    -> s, se           payload {"v", "name", "id", "sig"}

`id` is the sender's Ed25519 identity key and `sig` its signature over
b"p2pmsg-noise-static:" + the sender's Noise static public key, so the
authenticated Noise static key is bound to the long-term identity (the libp2p
pattern). Every payload is part of the Noise transcript: an offer edited in
flight makes the next message fail to decrypt, so a man in the middle cannot
downgrade the suite list.

The responder answers with the offered suites it allows, in the initiator's
order; the first of them is the suite both directions start with. An empty
answer, an answer that is not a subsequence of the offer, an unknown version,
a bad signature or a policy refusal is a `HandshakeError` naming the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

import msgpack

from p2pmsg.crypto.identity import Identity, fingerprint, verify_signature
from p2pmsg.crypto.suites import get_suite, get_suite_by_id
from p2pmsg.errors import HandshakeError, LocalProtocolError, RemoteProtocolError
from p2pmsg.protocol.limits import (
    HANDSHAKE_MAX_ARRAY,
    HANDSHAKE_MAX_BIN,
    HANDSHAKE_MAX_MAP,
    HANDSHAKE_MAX_STR,
    MAX_OFFERED_SUITES,
    PROLOGUE,
    PROTOCOL_VERSION,
)
from p2pmsg.protocol.names import name_problem
from p2pmsg.protocol.noise import HandshakeState, Rng
from p2pmsg.protocol.wire import describe, unpack_limited

STATIC_BINDING_PREFIX = b"p2pmsg-noise-static:"

_OFFER_KEYS = frozenset({"v", "suites"})
_RESPONSE_KEYS = frozenset({"v", "name", "id", "sig", "suites"})
_FINAL_KEYS = frozenset({"v", "name", "id", "sig"})


@dataclass(frozen=True)
class PeerInfo:
    """Who is on the other end, as proven by the handshake."""

    public_key: bytes  # Ed25519 identity key (what gets pinned)
    fingerprint: bytes  # SHA-256 of public_key
    name: str  # self-chosen display name: a label, never proof of anything
    noise_static: bytes  # the X25519 key the identity signed


@dataclass(frozen=True)
class HandshakeResult:
    peer: PeerInfo
    suites: tuple[str, ...]  # negotiated, in the initiator's preference order
    initial_suite: str
    handshake_hash: bytes
    send_key: bytes = field(repr=False)
    recv_key: bytes = field(repr=False)
    initiator: bool = False


#: A local policy: given the authenticated peer and the negotiated suites, return
#: a reason to refuse, or None to accept.
HandshakePolicy = Callable[[PeerInfo, tuple[str, ...]], str | None]


def static_binding(noise_static_public: bytes) -> bytes:
    """What an identity signs to vouch for its Noise static key."""
    return STATIC_BINDING_PREFIX + noise_static_public


def check_display_name(name: object) -> str:
    """The peer's claimed name, held to the one name rule (`p2pmsg.protocol.names`).

    The same rule as for mDNS adverts: no control, format or separator
    characters, no leading or trailing whitespace, at most 64 characters.
    """
    problem = name_problem(name)
    if problem is not None:
        raise HandshakeError(f"display name {problem}: {describe(name)}")
    assert isinstance(name, str)
    return name


class Handshake:
    """Runs one side of the handshake over opaque Noise messages.

    Initiator: `start()` gives message 1; `receive(message 2)` returns message 3
    and completes. Responder: `receive(message 1)` returns message 2;
    `receive(message 3)` returns None and completes. `result` is set once
    complete. Any failure raises `HandshakeError` and the object stays failed.
    """

    def __init__(
        self,
        *,
        initiator: bool,
        identity: Identity,
        display_name: str,
        suites: tuple[str, ...],
        rng: Rng,
        policy: HandshakePolicy | None = None,
        e: bytes | None = None,
    ) -> None:
        try:
            check_display_name(display_name)
        except HandshakeError as exc:
            raise LocalProtocolError(f"our own {exc}") from None
        self.initiator = initiator
        self._identity = identity
        self._name = display_name
        self._suite_ids = [get_suite(name).suite_id for name in suites]
        self._policy = policy
        self._noise = HandshakeState(
            initiator=initiator, s=identity.noise_static, prologue=PROLOGUE, e=e, rng=rng
        )
        self._negotiated: tuple[str, ...] = ()
        self._peer: PeerInfo | None = None
        self._failed = False
        self._started = False
        self.result: HandshakeResult | None = None

    # -- public steps ------------------------------------------------------------------------

    def start(self) -> bytes:
        if not self.initiator or self._started:
            raise LocalProtocolError("only a fresh initiator starts a handshake")
        self._started = True
        return self._noise.write_message(_pack({"v": PROTOCOL_VERSION, "suites": self._suite_ids}))

    def receive(self, message: bytes) -> bytes | None:
        if self._failed:
            raise HandshakeError("handshake already failed")
        try:
            return self._receive(message)
        except HandshakeError:
            self._failed = True
            raise

    # -- steps -------------------------------------------------------------------------------

    def _receive(self, message: bytes) -> bytes | None:
        payload = self._noise.read_message(message)
        if self.initiator:
            self._on_response(_decode(payload, _RESPONSE_KEYS, "message 2"))
            reply = self._noise.write_message(_pack(self._identity_fields()))
            self._finish()
            return reply
        if self._noise.finished:
            self._peer = self._verify_identity(_decode(payload, _FINAL_KEYS, "message 3"))
            self._apply_policy()
            self._finish()
            return None
        self._on_offer(_decode(payload, _OFFER_KEYS, "message 1"))
        return self._noise.write_message(
            _pack(
                {
                    **self._identity_fields(),
                    "suites": [get_suite(n).suite_id for n in self._negotiated],
                }
            )
        )

    def _on_offer(self, fields: dict[str, object]) -> None:
        offer = _suite_list(fields["suites"], "offered")
        # Unknown ids are ignored, not refused: a newer peer may offer suites we lack.
        self._negotiated = tuple(get_suite_by_id(i).name for i in offer if i in self._suite_ids)
        if not self._negotiated:
            raise HandshakeError("no cipher suite in common with the peer's offer")

    def _on_response(self, fields: dict[str, object]) -> None:
        answer = _suite_list(fields["suites"], "accepted")
        if not answer:
            raise HandshakeError("peer accepted no cipher suite")
        offered = iter(self._suite_ids)
        if not all(i in offered for i in answer):  # consumes: checks order too
            raise HandshakeError("peer's accepted suites are not a subsequence of our offer")
        self._negotiated = tuple(get_suite_by_id(i).name for i in answer)
        self._peer = self._verify_identity(fields)
        self._apply_policy()

    def _identity_fields(self) -> dict[str, object]:
        ident = self._identity
        return {
            "v": PROTOCOL_VERSION,
            "name": self._name,
            "id": ident.public_key,
            "sig": ident.sign(static_binding(ident.noise_static_public)),
        }

    def _verify_identity(self, fields: dict[str, object]) -> PeerInfo:
        name = check_display_name(fields["name"])
        public_key, signature = fields["id"], fields["sig"]
        if type(public_key) is not bytes or len(public_key) != 32:
            raise HandshakeError(f"identity key must be 32 bytes, got {describe(public_key)}")
        if type(signature) is not bytes or len(signature) != 64:
            raise HandshakeError(f"signature must be 64 bytes, got {describe(signature)}")
        remote_static = self._noise.remote_static
        if remote_static is None:  # pragma: no cover - XX always delivers it by now
            raise HandshakeError("no remote static key")
        if not verify_signature(public_key, signature, static_binding(remote_static)):
            raise HandshakeError("identity signature does not match the peer's Noise static key")
        if public_key == self._identity.public_key:
            raise HandshakeError("peer presented our own identity (reflected connection?)")
        return PeerInfo(public_key, fingerprint(public_key), name, remote_static)

    def _apply_policy(self) -> None:
        if self._policy is None or self._peer is None:
            return
        reason = self._policy(self._peer, self._negotiated)
        if reason is not None:
            raise HandshakeError(f"refused by local policy: {reason}")

    def _finish(self) -> None:
        c1, c2 = self._noise.split()
        assert c1.k is not None and c2.k is not None and self._peer is not None
        send, recv = (c1.k, c2.k) if self.initiator else (c2.k, c1.k)
        self.result = HandshakeResult(
            peer=self._peer,
            suites=self._negotiated,
            initial_suite=self._negotiated[0],
            handshake_hash=self._noise.handshake_hash,
            send_key=send,
            recv_key=recv,
            initiator=self.initiator,
        )


# --- payload encoding ------------------------------------------------------------------------


def _pack(fields: dict[str, object]) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)  # type: ignore[no-any-return]


def _fail(reason: str) -> NoReturn:
    raise HandshakeError(reason)


def _decode(payload: bytes, keys: frozenset[str], what: str) -> dict[str, object]:
    """One place for payload shape: a map with exactly `keys` and a known version."""
    try:
        obj = unpack_limited(
            payload,
            what=f"handshake {what}",
            max_array=HANDSHAKE_MAX_ARRAY,
            max_map=HANDSHAKE_MAX_MAP,
            max_str=HANDSHAKE_MAX_STR,
            max_bin=HANDSHAKE_MAX_BIN,
        )
    except RemoteProtocolError as exc:
        raise HandshakeError(str(exc)) from None
    if type(obj) is not dict:
        _fail(f"handshake {what}: payload must be a map, got {describe(obj)}")
    version = obj.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        _fail(version_mismatch(version))
    if obj.keys() != keys:
        missing = sorted(keys - obj.keys())
        extra = sorted(str(k) for k in obj.keys() - keys)
        _fail(f"handshake {what}: missing fields {missing}, unknown fields {extra}")
    return obj


def version_mismatch(version: object) -> str:
    """Why a peer of another protocol version is refused, in words both users can act on.

    It travels to the peer in the ABORT frame (a `line`: at most 256 bytes, no
    controls), so an older p2pmsg shows it as "peer aborted: ..." instead of
    failing later on a message it cannot parse."""
    if type(version) is not int or not 0 <= version <= 0xFFFF:
        return f"unsupported protocol version {describe(version)}"
    newer_or_older = "an older" if version < PROTOCOL_VERSION else "a newer"
    return (
        f"unsupported protocol version {version}: the peer runs {newer_or_older} p2pmsg "
        f"(protocol {version}), this node speaks protocol {PROTOCOL_VERSION}; "
        "both sides need a p2pmsg release of the same protocol version"
    )


def _suite_list(value: object, what: str) -> list[int]:
    if type(value) is not list or len(value) > MAX_OFFERED_SUITES:
        _fail(f"{what} suites must be an array of at most {MAX_OFFERED_SUITES} ids")
    for item in value:
        if type(item) is not int or not 0 <= item <= 255:
            _fail(f"{what} suites must be integers 0..255, got {describe(item)}")
    if len(set(value)) != len(value):
        _fail(f"{what} suites list an id twice")
    return value
