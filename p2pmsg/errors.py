"""The one error tree of p2pmsg.

Every error the product raises on purpose derives from `P2PMsgError`, so the
node can contain a misbehaving peer to one connection (catch `ProtocolError`,
`HandshakeError`, `DecryptError`) and the CLI can turn any of them into a
clear one-line message and a non-zero exit status.
"""

from __future__ import annotations


class P2PMsgError(Exception):
    """Base of every deliberate p2pmsg error."""


class ProtocolError(P2PMsgError):
    """The wire protocol was violated."""


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol forbids (a bug on our side)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids; the connection must end."""


class ReplayError(RemoteProtocolError):
    """A record or message that was already seen, arrived out of order, or lies outside its
    time window. Maps to the `replay_rejected` security event."""


class DowngradeError(RemoteProtocolError):
    """A record used a cipher suite outside the negotiated set, or changed suite anywhere but
    at an epoch boundary. Maps to the `downgrade_rejected` security event."""


class HandshakeError(P2PMsgError):
    """The Noise handshake or the p2pmsg identity binding failed."""


class DecryptError(P2PMsgError):
    """Authenticated decryption failed.

    Deliberately opaque: the message never says whether the tag, the padding
    or the length was wrong, so an attacker learns nothing from it.
    """

    def __init__(self, message: str = "decryption failed") -> None:
        super().__init__(message)


class StoreError(P2PMsgError):
    """The local database could not be read or written."""


class KeystoreError(P2PMsgError):
    """The identity file is missing, corrupt, or could not be written."""


class WrongPasswordError(KeystoreError):
    """The password does not open the keystore. Says nothing more, on purpose."""

    def __init__(self, message: str = "wrong password") -> None:
        super().__init__(message)


class UnlockThrottledError(KeystoreError):
    """Too many failed unlocks: the caller must wait `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many failed attempts: try again in {retry_after:.0f} s")


class PasswordPolicyError(KeystoreError):
    """A new password breaks one or more rules; `failures` names each one."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        super().__init__("password rejected: " + "; ".join(failures))


class ProfileNotFoundError(KeystoreError):
    """No identity file for this profile yet (`p2pmsg init` creates one)."""


class ProfileLockedError(P2PMsgError):
    """Another process already has this profile open."""


class ModelIntegrityError(P2PMsgError):
    """A model file does not match its manifest and was not loaded."""


class DatasetError(P2PMsgError):
    """A shipped dataset could not be found or made; the message says what to pass instead."""


class CipherUnavailableError(P2PMsgError, ImportError):
    """A cipher's compiled backend (libgcrypt or the twofish C library) cannot be found,
    loaded, or trusted (it failed its known-answer self-test)."""


class CipherBackendError(P2PMsgError):
    """A cipher library returned an error code from a call that should have worked; the
    message names the C function and the library's own explanation."""


class ConfigError(P2PMsgError):
    """A bad command-line argument or setting."""


class StoreKeyError(StoreError):
    """The data key does not open this database (another profile's key, or a wrong one)."""


class StoreSchemaError(StoreError):
    """The database schema is newer than this code, or a migration failed."""


class StoreCorruptError(StoreError):
    """A stored value failed authentication or is malformed: the file was modified."""


class PeerLookupError(P2PMsgError):
    """A peer named by display name or fingerprint prefix could not be resolved."""


class UnknownPeerError(PeerLookupError):
    """No known peer matches the name or fingerprint prefix."""


class AmbiguousPeerError(PeerLookupError):
    """Several peers match; `candidates` lists them so the user can be more specific."""

    def __init__(self, query: str, candidates: list[str]) -> None:
        self.query = query
        self.candidates = candidates
        super().__init__(f"peer {query!r} is ambiguous: " + ", ".join(candidates))


class UnknownAlertError(P2PMsgError):
    """No stored alert has this id (never raised here, or pruned as one of the oldest)."""


class DiscoveryError(P2PMsgError):
    """Zeroconf discovery could not start or was refused (e.g. mDNS forbidden here)."""


class EventFormatError(P2PMsgError):
    """A security event or dataset line does not follow the schema in DESIGN.md."""


class TransferError(P2PMsgError):
    """A file transfer cannot go on; the message is fit to show both users."""


class TransferRejectedError(TransferError):
    """The receiver's policy refuses an offer (size limit, free space, extension)."""


class TransferIntegrityError(TransferError):
    """The received file does not match the offered SHA-256. Maps to `file_integrity_fail`."""


class DiskFullError(TransferError):
    """The receiver's disk filled up during a transfer; the partial file was removed."""


class PeerBlockedError(P2PMsgError):
    """Nothing may be sent to this key now: it is flagged (claims a contact's name), blocked
    or retired; the message says which and what the user can do."""


class NotConnectedError(P2PMsgError):
    """The action needs a live session with the peer, and there is none."""


class GroupError(ProtocolError):
    """A group item (membership operation, post, summary) was refused.

    Unlike a `RemoteProtocolError` it does not by itself end the session that carried
    it: a relayed item may be some third member's fault, and one bad item must not
    disturb the group for the others. `event` names the DESIGN.md security event the
    node logs for it (None: nothing to log, e.g. an honest duplicate from two relays);
    `reason` is a short code for the event's detail."""

    event: str | None = "frame_rejected"
    reason: str = "group_invalid"


class GroupMalformedError(GroupError):
    """The item does not follow docs/PROTOCOL.md "Groups" (shape, canonical encoding)."""

    reason = "group_malformed"


class GroupSignatureError(GroupError):
    """The author's signature does not verify: forged, or altered by whoever relayed it."""

    reason = "group_bad_signature"


class GroupTextMismatchError(GroupError):
    """A post's text does not hash to the `text_hash` its author signed: the signed body
    is sound, the text beside it was altered (by whoever relayed it) or is not its own."""

    reason = "group_text_mismatch"


class UnknownGroupError(GroupError):
    """An item for a group id this node does not hold."""

    reason = "group_unknown"


class GroupNotMemberError(GroupError):
    """The author was never a member as far as the item's own causal past shows."""

    reason = "group_not_member"


class GroupRemovedError(GroupError):
    """The author was removed (or left) before writing this item."""

    reason = "group_removed"


class GroupLimitError(GroupError):
    """A group limit was exceeded (members, names, deps, text); see docs/PROTOCOL.md."""

    reason = "group_limit"


class GroupFloodError(GroupError):
    """Too many operations from one author or in one group, or too many items waiting
    for a gap to fill: the surplus is refused, the group goes on."""

    event = "rate_limited"
    reason = "group_flood"


class GroupDuplicateError(GroupError):
    """An item already held, byte for byte. Normal when two members relay the same
    item, so nothing is logged (`event` is None); the item is not delivered again."""

    event = None
    reason = "group_duplicate"


class GroupEquivocationError(GroupError):
    """A second, different item under an (author, seq) already held: the author signed
    two histories. The first one held stays."""

    event = "replay_rejected"
    reason = "group_equivocation"


class GroupGapError(GroupError):
    """An item waited for an earlier one (its author's previous item or an operation it
    depends on) longer than the gap limit, and was dropped."""

    reason = "group_gap"
