"""Every number the wire protocol enforces, in one place.

Two kinds live here. Wire limits (module constants) are part of the protocol:
both ends must agree on them, docs/PROTOCOL.md lists them, and changing one is
a protocol change. Session policy (`ProtocolConfig`) is local: how often this
end rotates keys, which suites it offers, how long it waits; a peer with a
different policy interoperates.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pmsg.crypto.suites import SUITE_NAMES, get_suite
from p2pmsg.errors import ConfigError

# --- wire limits (protocol constants) ------------------------------------------------------

#: Prologue mixed into the Noise handshake. Unchanged since version 1: the version itself
#: travels in every handshake payload (`v`), which is hashed into the transcript too.
PROLOGUE = b"p2pmsg/1"
#: Protocol version, carried in handshake payloads (`v`) and the mDNS advert. Version 2
#: moved the whole-file SHA-256 from file_offer to file_done. Peers of another version
#: are refused during the handshake, with a reason that names both versions.
PROTOCOL_VERSION = 2
#: Version in every record header: the record format is unchanged since protocol 1.
RECORD_VERSION = 1

FRAME_HEADER_SIZE = 4
#: Largest frame body a peer may send (bytes after the 4-byte length). Checked from the
#: length prefix before a single body byte is buffered, so it also bounds msgpack's input.
MAX_FRAME_SIZE = 256 * 1024
#: Noise caps a handshake message at 65535 bytes (spec section 3).
MAX_NOISE_MESSAGE = 65535

#: msgpack limits for the outer frame body: a handful of small fields and one bin.
FRAME_MAX_ARRAY = 8
FRAME_MAX_MAP = 0
FRAME_MAX_STR = 256

#: msgpack limits for a handshake payload.
HANDSHAKE_MAX_ARRAY = 16
HANDSHAKE_MAX_MAP = 16
HANDSHAKE_MAX_STR = 256
HANDSHAKE_MAX_BIN = 128

#: Largest file chunk a record may carry, and the largest chunk size an offer may announce.
#: 192 KiB (raised from 64 KiB within protocol version 2, before its release): every
#: record costs each side the same Python work whatever its size (~40 us on the
#: machine measured), so larger records cut a transfer's CPU per byte; measured per
#: 128 MiB (aes-256-gcm) 0.31/0.33 CPU-s sender/receiver with 64 KiB, 0.27/0.31 with
#: 192 KiB. The largest record (`MAX_RECORD_OVERHEAD` more) still fits a frame, and a
#: frame stays a quarter of a MiB: a chat record waits behind at most a few of them.
MAX_CHUNK_SIZE = 192 * 1024
#: Most bytes a file_chunk record's frame body adds to its data, whatever the suite
#: and the fields' values: the record header (array, version, epoch up to 2^32-1,
#: counter up to 2^64-2, suite, bin 32 header: 23 bytes), the largest suite overhead
#: (Twofish: a full block of padding and a 32-byte tag: 48) and the message around the
#: data (array, type, transfer id, offset up to 2^40, bin 32 header: 34).
MAX_RECORD_OVERHEAD = 23 + 48 + 34
#: Most file data a sender may have unacknowledged, per transfer (a protocol rule: the
#: receiver buffers no more than this and ends a transfer that exceeds it). In bytes,
#: not chunks: it stayed 4 MiB when the chunk limit grew.
MAX_UNACKED_BYTES = 4 * 1024 * 1024
#: Largest chat text, in UTF-8 bytes.
MAX_TEXT_BYTES = 32 * 1024
#: Longest display name, in UTF-8 bytes.
MAX_NAME_BYTES = 128
#: Longest file name in an offer, in UTF-8 bytes (a common filesystem limit).
MAX_FILE_NAME_BYTES = 255
#: Longest free-text reason (decline, cancel, bye).
MAX_REASON_BYTES = 256
#: Most message ids in one receipt.
MAX_RECEIPT_IDS = 256
#: Largest file an offer may announce (1 TiB); keeps every offset well inside u64.
MAX_FILE_SIZE = 1 << 40
#: Folder and multi-file offers (`bundle_offer`, docs/PROTOCOL.md section 7.2). Every
#: limit is checked by the receiver against what the peer sends, before a byte is written:
#: most files in one offer (thousands of tiny files are the peer's cost, not ours) ...
MAX_BUNDLE_ENTRIES = 10_000
#: ... most path components in one relative path (deep nesting) ...
MAX_BUNDLE_DEPTH = 32
#: ... longest relative path, in UTF-8 bytes (a common PATH_MAX share) ...
MAX_BUNDLE_PATH_BYTES = 1024
#: ... the UTF-8 bytes of all relative paths of one offer together (the manifest a
#: receiver buffers in memory while the parts arrive, and stores) ...
MAX_BUNDLE_MANIFEST_BYTES = 1024 * 1024
#: ... and entries per `bundle_offer` part (128 paths of 1024 bytes fit one frame).
MAX_BUNDLE_PART_ENTRIES = 128
#: Longest disappearing-message timer (30 days).
MAX_TTL_SECONDS = 30 * 24 * 3600
#: Most cipher suites in an offer.
MAX_OFFERED_SUITES = 16

#: msgpack limits for an application message (the plaintext inside a record).
MESSAGE_MAX_ARRAY = MAX_RECEIPT_IDS
MESSAGE_MAX_MAP = 0
MESSAGE_MAX_STR = MAX_TEXT_BYTES
MESSAGE_MAX_BIN = MAX_CHUNK_SIZE

#: Record counters are u64; the last value is never used (Noise reserves it too).
MAX_COUNTER = (1 << 64) - 1
#: Record epochs are u32.
MAX_EPOCH = (1 << 32) - 1
#: Hard cap on records under one epoch key, whatever the local policy says.
HARD_MAX_MESSAGES_PER_KEY = 1 << 20


@dataclass(frozen=True)
class ProtocolConfig:
    """Local session policy. Defaults are the product's; tests shrink them.

    `suites` is ordered by preference: as initiator it is the offer, as
    responder the set this end allows (answered in the initiator's order).
    All times are seconds of the clock handed to the connection.
    """

    suites: tuple[str, ...] = SUITE_NAMES
    max_messages_per_key: int = 1000
    key_rotation_interval: float = 3600.0
    rekey_interval: float = 24 * 3600.0
    rekey_after_messages: int = 100_000
    handshake_timeout: float = 10.0
    keepalive_interval: float = 30.0
    idle_timeout: float = 120.0
    #: how far in the future a chat timestamp may be (peer clocks differ a little)
    max_clock_skew: float = 300.0
    #: how old a chat timestamp may be (queued messages arrive late, but not forever;
    #: the store remembers message ids at least this long to drop duplicates)
    max_message_age: float = 30 * 24 * 3600.0
    #: The peer's key rotations it may make: a burst of `rotation_burst`, then
    #: `rotation_rate` per second plus one per `records_per_rotation` records it sends.
    #: A peer may legally rotate before every record; each rotation is a logged event,
    #: so one-record epochs by the thousand are a storm (240,000 in 39 s once pushed
    #: older evidence out of the event log): the session ends with `rate_limited`.
    rotation_burst: int = 600
    rotation_rate: float = 10.0
    records_per_rotation: int = 8
    #: The peer's rekey messages (each costs us an X25519 agreement): a burst of
    #: `rekey_burst`, then `rekey_rate` per second plus one per `records_per_rekey`
    #: records it sends. Honest rekeys come once a day or per 100,000 records.
    rekey_burst: int = 16
    rekey_rate: float = 0.2
    records_per_rekey: int = 1000
    #: The peer's pings (each asks us to seal a pong): a burst of `ping_burst`, then
    #: `ping_rate` per second. Honest pings are keepalives (one per keepalive interval)
    #: and one per key agreement; a ping flood cost a pong each, thousands per read.
    ping_burst: int = 64
    ping_rate: float = 4.0

    def __post_init__(self) -> None:
        if not self.suites:
            raise ConfigError("at least one cipher suite must be allowed")
        if len(set(self.suites)) != len(self.suites):
            raise ConfigError(f"cipher suites listed twice: {self.suites}")
        for name in self.suites:
            if name not in SUITE_NAMES:
                raise ConfigError(f"unknown cipher suite {name!r}; known: {', '.join(SUITE_NAMES)}")
        if not 1 <= self.max_messages_per_key <= HARD_MAX_MESSAGES_PER_KEY:
            raise ConfigError(f"max_messages_per_key must be 1..{HARD_MAX_MESSAGES_PER_KEY}")
        if self.rekey_after_messages < 1:
            raise ConfigError("rekey_after_messages must be positive")
        for name in (
            "key_rotation_interval",
            "rekey_interval",
            "handshake_timeout",
            "keepalive_interval",
            "idle_timeout",
            "max_clock_skew",
            "max_message_age",
            "rotation_burst",
            "rotation_rate",
            "records_per_rotation",
            "rekey_burst",
            "rekey_rate",
            "records_per_rekey",
            "ping_burst",
            "ping_rate",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive")
        if self.idle_timeout <= self.keepalive_interval:
            raise ConfigError(
                "idle_timeout must exceed keepalive_interval, "
                "or an idle but healthy peer would be dropped"
            )

    @property
    def suite_ids(self) -> tuple[int, ...]:
        return tuple(get_suite(name).suite_id for name in self.suites)
