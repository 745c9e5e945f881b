"""What a p2pmsg mDNS advertisement says, and the strict rules for reading one.

Anyone on the LAN can advertise anything, so an advertisement is hostile
input: it is parsed from the raw TXT bytes (not zeroconf's lenient decoded
dict), every field is checked, and anything odd is rejected with a short
reason the caller counts. What passes is still only a hint: the handshake,
not the advertisement, decides who a peer is.

This module does no I/O, so the rules can be tested exhaustively.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from p2pmsg.errors import ConfigError
from p2pmsg.protocol.names import MAX_NAME_CHARS, name_problem

SERVICE_TYPE = "_p2pmsg._tcp.local."
INSTANCE_PREFIX = "p2pmsg-"
# A DNS label holds at most 63 bytes; 48 hex digits (192 bits) of the
# fingerprint keep the instance name unique per identity and inside that.
INSTANCE_FP_DIGITS = 48

FINGERPRINT_HEX_LEN = 64
MAX_TXT_BYTES = 1024
MAX_ADDRESSES = 16
MAX_VERSION = 65535


@dataclass(frozen=True)
class PeerAdvertised:
    """A peer is (still) advertising itself; `addresses` merges every instance seen."""

    fingerprint_hex: str
    name: str
    addresses: tuple[str, ...]
    port: int
    version: int


@dataclass(frozen=True)
class PeerWithdrawn:
    """The last advertisement of this fingerprint went away (goodbye or expiry)."""

    fingerprint_hex: str


DiscoveryEvent = PeerAdvertised | PeerWithdrawn


class InvalidAdvertisement(ValueError):
    """An advertisement broke a rule; `reason` is a short counter key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def validate_display_name(name: str) -> str:
    """Return `name` if it is a safe display name, else raise `InvalidAdvertisement`.

    The one name rule (`p2pmsg.protocol.names`), as the handshake applies it:
    control and format characters are refused, not stripped, since a name that
    could repaint a terminal or hide a look-alike is an attack, and a silently
    "cleaned" version would hide that.
    """
    if name_problem(name) is not None:
        raise InvalidAdvertisement("bad_name")
    return name


def own_display_name(name: str) -> str:
    """Our own name, checked by the same rule peers apply (a clear error if not)."""
    try:
        return validate_display_name(name)
    except InvalidAdvertisement:
        raise ConfigError(
            f"display name must be 1-{MAX_NAME_CHARS} printable characters without "
            "leading/trailing spaces or control characters"
        ) from None


def validate_fingerprint_hex(value: str) -> str:
    if len(value) != FINGERPRINT_HEX_LEN or any(c not in "0123456789abcdef" for c in value):
        raise InvalidAdvertisement("bad_fingerprint")
    return value


def instance_name(fingerprint_hex: str) -> str:
    """Service instance name: derived from the identity, so equal names never collide."""
    return f"{INSTANCE_PREFIX}{fingerprint_hex[:INSTANCE_FP_DIGITS]}.{SERVICE_TYPE}"


def host_name(fingerprint_hex: str) -> str:
    """The `.local.` host our A records hang off; also per identity."""
    return f"{INSTANCE_PREFIX}{fingerprint_hex[:INSTANCE_FP_DIGITS]}.local."


def build_txt(fingerprint_hex: str, name: str, version: int) -> dict[str, str]:
    """The TXT properties we publish (checked by the rules we hold others to)."""
    validate_fingerprint_hex(fingerprint_hex)
    return {"v": str(version), "fp": fingerprint_hex, "name": own_display_name(name)}


def parse_txt(raw: bytes) -> dict[bytes, bytes | None]:
    """Split raw TXT rdata (RFC 6763 section 6) into lower-cased keys and values.

    Strict where the RFC is lenient: a duplicate key is rejected rather than
    "first one wins", because two different values for `fp` in one record is
    never an accident.
    """
    if len(raw) > MAX_TXT_BYTES:
        raise InvalidAdvertisement("txt_too_large")
    items: dict[bytes, bytes | None] = {}
    pos = 0
    while pos < len(raw):
        length = raw[pos]
        pos += 1
        if pos + length > len(raw):
            raise InvalidAdvertisement("txt_malformed")
        entry = raw[pos : pos + length]
        pos += length
        if not entry:
            continue  # an empty string is how an empty TXT record is encoded
        key, sep, value = entry.partition(b"=")
        if not key or any(b < 0x20 or b > 0x7E for b in key):
            raise InvalidAdvertisement("txt_malformed")
        key = key.lower()
        if key in items:
            raise InvalidAdvertisement("txt_duplicate_key")
        items[key] = value if sep else None
    return items


def _text_field(items: Mapping[bytes, bytes | None], key: bytes, reason: str) -> str:
    value = items.get(key)
    if value is None:
        raise InvalidAdvertisement(reason)
    try:
        return value.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidAdvertisement(reason) from None


def parse_version(text: str) -> int:
    # isdecimal() alone would accept non-ASCII digits such as Arabic-Indic digits.
    if not (1 <= len(text) <= 5 and text.isascii() and text.isdecimal()):
        raise InvalidAdvertisement("bad_version")
    version = int(text)
    if not 1 <= version <= MAX_VERSION:
        raise InvalidAdvertisement("bad_version")
    return version


def usable_addresses(addresses: Iterable[str]) -> tuple[str, ...]:
    """Addresses worth dialling, de-duplicated, first-seen order, capped.

    Loopback, multicast and unspecified addresses are dropped: an advertiser
    must not be able to point us at our own machine's services.
    """
    kept: list[str] = []
    for text in addresses:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue
        if address.is_loopback or address.is_multicast or address.is_unspecified:
            continue
        if text not in kept:
            kept.append(text)
        if len(kept) == MAX_ADDRESSES:
            break
    return tuple(kept)


def parse_advertisement(
    raw_txt: bytes, port: int | None, addresses: Iterable[str]
) -> PeerAdvertised:
    """Turn a resolved service into a `PeerAdvertised`, or raise `InvalidAdvertisement`."""
    items = parse_txt(raw_txt)
    version = parse_version(_text_field(items, b"v", "bad_version"))
    fingerprint_hex = validate_fingerprint_hex(_text_field(items, b"fp", "bad_fingerprint"))
    name = validate_display_name(_text_field(items, b"name", "bad_name"))
    if port is None or not 1 <= port <= 65535:
        raise InvalidAdvertisement("bad_port")
    usable = usable_addresses(addresses)
    if not usable:
        raise InvalidAdvertisement("no_usable_address")
    return PeerAdvertised(fingerprint_hex, name, usable, port, version)


def merge(adverts: Iterable[PeerAdvertised]) -> PeerAdvertised | None:
    """One peer from all instances carrying the same fingerprint.

    Name, port and version come from the most recent advertisement (the last
    one given); addresses are the union, so one identity on several addresses
    stays one peer.
    """
    latest: PeerAdvertised | None = None
    addresses: list[str] = []
    for advert in adverts:
        latest = advert
        addresses.extend(a for a in advert.addresses if a not in addresses)
    if latest is None:
        return None
    return PeerAdvertised(
        latest.fingerprint_hex,
        latest.name,
        tuple(addresses[:MAX_ADDRESSES]),
        latest.port,
        latest.version,
    )
